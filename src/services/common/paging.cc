#include "services/common/paging.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>

#include "http/errors.h"
#include "messaging/events.h"

namespace dither {

Result<int64_t> parse_integer(std::string_view text, int64_t min, int64_t max,
                              std::string_view what) {
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < min ||
      value > max) {
    return make_error(ErrorKind::kInvalidArgument, std::string(what) + " must be an integer from " +
                                                       std::to_string(min) + " to " +
                                                       std::to_string(max) + ", not '" +
                                                       std::string(text.substr(0, 40)) + "'");
  }
  return value;
}

Result<PageRequest> read_page_request(const http::RequestContext& c) {
  PageRequest page;
  if (auto limit = c.query_value("limit")) {
    Result<int64_t> v = parse_integer(*limit, 1, 1000, "limit");
    if (!v) return v.error();
    page.limit = static_cast<int>(*v);
  }
  // A cursor is a next_cursor handed out before: a positive integer in its plain spelling (no sign,
  // no leading zero), at most 18 digits, as the OpenAPI document's pattern says. Empty is the first
  // page, as when absent (a form's empty field; a loop's first request with no cursor yet).
  if (auto cursor = c.query_value("cursor"); cursor && !cursor->empty()) {
    const std::string_view text = *cursor;
    if (text.size() > 18 || text.front() == '0' ||
        !std::all_of(text.begin(), text.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
      return make_error(ErrorKind::kInvalidArgument,
                        "cursor must be the next_cursor of an earlier page (1 to 18 digits, no "
                        "leading zero), not '" +
                            std::string(text.substr(0, 40)) + "'");
    }
    Result<int64_t> v = parse_integer(text, 1, INT64_MAX, "cursor");
    if (!v) return v.error();
    page.before = *v;
  }
  return page;
}

boost::json::value text_or_null(const std::string& text) {
  return text.empty() ? boost::json::value() : boost::json::value(text);
}

boost::json::value time_or_null(int64_t millis) {
  return millis == 0 ? boost::json::value() : boost::json::value(iso_time(millis));
}

std::string page_json(boost::json::array items, const std::string& next_cursor) {
  boost::json::object o;
  o["items"] = std::move(items);
  o["next_cursor"] = text_or_null(next_cursor);
  return boost::json::serialize(o);
}

http::Response health_response(std::string_view service, const Status& status) {
  boost::json::object o;
  o["service"] = service;
  if (status.ok()) {
    o["status"] = "ok";
    return http::json_response(200, boost::json::serialize(o));
  }
  // Why stays in the log: /health is public (docs/SECURITY.md).
  spdlog::warn("{} health: {}", service, status.error().message);
  o["status"] = "unavailable";
  return http::json_response(503, boost::json::serialize(o));
}

}  // namespace dither
