#include "messaging/outbox_relay.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace dither {

OutboxRelay::OutboxRelay(Outbox& outbox, EventBus& bus, std::string name,
                         std::chrono::milliseconds poll_interval, int max_attempts)
    : outbox_(outbox),
      bus_(bus),
      name_(std::move(name)),
      poll_interval_(poll_interval),
      max_attempts_(std::max(1, max_attempts)) {}

bool OutboxRelay::counts_toward_parking(ErrorKind kind) {
  return kind == ErrorKind::kTooLarge || is_permanent_failure(kind);
}

OutboxRelay::~OutboxRelay() { stop(); }

void OutboxRelay::set_metrics(MessagingMetrics& metrics) {
  metrics_ = &metrics;
  metrics.watch_outbox(outbox_, name_);
}

void OutboxRelay::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void OutboxRelay::notify() {
  std::lock_guard lock(mutex_);
  pending_notify_ = true;
  wake_.notify_one();
}

void OutboxRelay::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    wake_.notify_one();
    drained_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void OutboxRelay::drain() {
  std::unique_lock lock(mutex_);
  const uint64_t seen = empty_rounds_;
  pending_notify_ = true;
  wake_.notify_one();
  drained_.wait(lock, [&] { return stopping_ || empty_rounds_ > seen + 1; });
}

void OutboxRelay::run() {
  std::chrono::milliseconds backoff{0};
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (stopping_) return;
      pending_notify_ = false;
    }
    bool failed = false;
    bool empty = false;
    Result<std::vector<OutboxEntry>> batch = outbox_.pending_messages(100);
    if (!batch) {
      spdlog::warn("outbox {}: cannot read: {}", name_, batch.error().message);
      failed = true;
    } else if (batch->empty()) {
      empty = true;
    } else {
      for (const OutboxEntry& entry : *batch) {
        {
          std::lock_guard lock(mutex_);
          if (stopping_) return;
        }
        Status published = bus_.publish(entry.message);
        if (metrics_ != nullptr) {
          if (published) {
            metrics_->published(entry.message.topic);
          } else {
            metrics_->publish_failed(entry.message.topic);
          }
        }
        if (!published) {
          const Error& error = published.error();
          if (!counts_toward_parking(error.kind)) {
            spdlog::warn("outbox {}: publish of {} {} failed, will retry: {}", name_,
                         entry.message.message_type(), entry.message.message_id(), error.message);
            failed = true;
            break;
          }
          const int attempts = entry.attempts + 1;
          const bool park = attempts >= max_attempts_;
          Status recorded = outbox_.record_publish_failure(entry.seq, error.message, park);
          if (!recorded) {
            spdlog::warn("outbox {}: cannot record the failed publish of {}: {}", name_, entry.seq,
                         recorded.error().message);
          }
          if (park && recorded) {
            spdlog::error(
                "outbox {}: parked entry {} ({} {} on topic {}) after {} refused publishes: {}; "
                "the messages after it go on (GET /outbox/parked lists it, POST "
                "/outbox/parked/{} publishes it again)",
                name_, entry.seq, entry.message.message_type(), entry.message.message_id(),
                entry.message.topic, attempts, error.message, entry.seq);
            continue;
          }
          spdlog::warn("outbox {}: the bus refused {} {} (attempt {} of {}): {}", name_,
                       entry.message.message_type(), entry.message.message_id(), attempts,
                       max_attempts_, error.message);
          failed = true;
          break;
        }
        if (Status removed = outbox_.remove_message(entry.seq); !removed) {
          // Published but still in the outbox: it will be published again (consumers dedupe).
          spdlog::warn("outbox {}: cannot remove {}: {}", name_, entry.seq,
                       removed.error().message);
          failed = true;
          break;
        }
      }
    }

    std::unique_lock lock(mutex_);
    if (empty) {
      ++empty_rounds_;
      drained_.notify_all();
    }
    if (failed) {
      backoff =
          std::clamp(backoff * 2, std::chrono::milliseconds{50}, std::chrono::milliseconds{2000});
      wake_.wait_for(lock, backoff, [&] { return stopping_; });
    } else {
      backoff = std::chrono::milliseconds{0};
      if (empty) {
        wake_.wait_for(lock, poll_interval_, [&] { return stopping_ || pending_notify_; });
      }
    }
  }
}

}  // namespace dither
