// The two tables both SQLite schemas share: the transactional outbox (messages written in the same
// transaction as the row change they announce) and processed_messages (ids of consumed messages,
// for idempotent consumers). Used by the repositories inside Database::write / read.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "adapters/sqlite/sqlite_db.h"
#include "ports/message.h"
#include "ports/outbox.h"

namespace dither::sqlite {

// Migration 1 of both schemas.
inline constexpr std::string_view kMessagingTablesSql = R"sql(
CREATE TABLE outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: a removed seq is never reused
  topic TEXT NOT NULL,
  key TEXT NOT NULL,
  headers TEXT NOT NULL,                  -- JSON array of [name, value] pairs, in order
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;
CREATE TABLE processed_messages (
  message_id TEXT PRIMARY KEY,
  processed_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
)sql";

// A later migration of both schemas (appended to each one's list): failed publishes are counted
// per entry and an entry the bus refuses for good is parked (Outbox::record_publish_failure).
// Parked entries are few: the queue's scan by seq skips them.
inline constexpr std::string_view kOutboxParkingSql = R"sql(
ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN parked_at INTEGER NOT NULL DEFAULT 0;  -- Unix ms; 0 = queued
ALTER TABLE outbox ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
)sql";

// Appends `message` to the outbox.
void enqueue_message(Connection& connection, const Message& message);
// The oldest `limit` entries not parked, oldest first (none when limit <= 0).
std::vector<OutboxEntry> read_pending_messages(Connection& connection, int limit);
// Removes entry `seq`; removing an entry that is already gone is not an error.
void delete_message(Connection& connection, int64_t seq);
// Outbox::record_publish_failure, parked_messages and republish (false: no parked entry `seq`).
void record_publish_failure(Connection& connection, int64_t seq, std::string_view error, bool park);
std::vector<OutboxEntry> read_parked_messages(Connection& connection, int limit);
bool republish_message(Connection& connection, int64_t seq);
OutboxStats read_outbox_stats(Connection& connection);

// Records `message_id` as processed. Returns false when it already was (the caller does nothing
// more); an empty id means "not from a message": nothing is recorded and the result is true.
bool first_delivery(Connection& connection, std::string_view message_id);

// Headers as stored: a JSON array of [name, value] pairs, order and duplicates kept.
std::string encode_headers(const Headers& headers);
Headers decode_headers(std::string_view text);  // throws SqliteError when malformed

}  // namespace dither::sqlite
