#include "services/dither/dither_workers.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "observability/logging.h"

namespace dither {
namespace {

// A requested dither's request_id is "request:" and the X-Request-Id that asked for it
// (DitherService); an automatic one's is a message id, not a request's.
constexpr std::string_view kRequestPrefix = "request:";

// What a worker logs about a dither carries the request and the trace it was asked under.
observability::LogContext dither_log_context(const DitherRecord& job) {
  const std::string_view id = job.request_id;
  return observability::log_context_from(
      id.starts_with(kRequestPrefix) ? id.substr(kRequestPrefix.size()) : std::string_view{},
      job.traceparent);
}

}  // namespace

DitherWorkers::DitherWorkers(DitherService& service, DitherRepository& repository, int count,
                             std::chrono::seconds lease, int max_attempts, int nice)
    : service_(service),
      repository_(repository),
      lease_(std::max(lease, std::chrono::seconds{1})),
      max_attempts_(std::max(1, max_attempts)),
      loop_(
          "", count, [this](const std::string& worker) { return step(worker); },
          std::chrono::milliseconds{100}, std::chrono::milliseconds{5000}, nice) {}

DitherWorkers::~DitherWorkers() { stop(); }

void DitherWorkers::start() {
  {
    std::lock_guard lock(renew_mutex_);
    if (!renewer_.joinable()) {
      renew_stopping_ = false;
      renewer_ = std::thread([this] { renew_leases(); });
    }
  }
  loop_.start();
}

void DitherWorkers::stop() {
  loop_.stop();  // the dithers being made finish first, their leases renewed meanwhile
  {
    std::lock_guard lock(renew_mutex_);
    renew_stopping_ = true;
    renew_wake_.notify_all();
  }
  if (renewer_.joinable()) renewer_.join();
}

void DitherWorkers::renew_leases() {
  const auto interval = std::chrono::duration_cast<std::chrono::milliseconds>(lease_) / 3;
  std::unique_lock lock(renew_mutex_);
  for (;;) {
    if (renew_wake_.wait_for(lock, interval, [&] { return renew_stopping_; })) return;
    const std::vector<std::pair<int64_t, std::string>> running(running_.begin(), running_.end());
    lock.unlock();
    for (const auto& [id, worker] : running) {
      Result<bool> renewed = repository_.renew_lease(DitherId{id}, worker, lease_);
      if (!renewed) {
        spdlog::warn("dither {}: cannot renew its lease: {}", id, renewed.error().message);
      } else if (!*renewed) {
        // Finished meanwhile (the usual case), or the lease ended and another worker took it:
        // that one's result has the same key, so nothing is lost but time.
        spdlog::debug("dither {}: lease not renewed ({} no longer holds it)", id, worker);
      }
    }
    lock.lock();
  }
}

WorkLoop::Outcome DitherWorkers::step(const std::string& worker) {
  Result<std::vector<DitherRecord>> next = repository_.claim_dithers(1, worker, lease_);
  if (!next || next->empty()) {
    if (!next) spdlog::warn("dither workers: cannot claim work: {}", next.error().message);
    return WorkLoop::kIdle;
  }
  const DitherRecord& job = next->front();
  const observability::ScopedLogContext log_scope(dither_log_context(job));
  if (job.attempts > max_attempts_) {
    // Every earlier claim ended without an outcome: a crash, a kill, a transient error each time.
    const int tried = job.attempts - 1;
    Status failed = service_.give_up(
        job, "gave up after " + std::to_string(tried) + (tried == 1 ? " attempt" : " attempts"));
    if (!failed) {
      spdlog::warn("dither {}: cannot give it up: {}", job.id.value, failed.error().message);
      return WorkLoop::kRetryLater;
    }
    return WorkLoop::kDone;
  }
  {
    std::lock_guard lock(renew_mutex_);
    running_[job.id.value] = worker;
  }
  Status done = service_.process(job);
  {
    std::lock_guard lock(renew_mutex_);
    running_.erase(job.id.value);
  }
  if (done.ok()) return WorkLoop::kDone;
  // A transient failure (a store is down, an original's URL does not answer): the claim is kept
  // until its lease ends, so this dither waits a lease before anyone retries it and the dithers
  // behind it go first; one that keeps failing cannot hold every worker, and after
  // max_attempts_ claims it is given up.
  spdlog::warn("dither {}: {} (attempt {} of {}); retried when its lease ends", job.id.value,
               done.error().message, job.attempts, max_attempts_);
  return WorkLoop::kRetryLater;
}

}  // namespace dither
