// Threads that claim work from a store and do it, one item at a time: the loop the dithering
// workers and the mail senders share.
//
// Each thread calls `step(worker)` again and again; the step claims at most one item under the
// worker's name ("<hostname>:<pid>:<prefix><index>", the name its leases carry) and does it.
// kIdle: nothing was due; the thread sleeps until notify() or for a second. kRetryLater: the item
// failed transiently (its claim is kept until the lease ends); the thread backs off, doubling
// from `backoff_min` to `backoff_max`, reset by the next kDone. An exception from a step counts
// as kRetryLater. With a `nice` value above 0 the threads run at that lower priority (and so do the
// threads they start, such as the engine's): background work then leaves the CPU to the threads
// that answer requests whenever both want it.
//
//   WorkLoop loop("mail", 2, [&](const std::string& worker) { ... return WorkLoop::kDone; });
//   loop.start(); ... loop.notify(); ... loop.stop();
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace dither {

class WorkLoop {
 public:
  enum Outcome { kIdle, kDone, kRetryLater };
  using Step = std::function<Outcome(const std::string& worker)>;

  WorkLoop(std::string prefix, int count, Step step,
           std::chrono::milliseconds backoff_min = std::chrono::milliseconds{100},
           std::chrono::milliseconds backoff_max = std::chrono::milliseconds{5000}, int nice = 0);
  ~WorkLoop();
  WorkLoop(const WorkLoop&) = delete;
  WorkLoop& operator=(const WorkLoop&) = delete;

  void start();
  void notify();  // wakes idle threads at once
  void stop();    // finishes the items being done, then returns

  // "<hostname>:<pid>:<prefix><index>".
  static std::string worker_id(std::string_view prefix, int index);

 private:
  void run(int index);

  const std::string prefix_;
  const int count_;
  const Step step_;
  const std::chrono::milliseconds backoff_min_;
  const std::chrono::milliseconds backoff_max_;
  const int nice_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  uint64_t notifications_ = 0;
  std::vector<std::thread> threads_;
};

}  // namespace dither
