// The two tables both PostgreSQL schemas share: the transactional outbox (messages written in the
// same transaction as the row change they announce) and processed_messages (ids of consumed
// messages, for idempotent consumers). Used by the repositories inside Database::write / read.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/postgres/pg_db.h"
#include "ports/message.h"
#include "ports/outbox.h"

namespace dither::postgres {

// Migration 1 of both schemas. `seq` comes from an identity (never reused); `headers` is bytea
// (encode_headers) so that any header bytes round-trip, in order, duplicates included.
inline constexpr std::string_view kMessagingTablesSql = R"sql(
CREATE TABLE outbox (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  topic TEXT NOT NULL,
  key TEXT NOT NULL,
  headers BYTEA NOT NULL,
  body TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE processed_messages (
  message_id TEXT PRIMARY KEY,
  processed_at BIGINT NOT NULL
);
)sql";

// A later migration of both schemas (appended to each one's list): failed publishes are counted
// per entry and an entry the bus refuses for good is parked (Outbox::record_publish_failure).
inline constexpr std::string_view kOutboxParkingSql = R"sql(
ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN parked_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
)sql";

// The outbox and processed_messages statements of one schema.
class MessagingTables {
 public:
  explicit MessagingTables(const Database& db);

  // Appends `message` to the outbox. Call it last in the transaction: from here to the commit the
  // transaction holds the schema's outbox lock, so entries are numbered in commit order (a relay
  // never sees entry n+1 before entry n is committed).
  void enqueue(Tx& tx, const Message& message) const;
  // The oldest `limit` entries not parked, oldest first (none when limit <= 0).
  std::vector<OutboxEntry> pending(Tx& tx, int limit) const;
  // Removes entry `seq`; removing an entry that is already gone is not an error.
  void remove(Tx& tx, int64_t seq) const;
  // Outbox::record_publish_failure, parked_messages and republish (false: no parked entry).
  void record_failure(Tx& tx, int64_t seq, std::string_view error, bool park) const;
  std::vector<OutboxEntry> parked(Tx& tx, int limit) const;
  bool republish(Tx& tx, int64_t seq) const;
  OutboxStats stats(Tx& tx) const;
  // Records `message_id` as processed. Returns false when it already was (the caller does
  // nothing more); an empty id means "not from a message": nothing is recorded, true.
  bool first_delivery(Tx& tx, std::string_view message_id) const;

 private:
  std::string lock_key_;
  std::string lock_;
  std::string insert_;
  std::string select_;
  std::string delete_;
  std::string processed_;
  std::string record_failure_;
  std::string select_parked_;
  std::string republish_;
  std::string stats_;
};

// Headers as stored: for each pair, name and value, each as a 4-byte big-endian length and the
// bytes. Order, duplicates and any bytes are kept.
std::string encode_headers(const Headers& headers);
Headers decode_headers(std::string_view bytes);  // throws PgError (kInternal) when malformed

}  // namespace dither::postgres
