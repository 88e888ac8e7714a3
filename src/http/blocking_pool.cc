#include "http/blocking_pool.h"

namespace dither::http {

BlockingPool::BlockingPool(int threads, int max_waiting)
    : pool_(static_cast<size_t>(threads < 1 ? 1 : threads)),
      capacity_(max_waiting < 0 ? 0 : (threads < 1 ? 1 : threads) + max_waiting) {}

BlockingPool::Ticket::Ticket(BlockingPool& pool) : pool_(pool) {
  const int before = pool_.load_.fetch_add(1, std::memory_order_relaxed);
  admitted_ = pool_.capacity_ == 0 || before < pool_.capacity_;
  if (!admitted_) pool_.load_.fetch_sub(1, std::memory_order_relaxed);
}

BlockingPool::Ticket::~Ticket() {
  if (admitted_) pool_.load_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace dither::http
