#include "adapters/sqlite/outbox_table.h"

#include <boost/json.hpp>

#include "ports/records.h"

namespace dither::sqlite {

void enqueue_message(Connection& connection, const Message& message) {
  connection
      .prepare("INSERT INTO outbox (topic, key, headers, body, created_at) VALUES (?, ?, ?, ?, ?)")
      .bind_all(message.topic, message.key, encode_headers(message.headers), message.body,
                now_millis())
      .run();
}

namespace {

constexpr std::string_view kOutboxColumns =
    "seq, topic, key, headers, body, attempts, last_error, parked_at";

std::vector<OutboxEntry> read_entries(Statement& st) {
  std::vector<OutboxEntry> entries;
  while (st.step()) {
    OutboxEntry& entry = entries.emplace_back();
    entry.seq = st.column_int64(0);
    entry.message.topic = st.column_text(1);
    entry.message.key = st.column_text(2);
    entry.message.headers = decode_headers(st.column_text(3));
    entry.message.body = st.column_text(4);
    entry.attempts = st.column_int(5);
    entry.last_error = st.column_text(6);
    entry.parked_at = st.column_int64(7);
  }
  return entries;
}

// The oldest `limit` entries `where` selects (none when limit <= 0), oldest first.
std::vector<OutboxEntry> read_outbox(Connection& connection, std::string_view where, int limit) {
  if (limit <= 0) return {};
  auto st = connection.prepare("SELECT " + std::string(kOutboxColumns) + " FROM outbox WHERE " +
                               std::string(where) + " ORDER BY seq LIMIT ?");
  st.bind(1, limit);
  return read_entries(st);
}

}  // namespace

std::vector<OutboxEntry> read_pending_messages(Connection& connection, int limit) {
  return read_outbox(connection, "parked_at = 0", limit);
}

void delete_message(Connection& connection, int64_t seq) {
  connection.prepare("DELETE FROM outbox WHERE seq = ?").bind(1, seq).run();
}

void record_publish_failure(Connection& connection, int64_t seq, std::string_view error,
                            bool park) {
  connection
      .prepare(
          "UPDATE outbox SET attempts = attempts + 1, last_error = ?, "
          "parked_at = CASE WHEN ? THEN ? ELSE parked_at END WHERE seq = ?")
      .bind_all(error, park ? 1 : 0, now_millis(), seq)
      .run();
}

std::vector<OutboxEntry> read_parked_messages(Connection& connection, int limit) {
  return read_outbox(connection, "parked_at <> 0", limit);
}

bool republish_message(Connection& connection, int64_t seq) {
  connection
      .prepare("UPDATE outbox SET parked_at = 0, attempts = 0 WHERE seq = ? AND parked_at <> 0")
      .bind(1, seq)
      .run();
  return connection.changes() == 1;
}

OutboxStats read_outbox_stats(Connection& connection) {
  auto st = connection.prepare(
      "SELECT coalesce(sum(parked_at = 0), 0), coalesce(sum(parked_at <> 0), 0), "
      "coalesce(min(CASE WHEN parked_at = 0 THEN created_at END), 0) FROM outbox");
  OutboxStats stats;
  if (st.step()) {
    stats.pending = st.column_int64(0);
    stats.parked = st.column_int64(1);
    stats.oldest_pending_at = st.column_int64(2);
  }
  return stats;
}

bool first_delivery(Connection& connection, std::string_view message_id) {
  if (message_id.empty()) return true;
  connection
      .prepare(
          "INSERT INTO processed_messages (message_id, processed_at) VALUES (?, ?) "
          "ON CONFLICT (message_id) DO NOTHING")
      .bind_all(message_id, now_millis())
      .run();
  return connection.changes() == 1;
}

std::string encode_headers(const Headers& headers) {
  boost::json::array pairs;
  pairs.reserve(headers.size());
  for (const auto& [name, value] : headers) {
    pairs.emplace_back(boost::json::array{boost::json::string(name), boost::json::string(value)});
  }
  return boost::json::serialize(pairs);
}

Headers decode_headers(std::string_view text) {
  auto malformed = [] {
    return SqliteError(make_error(ErrorKind::kInternal, "sqlite: malformed outbox headers"));
  };
  boost::json::parse_options options;
  options.allow_invalid_utf8 = true;  // header values are bytes; they round-trip as given
  boost::system::error_code ec;
  boost::json::value parsed = boost::json::parse(text, ec, {}, options);
  if (ec || !parsed.is_array()) throw malformed();
  Headers headers;
  for (const boost::json::value& pair : parsed.get_array()) {
    const auto* items = pair.if_array();
    if (items == nullptr || items->size() != 2 || !(*items)[0].is_string() ||
        !(*items)[1].is_string()) {
      throw malformed();
    }
    headers.emplace_back(std::string((*items)[0].get_string()),
                         std::string((*items)[1].get_string()));
  }
  return headers;
}

}  // namespace dither::sqlite
