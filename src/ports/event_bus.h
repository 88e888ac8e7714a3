// Port: publish and subscribe to messages (SPEC section 4).
//
// Adapters: an in-process bus (embedded default) and Apache Kafka. The contract both keep:
// - publish() returns OK only once the message is durable for every subscriber: for Kafka, when
//   the broker acknowledged it; in process, when every subscribed group's handler has returned
//   OK for it (or dead-lettered it). Callers keep the message (an outbox row) until then.
// - Each subscription belongs to a group; each message of the topic reaches every group once at
//   least, in key order. A handler that returns an error is retried with a back-off; after
//   `max_attempts` the message goes to Topics::dead_letter(topic) with the reason in a header
//   ("dead_letter_reason") and the group moves on. Handlers must be idempotent.
//
// Thread-safe. Handlers may run on a thread of the bus.
#pragma once

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
  int max_attempts = 5;
};

class EventBus {
 public:
  virtual ~EventBus() = default;
  virtual Status publish(const Message& message) = 0;
  // Subscribe before start(); messages published before start() are delivered after it (Kafka:
  // from the group's committed offset).
  virtual void subscribe(Subscription subscription) = 0;
  virtual Status start() = 0;
  // Stops delivering; returns when no handler runs any more.
  virtual void stop() = 0;
  virtual std::string_view name() const = 0;
};

}  // namespace dither
