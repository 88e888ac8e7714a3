#include "adapters/postgres/pg_outbox.h"

#include "ports/records.h"

namespace dither::postgres {

MessagingTables::MessagingTables(const Database& db)
    : lock_key_("dither.outbox:" + db.schema_name()),
      lock_("SELECT pg_advisory_xact_lock(hashtext($1))"),
      insert_(db.qualify("INSERT INTO {schema}.outbox (topic, key, headers, body, created_at) "
                         "VALUES ($1, $2, $3, $4, $5)")),
      select_(db.qualify("SELECT seq, topic, key, headers, body, attempts, last_error, parked_at "
                         "FROM {schema}.outbox WHERE parked_at = 0 ORDER BY seq LIMIT $1")),
      delete_(db.qualify("DELETE FROM {schema}.outbox WHERE seq = $1")),
      processed_(db.qualify(
          "INSERT INTO {schema}.processed_messages (message_id, processed_at) VALUES ($1, $2) "
          "ON CONFLICT (message_id) DO NOTHING")),
      record_failure_(
          db.qualify("UPDATE {schema}.outbox SET attempts = attempts + 1, last_error = $1, "
                     "parked_at = CASE WHEN $2 = 1 THEN $3 ELSE parked_at END WHERE seq = $4")),
      select_parked_(
          db.qualify("SELECT seq, topic, key, headers, body, attempts, last_error, parked_at "
                     "FROM {schema}.outbox WHERE parked_at <> 0 ORDER BY seq LIMIT $1")),
      republish_(db.qualify("UPDATE {schema}.outbox SET parked_at = 0, attempts = 0 "
                            "WHERE seq = $1 AND parked_at <> 0")),
      stats_(db.qualify("SELECT count(*) FILTER (WHERE parked_at = 0), "
                        "count(*) FILTER (WHERE parked_at <> 0), "
                        "coalesce(min(created_at) FILTER (WHERE parked_at = 0), 0) "
                        "FROM {schema}.outbox")) {}

void MessagingTables::enqueue(Tx& tx, const Message& message) const {
  // Identity values are handed out at insert time, not at commit: without the lock, a
  // transaction that took seq 11 could commit before the one holding seq 10.
  tx.exec(lock_, lock_key_);
  const std::string headers = encode_headers(message.headers);
  tx.exec(insert_, message.topic, message.key, Bytes{headers}, message.body, now_millis());
}

namespace {

std::vector<OutboxEntry> read_entries(const pqxx::result& rows) {
  std::vector<OutboxEntry> entries;
  entries.reserve(rows.size());
  for (const auto& row : rows) {
    OutboxEntry& entry = entries.emplace_back();
    entry.seq = row[0].as<int64_t>();
    entry.message.topic = text_of(row[1]);
    entry.message.key = text_of(row[2]);
    entry.message.headers = decode_headers(bytes_of(row[3]));
    entry.message.body = text_of(row[4]);
    entry.attempts = row[5].as<int>();
    entry.last_error = text_of(row[6]);
    entry.parked_at = row[7].as<int64_t>();
  }
  return entries;
}

}  // namespace

std::vector<OutboxEntry> MessagingTables::pending(Tx& tx, int limit) const {
  if (limit <= 0) return {};
  return read_entries(tx.exec(select_, limit));
}

void MessagingTables::record_failure(Tx& tx, int64_t seq, std::string_view error, bool park) const {
  tx.exec(record_failure_, error, park ? 1 : 0, now_millis(), seq);
}

std::vector<OutboxEntry> MessagingTables::parked(Tx& tx, int limit) const {
  if (limit <= 0) return {};
  return read_entries(tx.exec(select_parked_, limit));
}

bool MessagingTables::republish(Tx& tx, int64_t seq) const {
  return tx.exec(republish_, seq).affected_rows() == 1;
}

OutboxStats MessagingTables::stats(Tx& tx) const {
  const pqxx::row row = tx.exec(stats_).at(0);
  return OutboxStats{row[0].as<int64_t>(), row[1].as<int64_t>(), row[2].as<int64_t>()};
}

void MessagingTables::remove(Tx& tx, int64_t seq) const { tx.exec(delete_, seq); }

bool MessagingTables::first_delivery(Tx& tx, std::string_view message_id) const {
  if (message_id.empty()) return true;
  return tx.exec(processed_, message_id, now_millis()).affected_rows() == 1;
}

namespace {

void put_length_prefixed(std::string& out, std::string_view bytes) {
  const auto n = static_cast<uint32_t>(bytes.size());
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xFF);
  out += bytes;
}

}  // namespace

std::string encode_headers(const Headers& headers) {
  std::string out;
  for (const auto& [name, value] : headers) {
    put_length_prefixed(out, name);
    put_length_prefixed(out, value);
  }
  return out;
}

Headers decode_headers(std::string_view bytes) {
  auto take = [&]() -> std::string {
    if (bytes.size() < 4) {
      throw PgError(ErrorKind::kInternal, "postgres: malformed outbox headers");
    }
    uint32_t n = 0;
    for (int i = 0; i < 4; ++i)
      n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
    bytes.remove_prefix(4);
    if (bytes.size() < n) throw PgError(ErrorKind::kInternal, "postgres: malformed outbox headers");
    std::string value(bytes.substr(0, n));
    bytes.remove_prefix(n);
    return value;
  };
  Headers headers;
  while (!bytes.empty()) {
    std::string name = take();
    std::string value = take();
    headers.emplace_back(std::move(name), std::move(value));
  }
  return headers;
}

}  // namespace dither::postgres
