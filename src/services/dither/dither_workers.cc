#include "services/dither/dither_workers.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace dither {

DitherWorkers::DitherWorkers(DitherService& service, DitherRepository& repository, int count)
    : service_(service), repository_(repository), count_(std::max(1, count)) {}

DitherWorkers::~DitherWorkers() { stop(); }

void DitherWorkers::start() {
  std::lock_guard lock(mutex_);
  if (!threads_.empty()) return;
  stopping_ = false;
  for (int i = 0; i < count_; ++i) threads_.emplace_back([this] { run(); });
}

void DitherWorkers::notify() {
  std::lock_guard lock(mutex_);
  ++notifications_;
  wake_.notify_all();
}

void DitherWorkers::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    wake_.notify_all();
  }
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void DitherWorkers::run() {
  std::chrono::milliseconds backoff{0};
  for (;;) {
    DitherRecord job;
    {
      std::unique_lock lock(mutex_);
      if (stopping_) return;
      const uint64_t seen = notifications_;
      Result<std::vector<DitherRecord>> next = repository_.pending_dithers(1, in_flight_);
      if (!next || next->empty()) {
        if (!next) spdlog::warn("dither workers: cannot read the queue: {}", next.error().message);
        wake_.wait_for(lock, std::chrono::seconds{1},
                       [&] { return stopping_ || notifications_ != seen; });
        continue;
      }
      job = std::move(next->front());
      in_flight_.push_back(job.id);
    }

    Status done;
    try {
      done = service_.process(job);
    } catch (const std::exception& e) {
      done = make_error(ErrorKind::kInternal, e.what());
    }

    std::unique_lock lock(mutex_);
    std::erase(in_flight_, job.id);
    if (done.ok()) {
      backoff = std::chrono::milliseconds{0};
      continue;
    }
    spdlog::warn("dither {}: {}; will retry", job.id.value, done.error().message);
    backoff =
        std::clamp(backoff * 2, std::chrono::milliseconds{100}, std::chrono::milliseconds{5000});
    wake_.wait_for(lock, backoff, [&] { return stopping_; });
  }
}

}  // namespace dither
