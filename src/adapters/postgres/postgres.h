// The metadata repositories in PostgreSQL (distributed mode): the upload service's
// ImageRepository and the dithering service's DitherRepository, each also its service's Outbox,
// with exactly the behaviour of the SQLite adapters (the same contract suites pass).
//
//   PostgresOptions options{.connection = postgres_conninfo("db.example", 5432, "dither",
//                                                           password, "dither"),
//                           .schema = "upload"};
//   Result<std::unique_ptr<ImageRepository>> images = open_postgres_image_repository(options);
//   if (!images) return fail_startup(images.error());
//
// Each service keeps its tables in its own schema of one database (default `upload` and
// `dither`), created and migrated when the repository is opened. Every repository has a bounded
// pool of connections: callers wait for a free one; broken connections are replaced, so the
// repository recovers by itself after the server restarts; while the server is down every call
// returns kUnavailable within a few seconds. Thread-safe. See README.md.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "ports/identity.h"
#include "ports/metadata.h"
#include "ports/notifications.h"

namespace dither {

// The connection pools of this process's repositories, for metrics (dither_db_pool_*): one entry
// per live pool, named by its schema. Counters only grow while the pool lives.
struct PostgresPoolStats {
  std::string schema;
  int max_connections = 0;
  int in_use = 0;
  int idle = 0;
  uint64_t waits = 0;       // acquires that found no connection free and waited
  uint64_t timeouts = 0;    // acquires that waited acquire_timeout in vain (kUnavailable)
  double wait_seconds = 0;  // time spent waiting, in all
};
std::vector<PostgresPoolStats> postgres_pool_stats();

struct PostgresOptions {
  // A libpq connection string, "key=value ..." or a postgresql:// URI. Unless it says otherwise,
  // connect_timeout=3 (seconds) and TCP keepalives are added.
  std::string connection{};
  // The schema holding this repository's tables (created when missing); empty: `upload` for
  // images, `dither` for dithers, `notify` for notifications, `auth` for keys and sessions.
  std::string schema{};
  // Connections open at most (1..100; the server's limit is shared by every process).
  int pool_size = 4;
  // How long a call waits for a free connection before it returns kUnavailable.
  std::chrono::milliseconds acquire_timeout{5000};
};

// A libpq connection string for these values, each quoted and escaped as libpq requires, so
// that a password with spaces, quotes or backslashes is passed as it is.
std::string postgres_conninfo(std::string_view host, int port, std::string_view user,
                              std::string_view password, std::string_view dbname);

// Connect, create the schema if needed and apply the migrations (serialised with other openers of
// the same schema by an advisory lock). Errors: kInvalidArgument (malformed options),
// kUnavailable (the server cannot be reached), kUnsupported (the schema belongs to something else
// or has a newer version than this program knows), kInternal (a migration failed).
Result<std::unique_ptr<ImageRepository>> open_postgres_image_repository(
    const PostgresOptions& options);
Result<std::unique_ptr<DitherRepository>> open_postgres_dither_repository(
    const PostgresOptions& options);
// The notification service's store (default schema `notify`).
Result<std::unique_ptr<NotificationRepository>> open_postgres_notification_repository(
    const PostgresOptions& options);

// The API keys and browser sessions (default schema `auth`).
Result<std::unique_ptr<IdentityStore>> open_postgres_identity_store(const PostgresOptions& options);

}  // namespace dither
