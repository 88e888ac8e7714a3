#include "adapters/postgres/pg_db.h"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <thread>

#include "ports/records.h"

namespace dither::postgres {
namespace {

// The first line of a libpq / server message, without the "ERROR:  " prefix: the server's
// reason, never the DETAIL (which may quote values) nor the query.
std::string first_line(std::string_view message) {
  message = message.substr(0, message.find('\n'));
  for (std::string_view prefix : {"ERROR:  ", "FATAL:  "}) {
    if (message.starts_with(prefix)) message.remove_prefix(prefix.size());
  }
  while (!message.empty() && (message.back() == ' ' || message.back() == '\r')) {
    message.remove_suffix(1);
  }
  return std::string(message);
}

}  // namespace

// A value in a key=value connection string: single-quoted, with \ and ' escaped.
void append_option(std::string& out, std::string_view key, std::string_view value) {
  if (!out.empty()) out += ' ';
  out += key;
  out += "='";
  for (char c : value) {
    if (c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  out += '\'';
}

namespace {

struct OptionsFree {
  void operator()(PQconninfoOption* options) const { PQconninfoFree(options); }
};

}  // namespace

std::string effective_conninfo(const std::string& conninfo) {
  char* error = nullptr;
  std::unique_ptr<PQconninfoOption, OptionsFree> parsed(PQconninfoParse(conninfo.c_str(), &error));
  if (!parsed) {
    std::string reason = error != nullptr ? first_line(error) : "out of memory";
    PQfreemem(error);
    throw PgError(ErrorKind::kInvalidArgument, "postgres: bad connection string: " + reason);
  }
  // Defaults for what the caller did not set: a connection attempt gives up after 3 s (libpq's
  // default is to wait forever), a dead peer is noticed by TCP keepalives within about 30 s, unsent
  // data after 30 s, and a server that is up but stuck (I/O stall, a lock nobody releases) fails a
  // statement after 30 s or a lock wait after 10 s instead of freezing every thread.
  std::vector<std::pair<std::string_view, std::string_view>> defaults = {
      {"connect_timeout", "3"},
      {"keepalives", "1"},
      {"keepalives_idle", "15"},
      {"keepalives_interval", "5"},
      {"keepalives_count", "3"},
      {"tcp_user_timeout", "30000"},
      {"options", "-c statement_timeout=30000 -c lock_timeout=10000"},
      {"fallback_application_name", "dither"},
  };
  std::string out;
  for (const PQconninfoOption* o = parsed.get(); o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    append_option(out, o->keyword, o->val);
    std::erase_if(defaults, [&](const auto& d) { return d.first == o->keyword; });
  }
  for (const auto& [key, value] : defaults) append_option(out, key, value);
  return out;
}

std::string quote_identifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

Session::Session(const std::string& conninfo) : connection_(conninfo) {}

const std::string& Session::statement(const std::string& sql) {
  auto found = names_.find(sql);
  if (found != names_.end()) return found->second;
  std::string name = "s" + std::to_string(names_.size() + 1);
  connection_.prepare(name, sql);
  return names_.emplace(sql, std::move(name)).first->second;
}

// Every live pool, for postgres_pool_stats().
std::mutex& pools_mutex() {
  static std::mutex mutex;
  return mutex;
}
std::vector<Pool*>& live_pools() {
  static std::vector<Pool*> pools;
  return pools;
}

Pool::Pool(std::string name, std::string conninfo, int size,
           std::chrono::milliseconds acquire_timeout)
    : name_(std::move(name)),
      conninfo_(std::move(conninfo)),
      size_(size),
      acquire_timeout_(acquire_timeout) {
  std::lock_guard lock(pools_mutex());
  live_pools().push_back(this);
}

PostgresPoolStats Pool::stats() {
  std::lock_guard lock(mutex_);
  const int idle = static_cast<int>(idle_.size());
  return PostgresPoolStats{name_, size_, open_ - idle, idle, waits_, timeouts_, wait_seconds_};
}

Pool::~Pool() {
  {
    std::lock_guard lock(pools_mutex());
    std::erase(live_pools(), this);
  }
  std::vector<std::unique_ptr<Session>> idle;
  std::lock_guard lock(mutex_);
  idle.swap(idle_);
}

Pool::Lease Pool::acquire() {
  std::unique_lock lock(mutex_);
  bool free = !idle_.empty() || open_ < size_;
  if (!free) {
    ++waits_;
    const auto waiting = std::chrono::steady_clock::now();
    free = freed_.wait_for(lock, acquire_timeout_, [&] { return !idle_.empty() || open_ < size_; });
    wait_seconds_ +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - waiting).count();
    if (!free) ++timeouts_;
  }
  if (!free) {
    throw PgError(ErrorKind::kUnavailable, "postgres: all " + std::to_string(size_) +
                                               " connections stayed busy for " +
                                               std::to_string(acquire_timeout_.count()) + " ms");
  }
  if (!idle_.empty()) {
    std::unique_ptr<Session> session = std::move(idle_.back());
    idle_.pop_back();
    return Lease(*this, std::move(session));
  }
  ++open_;  // the place is taken while connecting
  lock.unlock();
  try {
    return Lease(*this, std::make_unique<Session>(conninfo_));
  } catch (const std::exception& e) {
    lock.lock();
    --open_;
    lock.unlock();
    freed_.notify_one();
    throw PgError(ErrorKind::kUnavailable, "postgres: cannot connect: " + first_line(e.what()));
  }
}

void Pool::release(std::unique_ptr<Session> session, bool broken) {
  if (session == nullptr) return;
  if (broken || !session->connection().is_open()) {
    session.reset();  // closes the connection outside the lock
    std::lock_guard lock(mutex_);
    --open_;
  } else {
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(session));
  }
  freed_.notify_one();
}

void Pool::drop_idle() {
  std::vector<std::unique_ptr<Session>> dropped;
  {
    std::lock_guard lock(mutex_);
    dropped.swap(idle_);
    open_ -= static_cast<int>(dropped.size());
  }
  freed_.notify_all();
}

int Pool::open_connections() {
  std::lock_guard lock(mutex_);
  return open_;
}

std::string Tx::param(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) {
    throw PgError(ErrorKind::kInvalidArgument, "postgres: text may not contain a NUL byte");
  }
  return std::string(text);
}

