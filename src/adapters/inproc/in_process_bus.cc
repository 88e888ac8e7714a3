#include "adapters/inproc/in_process_bus.h"

#include <algorithm>
#include <exception>

namespace dither {
namespace {

constexpr std::chrono::milliseconds kFirstBackoff{10};
constexpr std::chrono::milliseconds kMaxBackoff{1000};

Error stopped_error() {
  return make_error(ErrorKind::kUnavailable,
                    "the event bus stopped before the message was handled");
}

}  // namespace

InProcessBus::InProcessBus(std::function<void(const Message&)> on_dead_letter,
                           std::chrono::milliseconds transient_limit)
    : on_dead_letter_(std::move(on_dead_letter)), transient_limit_(transient_limit) {}

InProcessBus::Topic& InProcessBus::topic(const std::string& name) {
  auto& slot = topics_[name];
  if (!slot) slot = std::make_unique<Topic>();
  return *slot;
}

void InProcessBus::subscribe(Subscription subscription) {
  Topic* t = nullptr;
  {
    std::lock_guard lock(mutex_);
    t = &topic(subscription.topic);  // a Topic never moves nor goes away
  }
  std::lock_guard delivery(t->delivery);
  t->subscriptions.push_back(std::move(subscription));
}

Status InProcessBus::start() {
  std::lock_guard lock(mutex_);
  running_ = true;
  return {};
}

void InProcessBus::stop() {
  std::unique_lock lock(mutex_);
  running_ = false;
  stopped_.notify_all();
  idle_.wait(lock, [&] { return publishing_ == 0; });
}

Status InProcessBus::publish(const Message& message) {
  Topic* t = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (!running_) return make_error(ErrorKind::kUnavailable, "the event bus is not running");
    t = &topic(message.topic);
    ++publishing_;
  }
  Status delivered = deliver(*t, message);
  std::lock_guard lock(mutex_);
  --publishing_;
  if (publishing_ == 0) idle_.notify_all();
  return delivered;
}

bool InProcessBus::pause(std::chrono::milliseconds delay) {
  std::unique_lock lock(mutex_);
  return !stopped_.wait_for(lock, delay, [&] { return !running_; });
}

Status InProcessBus::deliver(Topic& t, const Message& message) {
  std::lock_guard delivery(t.delivery);
  Status all;
  for (const Subscription& sub : t.subscriptions) {
    {
      std::lock_guard lock(mutex_);
      if (!running_) return stopped_error();
    }
    // The other groups still get the message; the publisher learns it must publish it again.
    if (Status s = deliver_to(sub, message); !s && all) all = s;
  }
  return all;
}

Status InProcessBus::deliver_to(const Subscription& sub, const Message& message) {
  const auto transient_deadline = std::chrono::steady_clock::now() + transient_limit_;
  const int max_attempts = std::max(1, sub.max_attempts);
  std::chrono::milliseconds backoff{0};
  int failures = 0;
  for (;;) {
    Status result = call_handler(sub.handler, message);
    if (result) {
      if (observer_ != nullptr) observer_->consumed(message.topic, sub.group);
      return {};
    }
    const Error& error = result.error();
    if (is_permanent_failure(error.kind)) return dead_letter(sub, message, error);
    if (error.kind == ErrorKind::kUnavailable) {
      if (std::chrono::steady_clock::now() >= transient_deadline) {
        return make_error(ErrorKind::kUnavailable,
                          "group " + sub.group + " is still unavailable: " + error.message);
      }
    } else if (++failures >= max_attempts) {
      return dead_letter(sub, message, error);
    }
    backoff = std::clamp(backoff * 2, kFirstBackoff, kMaxBackoff);
    if (!pause(backoff)) return stopped_error();
  }
}

Status InProcessBus::dead_letter(const Subscription& sub, const Message& message,
                                 const Error& error) {
  Message dead = message;
  dead.topic = Topics::dead_letter(message.topic);
  dead.headers.emplace_back(kHeaderDeadLetterReason, error.message);
  dead.headers.emplace_back(kHeaderDeadLetterGroup, sub.group);
  dead.headers.emplace_back(kHeaderDeadLetterTopic, message.topic);
  if (on_dead_letter_) on_dead_letter_(dead);
  if (observer_ != nullptr) observer_->dead_lettered(message.topic, sub.group);
  Topic* dlq = nullptr;
  {
    std::lock_guard lock(mutex_);
    auto it = topics_.find(dead.topic);
    if (it != topics_.end()) dlq = it->second.get();
  }
  // The dead-letter topic's name is longer than the topic's, so this never loops back to a topic
  // whose delivery lock the caller holds.
  return dlq != nullptr ? deliver(*dlq, dead) : Status{};
}

}  // namespace dither
