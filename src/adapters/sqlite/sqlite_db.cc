#include "adapters/sqlite/sqlite_db.h"

#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <system_error>

#include "ports/records.h"

namespace dither::sqlite {
namespace {

ErrorKind kind_of(int code) {
  switch (code & 0xFF) {  // the primary result code
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
      return ErrorKind::kUnavailable;
    case SQLITE_CONSTRAINT:
      return ErrorKind::kInvalidArgument;
    default:
      return ErrorKind::kInternal;
  }
}

// A failing statement's message gives SQLite's reason but not the SQL text or values: it may
// reach a client (kInvalidArgument for a duplicate key). SQL that fails to prepare is a bug, and
// its message names the SQL.
[[noreturn]] void fail(sqlite3* db, int code, std::string_view what) {
  std::string message = "sqlite: " + std::string(what) + ": ";
  message += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(code);
  throw SqliteError(make_error(kind_of(code), std::move(message)));
}

void check(sqlite3* db, int code, std::string_view what) {
  if (code != SQLITE_OK) fail(db, code, what);
}

// SQLite's process-wide settings, once, before the library initialises itself (sqlite3_config
// is refused after that: SQLITE_MISUSE, when another part of the process was first; a test
// checks that ours comes first). Memory statistics off: with them on, every allocation SQLite
// makes, a statement's step included, takes one mutex for the whole process, and the connections
// of two I/O threads queued on it (docs/BENCHMARKS.md, the gateway). Nothing reads them.
void configure_library() {
  static const int configured = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)configured;
}

}  // namespace

void ConnectionCloser::operator()(sqlite3* db) const { sqlite3_close_v2(db); }
void StatementFinalizer::operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }

// --- Statement ---------------------------------------------------------------------------------

Statement::~Statement() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

Statement& Statement::bind(int index, int64_t value) {
  check(db_, sqlite3_bind_int64(stmt_, index, value), "bind");
  return *this;
}

Statement& Statement::bind(int index, std::string_view value) {
  // SQLITE_TRANSIENT: SQLite copies the bytes, so the caller's string may go away. An empty
  // string_view may have no data: SQLite would bind that as NULL, not as ''.
  const char* data = value.data() != nullptr ? value.data() : "";
  check(db_, sqlite3_bind_text64(stmt_, index, data, value.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
        "bind");
  return *this;
}

bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail(db_, rc, "statement failed");
}

void Statement::run() {
  while (step()) {
  }
}

int64_t Statement::column_int64(int column) const { return sqlite3_column_int64(stmt_, column); }

int Statement::column_int(int column) const { return sqlite3_column_int(stmt_, column); }

std::string Statement::column_text(int column) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  if (text == nullptr) return {};
  return std::string(text, static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

// --- Connection --------------------------------------------------------------------------------

Connection::Connection(sqlite3* db) : db_(db) {}

Connection::~Connection() {
  statements_.clear();  // finalize before closing (close_v2 would defer the close otherwise)
}

std::unique_ptr<Connection> Connection::open(const std::string& path, Mode mode,
                                             int busy_timeout_ms) {
  configure_library();
  // NOMUTEX: a connection is used by one thread at a time (the Database's mutex and pool).
  int flags = SQLITE_OPEN_NOMUTEX;
  flags |=
      mode == Mode::kReadOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  std::unique_ptr<sqlite3, ConnectionCloser> db(raw);
  if (rc != SQLITE_OK) fail(raw, rc, "cannot open '" + path + "'");
  sqlite3_extended_result_codes(raw, 1);
  check(raw, sqlite3_busy_timeout(raw, busy_timeout_ms), "busy_timeout");

  std::unique_ptr<Connection> connection(new Connection(db.release()));
  if (mode == Mode::kReadWrite) {
    if (path != ":memory:") {
      // WAL: readers never block the writer nor the writer the readers.
      auto st = connection->prepare("PRAGMA journal_mode=WAL");
      if (!st.step() || st.column_text(0) != "wal") {
        throw SqliteError(make_error(ErrorKind::kInternal,
                                     "sqlite: cannot switch '" + path + "' to WAL journal mode"));
      }
    }
    // FULL: the WAL is synced at every commit, so an acknowledged write survives power loss too.
    // secure_delete: deleted rows are overwritten with zeros, not left in free pages.
    connection->exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;");
  }
  return connection;
}

Statement Connection::prepare(std::string_view sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    sqlite3_stmt* raw = nullptr;
    const int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    std::unique_ptr<sqlite3_stmt, StatementFinalizer> stmt(raw);
    if (rc != SQLITE_OK) fail(db_.get(), rc, "prepare " + std::string(sql));
    it = statements_.emplace(std::string(sql), std::move(stmt)).first;
  }
  return Statement(db_.get(), it->second.get());
}

