// Newest-first keyset paging shared by the list queries: `WHERE id < :before ORDER BY id DESC
// LIMIT :fetch`, one row more than the page so that the last page has no cursor. With an owner
// (`WHERE owner = :owner AND id < :before ...`, on an (owner, id) index) the cursor is the last id
// of that owner's page, so the next page continues that owner's list.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "ports/notifications.h"
#include "ports/records.h"

namespace dither::adapters {

inline int64_t id_of(const ImageRecord& r) { return r.id; }
inline int64_t id_of(const DitherRecord& r) { return r.id.value; }
inline int64_t id_of(const Notification& n) { return n.id; }

struct PageQuery {
  explicit PageQuery(const PageRequest& page)
      : limit(std::clamp(page.limit, 1, 1000)),
        fetch(limit + 1),
        before(page.before.value_or(std::numeric_limits<int64_t>::max())),
        owner(page.owner) {}

  // Whether the list is one owner's ("" = every owner's).
  bool filtered() const { return !owner.empty(); }

  // The page from the (up to `fetch`) rows read, newest first.
  template <class T>
  Page<T> finish(std::vector<T> rows) const {
    Page<T> page;
    if (rows.size() > static_cast<size_t>(limit)) {
      rows.resize(static_cast<size_t>(limit));
      page.next_cursor = std::to_string(id_of(rows.back()));
    }
    page.items = std::move(rows);
    return page;
  }

  int limit;
  int fetch;
  int64_t before;
  std::string owner;
};

}  // namespace dither::adapters
