// The threads that run blocking handlers (SQLite, files, decoding), with a bounded queue: a task
// is admitted only while fewer than `threads + max_waiting` are waiting or running; past that the
// server answers 503 `overloaded` with Retry-After at once instead of letting a queue grow
// without end (docs/SECURITY.md, "Back-pressure").
//
//   BlockingPool pool(4, 64);
//   Server server(ioc, pool, std::move(router), options);   // kBlocking handlers run on `pool`
//   ...
//   pool.join();
//
// Thread-safe.
#pragma once

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <cstddef>

namespace dither::http {

class BlockingPool {
 public:
  // `max_waiting` < 0: no bound.
  BlockingPool(int threads, int max_waiting);
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // One admitted task, counted until destroyed; false when the queue is full.
  class Ticket {
   public:
    explicit Ticket(BlockingPool& pool);
    ~Ticket();
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    explicit operator bool() const { return admitted_; }

   private:
    BlockingPool& pool_;
    bool admitted_ = false;
  };

  boost::asio::thread_pool::executor_type get_executor() { return pool_.get_executor(); }
  // Tasks waiting or running now.
  int load() const { return load_.load(std::memory_order_relaxed); }
  // Tasks admitted at most at once (threads + max_waiting); 0 when unbounded.
  int capacity() const { return capacity_; }
  void join() { pool_.join(); }
  void stop() { pool_.stop(); }

 private:
  boost::asio::thread_pool pool_;
  const int capacity_;
  std::atomic<int> load_{0};
};

}  // namespace dither::http
