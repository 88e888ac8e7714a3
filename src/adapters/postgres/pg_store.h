// What the PostgreSQL repositories share above pg_db.h: opening one, a base that holds its
// Database (qualifying its statements, answering ping()), the Outbox over MessagingTables for
// the two that have one, and reading rows as records (adapters/shared/rows.h reads a Row), pages
// included.
//
//   class PostgresImageRepository final : public postgres::OutboxStore<ImageRepository> { ... };
//   return postgres::open_store<ImageRepository, PostgresImageRepository>(options, kSchema,
//   "upload");
#pragma once

#include <cstdint>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "adapters/postgres/pg_db.h"
#include "adapters/postgres/pg_outbox.h"
#include "adapters/postgres/postgres.h"
#include "adapters/shared/paging.h"
#include "ports/outbox.h"

namespace dither::postgres {

// The server's clock in Unix milliseconds, for statements that compare leases: workers on
// several hosts agree on it.
inline constexpr std::string_view kNowMillis =
    "(extract(epoch FROM statement_timestamp()) * 1000)::bigint";

// A result row as adapters/shared/rows.h reads one. Refers to the row: used while it lives.
class Row {
 public:
  explicit Row(const pqxx::row& row) : row_(row) {}

  std::string column_text(int column) const { return text_of(row_[column]); }
  int64_t column_int64(int column) const { return row_[column].as<int64_t>(); }
  int column_int(int column) const { return row_[column].as<int>(); }
  bool column_bool(int column) const { return row_[column].as<bool>(); }

 private:
  const pqxx::row& row_;
};

// The rows of `result`, each as `read` makes it.
template <class Read>
auto rows_of(const pqxx::result& result, Read read) {
  std::vector<std::invoke_result_t<Read&, const Row&>> rows;
  rows.reserve(result.size());
  for (const auto& row : result) rows.push_back(read(Row(row)));
  return rows;
}

// The first row of `result` as `read` makes it; kNotFound with the message `missing` when there
// is none.
template <class Read>
auto only_row(const pqxx::result& result, Read read, std::string_view missing) {
  if (result.empty()) throw PgError(ErrorKind::kNotFound, std::string(missing));
  return read(Row(result[0]));
}

// One page of a newest-first list (adapters/shared/paging.h): `page_sql` takes (before, fetch),
// `owners_page_sql` (owner, before, fetch) for one owner's list; each row as `read` makes it.
template <class Read>
auto page_of(Tx& tx, const PageRequest& page, const std::string& page_sql,
             const std::string& owners_page_sql, Read read) {
  const adapters::PageQuery q(page);
  return q.finish(rows_of(q.filtered() ? tx.exec(owners_page_sql, q.owner, q.before, q.fetch)
                                       : tx.exec(page_sql, q.before, q.fetch),
                          read));
}

// A repository over one Database (its pool and schema).
template <class Port>
class Store : public Port {
 public:
  explicit Store(std::unique_ptr<Database> db) : db_(std::move(db)) {}

  Status ping() override {
    return db_->read([&](Tx& tx) { tx.exec(ping_); });
  }

 protected:
  // `text` with {schema} naming this repository's schema.
  std::string sql(std::string_view text) const { return db_->qualify(text); }

  std::unique_ptr<Database> db_;

 private:
  const std::string ping_ = "SELECT 1";
};

// A repository that is also its service's Outbox: the outbox table of its schema.
template <class Port>
class OutboxStore : public Store<Port> {
 public:
  explicit OutboxStore(std::unique_ptr<Database> db)
      : Store<Port>(std::move(db)), messaging_(*this->db_) {}

  Result<std::vector<OutboxEntry>> pending_messages(int limit) override {
    return this->db_->read([&](Tx& tx) { return messaging_.pending(tx, limit); });
  }
  Status remove_message(int64_t seq) override {
    return this->db_->write([&](Tx& tx) { messaging_.remove(tx, seq); });
  }
  Status record_publish_failure(int64_t seq, std::string_view error, bool park) override {
    return this->db_->write([&](Tx& tx) { messaging_.record_failure(tx, seq, error, park); });
  }
  Result<std::vector<OutboxEntry>> parked_messages(int limit) override {
    return this->db_->read([&](Tx& tx) { return messaging_.parked(tx, limit); });
  }
  Status republish(int64_t seq) override {
    return this->db_->write([&](Tx& tx) {
      if (!messaging_.republish(tx, seq)) {
        throw PgError(ErrorKind::kNotFound, "no parked outbox entry " + std::to_string(seq));
      }
    });
  }
  Result<OutboxStats> outbox_stats() override {
    return this->db_->read([&](Tx& tx) { return messaging_.stats(tx); });
  }

 protected:
  const MessagingTables messaging_;
};

// Connects, creates the schema (`options.schema`, else `default_schema`) if needed and migrates
// it to `schema`, as the store `Impl` of `Port`. Errors as for open_postgres_*_repository.
template <class Port, class Impl>
Result<std::unique_ptr<Port>> open_store(const PostgresOptions& options, const Schema& schema,
                                         std::string_view default_schema) {
  auto db = Database::open(options, schema, default_schema);
  if (!db) return db.error();
  return std::unique_ptr<Port>(new Impl(std::move(*db)));
}

}  // namespace dither::postgres
