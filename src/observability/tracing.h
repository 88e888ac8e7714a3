// Traces (issue 17, item 5): W3C trace context, spans, and an exporter that sends them to an
// OpenTelemetry collector (Jaeger, the OTel Collector...) over OTLP/HTTP with JSON bodies. Debian
// packages no OpenTelemetry C++ SDK; this is the small part of one the programs need
// (docs/TRACING.md).
//
//   Tracer tracer(options);                     // from the OTEL_* variables (app/config.h)
//   Span request = start_span(&tracer, "POST /images", SpanKind::kServer, incoming_traceparent);
//   request.set("http.request.method", "POST").set("http.response.status_code", 201);
//   {
//     Span store = request.child("store");      // a child, ended when it goes out of scope
//     if (!ok) store.set_error("the bucket refused it");
//   }
//   std::string context = request.traceparent();   // for a message or a request going on
//
// With no Tracer (a null pointer: tracing off, the default), a span records nothing and its
// traceparent() is its parent's, so that trace ids still flow through requests and messages
// exactly as before; starting and ending one costs a few nanoseconds. With a Tracer, every span
// gets ids from the CSPRNG; the sampler decides whether it is recorded; a recorded span goes, when
// it ends, to a bounded queue (full: dropped and counted; a request never waits for the
// exporter), which a thread of the Tracer sends in batches.
//
// Thread-safe: a Tracer is used from any thread. A Span belongs to one thread at a time (it may
// be moved, and may live in a coroutine's frame across threads).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "common/result.h"

namespace dither::observability {

// OTLP's numbering (opentelemetry/proto/trace/v1/trace.proto, Span.SpanKind).
enum class SpanKind : int { kInternal = 1, kServer = 2, kClient = 3, kProducer = 4, kConsumer = 5 };

// A W3C trace context: the ids in lower-case hex, and the sampled flag.
struct SpanContext {
  std::array<char, 32> trace_id{};
  std::array<char, 16> span_id{};
  bool sampled = false;

