// What the SQLite repositories share above sqlite_db.h: opening one, a base that holds its
// Database (and answers ping()), the Outbox over outbox_table.h for the two that have one, and
// reading rows as records (adapters/shared/rows.h reads a Statement on a row), pages included.
//
//   class SqliteImageRepository final : public sqlite::OutboxStore<ImageRepository> { ... };
//   return sqlite::open_store<ImageRepository, SqliteImageRepository>(path, kSchema, options);
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "adapters/shared/claims.h"
#include "adapters/shared/paging.h"
#include "adapters/sqlite/outbox_table.h"
#include "adapters/sqlite/sqlite_db.h"
#include "ports/outbox.h"
#include "ports/records.h"

namespace dither::sqlite {

// Every row of `st` (stepping to its end, as a write's RETURNING needs), each as `read` makes it.
template <class Read>
auto rows_of(Statement& st, Read read) {
  std::vector<std::invoke_result_t<Read&, const Statement&>> rows;
  while (st.step()) rows.push_back(read(st));
  return rows;
}

// The first row of `sql` with `args` bound to its parameters, as `read` makes it; kNotFound with
// the message `missing` when there is none.
template <class Read, class... Args>
auto only_row(Connection& c, std::string_view sql, Read read, std::string_view missing,
              const Args&... args) {
  Statement st = c.prepare(sql);
  st.bind_all(args...);
  if (!st.step()) throw SqliteError(ErrorKind::kNotFound, std::string(missing));
  return read(st);
}

// One page of a newest-first list (adapters/shared/paging.h): `page_sql` takes (before, fetch),
// `owners_page_sql` (owner, before, fetch) for one owner's list; each row as `read` makes it.
template <class Read>
auto page_of(Connection& c, const PageRequest& page, std::string_view page_sql,
             std::string_view owners_page_sql, Read read) {
  const adapters::PageQuery q(page);
  Statement st = c.prepare(q.filtered() ? owners_page_sql : page_sql);
  if (q.filtered()) {
    st.bind_all(q.owner, q.before, q.fetch);
  } else {
    st.bind_all(q.before, q.fetch);
  }
  return q.finish(rows_of(st, read));
}

// A claim (claim_dithers, claim_due): `claim_sql` leases up to `limit` free rows to `worker`
// until now + `lease`, with parameters (worker, claimed_until, now, limit); the rows as `read`
// makes them, in queue order.
template <class Read>
auto claim(Connection& c, std::string_view claim_sql, std::string_view worker,
           std::chrono::seconds lease, int limit, Read read) {
  const int64_t now = now_millis();
  Statement st = c.prepare(claim_sql);
  st.bind_all(worker, now + adapters::lease_millis(lease), now, limit);
  return adapters::in_queue_order(rows_of(st, read));
}

// A repository over one Database.
template <class Port>
class Store : public Port {
 public:
  explicit Store(std::unique_ptr<Database> db) : db_(std::move(db)) {}

  Status ping() override {
    return db_->read([](Connection& c) { c.prepare("SELECT 1").run(); });
  }

 protected:
  std::unique_ptr<Database> db_;
};

// A repository that is also its service's Outbox: the outbox table of its database.
template <class Port>
class OutboxStore : public Store<Port> {
 public:
  using Store<Port>::Store;

  Result<std::vector<OutboxEntry>> pending_messages(int limit) override {
    return this->db_->read([&](Connection& c) { return read_pending_messages(c, limit); });
  }
  Status remove_message(int64_t seq) override {
    return this->db_->write([&](Connection& c) { delete_message(c, seq); });
  }
  Status record_publish_failure(int64_t seq, std::string_view error, bool park) override {
    return this->db_->write(
        [&](Connection& c) { sqlite::record_publish_failure(c, seq, error, park); });
  }
  Result<std::vector<OutboxEntry>> parked_messages(int limit) override {
    return this->db_->read([&](Connection& c) { return read_parked_messages(c, limit); });
  }
  Status republish(int64_t seq) override {
    return this->db_->write([&](Connection& c) {
      if (!republish_message(c, seq)) {
        throw SqliteError(ErrorKind::kNotFound, "no parked outbox entry " + std::to_string(seq));
      }
    });
  }
  Result<OutboxStats> outbox_stats() override {
    return this->db_->read([&](Connection& c) { return read_outbox_stats(c); });
  }
};

// Opens (creating it and its parent directory if needed) and migrates the database at `path` as
// the store `Impl` of `Port`. With `claims`, a table with claimed_by / claimed_until, every claim
// left in it is freed first: an embedded database belongs to one process, so they were made by
// that process's previous life (a crash), and the work is free again at once rather than when the
// leases end.
template <class Port, class Impl>
Result<std::unique_ptr<Port>> open_store(const std::string& path, const Schema& schema,
                                         const SqliteOptions& options,
                                         std::string_view claims = {}) {
  auto db = Database::open(path, schema, options);
  if (!db) return db.error();
  if (!claims.empty()) {
    Status freed = (*db)->write([&](Connection& c) {
      c.prepare("UPDATE " + std::string(claims) +
                " SET claimed_by = '', claimed_until = 0 WHERE claimed_until <> 0")
          .run();
    });
    if (!freed) return freed.error();
  }
  return std::unique_ptr<Port>(new Impl(std::move(*db)));
}

}  // namespace dither::sqlite
