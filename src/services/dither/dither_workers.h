// Threads that do the dithering service's work: each claims the oldest PENDING dither nobody
// holds (DitherRepository::claim_dithers) and calls DitherService::process() on it.
//
// The queue is the database itself (PENDING rows), so work survives a crash and is resumed at
// start-up; notify() wakes an idle worker at once, otherwise workers poll every second. Several
// processes may share one database: a claim is a lease (the constructor's `lease`; the programs
// pass DITHER_LEASE_SECONDS, default 30 s) held by the worker "<hostname>:<pid>:<thread index>",
// so two workers never do the same dither while it holds, and the dithers of a worker that died
// are free again when its leases end. A dither whose processing hits a transient error
// (kUnavailable) keeps its claim until the lease ends (its retry delay; the dithers behind it go
// first) and this worker backs off briefly.
//
// Each dither uses every core (the engine's own threads); more workers help when many small
// images are waiting. The lease should be longer than the slowest dither: past it another
// worker may start the same dither (harmless, its result key is fixed, but wasted work).
#pragma once

#include <chrono>
#include <string>

#include "ports/metadata.h"
#include "services/common/work_loop.h"
#include "services/dither/dither_service.h"

namespace dither {

class DitherWorkers {
 public:
  DitherWorkers(DitherService& service, DitherRepository& repository, int count,
                std::chrono::seconds lease = std::chrono::seconds{120});
  DitherWorkers(const DitherWorkers&) = delete;
  DitherWorkers& operator=(const DitherWorkers&) = delete;

  void start() { loop_.start(); }
  void notify() { loop_.notify(); }
  // Finishes the dithers being processed, then returns.
  void stop() { loop_.stop(); }

  // The name thread `index` claims dithers under: "<hostname>:<pid>:<index>".
  static std::string worker_id(int index) { return WorkLoop::worker_id("", index); }

 private:
  WorkLoop::Outcome step(const std::string& worker);

  DitherService& service_;
  DitherRepository& repository_;
  const std::chrono::seconds lease_;
  WorkLoop loop_;  // last: its threads use the members above
};

}  // namespace dither
