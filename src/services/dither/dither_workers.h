// Threads that do the dithering service's work: each takes the oldest PENDING dither nobody in
// this process is working on, and calls DitherService::process() on it.
//
// The queue is the database itself (PENDING rows), so work survives a crash and is resumed at
// start-up; notify() wakes an idle worker at once, otherwise workers poll every second. A
// dither whose processing hits a transient error (kUnavailable) is retried after a back-off.
//
// Each dither uses every core (the engine's own threads); more workers help when many small
// images are waiting.
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "ports/metadata.h"
#include "services/dither/dither_service.h"

namespace dither {

class DitherWorkers {
 public:
  DitherWorkers(DitherService& service, DitherRepository& repository, int count);
  ~DitherWorkers();
  DitherWorkers(const DitherWorkers&) = delete;
  DitherWorkers& operator=(const DitherWorkers&) = delete;

  void start();
  void notify();
  // Finishes the dithers being processed, then returns.
  void stop();

 private:
  void run();

  DitherService& service_;
  DitherRepository& repository_;
  int count_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<DitherId> in_flight_;
  bool stopping_ = false;
  uint64_t notifications_ = 0;
  std::vector<std::thread> threads_;
};

}  // namespace dither
