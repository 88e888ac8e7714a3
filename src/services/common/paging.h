// Small pieces every service's HTTP layer shares: list paging parameters, the page envelope, and
// the /health answer.
#pragma once

#include <boost/json/array.hpp>
#include <string>
#include <string_view>

#include "common/result.h"
#include "http/router.h"
#include "ports/records.h"

namespace dither {

// `limit` (1..1000, default 50) and `cursor` (the previous page's next_cursor) from the query.
Result<PageRequest> read_page_request(const http::RequestContext& c);
// {"items": [...], "next_cursor": "..." | null}
std::string page_json(boost::json::array items, const std::string& next_cursor);
// 200 {"status": "ok", "service": name} or 503 {"status": "unavailable", "service", "error"}.
http::Response health_response(std::string_view service, const Status& status);
// Parses a decimal integer in [min, max]; kInvalidArgument naming `what` otherwise.
Result<int64_t> parse_integer(std::string_view text, int64_t min, int64_t max,
                              std::string_view what);

}  // namespace dither
