// The layer the PostgreSQL repositories stand on: a bounded connection pool, prepared statements
// per connection, transactions with retries, error translation and versioned migrations.
//
//   Result<std::unique_ptr<Database>> db = Database::open(options, kSchema, "upload");
//   const std::string sql = (*db)->qualify("SELECT count(*) FROM {schema}.images");
//   Result<int64_t> n = (*db)->read([&](Tx& tx) { return tx.exec(sql)[0][0].as<int64_t>(); });
//
// Inside `read` / `write`, failures travel as `PgError` (ours) or libpqxx exceptions so that a
// sequence of queries reads as a straight line; `read` and `write` turn them into the Error of
// the Result, so nothing escapes a repository method. Connection failures, serialization failures
// and deadlocks are retried (a few attempts) on a fresh transaction; what is left becomes
// kUnavailable. Integrity and data errors (a duplicate key, bytes that are not UTF-8) are
// kInvalidArgument, anything else kInternal; messages carry the server's first line, never SQL.
//
// Internal to the adapter (and its tests): the public API is postgres.h.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "adapters/postgres/postgres.h"
#include "common/result.h"

namespace dither::postgres {

// A failure inside the adapter; carries the Error the repository method returns.
class PgError : public std::runtime_error {
 public:
  explicit PgError(Error error) : std::runtime_error(error.message), error_(std::move(error)) {}
  PgError(ErrorKind kind, std::string message) : PgError(make_error(kind, std::move(message))) {}
  const Error& error() const { return error_; }

 private:
  Error error_;
};

// The connection string actually used: `conninfo` (key=value or URI) with connect_timeout=3,
// TCP keepalives and fallback_application_name=dither added unless it sets them.
// kInvalidArgument when libpq cannot parse it.
std::string effective_conninfo(const std::string& conninfo);

// Appends key='value' to a key=value connection string, escaping as libpq requires.
void append_option(std::string& out, std::string_view key, std::string_view value);

// `name` as an SQL identifier, double-quoted.
std::string quote_identifier(std::string_view name);

// One server connection and the statements prepared on it. Used by one thread at a time (a Pool
// lease); notices (e.g. "already exists, skipping") are not printed.
class Session {
 public:
  // Connects; throws pqxx::broken_connection when the server cannot be reached.
  explicit Session(const std::string& conninfo);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  pqxx::connection& connection() { return connection_; }
  // The name of `sql` prepared on this connection (defined on first use).
  const std::string& statement(const std::string& sql);

 private:
  pqxx::connection connection_;
  pqxx::quiet_errorhandler quiet_{connection_};
  std::unordered_map<std::string, std::string> names_;
};

// At most `size` connections, opened on demand and kept while healthy. acquire() waits up to
// `acquire_timeout` for a free one, then fails with kUnavailable. A lease marked broken (or whose
// connection closed) is destroyed on return, freeing its place. Thread-safe.
class Pool {
 public:
  // `name` (the schema) is how postgres_pool_stats() names it.
  Pool(std::string name, std::string conninfo, int size, std::chrono::milliseconds acquire_timeout);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  class Lease {
   public:
    Lease(Pool& pool, std::unique_ptr<Session> session)
        : pool_(pool), session_(std::move(session)) {}
    Lease(Lease&& other) noexcept
        : pool_(other.pool_), session_(std::move(other.session_)), broken_(other.broken_) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() { pool_.release(std::move(session_), broken_); }

    Session& session() { return *session_; }
    // The connection failed: close it instead of reusing it.
    void mark_broken() { broken_ = true; }

   private:
    Pool& pool_;
    std::unique_ptr<Session> session_;
    bool broken_ = false;
  };

  // A connection for the caller's exclusive use until the lease ends. Throws PgError
  // (kUnavailable) when none is free in time or a new one cannot be opened.
  Lease acquire();
  // Closes the idle connections: after one broke, the others most likely broke with it (the
  // server restarted), and a fresh connection is better than a failed attempt.
  void drop_idle();
  int size() const { return size_; }
  int open_connections();  // idle, leased and being opened
  PostgresPoolStats stats();

 private:
  void release(std::unique_ptr<Session> session, bool broken);

  const std::string name_;
  const std::string conninfo_;
  const int size_;
  const std::chrono::milliseconds acquire_timeout_;
  std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<Session>> idle_;
  int open_ = 0;
  uint64_t waits_ = 0;
  uint64_t timeouts_ = 0;
  double wait_seconds_ = 0;
};

// Every live Pool of the process (guarded by pools_mutex()), for postgres_pool_stats().
std::mutex& pools_mutex();
std::vector<Pool*>& live_pools();

// A bytea parameter: passed in binary, so any bytes (NUL included) round-trip.
struct Bytes {
  std::string_view data;
};

// A transaction as the repositories see it: exec() runs `sql` as a statement prepared on this
// connection, with parameters $1, $2, ... bound from the arguments (strings, string_views,
// int64_t, int, Bytes). A text parameter with a NUL byte is refused (kInvalidArgument): libpq
// would cut it there.
class Tx {
 public:
  Tx(Session& session, pqxx::transaction_base& tx) : session_(session), tx_(tx) {}

