// EventBus adapter: an in-process bus (the embedded default).
//
// publish() hands the message to every subscription of its topic, one after another in the order
// they subscribed, on the caller's thread, and returns once each has returned OK or dead-lettered
// it; so "publish returned" means what it means for Kafka: every consumer group will not lose it.
// Combined with the services' outboxes (a message leaves the outbox only when publish returned OK)
// this is at-least-once delivery that survives a crash of the process. Messages of one topic are
// delivered in publish order (one topic's deliveries never overlap).
//
// Handler results follow the port (event_bus.h): kUnavailable is retried with a back-off (10 ms
// doubling, at most 1 s) without counting; kInvalidArgument and kUnsupported are dead-lettered at
// once; other errors are retried up to `max_attempts` calls, then dead-lettered. A dead letter goes
// to Topics::dead_letter(topic) with "dead_letter_reason", "dead_letter_group" and
// "dead_letter_topic" headers; that topic's subscribers get it, `on_dead_letter` is told, and the
// group moves on.
//
// publish() returns kUnavailable, and the caller publishes the message again later, when the bus
// is not running (before start(), after stop()), when stop() interrupts a retry, or when a
// transient failure lasts longer than `transient_limit`: a publisher is never held for longer, so
// stopping an outbox relay before the bus cannot hang.
//
// Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ports/event_bus.h"

namespace dither {

class InProcessBus final : public EventBus {
 public:
  // `on_dead_letter` is told about every dead-lettered message (for logging); may be empty.
  explicit InProcessBus(std::function<void(const Message&)> on_dead_letter = {},
                        std::chrono::milliseconds transient_limit = std::chrono::seconds{5});

  Status publish(const Message& message) override;
  void subscribe(Subscription subscription) override;
  Status start() override;
  void stop() override;
  std::string_view name() const override { return "in-process"; }
  void set_observer(BusObserver* observer) override { observer_ = observer; }

 private:
  struct Topic {
    std::mutex delivery;  // one delivery of this topic at a time: per-topic order
    std::vector<Subscription> subscriptions;
  };
  Topic& topic(const std::string& name);  // requires mutex_
  Status deliver(Topic& topic, const Message& message);
  // One subscription's handling of one message: OK when handled or dead-lettered.
  Status deliver_to(const Subscription& sub, const Message& message);
  Status dead_letter(const Subscription& sub, const Message& message, const Error& error);
  // Waits `delay` unless stop() comes first; false when stopped.
  bool pause(std::chrono::milliseconds delay);

  std::function<void(const Message&)> on_dead_letter_;
  BusObserver* observer_ = nullptr;
  std::chrono::milliseconds transient_limit_;
  // Guards topics_ (the map; a Topic's contents are guarded by its own `delivery`), running_ and
  // publishing_. Lock order: a Topic's `delivery`, then mutex_.
  std::mutex mutex_;
  std::condition_variable idle_;     // publishing_ reached 0
  std::condition_variable stopped_;  // running_ became false
  std::map<std::string, std::unique_ptr<Topic>> topics_;
  bool running_ = false;
  int publishing_ = 0;
};

}  // namespace dither
