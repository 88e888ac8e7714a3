// Port: publish and subscribe to messages (SPEC section 4).
//
// Adapters: an in-process bus (embedded default) and Apache Kafka. The contract both keep, checked
// by ports/testing/event_bus_contract.h:
// - publish() returns OK only once the message is durable for every subscriber: for Kafka, when
//   the broker acknowledged it; in process, when every subscribed group's handler has returned
//   OK for it (or dead-lettered it). Callers keep the message (an outbox row) until then. An error
//   (kUnavailable: the broker is down, the bus is stopped or not started) comes back in bounded
//   time; the caller keeps the message and publishes it again later.
// - Each subscription belongs to a group; each message of the topic reaches every group once at
//   least, in key order (one handler call at a time per group). Handlers must be idempotent.
//   Every message reaches the handler, even one without the standard headers or with a body that
//   is not JSON: the handler decides, the bus never drops a message.
// - What the handler returns decides what happens to the message:
//     OK                            done (Kafka: the offset is committed only now);
//     kUnavailable                  transient: retried with a capped back-off for as long as it
//                                   takes, not counted toward `max_attempts`, never dead-lettered;
//     kInvalidArgument, kUnsupported  permanent: dead-lettered at once;
//     any other error (or a throw)  retried with a back-off up to `max_attempts` calls in all,
//                                   then dead-lettered.
//   Dead-lettering publishes the message (same key, body and headers) to Topics::dead_letter(topic)
//   with the headers "dead_letter_reason" (the error's message), "dead_letter_group" and
//   "dead_letter_topic" appended, then the group moves on.
// - stop() while a message is being retried leaves it unfinished: it is delivered again later
//   (Kafka: by whoever next consumes the partition, from the committed offset; in process:
//   publish() returns kUnavailable and the caller publishes it again).
//
// Thread-safe. Handlers run on a thread of the bus (in process: the publisher's thread).
#pragma once

#include <exception>
#include <functional>
#include <string>

#include "common/result.h"
#include "ports/message.h"

namespace dither {

using MessageHandler = std::function<Status(const Message&)>;

struct Subscription {
  std::string topic;
  std::string group;  // e.g. "upload-service", "dither-service"
  MessageHandler handler;
  int max_attempts = 5;  // calls of the handler for one message before it is dead-lettered
};

// Header names the bus adds to a dead letter (message.h has the standard ones).
inline constexpr std::string_view kHeaderDeadLetterReason = "dead_letter_reason";
inline constexpr std::string_view kHeaderDeadLetterGroup = "dead_letter_group";
inline constexpr std::string_view kHeaderDeadLetterTopic = "dead_letter_topic";

class EventBus {
 public:
  virtual ~EventBus() = default;
  virtual Status publish(const Message& message) = 0;
  // Subscribe before start(). Messages published before start() are delivered after it: Kafka
  // accepts them at once and the group receives them from its committed offset; the in-process
  // bus has nowhere to keep them, so publish() returns kUnavailable until start() and the caller
  // publishes them again (an outbox relay does).
  virtual void subscribe(Subscription subscription) = 0;
  virtual Status start() = 0;
  // Stops delivering; returns when no handler runs any more. Publishing after stop() is
  // kUnavailable.
  virtual void stop() = 0;
  virtual std::string_view name() const = 0;
};

// The contract's rules, shared by every bus: a failure no retry can cure (a malformed message)
// is dead-lettered at once ...
inline bool is_permanent_failure(ErrorKind kind) {
  return kind == ErrorKind::kInvalidArgument || kind == ErrorKind::kUnsupported;
}

// ... and a handler that throws has failed (kInternal), it does not stop the bus.
inline Status call_handler(const MessageHandler& handler, const Message& message) {
  try {
    return handler(message);
  } catch (const std::exception& e) {
    return make_error(ErrorKind::kInternal, std::string("handler threw: ") + e.what());
  } catch (...) {
    return make_error(ErrorKind::kInternal, "handler threw a non-standard exception");
  }
}

}  // namespace dither
