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
// Work that cannot succeed stops:
//  - While process() runs, one renewal thread extends the lease of every dither being made
//    every lease/3 (DitherRepository::renew_lease), so a dither longer than the lease is not
//    handed to another worker; a worker that dies stops renewing and its claims end as before.
//  - Every claim counts an attempt (DitherRecord::attempts). A dither claimed more than
//    `max_attempts` times (DITHER_MAX_ATTEMPTS, default 3) without an outcome (the process was
//    killed or crashed on it, or it failed transiently each time) is not processed again: it
//    becomes FAILED "gave up after N attempts" with its DITHER_FAILED message
//    (DitherService::give_up). This holds across restarts, also in the embedded mode where the
//    claims are freed at start-up: a file that crashes the process ends FAILED.
//
// Each dither uses every core (the engine's own threads); more workers help when many small
// images are waiting. `nice` (DITHER_NICE, default 10) lowers the workers' priority, so that
// dithering, which may take every core, never holds back the answers to requests.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "ports/metadata.h"
#include "services/common/work_loop.h"
#include "services/dither/dither_service.h"

namespace dither {

class DitherWorkers {
 public:
  static constexpr int kDefaultMaxAttempts = 3;  // DITHER_MAX_ATTEMPTS

  DitherWorkers(DitherService& service, DitherRepository& repository, int count,
                std::chrono::seconds lease = std::chrono::seconds{120},
                int max_attempts = kDefaultMaxAttempts, int nice = 0);
  ~DitherWorkers();
  DitherWorkers(const DitherWorkers&) = delete;
  DitherWorkers& operator=(const DitherWorkers&) = delete;

  void start();
  void notify() { loop_.notify(); }
  // Finishes the dithers being processed, then returns.
  void stop();

  // The name thread `index` claims dithers under: "<hostname>:<pid>:<index>".
  static std::string worker_id(int index) { return WorkLoop::worker_id("", index); }

 private:
  WorkLoop::Outcome step(const std::string& worker);
  void renew_leases();  // the renewal thread

  DitherService& service_;
  DitherRepository& repository_;
  const std::chrono::seconds lease_;
  const int max_attempts_;

  std::mutex renew_mutex_;
  std::condition_variable renew_wake_;
  bool renew_stopping_ = false;
  std::map<int64_t, std::string> running_;  // dither id -> the worker making it
  std::thread renewer_;

  WorkLoop loop_;  // last: its threads use the members above
};

}  // namespace dither
