#include "http/blocking_pool.h"

#include <algorithm>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace dither::http {

namespace {
int at_least_one(int threads) { return threads < 1 ? 1 : threads; }
}  // namespace

BlockingPool::BlockingPool(int threads, int max_waiting, int per_key_running)
    : pool_(static_cast<size_t>(at_least_one(threads))),
      capacity_(max_waiting < 0 ? 0 : at_least_one(threads) + max_waiting),
      per_key_running_(std::max(0, per_key_running)),
      per_key_capacity_(
          capacity_ == 0 || per_key_running_ == 0 ? 0 : std::max(per_key_running_, capacity_ / 2)) {
}

BlockingPool::Ticket::Ticket(BlockingPool& pool, std::string_view key) : pool_(pool), key_(key) {
  const int before = pool_.load_.fetch_add(1, std::memory_order_relaxed);
  admitted_ = pool_.capacity_ == 0 || before < pool_.capacity_;
  if (admitted_ && !key_.empty() && pool_.per_key_running_ > 0) {
    const std::lock_guard lock(pool_.mutex_);
    Key& k = pool_.keys_[key_];
    if (pool_.per_key_capacity_ == 0 || k.admitted < pool_.per_key_capacity_) {
      ++k.admitted;
    } else {
      admitted_ = false;
      if (k.admitted == 0) pool_.keys_.erase(key_);
    }
  }
  if (!admitted_) pool_.load_.fetch_sub(1, std::memory_order_relaxed);
}

std::shared_ptr<BlockingPool::Wake> BlockingPool::release_running(Key& key) {
  if (key.waiting.empty()) {
    --key.running;
    return nullptr;
  }
  std::shared_ptr<Wake> next = std::move(key.waiting.front());
  key.waiting.pop_front();
  return next;  // `running` stays: the place passes to `next`
}

boost::asio::awaitable<void> BlockingPool::Ticket::turn() {
  if (!admitted_ || key_.empty() || pool_.per_key_running_ == 0 || running_) co_return;
  const auto executor = co_await boost::asio::this_coro::executor;
  std::shared_ptr<Wake> wake;
  {
    const std::lock_guard lock(pool_.mutex_);
    Key& k = pool_.keys_[key_];
    if (k.running < pool_.per_key_running_) {
      ++k.running;
      running_ = true;
    } else {
      wake = std::make_shared<Wake>(executor, 1);
      k.waiting.push_back(wake);
      wake_ = wake;
    }
  }
  if (running_) co_return;
  co_await wake->async_receive(boost::asio::use_awaitable);
  wake_.reset();
  running_ = true;
}

BlockingPool::Ticket::~Ticket() {
  if (!admitted_) return;
  pool_.load_.fetch_sub(1, std::memory_order_relaxed);
  if (key_.empty() || pool_.per_key_running_ == 0) return;
  std::shared_ptr<Wake> next;
  {
    const std::lock_guard lock(pool_.mutex_);
    const auto it = pool_.keys_.find(key_);
    if (it == pool_.keys_.end()) return;
    Key& k = it->second;
    --k.admitted;
    bool holds_place = running_;
    if (!running_ && wake_) {
      // Given up while waiting (its coroutine destroyed): leave the line, unless the place was
      // already handed to it, which it then passes on.
      const auto mine = std::find(k.waiting.begin(), k.waiting.end(), wake_);
      if (mine != k.waiting.end()) {
        k.waiting.erase(mine);
      } else {
        holds_place = true;
      }
    }
    if (holds_place) next = pool_.release_running(k);
    if (k.admitted == 0) pool_.keys_.erase(it);
  }
  if (next) next->try_send(boost::system::error_code{});
}

}  // namespace dither::http
