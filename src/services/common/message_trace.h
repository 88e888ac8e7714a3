// How the services' messages join traces (docs/TRACING.md): the `traceparent` header every
// message carries is the context of a PRODUCER span where it was made, and the service that
// consumes it continues that trace with a CONSUMER span. One trace then runs from the upload's
// request through the image topic, the dither and the dither topic to the mail.
//
//   Message m = make_message(topics.image, kImageUploaded, key, body, request_traceparent);
//   trace_publish(tracer, m, request_traceparent);     // "publish images", its context in m
//   ...
//   observability::Span span = trace_consume(tracer, message);   // "process images"
//   make_record(..., span.traceparent());                          // what follows continues it
//
// With no tracer (tracing off) nothing is recorded and the messages keep the context
// make_message() gave them: the trace id still flows, as it always did.
#pragma once

#include <string>
#include <string_view>

#include "observability/tracing.h"
#include "ports/message.h"

namespace dither {

// A PRODUCER span "publish <topic>" under `traceparent`, ended at once (the outbox relay sends the
// message later), whose context replaces the message's `traceparent` header.
inline void trace_publish(observability::Tracer* tracer, Message& message,
                          std::string_view traceparent) {
  if (tracer == nullptr) return;
  observability::Span span = observability::start_span(
      tracer, "publish " + message.topic, observability::SpanKind::kProducer, traceparent);
  span.set("messaging.destination.name", message.topic)
      .set("messaging.message.id", message.message_id())
      .set("dither.message_type", message.message_type());
  observability::inject_traceparent(message.headers, span);
}

// A CONSUMER span "process <topic>" under the message's `traceparent` (a new trace when it has
// none); ended when the caller's handling ends (the returned span's scope).
inline observability::Span trace_consume(observability::Tracer* tracer, const Message& message) {
  observability::Span span = observability::start_span(
      tracer, tracer != nullptr ? "process " + message.topic : std::string(),
      observability::SpanKind::kConsumer, message.header(kHeaderTraceparent).value_or(""));
  span.set("messaging.destination.name", message.topic)
      .set("messaging.message.id", message.message_id())
      .set("dither.message_type", message.message_type());
  return span;
}

}  // namespace dither
