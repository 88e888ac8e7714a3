// A small RAII layer over the SQLite C API, shared by the SQLite repositories.
//
// `Connection` owns one sqlite3 handle and caches its prepared statements; `Statement` is a
// borrowed cached statement that resets itself when it goes out of scope; `Transaction` is
// BEGIN IMMEDIATE ... COMMIT with ROLLBACK on scope exit; `Database` is one writer connection
// behind a mutex plus a pool of read-only connections (WAL lets them read while the writer
// writes).
//
//   Result<std::unique_ptr<Database>> db = Database::open("data/upload.db", kSchema, {});
//   Result<int64_t> n = (*db)->read([](Connection& c) {
//     auto st = c.prepare("SELECT count(*) FROM images");
//     st.step();
//     return st.column_int64(0);
//   });
//
// Inside `read` / `write`, failures travel as `SqliteError` exceptions so that a sequence of
// queries reads as a straight line; `read` and `write` catch them and return the `Error`, so
// nothing escapes a repository method. SQLITE_BUSY / LOCKED / FULL / CANTOPEN become
// kUnavailable, constraint violations kInvalidArgument, everything else kInternal.
//
// The C header stays in sqlite_db.cc: `sqlite3` and `sqlite3_stmt` are only forward-declared.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace dither {

// How the SQLite repositories open their file.
struct SqliteOptions {
  int readers = 4;             // read-only connections, opened on demand (0: read via the writer)
  int busy_timeout_ms = 5000;  // how long a write waits for another process's lock
};

}  // namespace dither

namespace dither::sqlite {

// Whether Database::open(path) keeps the database in memory (":memory:", or no path): it has no
// files beside it, and no reader connections of its own.
inline bool is_in_memory(std::string_view path) { return path.empty() || path == ":memory:"; }

// A failure inside the adapter; carries the Error the repository method returns.
class SqliteError : public std::runtime_error {
 public:
  explicit SqliteError(Error error) : std::runtime_error(error.message), error_(std::move(error)) {}
  SqliteError(ErrorKind kind, std::string message)
      : SqliteError(make_error(kind, std::move(message))) {}
  const Error& error() const { return error_; }

 private:
  Error error_;
};

struct ConnectionCloser {
  void operator()(sqlite3* db) const;
};
struct StatementFinalizer {
  void operator()(sqlite3_stmt* stmt) const;
};

// A prepared statement borrowed from a Connection's cache. Bind parameters are 1-based, columns
// 0-based, as in SQLite. Text is bound and read with its length, so any bytes round-trip.
// Resets (and clears its bindings) on destruction so the cached statement is ready for reuse.
class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  Statement& bind(int index, int64_t value);
  Statement& bind(int index, int value) { return bind(index, static_cast<int64_t>(value)); }
  Statement& bind(int index, std::string_view value);
  Statement& bind(int index, const std::string& value) {
    return bind(index, std::string_view(value));
  }
  Statement& bind(int index, const char* value) { return bind(index, std::string_view(value)); }
  // Binds the arguments to parameters 1, 2, ... in order.
  template <class... Args>
  Statement& bind_all(const Args&... args) {
    int index = 0;
    (bind(++index, args), ...);
    return *this;
  }

  // Advances to the next row: true when there is one, false when done.
  bool step();
  // Runs a statement that returns no rows (or whose rows are not wanted) to completion.
  void run();

  int64_t column_int64(int column) const;
  int column_int(int column) const;
  bool column_bool(int column) const { return column_int64(column) != 0; }  // 0 is false
  std::string column_text(int column) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

// One connection. Not thread-safe: used by one thread at a time (Database hands it out).
class Connection {
 public:
  enum class Mode { kReadWrite, kReadOnly };

  // Opens (creating it in kReadWrite mode) the database at `path`, with busy_timeout set. For a
  // writer also journal_mode=WAL (unless in-memory), synchronous=FULL and foreign_keys=ON.
  static std::unique_ptr<Connection> open(const std::string& path, Mode mode, int busy_timeout_ms);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // The cached prepared statement for `sql` (prepared on first use). Only one Statement for a
  // given `sql` may be alive at a time.
  Statement prepare(std::string_view sql);
  // Runs one or more statements without caching them (pragmas, migration scripts).
  void exec(const std::string& sql);

  int64_t last_insert_rowid() const;
  int changes() const;  // rows changed by the last INSERT / UPDATE / DELETE
  bool in_transaction() const;

 private:
  explicit Connection(sqlite3* db);

  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unique_ptr<sqlite3, ConnectionCloser> db_;
  std::unordered_map<std::string, std::unique_ptr<sqlite3_stmt, StatementFinalizer>, StringHash,
                     std::equal_to<>>
      statements_;
};

// BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless commit() succeeded.
class Transaction {
 public:
  explicit Transaction(Connection& connection);
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  void commit();