void Connection::exec(const std::string& sql) {
  char* message = nullptr;
  const int rc = sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, &message);
  if (rc != SQLITE_OK) {
    std::string text = message != nullptr ? message : sqlite3_errstr(rc);
    sqlite3_free(message);
    throw SqliteError(make_error(kind_of(rc), "sqlite: " + text));
  }
}

int64_t Connection::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_.get()); }

int Connection::changes() const { return sqlite3_changes(db_.get()); }

bool Connection::in_transaction() const { return sqlite3_get_autocommit(db_.get()) == 0; }

// --- Transaction -------------------------------------------------------------------------------

Transaction::Transaction(Connection& connection) : connection_(connection) {
  connection_.prepare("BEGIN IMMEDIATE").run();
}

Transaction::~Transaction() {
  // A failed statement may already have rolled the transaction back.
  if (!done_ && connection_.in_transaction()) {
    try {
      connection_.prepare("ROLLBACK").run();
    } catch (...) {
      // Nothing more to do: SQLite undoes an unfinished transaction when the connection closes.
    }
  }
}

void Transaction::commit() {
  connection_.prepare("COMMIT").run();
  done_ = true;
}

// --- Migrations --------------------------------------------------------------------------------

void migrate(Connection& connection, const Schema& schema) {
  const auto known = static_cast<int>(schema.migrations.size());
  for (int i = 0; i < known; ++i) {
    if (schema.migrations[static_cast<size_t>(i)].version != i + 1) {
      throw std::logic_error("migrations of " + std::string(schema.name) +
                             " must be numbered 1, 2, 3, ...");
    }
  }
  auto fail_startup = [&](std::string message) {
    throw SqliteError(make_error(ErrorKind::kUnsupported, std::move(message)));
  };

  {
    Transaction tx(connection);
    auto id = connection.prepare("PRAGMA application_id");
    id.step();
    const int64_t application_id = id.column_int64(0);
    auto tables = connection.prepare("SELECT count(*) FROM sqlite_schema");
    tables.step();
    const bool empty = tables.column_int64(0) == 0;
    if (application_id != schema.application_id) {
      if (application_id != 0 || !empty) {
        fail_startup("sqlite: this database file is not " + std::string(schema.name) +
                     " (application_id " + std::to_string(application_id) + ")");
      }
      connection.exec("PRAGMA application_id=" + std::to_string(schema.application_id));
    }
    connection.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY,"
        " applied_at INTEGER NOT NULL)");
    auto newest = connection.prepare("SELECT coalesce(max(version), 0) FROM schema_migrations");
    newest.step();
    const int64_t version = newest.column_int64(0);
    if (version > known) {
      fail_startup("sqlite: " + std::string(schema.name) + " has schema version " +
                   std::to_string(version) + ", newer than this program knows (" +
                   std::to_string(known) + "); run a newer build");
    }
    tx.commit();
  }

  for (const Migration& migration : schema.migrations) {
    Transaction tx(connection);
    // Checked inside the transaction: another process may have applied it meanwhile.
    auto applied = connection.prepare("SELECT 1 FROM schema_migrations WHERE version = ?");
    applied.bind(1, migration.version);
    const bool already = applied.step();
    applied.run();
    if (already) continue;
    try {
      connection.exec(std::string(migration.sql));
    } catch (const SqliteError& e) {
      throw SqliteError(make_error(
          ErrorKind::kInternal,
          "migration " + std::to_string(migration.version) + " failed: " + e.error().message));
    }
    connection.prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")
        .bind_all(migration.version, now_millis())
        .run();
    tx.commit();
  }
}

