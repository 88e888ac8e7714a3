#include "services/dither/dither_workers.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <utility>

namespace dither {

DitherWorkers::DitherWorkers(DitherService& service, DitherRepository& repository, int count,
                             std::chrono::seconds lease)
    : service_(service),
      repository_(repository),
      count_(std::max(1, count)),
      lease_(std::max(lease, std::chrono::seconds{1})) {}

DitherWorkers::~DitherWorkers() { stop(); }

std::string DitherWorkers::worker_id(int index) {
  std::array<char, 256> host{};
  if (gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  const std::string name = host[0] != '\0' ? std::string(host.data()) : "localhost";
  return name + ":" + std::to_string(getpid()) + ":" + std::to_string(index);
}

void DitherWorkers::start() {
  std::lock_guard lock(mutex_);
  if (!threads_.empty()) return;
  stopping_ = false;
  for (int i = 0; i < count_; ++i) threads_.emplace_back([this, i] { run(i); });
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

void DitherWorkers::run(int index) {
  const std::string worker = worker_id(index);
  std::chrono::milliseconds backoff{0};
  for (;;) {
    uint64_t seen = 0;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      seen = notifications_;
    }
    Result<std::vector<DitherRecord>> next = repository_.claim_dithers(1, worker, lease_);
    if (!next || next->empty()) {
      if (!next) spdlog::warn("dither workers: cannot claim work: {}", next.error().message);
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, std::chrono::seconds{1},
                     [&] { return stopping_ || notifications_ != seen; });
      continue;
    }
    const DitherRecord job = std::move(next->front());

    Status done;
    try {
      done = service_.process(job);
    } catch (const std::exception& e) {
      done = make_error(ErrorKind::kInternal, e.what());
    }
    if (done.ok()) {
      backoff = std::chrono::milliseconds{0};
      continue;
    }
    // A transient failure (a store is down, an original's URL does not answer): the claim is
    // kept until its lease ends, so this dither waits a lease before anyone retries it and the
    // dithers behind it go first; one that keeps failing cannot hold every worker.
    spdlog::warn("dither {}: {}; retried when its lease ends", job.id.value, done.error().message);
    backoff =
        std::clamp(backoff * 2, std::chrono::milliseconds{100}, std::chrono::milliseconds{5000});
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, backoff, [&] { return stopping_; });
  }
}

}  // namespace dither