  template <class... Args>
  pqxx::result exec(const std::string& sql, const Args&... args) {
    return tx_.exec_prepared(session_.statement(sql), param(args)...);
  }

 private:
  static std::string param(std::string_view text);
  static std::string param(const std::string& text) { return param(std::string_view(text)); }
  static std::string param(const char* text) { return param(std::string_view(text)); }
  static pqxx::binarystring param(Bytes bytes) {
    return pqxx::binarystring(bytes.data.data(), bytes.data.size());
  }
  static int64_t param(int64_t value) { return value; }
  static int param(int value) { return value; }

  Session& session_;
  pqxx::transaction_base& tx_;
};

// Field readers: text as bytes (any length), integers, bytea.
std::string text_of(const pqxx::field& field);
std::string bytes_of(const pqxx::field& field);

// A numbered schema change, run with search_path set to the repository's schema (so its SQL
// names tables without a schema). Versions start at 1 and increase by one.
struct Migration {
  int version;
  std::string_view sql;
};

// What a schema is for: `application` is recorded with every migration, so that one service's
// schema is never migrated as another's.
struct Schema {
  std::string_view description;  // for messages, e.g. "the upload service's metadata"
  std::string_view application;  // e.g. "dither-upload"
  std::span<const Migration> migrations;
};

// Brings schema `schema_name` to the newest version of `schema` on `session`: creates the schema
// and schema_migrations when missing and applies, each in its own transaction and exactly once,
// the migrations not yet recorded. Every step holds a transaction-scoped advisory lock on the
// schema's name, so concurrent openers take turns. Throws PgError: kUnsupported when the schema
// holds something else or a newer version, kInternal when a migration fails.
void migrate(Session& session, const std::string& schema_name, const Schema& schema);

// Why a libpqxx exception happened and what to do about it.
struct Failure {
  Error error;
  bool connection_broken = false;  // do not reuse the connection
  bool retry = false;              // a new transaction may well succeed
};
Failure classify(const std::exception& e, Session* session);

// A repository's database: its pool, its schema. Thread-safe.
class Database {
 public:
  // Validates the options, connects and migrates. Errors as for open_postgres_*_repository.
  static Result<std::unique_ptr<Database>> open(const PostgresOptions& options,
                                                const Schema& schema,
                                                std::string_view default_schema);

  // `sql` with every "{schema}" replaced by the quoted schema name.
  std::string qualify(std::string_view sql) const;
  const std::string& schema_name() const { return schema_name_; }
  Pool& pool() { return pool_; }

  // Runs `fn(Tx&)` in a read-only REPEATABLE READ transaction (one consistent snapshot).
  // Returns Result<R> (Status when `fn` returns void).
  template <class Fn>
  auto read(Fn&& fn) {
    return run<pqxx::transaction<pqxx::repeatable_read, pqxx::read_only>>(fn);
  }
  // Runs `fn(Tx&)` in a READ COMMITTED read-write transaction, committed when `fn` returns
  // normally and rolled back when it throws.
  template <class Fn>
  auto write(Fn&& fn) {
    return run<pqxx::work>(fn);
  }

  static constexpr int kAttempts = 3;

 private:
  Database(const PostgresOptions& options, std::string conninfo, std::string schema_name);

  template <class Txn, class Fn>
  auto run(Fn& fn) {
    using R = std::invoke_result_t<Fn&, Tx&>;
    using Out = std::conditional_t<std::is_void_v<R>, Status, Result<R>>;
    for (int attempt = 1;; ++attempt) {
      try {
        Pool::Lease lease = pool_.acquire();
        try {
          Txn txn(lease.session().connection());
          Tx tx(lease.session(), txn);
          if constexpr (std::is_void_v<R>) {
            fn(tx);
            txn.commit();
            return Out{};
          } else {
            R result = fn(tx);
            txn.commit();
            return Out{std::move(result)};
          }
        } catch (const PgError&) {
          throw;
        } catch (const std::exception& e) {
          Failure failure = classify(e, &lease.session());
          if (failure.connection_broken) {
            lease.mark_broken();
            pool_.drop_idle();
          }
          if (!failure.retry || attempt >= kAttempts) return Out{std::move(failure.error)};
        }
      } catch (const PgError& e) {
        return Out{e.error()};
      } catch (const std::exception& e) {
        return Out{make_error(ErrorKind::kInternal, std::string("postgres adapter: ") + e.what())};
      }
      pause_before_retry(attempt);
    }
  }

  static void pause_before_retry(int attempt);

  const std::string schema_name_;
  const std::string quoted_schema_;
  Pool pool_;
};

}  // namespace dither::postgres
