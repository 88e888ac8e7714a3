// The threads that run blocking handlers (SQLite, files, decoding), with a bounded queue and a
// fair share per client:
// - a task is admitted only while fewer than `threads + max_waiting` are waiting or running; past
//   that the server answers 503 `overloaded` with Retry-After at once instead of letting a queue
//   grow without end (docs/SECURITY.md, "Back-pressure");
// - tasks carry a client key (the client's address, or the owner for in-process calls): one key
//   runs at most `per_key_running` tasks at once and holds at most half of the admitted places,
//   so that one client's flood waits behind itself, not in front of everyone else.
//
//   BlockingPool pool(4, 64, 2);
//   Server server(ioc, pool, std::move(router), options);   // kBlocking handlers run on `pool`
//   ...
//   pool.join();
//
// Thread-safe.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace dither::http {

class BlockingPool {
 public:
  // `max_waiting` < 0: no bound (and no share of places per key). `per_key_running` <= 0: no
  // share per key at all.
  BlockingPool(int threads, int max_waiting, int per_key_running = 0);
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // One admitted task, counted until destroyed; false when the pool or the key's share is full.
  // An empty key is nobody's: only the pool's bound applies to it.
  class Ticket {
   public:
    explicit Ticket(BlockingPool& pool, std::string_view key = {});
    ~Ticket();
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    explicit operator bool() const { return admitted_; }

    // Completes when the key has fewer than `per_key_running` tasks running; from then on this
    // ticket counts as running until destroyed (and then hands its turn to the key's next one).
    boost::asio::awaitable<void> turn();

   private:
    BlockingPool& pool_;
    const std::string key_;
    bool admitted_ = false;
    bool running_ = false;
    std::shared_ptr<boost::asio::experimental::concurrent_channel<void(boost::system::error_code)>>
        wake_;  // while waiting for a turn
  };

  boost::asio::thread_pool::executor_type get_executor() { return pool_.get_executor(); }
  // Tasks waiting or running now.
  int load() const { return load_.load(std::memory_order_relaxed); }
  // Tasks admitted at most at once (threads + max_waiting); 0 when unbounded.
  int capacity() const { return capacity_; }
  // Tasks one key may have admitted at once (0: no bound); running at once (0: no share at all).
  int per_key_capacity() const { return per_key_capacity_; }
  int per_key_running() const { return per_key_running_; }
  void join() { pool_.join(); }
  void stop() { pool_.stop(); }

 private:
  using Wake = boost::asio::experimental::concurrent_channel<void(boost::system::error_code)>;
  struct Key {
    int admitted = 0;
    int running = 0;
    std::deque<std::shared_ptr<Wake>> waiting;
  };
  // Gives up a running place of `key` (locked): the next waiter of the key inherits it.
  std::shared_ptr<Wake> release_running(Key& key);

  boost::asio::thread_pool pool_;
  const int capacity_;
  const int per_key_running_;
  const int per_key_capacity_;
  std::atomic<int> load_{0};
  std::mutex mutex_;
  std::unordered_map<std::string, Key> keys_;
};

}  // namespace dither::http