std::string text_of(const pqxx::field& field) { return std::string(field.c_str(), field.size()); }

std::string bytes_of(const pqxx::field& field) { return pqxx::binarystring(field).str(); }

Failure classify(const std::exception& e, Session* session) {
  auto unavailable = [&](std::string what, bool broken, bool retry) {
    return Failure{make_error(ErrorKind::kUnavailable, "postgres: " + std::move(what)), broken,
                   retry};
  };
  // The commit may or may not have happened: never retried (the caller decides).
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr ||
      dynamic_cast<const pqxx::statement_completion_unknown*>(&e) != nullptr) {
    return unavailable("the connection broke while committing; the outcome is unknown", true,
                       false);
  }
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) {
    return unavailable("connection lost: " + first_line(e.what()), true, true);
  }
  // Serialization failures and deadlocks: the server rolled back; trying again is the cure.
  if (dynamic_cast<const pqxx::transaction_rollback*>(&e) != nullptr) {
    return unavailable(first_line(e.what()), false, true);
  }
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e); sql != nullptr) {
    const std::string& state = sql->sqlstate();
    const std::string reason = first_line(e.what());
    // 08: connection exception; 57P0x: the server is shutting down or restarting.
    if (state.starts_with("08") || state.starts_with("57P")) {
      return unavailable(reason, true, true);
    }
    if (state.starts_with("40")) return unavailable(reason, false, true);
    // 53: out of connections, memory or disk; 55P03: lock not available; 57014: cancelled.
    if (state.starts_with("53") || state == "55P03" || state == "57014") {
      return unavailable(reason, false, false);
    }
    // 22: data exception (e.g. bytes that are not UTF-8); 23: integrity constraint violation.
    if (state.starts_with("22") || state.starts_with("23")) {
      // The server's words name tables and columns: they go to the log, not to a client.
      spdlog::warn("postgres: refused a value: {}", reason);
      return Failure{make_error(ErrorKind::kInvalidArgument,
                                "a value was refused by the database (not valid text, or a "
                                "duplicate)")};
    }
    return Failure{make_error(ErrorKind::kInternal, "postgres: " + reason)};
  }
  if (session != nullptr && !session->connection().is_open()) {
    return unavailable("connection lost: " + first_line(e.what()), true, true);
  }
  return Failure{make_error(ErrorKind::kInternal, "postgres: " + first_line(e.what()))};
}

