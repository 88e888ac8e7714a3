#include "http/url_decode.h"

namespace dither::http {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool percent_decode_append(std::string_view in, bool plus_is_space, std::string& out) {
  out.reserve(out.size() + in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%') {
      if (in.size() - i < 3) return false;
      const int hi = hex_value(in[i + 1]);
      const int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return true;
}

Result<std::string> percent_decode(std::string_view in, bool plus_is_space) {
  std::string out;
  if (!percent_decode_append(in, plus_is_space, out)) {
    return make_error(ErrorKind::kInvalidArgument, "malformed percent-escape");
  }
  return out;
}

Result<QueryPairs> parse_query(std::string_view query) {
  QueryPairs pairs;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view piece = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (piece.empty()) continue;
    const size_t eq = piece.find('=');
    std::string key;
    std::string value;
    if (!percent_decode_append(piece.substr(0, eq), true, key) ||
        (eq != std::string_view::npos &&
         !percent_decode_append(piece.substr(eq + 1), true, value))) {
      return make_error(ErrorKind::kInvalidArgument, "malformed percent-escape in the query");
    }
    pairs.emplace_back(std::move(key), std::move(value));
  }
  return pairs;
}

}  // namespace dither::http
