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
#include <vector>

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

// What a bus tells about its consumers, for metrics (dither_messages_consumed_total,
// dither_messages_dead_lettered_total, dither_consumer_lag_messages). Called on the consumers'
// threads: cheap and thread-safe.
class BusObserver {
 public:
  virtual ~BusObserver() = default;
  // `group`'s handler took a message of `topic` (it returned OK).
  virtual void consumed(std::string_view topic, std::string_view group) = 0;
  // `group` gave a message of `topic` up: it went to the dead-letter topic.
  virtual void dead_lettered(std::string_view topic, std::string_view group) = 0;
  struct PartitionLag {
    std::string topic;
    int32_t partition = 0;
    int64_t messages = 0;  // the partition's end less the group's position
  };
  // Every partition this process's consumer of `group` holds now, with what it has yet to consume
  // (a partition missing from the list is no longer its own). A bus without partitions never
  // calls it.
  virtual void lag(std::string_view group, const std::vector<PartitionLag>& partitions) = 0;
};

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
  // Whether messages can be published now (GET /health/ready): a broker answers and the
  // producer has not failed for good. Cheap enough to call once a second.
  virtual Status ready() { return {}; }
  // Reports to `observer` (not owned; it outlives the bus); call before start().
  virtual void set_observer(BusObserver* observer) = 0;
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
