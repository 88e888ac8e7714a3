#include "adapters/inproc/in_process_bus.h"

#include <algorithm>
#include <chrono>
#include <thread>

namespace dither {

InProcessBus::InProcessBus(std::function<void(const Message&)> on_dead_letter)
    : on_dead_letter_(std::move(on_dead_letter)) {}

InProcessBus::Topic& InProcessBus::topic(const std::string& name) {
  auto& slot = topics_[name];
  if (!slot) slot = std::make_unique<Topic>();
  return *slot;
}

void InProcessBus::subscribe(Subscription subscription) {
  std::lock_guard lock(mutex_);
  Topic& t = topic(subscription.topic);
  std::lock_guard delivery(t.delivery);
  t.subscriptions.push_back(std::move(subscription));
}

Status InProcessBus::start() {
  std::lock_guard lock(mutex_);
  running_ = true;
  return {};
}

void InProcessBus::stop() {
  std::unique_lock lock(mutex_);
  running_ = false;
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
  deliver(*t, message);
  std::lock_guard lock(mutex_);
  --publishing_;
  if (publishing_ == 0) idle_.notify_all();
  return {};
}

void InProcessBus::deliver(Topic& t, const Message& message) {
  std::lock_guard delivery(t.delivery);
  for (const Subscription& sub : t.subscriptions) {
    Status result;
    std::chrono::milliseconds backoff{10};
    const int attempts = std::max(1, sub.max_attempts);
    for (int attempt = 1; attempt <= attempts; ++attempt) {
      try {
        result = sub.handler(message);
      } catch (const std::exception& e) {
        result = make_error(ErrorKind::kInternal, std::string("handler threw: ") + e.what());
      }
      if (result.ok() || attempt == attempts) break;
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds{1000});
    }
    if (result.ok()) continue;

    Message dead = message;
    dead.topic = Topics::dead_letter(message.topic);
    dead.headers.emplace_back("dead_letter_reason", result.error().message);
    dead.headers.emplace_back("dead_letter_group", sub.group);
    if (on_dead_letter_) on_dead_letter_(dead);
    if (dead.topic != message.topic) {
      Topic* dlq = nullptr;
      {
        std::lock_guard lock(mutex_);
        auto it = topics_.find(dead.topic);
        if (it != topics_.end()) dlq = it->second.get();
      }
      if (dlq != nullptr && dlq != &t) deliver(*dlq, dead);
    }
  }
}

}  // namespace dither
