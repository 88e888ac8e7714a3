#include "services/common/outbox_api.h"

#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "http/errors.h"
#include "messaging/events.h"
#include "services/common/caller.h"
#include "services/common/paging.h"

namespace dither {
namespace {

namespace json = boost::json;

// 401 without a caller, 403 for one who is no admin; nullopt when an admin calls.
std::optional<http::Response> refuse_unless_admin(const http::RequestContext& c) {
  const std::optional<Caller> caller = caller_of(c);
  if (!caller) return no_caller_response();
  if (!caller->admin) {
    return http::error_response(403, "forbidden", "parked outbox messages are for admins only");
  }
  return std::nullopt;
}

}  // namespace

void add_outbox_routes(http::Router& router, Outbox& outbox) {
  router.add(
      http::Verb::get, "/outbox/parked",
      [&outbox](const http::RequestContext& c) -> http::Response {
        if (auto refused = refuse_unless_admin(c)) return std::move(*refused);
        int64_t limit = 100;
        if (std::optional<std::string_view> text = c.query_value("limit")) {
          Result<int64_t> parsed = parse_integer(*text, 1, 1000, "limit");
          if (!parsed) return http::error_response(parsed.error());
          limit = *parsed;
        }
        Result<std::vector<OutboxEntry>> parked = outbox.parked_messages(static_cast<int>(limit));
        if (!parked) return http::error_response(parked.error());
        json::array items;
        for (const OutboxEntry& e : *parked) {
          json::object o;
          o["seq"] = e.seq;
          o["topic"] = e.message.topic;
          o["key"] = e.message.key;
          o["message_type"] = e.message.message_type();
          o["message_id"] = e.message.message_id();
          o["attempts"] = e.attempts;
          o["last_error"] = e.last_error;
          o["parked_at"] = iso_time(e.parked_at);
          items.push_back(std::move(o));
        }
        json::object body;
        body["items"] = std::move(items);
        return http::json_response(200, json::serialize(body));
      },
      http::Dispatch::kBlocking);

  router.add(
      http::Verb::post, "/outbox/parked/{seq}",
      [&outbox](const http::RequestContext& c) -> http::Response {
        if (auto refused = refuse_unless_admin(c)) return std::move(*refused);
        Result<int64_t> seq = parse_integer(c.param("seq"), 1, INT64_MAX, "seq");
        if (!seq) return http::error_response(seq.error());
        if (Status s = outbox.republish(*seq); !s) return http::error_response(s.error());
        json::object body;
        body["seq"] = *seq;
        body["status"] = "PENDING";
        return http::json_response(202, json::serialize(body));
      },
      http::Dispatch::kBlocking);
}

}  // namespace dither
