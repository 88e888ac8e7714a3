// Small pieces every service's HTTP layer shares: list paging parameters, the page envelope, the
// owner's list route, and the /health answer.
#pragma once

#include <boost/json/array.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "http/errors.h"
#include "http/router.h"
#include "ports/records.h"
#include "services/common/caller.h"

namespace dither {

// `limit` (1..1000, default 50) and `cursor` (the previous page's next_cursor) from the query.
Result<PageRequest> read_page_request(const http::RequestContext& c);
// A JSON string, or null for an empty one (optional text fields such as `error`).
boost::json::value text_or_null(const std::string& text);
// An ISO 8601 time, or null for 0 (a time that has not happened: revoked_at, sent_at).
boost::json::value time_or_null(int64_t millis);
// {"items": [...], "next_cursor": "..." | null}
std::string page_json(boost::json::array items, const std::string& next_cursor);

// A list route's whole answer: reads `limit` and `cursor`, calls list(PageRequest) (which returns
// Result<Page<Record>>), and renders each record with to_json(Record) -> boost::json::object.
template <class List, class ToJson>
http::Response page_response(const http::RequestContext& c, List&& list, ToJson&& to_json) {
  Result<PageRequest> page = read_page_request(c);
  if (!page) return http::error_response(page.error());
  auto records = list(*page);
  if (!records) return http::error_response(records.error());
  boost::json::array items;
  for (const auto& record : records->items) items.push_back(to_json(record));
  return http::json_response(200, page_json(std::move(items), records->next_cursor));
}
// GET of a service's list for the caller the gateway names: an owner's own records, every
// record for an admin (Caller::list_filter), paged as page_response does. `service.list` takes a
// PageRequest; `to_json` renders one record.
template <class Service, class ToJson>
http::SyncHandler owned_list_route(Service& service, ToJson to_json) {
  return [&service, to_json](const http::RequestContext& c) -> http::Response {
    const std::optional<Caller> caller = caller_of(c);
    if (!caller) return no_caller_response();
    return page_response(
        c,
        [&](PageRequest page) {
          page.owner = caller->list_filter();
          return service.list(page);
        },
        to_json);
  };
}
// 200 {"status": "ok", "service": name} or 503 {"status": "unavailable", "service"} (the reason
// is logged, not answered).
http::Response health_response(std::string_view service, const Status& status);
// Parses a decimal integer in [min, max]; kInvalidArgument naming `what` otherwise.
Result<int64_t> parse_integer(std::string_view text, int64_t min, int64_t max,
                              std::string_view what);

}  // namespace dither