// --- Database ----------------------------------------------------------------------------------

Database::Database(std::string path, const SqliteOptions& options,
                   std::unique_ptr<Connection> writer)
    : path_(std::move(path)), options_(options), writer_(std::move(writer)) {}

Database::~Database() {
  // Readers close first; the writer, last to close, checkpoints and removes the WAL file.
  idle_readers_.clear();
}

Result<std::unique_ptr<Database>> Database::open(const std::string& path, const Schema& schema,
                                                 const SqliteOptions& options) {
  const bool in_memory = is_in_memory(path);
  return guarded<std::unique_ptr<Database>>([&] {
    if (!in_memory) {
      const std::filesystem::path parent = std::filesystem::path(path).parent_path();
      std::error_code ec;
      if (!parent.empty()) std::filesystem::create_directories(parent, ec);
      if (ec) {
        throw SqliteError(make_error(
            ErrorKind::kUnavailable,
            "sqlite: cannot create directory '" + parent.string() + "': " + ec.message()));
      }
    }
    auto writer = Connection::open(path, Connection::Mode::kReadWrite, options.busy_timeout_ms);
    migrate(*writer, schema);
    SqliteOptions effective = options;
    effective.readers = in_memory ? 0 : std::max(0, options.readers);
    return std::unique_ptr<Database>(new Database(path, effective, std::move(writer)));
  });
}

std::unique_ptr<Connection> Database::take_reader() {
  std::unique_lock lock(pool_mutex_);
  pool_cv_.wait(lock, [&] { return !idle_readers_.empty() || open_readers_ < options_.readers; });
  if (!idle_readers_.empty()) {
    auto reader = std::move(idle_readers_.back());
    idle_readers_.pop_back();
    return reader;
  }
  ++open_readers_;
  lock.unlock();
  try {
    return Connection::open(path_, Connection::Mode::kReadOnly, options_.busy_timeout_ms);
  } catch (...) {
    lock.lock();
    --open_readers_;
    pool_cv_.notify_one();
    throw;
  }
}

void Database::return_reader(std::unique_ptr<Connection> reader) {
  {
    std::lock_guard lock(pool_mutex_);
    idle_readers_.push_back(std::move(reader));
  }
  pool_cv_.notify_one();
}

Database::ReaderLease::ReaderLease(Database& db) : db_(db) {
  if (db_.options_.readers == 0) {
    writer_lock_ = std::unique_lock(db_.writer_mutex_);
    connection_ = db_.writer_.get();
  } else {
    reader_ = db_.take_reader();
    connection_ = reader_.get();
  }
}

Database::ReaderLease::~ReaderLease() {
  if (connection_->in_transaction()) {
    try {
      connection_->prepare("ROLLBACK").run();
    } catch (...) {
      // A connection that cannot roll back is not reused.
      if (reader_) {
        reader_.reset();
        {
          std::lock_guard lock(db_.pool_mutex_);
          --db_.open_readers_;
        }
        db_.pool_cv_.notify_one();
      }
    }
  }
  if (reader_) db_.return_reader(std::move(reader_));
}

void Database::ReaderLease::begin() { connection_->prepare("BEGIN").run(); }

void Database::ReaderLease::end() { connection_->prepare("COMMIT").run(); }

Status Database::forget_erased() {
  if (path_ == ":memory:") return {};
  return guarded<void>([&] {
    std::lock_guard lock(writer_mutex_);
    auto st = writer_->prepare("PRAGMA wal_checkpoint(TRUNCATE)");
    if (st.step() && st.column_int(0) != 0) {
      throw SqliteError(make_error(ErrorKind::kUnavailable,
                                   "sqlite: the WAL of '" + path_ + "' is busy; not truncated"));
    }
  });
}

}  // namespace dither::sqlite