  // Both ids set (a parsed or generated context; a default one is not).
  bool valid() const { return trace_id[0] != '\0' && span_id[0] != '\0'; }
  std::string_view trace_id_hex() const { return {trace_id.data(), valid() ? 32u : 0u}; }
  std::string_view span_id_hex() const { return {span_id.data(), valid() ? 16u : 0u}; }
  // "00-<trace id>-<span id>-01" (or -00 when not sampled); "" when not valid.
  std::string traceparent() const;
};

// A `traceparent` header (W3C Trace Context level 1): version 00 exactly, or a later version's
// first four fields; lower-case hex ids that are not all zeros. nullopt for anything else.
std::optional<SpanContext> parse_traceparent(std::string_view text);

// OTEL_TRACES_SAMPLER. Parent-based samplers follow a valid parent's sampled flag and ask the
// named one only for a root span; the others decide alone. traceidratio keeps a trace when the
// last 8 bytes of its id, as an integer shifted right by one, are below ratio * 2^63: every
// process decides the same for one trace.
enum class Sampler {
  kAlwaysOn,
  kAlwaysOff,
  kTraceIdRatio,
  kParentBasedAlwaysOn,  // the default
  kParentBasedAlwaysOff,
  kParentBasedTraceIdRatio,
};
// From OTEL_TRACES_SAMPLER's value; kInvalidArgument naming the supported ones otherwise.
Result<Sampler> parse_sampler(std::string_view name);
// The value OTEL_TRACES_SAMPLER gives `sampler` ("parentbased_always_on"...).
std::string_view sampler_name(Sampler sampler);
// OTEL_TRACES_SAMPLER_ARG for the ratio samplers: a number from 0 to 1.
Result<double> parse_sampler_ratio(std::string_view text);
// "key=value,key=value" (OTEL_EXPORTER_OTLP_HEADERS, OTEL_RESOURCE_ATTRIBUTES: the W3C Baggage
// form): spaces around items trimmed, values percent-decoded. kInvalidArgument for an item
// without '=' or an empty key; the message never repeats a value (they may be tokens).
Result<std::vector<std::pair<std::string, std::string>>> parse_key_values(std::string_view text);
// Whether `url` is an http:// or https:// URL with a host (the endpoints' check).
bool is_http_url(std::string_view url);

// A span's attribute value; strings are kept valid UTF-8 and at most 1024 bytes.
using AttributeValue = std::variant<std::string, int64_t, bool>;

// A recorded span, as the exporter sends it.
struct SpanData {
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  SpanContext context;
  std::string parent_span_id;  // 16 hex, or "" for a root span
  int64_t start_unix_nano = 0;
  int64_t end_unix_nano = 0;
  std::chrono::steady_clock::time_point started{};  // the end is measured from it
  std::vector<std::pair<std::string, AttributeValue>> attributes;
  bool error = false;
  std::string status_message;  // with `error`
};

// What Tracer's exporter sends to; by default an HTTP POST over libcurl. Returns the HTTP
// status, or 0 when no answer came (refused, reset, timed out). Tests pass their own.
using OtlpTransport =
    std::function<int(const std::string& url, const std::string& body,
                      const std::vector<std::pair<std::string, std::string>>& headers,
                      std::chrono::milliseconds timeout)>;

struct TracerOptions {
  // Where spans go: the full URL (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or
  // OTEL_EXPORTER_OTLP_ENDPOINT + "/v1/traces"). "": no Tracer is made (tracing off).
  std::string endpoint;
  std::string service_name;  // OTEL_SERVICE_NAME; the resource's service.name
  // OTEL_RESOURCE_ATTRIBUTES (service.name among them is overridden by service_name).
  std::vector<std::pair<std::string, std::string>> resource;
  // OTEL_EXPORTER_OTLP_HEADERS: sent with every export; never logged.
  std::vector<std::pair<std::string, std::string>> headers;
  Sampler sampler = Sampler::kParentBasedAlwaysOn;  // OTEL_TRACES_SAMPLER
  double ratio = 1.0;                               // OTEL_TRACES_SAMPLER_ARG
  std::chrono::milliseconds timeout{10000};         // OTEL_EXPORTER_OTLP_TIMEOUT: one request
  std::chrono::milliseconds schedule_delay{5000};   // OTEL_BSP_SCHEDULE_DELAY: between exports
  size_t max_queue = 2048;                          // OTEL_BSP_MAX_QUEUE_SIZE: ended, not sent
  size_t max_batch = 512;                           // OTEL_BSP_MAX_EXPORT_BATCH_SIZE
  // A batch the collector could not take (no answer, 429, 502, 503, 504) is sent again after
  // first_backoff, doubled each time, at most max_attempts times in all; then it is lost.
  int max_attempts = 5;
  std::chrono::milliseconds first_backoff{1000};
  std::string scope_version;  // the instrumentation scope's version (the program's)
  OtlpTransport transport{};  // unset: HTTP over libcurl
};

class Span;

class Tracer {
 public:
  explicit Tracer(TracerOptions options);
  // shutdown() with a 3 s budget, when not done yet.
  ~Tracer();
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  // A span under `parent` (a valid context continues its trace; anything else starts one), begun
  // now or at `start_unix_nano`.
  Span start(std::string_view name, SpanKind kind, const SpanContext& parent,
             int64_t start_unix_nano = 0);

  // Sends what is queued, within `budget` (no retries past it), and stops the exporter. Spans
  // ended later are dropped (and counted).
  void shutdown(std::chrono::milliseconds budget);

  struct Stats {
    uint64_t queued = 0;    // spans ended and recorded, taken into the queue
    uint64_t dropped = 0;   // spans lost because the queue was full, or after shutdown
    uint64_t exported = 0;  // spans the collector accepted
    uint64_t failed = 0;    // spans lost because the collector refused or never answered
  };
  Stats stats() const;

  // Whether a new span under `parent` is recorded (the sampler's decision).
  bool should_sample(const SpanContext& parent, std::string_view trace_id) const;

  // A recorded span that ended (Span::end()).
  void finish(std::unique_ptr<SpanData> span);

 private:
  // The exporter thread: a batch when one is full or every schedule_delay; at shutdown, what is
  // left, until the budget is spent.
  void run();
  // Sends `batch`, again after a back-off while the collector cannot take it; counts the outcome.
  void send(const std::vector<std::unique_ptr<SpanData>>& batch);