void migrate(Session& session, const std::string& schema_name, const Schema& schema) {
  const auto known = static_cast<int>(schema.migrations.size());
  for (int i = 0; i < known; ++i) {
    if (schema.migrations[static_cast<size_t>(i)].version != i + 1) {
      throw PgError(ErrorKind::kInternal, "postgres: migrations of " +
                                              std::string(schema.description) +
                                              " must be numbered 1, 2, 3, ...");
    }
  }
  const std::string quoted = quote_identifier(schema_name);
  const std::string lock_key = "dither.migrations:" + schema_name;
  const std::string application(schema.application);
  auto unsupported = [&](const std::string& why) {
    return PgError(ErrorKind::kUnsupported, "postgres: schema \"" + schema_name + "\" " + why);
  };
  pqxx::connection& c = session.connection();

  {
    pqxx::work tx(c);
    tx.exec_params("SELECT pg_advisory_xact_lock(hashtext($1))", lock_key);
    const pqxx::row found = tx.exec_params1(
        "SELECT (SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = $1), "
        "to_regclass($2) IS NOT NULL",
        schema_name, quoted + ".schema_migrations");
    if (found[0].as<int64_t>() > 0 && !found[1].as<bool>()) {
      throw unsupported("holds tables that are not " + std::string(schema.description));
    }
    tx.exec("CREATE SCHEMA IF NOT EXISTS " + quoted);
    tx.exec("CREATE TABLE IF NOT EXISTS " + quoted +
            ".schema_migrations (version INTEGER PRIMARY KEY, application TEXT NOT NULL, "
            "applied_at BIGINT NOT NULL)");
    const pqxx::result other = tx.exec_params(
        "SELECT application FROM " + quoted + ".schema_migrations WHERE application <> $1 LIMIT 1",
        application);
    if (!other.empty()) {
      throw unsupported("belongs to " + text_of(other[0][0]) + ", not to " +
                        std::string(schema.description));
    }
    const int64_t version =
        tx.exec1("SELECT coalesce(max(version), 0) FROM " + quoted + ".schema_migrations")[0]
            .as<int64_t>();
    if (version > known) {
      throw unsupported("(" + std::string(schema.description) + ") has version " +
                        std::to_string(version) + ", newer than this program knows (" +
                        std::to_string(known) + "); run a newer build");
    }
    tx.commit();
  }

  for (const Migration& migration : schema.migrations) {
    pqxx::work tx(c);
    tx.exec_params("SELECT pg_advisory_xact_lock(hashtext($1))", lock_key);
    // Checked under the lock: another process may have applied it meanwhile.
    if (!tx.exec_params("SELECT 1 FROM " + quoted + ".schema_migrations WHERE version = $1",
                        migration.version)
             .empty()) {
      continue;
    }
    tx.exec("SET LOCAL search_path TO " + quoted);
    try {
      tx.exec(std::string(migration.sql));
    } catch (const pqxx::sql_error& e) {
      throw PgError(ErrorKind::kInternal,
                    "postgres: migration " + std::to_string(migration.version) + " of " +
                        std::string(schema.description) + " failed: " + first_line(e.what()));
    }
    tx.exec_params("INSERT INTO " + quoted +
                       ".schema_migrations (version, application, applied_at) VALUES ($1, $2, $3)",
                   migration.version, application, now_millis());
    tx.commit();
  }
}

Database::Database(const PostgresOptions& options, std::string conninfo, std::string schema_name)
    : schema_name_(std::move(schema_name)),
      quoted_schema_(quote_identifier(schema_name_)),
      pool_(schema_name_, std::move(conninfo), options.pool_size, options.acquire_timeout) {}

Result<std::unique_ptr<Database>> Database::open(const PostgresOptions& options,
                                                 const Schema& schema,
                                                 std::string_view default_schema) {
  const std::string name = options.schema.empty() ? std::string(default_schema) : options.schema;
  // PostgreSQL would silently cut a longer name to 63 bytes.
  if (name.size() > 63 || name.find('\0') != std::string::npos) {
    return make_error(ErrorKind::kInvalidArgument,
                      "postgres: a schema name has 1 to 63 bytes and no NUL: " + name);
  }
  if (options.pool_size < 1 || options.pool_size > 100) {
    return make_error(ErrorKind::kInvalidArgument, "postgres: pool_size must be 1..100, not " +
                                                       std::to_string(options.pool_size));
  }
  if (options.acquire_timeout.count() < 0) {
    return make_error(ErrorKind::kInvalidArgument, "postgres: acquire_timeout must be >= 0");
  }
  try {
    std::unique_ptr<Database> db(
        new Database(options, effective_conninfo(options.connection), name));
    Pool::Lease lease = db->pool_.acquire();
    try {
      migrate(lease.session(), name, schema);
    } catch (const PgError&) {
      throw;
    } catch (const std::exception& e) {
      Failure failure = classify(e, &lease.session());
      if (failure.connection_broken) lease.mark_broken();
      throw PgError(std::move(failure.error));
    }
    return db;
  } catch (const PgError& e) {
    return e.error();
  }
}

std::string Database::qualify(std::string_view sql) const {
  static constexpr std::string_view kToken = "{schema}";
  std::string out;
  out.reserve(sql.size() + 32);
  for (size_t at = 0;;) {
    const size_t found = sql.find(kToken, at);
    out += sql.substr(at, found - at);
    if (found == std::string_view::npos) return out;
    out += quoted_schema_;
    at = found + kToken.size();
  }
}

void Database::pause_before_retry(int attempt) {
  // A short random pause, so that transactions that collided do not collide again.
  thread_local std::minstd_rand random{std::random_device{}()};
  std::uniform_int_distribution<int> jitter(0, 10 * attempt);
  std::this_thread::sleep_for(std::chrono::milliseconds{jitter(random)});
}

}  // namespace dither::postgres

namespace dither {

std::string postgres_conninfo(std::string_view host, int port, std::string_view user,
                              std::string_view password, std::string_view dbname) {
  std::string out;
  postgres::append_option(out, "host", host);
  postgres::append_option(out, "port", std::to_string(port));
  postgres::append_option(out, "user", user);
  postgres::append_option(out, "password", password);
  postgres::append_option(out, "dbname", dbname);
  return out;
}

}  // namespace dither

namespace dither {

std::vector<PostgresPoolStats> postgres_pool_stats() {
  std::lock_guard lock(postgres::pools_mutex());
  std::vector<PostgresPoolStats> out;
  for (postgres::Pool* pool : postgres::live_pools()) out.push_back(pool->stats());
  return out;
}

}  // namespace dither
