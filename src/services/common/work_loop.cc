#include "services/common/work_loop.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <exception>
#include <utility>

namespace dither {

WorkLoop::WorkLoop(std::string prefix, int count, Step step, std::chrono::milliseconds backoff_min,
                   std::chrono::milliseconds backoff_max, int nice)
    : prefix_(std::move(prefix)),
      count_(std::max(1, count)),
      step_(std::move(step)),
      backoff_min_(backoff_min),
      backoff_max_(std::max(backoff_min, backoff_max)),
      nice_(std::clamp(nice, 0, 19)) {}

WorkLoop::~WorkLoop() { stop(); }

std::string WorkLoop::worker_id(std::string_view prefix, int index) {
  std::array<char, 256> host{};
  if (gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  const std::string name = host[0] != '\0' ? std::string(host.data()) : "localhost";
  return name + ":" + std::to_string(getpid()) + ":" + std::string(prefix) + std::to_string(index);
}

void WorkLoop::start() {
  std::lock_guard lock(mutex_);
  if (!threads_.empty()) return;
  stopping_ = false;
  for (int i = 0; i < count_; ++i) threads_.emplace_back([this, i] { run(i); });
}

void WorkLoop::notify() {
  std::lock_guard lock(mutex_);
  ++notifications_;
  wake_.notify_all();
}

void WorkLoop::stop() {
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

void WorkLoop::run(int index) {
  const std::string worker = worker_id(prefix_, index);
  // Linux keeps a nice value per thread; threads started from this one inherit it.
  if (nice_ > 0 && setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), nice_) != 0) {
    spdlog::warn("{}: cannot lower this thread's priority (nice {})", worker, nice_);
  }
  std::chrono::milliseconds backoff{0};
  for (;;) {
    uint64_t seen = 0;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      seen = notifications_;
    }
    Outcome outcome = kRetryLater;
    try {
      outcome = step_(worker);
    } catch (const std::exception& e) {
      spdlog::warn("{}: {}", worker, e.what());
    }
    if (outcome == kDone) {
      backoff = std::chrono::milliseconds{0};
      continue;
    }
    std::unique_lock lock(mutex_);
    if (outcome == kIdle) {
      wake_.wait_for(lock, std::chrono::seconds{1},
                     [&] { return stopping_ || notifications_ != seen; });
    } else {
      backoff = std::clamp(backoff * 2, backoff_min_, backoff_max_);
      wake_.wait_for(lock, backoff, [&] { return stopping_; });
    }
  }
}

}  // namespace dither