 private:
  Connection& connection_;
  bool done_ = false;
};

// A numbered schema change. Versions start at 1 and increase by one.
struct Migration {
  int version;
  std::string_view sql;
};

// What a database file is for: its PRAGMA application_id (so that one service's file is never
// opened as another's) and its migrations.
struct Schema {
  std::string_view name;  // for messages, e.g. "upload service metadata"
  int32_t application_id;
  std::span<const Migration> migrations;
};

// Brings `connection` to the newest version of `schema`: creates schema_migrations when missing
// and applies, each in its own transaction and exactly once, the migrations not yet recorded
// there. Throws SqliteError when the file belongs to another schema or has a version newer than
// the code knows, or when a migration fails.
void migrate(Connection& connection, const Schema& schema);

// One database file: a writer connection guarded by a mutex and up to `readers` read-only
// connections. Thread-safe: read() and write() may be called from any thread at the same time.
// Each read() sees one consistent snapshot (it runs in a read transaction); each write() is one
// IMMEDIATE transaction, committed when the function returns normally and rolled back when it
// throws.
class Database {
 public:
  // Opens the file (creating it and its parent directory), applies the schema's migrations and
  // returns the database. Errors: kUnavailable when the file cannot be opened or is locked,
  // kUnsupported when it belongs to another schema or has a newer version, kInternal otherwise.
  // ":memory:" gives a private in-memory database, read through the writer.
  static Result<std::unique_ptr<Database>> open(const std::string& path, const Schema& schema,
                                                const SqliteOptions& options);
  ~Database();

  // Runs `fn(Connection&)` in a read transaction on a pooled reader. Returns Result<R> (Status
  // when `fn` returns void); SqliteError and other exceptions become the Error.
  template <class Fn>
  auto read(Fn&& fn) {
    return guarded<std::invoke_result_t<Fn&, Connection&>>([&]() -> decltype(auto) {
      ReaderLease lease(*this);
      return lease.run(fn);
    });
  }

  // Makes what was deleted or overwritten unreadable from the files: the writer runs with
  // secure_delete (freed pages are zeroed), and this copies the WAL into the database and
  // truncates it (old page images gone). Call after erasing personal data (docs/SECURITY.md).
  // kUnavailable when readers kept the WAL busy past the busy timeout.
  Status forget_erased();

  // Runs `fn(Connection&)` in a write transaction on the writer connection.
  template <class Fn>
  auto write(Fn&& fn) {
    return guarded<std::invoke_result_t<Fn&, Connection&>>([&]() -> decltype(auto) {
      std::lock_guard lock(writer_mutex_);
      Transaction tx(*writer_);
      if constexpr (std::is_void_v<std::invoke_result_t<Fn&, Connection&>>) {
        fn(*writer_);
        tx.commit();
      } else {
        auto result = fn(*writer_);
        tx.commit();
        return result;
      }
    });
  }

 private:
  Database(std::string path, const SqliteOptions& options, std::unique_ptr<Connection> writer);

  // A reader connection for the duration of one read() (or the writer, locked, when there are no
  // readers), inside BEGIN ... COMMIT.
  class ReaderLease {
   public:
    explicit ReaderLease(Database& db);
    ReaderLease(const ReaderLease&) = delete;
    ReaderLease& operator=(const ReaderLease&) = delete;
    ~ReaderLease();

    template <class Fn>
    decltype(auto) run(Fn& fn) {
      begin();
      if constexpr (std::is_void_v<std::invoke_result_t<Fn&, Connection&>>) {
        fn(*connection_);
        end();
      } else {
        auto result = fn(*connection_);
        end();
        return result;
      }
    }

   private:
    void begin();
    void end();
    Database& db_;
    std::unique_lock<std::mutex> writer_lock_;  // held when reading through the writer
    std::unique_ptr<Connection> reader_;        // owned while leased
    Connection* connection_ = nullptr;
  };

  // Calls `body` and turns exceptions into the Error of a Result<R> / Status.
  template <class R, class Body>
  static auto guarded(Body&& body) {
    using Out = std::conditional_t<std::is_void_v<R>, Status, Result<R>>;
    try {
      if constexpr (std::is_void_v<R>) {
        body();
        return Out{};
      } else {
        return Out{body()};
      }
    } catch (const SqliteError& e) {
      return Out{e.error()};
    } catch (const std::exception& e) {
      return Out{make_error(ErrorKind::kInternal, std::string("sqlite adapter: ") + e.what())};
    }
  }

  std::unique_ptr<Connection> take_reader();
  void return_reader(std::unique_ptr<Connection> reader);

  const std::string path_;
  const SqliteOptions options_;
  std::mutex writer_mutex_;
  std::unique_ptr<Connection> writer_;

  std::mutex pool_mutex_;
  std::condition_variable pool_cv_;
  std::vector<std::unique_ptr<Connection>> idle_readers_;
  int open_readers_ = 0;
};

}  // namespace dither::sqlite
