// EventBus adapter: an in-process bus (the embedded default).
//
// publish() hands the message to every subscription of its topic, one after another in the order
// they subscribed, on the caller's thread, and returns once each has returned OK or dead-lettered
// it; so "publish returned" means what it means for Kafka: every consumer group will not lose it.
// Combined with the services' outboxes (a message leaves the outbox only when publish returned OK)
// this is at-least-once delivery that survives a crash of the process. Messages of one topic are
// delivered in publish order (one topic's deliveries never overlap).
//
// A handler error is retried `max_attempts` times with a back-off (10 ms doubling, at most 1 s);
// then the message goes to the dead-letter topic (Topics::dead_letter) with the headers
// "dead_letter_reason" and "dead_letter_group", its subscribers get it, it is logged, and the
// group moves on.
//
// Thread-safe.
#pragma once

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
  explicit InProcessBus(std::function<void(const Message&)> on_dead_letter = {});

  Status publish(const Message& message) override;
  void subscribe(Subscription subscription) override;
  Status start() override;
  void stop() override;
  std::string_view name() const override { return "in-process"; }

 private:
  struct Topic {
    std::mutex delivery;  // one delivery of this topic at a time: per-topic order
    std::vector<Subscription> subscriptions;
  };
  Topic& topic(const std::string& name);
  void deliver(Topic& topic, const Message& message);

  std::function<void(const Message&)> on_dead_letter_;
  std::mutex mutex_;
  std::condition_variable idle_;
  std::map<std::string, std::unique_ptr<Topic>> topics_;
  bool running_ = false;
  int publishing_ = 0;
};

}  // namespace dither