  const TracerOptions options_;
  std::atomic<int64_t> abort_at_{0};  // steady-clock ns when a request must give up (shutdown)
  OtlpTransport transport_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::unique_ptr<SpanData>> queue_;      // guarded by mutex_
  bool stopping_ = false;                             // guarded by mutex_
  bool closed_ = false;                               // guarded by mutex_: the exporter is done
  std::chrono::steady_clock::time_point deadline_{};  // guarded by mutex_: the shutdown's
  std::atomic<uint64_t> queued_{0}, dropped_{0}, exported_{0}, failed_{0};
  bool failing_ = false;  // the exporter's: the last batch was lost (warned at most once a minute)
  std::chrono::steady_clock::time_point last_warning_{};
  std::thread exporter_;
};

// One operation. Ends when end() is called or it is destroyed, whichever is first.
class Span {
 public:
  Span() = default;
  ~Span() { end(); }
  Span(Span&& other) noexcept
      : tracer_(std::exchange(other.tracer_, nullptr)),
        data_(std::move(other.data_)),
        context_(other.context_) {}
  Span& operator=(Span&& other) noexcept;
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;

  // Whether this span will be exported (a Tracer made it and sampled it).
  bool recording() const { return data_ != nullptr; }
  // Whether a Tracer made it (recording or not): its context is its own, not its parent's.
  bool traced() const { return tracer_ != nullptr; }
  // This span's context; with no Tracer, the parent's (possibly not valid).
  const SpanContext& context() const { return context_; }
  // context() as a traceparent header ("" when not valid): what a request or a message carries
  // on.
  std::string traceparent() const { return context_.traceparent(); }

  // An attribute: a string, an integer or a bool. Nothing happens when not recording (the value
  // is not even converted).
  template <class T>
  Span& set(std::string_view key, const T& value) {
    if (data_ == nullptr) return *this;
    if constexpr (std::is_same_v<T, bool>) {
      add(key, AttributeValue(value));
    } else if constexpr (std::is_integral_v<T> || std::is_enum_v<T>) {
      add(key, AttributeValue(static_cast<int64_t>(value)));
    } else {
      add(key, AttributeValue(std::string(std::string_view(value))));
    }
    return *this;
  }
  Span& set_name(std::string_view name);
  // Status "error" with a message (which must say nothing secret: no address, no key).
  Span& set_error(std::string_view message);

  // A span under this one (or, with no Tracer, another that records nothing).
  Span child(std::string_view name, SpanKind kind = SpanKind::kInternal,
             int64_t start_unix_nano = 0) const;
  // Ends now, or at `end_unix_nano`; a second call does nothing.
  void end(int64_t end_unix_nano = 0);

  // A span that records nothing and carries `parent` on (what every span is with no Tracer).
  static Span untraced(const SpanContext& parent) {
    Span span;
    span.context_ = parent;
    return span;
  }

 private:
  friend class Tracer;
  void add(std::string_view key, AttributeValue value);

  Tracer* tracer_ = nullptr;        // set when a Tracer made this span's context
  std::unique_ptr<SpanData> data_;  // set while recording, until end()
  SpanContext context_;
};

// A span under the context in `parent_traceparent` (a header's or a message's value; malformed
// or empty: a new trace). With a null `tracer`, records nothing and passes the parent on.
Span start_span(Tracer* tracer, std::string_view name, SpanKind kind,
                std::string_view parent_traceparent, int64_t start_unix_nano = 0);

// Sets the `traceparent` pair in `headers` (a message's or a request's) to `span`'s context, when
// a Tracer made it (recorded or not: an unsampled context says so downstream). With no Tracer the
// headers stay as they are.
void inject_traceparent(std::vector<std::pair<std::string, std::string>>& headers,
                        const Span& span);

// The OTLP/HTTP JSON body (ExportTraceServiceRequest in protobuf's JSON mapping) of `spans`.
std::string otlp_json(std::span<const std::unique_ptr<SpanData>> spans,
                      const TracerOptions& options);

// Nanoseconds since the Unix epoch, now.
int64_t unix_nano_now();

}  // namespace dither::observability
