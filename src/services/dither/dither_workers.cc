#include "services/dither/dither_workers.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

namespace dither {

DitherWorkers::DitherWorkers(DitherService& service, DitherRepository& repository, int count,
                             std::chrono::seconds lease)
    : service_(service),
      repository_(repository),
      lease_(std::max(lease, std::chrono::seconds{1})),
      loop_("", count, [this](const std::string& worker) { return step(worker); }) {}

WorkLoop::Outcome DitherWorkers::step(const std::string& worker) {
  Result<std::vector<DitherRecord>> next = repository_.claim_dithers(1, worker, lease_);
  if (!next || next->empty()) {
    if (!next) spdlog::warn("dither workers: cannot claim work: {}", next.error().message);
    return WorkLoop::kIdle;
  }
  const DitherRecord& job = next->front();
  Status done = service_.process(job);
  if (done.ok()) return WorkLoop::kDone;
  // A transient failure (a store is down, an original's URL does not answer): the claim is kept
  // until its lease ends, so this dither waits a lease before anyone retries it and the dithers
  // behind it go first; one that keeps failing cannot hold every worker.
  spdlog::warn("dither {}: {}; retried when its lease ends", job.id.value, done.error().message);
  return WorkLoop::kRetryLater;
}

}  // namespace dither
