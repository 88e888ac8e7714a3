// Percent-decoding of request targets, shared by the router and the server (and usable by
// handlers that decode a form body).
//
//   Result<std::string> s = percent_decode("a%20b");            // "a b"
//   Result<QueryPairs> q = parse_query("q=red+dot&n=2&flag");  // {q:"red dot"},{n:"2"},{flag:""}
//
// A '%' not followed by two hex digits is an error (kInvalidArgument), never passed through. In a
// query '+' means a space (application/x-www-form-urlencoded, what browsers send); in a path it
// is a literal '+'.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace dither::http {

using QueryPairs = std::vector<std::pair<std::string, std::string>>;

// Appends the decoding of `in` to `out`; false on a malformed escape (`out` is then unspecified).
bool percent_decode_append(std::string_view in, bool plus_is_space, std::string& out);
Result<std::string> percent_decode(std::string_view in, bool plus_is_space = false);
// "a=1&b=&c" -> {a,1},{b,""},{c,""}, in order, empty pieces ("a=1&&b=2") skipped.
Result<QueryPairs> parse_query(std::string_view query);

}  // namespace dither::http
