// Work claiming shared by the SQLite and PostgreSQL repositories (DitherRepository::claim_dithers,
// NotificationRepository::claim_due): a lease's length as the stores keep it, and the claimed
// rows in queue order.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <tuple>
#include <vector>

#include "ports/notifications.h"
#include "ports/records.h"

namespace dither::adapters {

// `lease` in milliseconds (claimed_until is Unix ms); a negative lease counts as none.
inline int64_t lease_millis(std::chrono::seconds lease) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::max(lease, std::chrono::seconds{0}))
      .count();
}

// Claimed rows in the order of their queue (an UPDATE's RETURNING has none): dithers oldest
// first, notifications by due time, then oldest first.
inline std::vector<DitherRecord> in_queue_order(std::vector<DitherRecord> rows) {
  std::sort(rows.begin(), rows.end(),
            [](const DitherRecord& a, const DitherRecord& b) { return a.id.value < b.id.value; });
  return rows;
}

inline std::vector<Notification> in_queue_order(std::vector<Notification> rows) {
  std::sort(rows.begin(), rows.end(), [](const Notification& a, const Notification& b) {
    return std::tie(a.next_attempt_at, a.id) < std::tie(b.next_attempt_at, b.id);
  });
  return rows;
}

}  // namespace dither::adapters
