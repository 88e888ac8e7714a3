#include "http/compress.h"

#include <libdeflate.h>

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <cctype>
#include <memory>

namespace dither::http {
namespace {

// libdeflate's level 6: about 30 % of the JavaScript's size; a few hundred microseconds for the
// page's largest file.
constexpr int kGzipLevel = 6;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequal(std::string_view a, std::string_view b) { return boost::beast::iequals(a, b); }

// Splits a comma-separated header value and calls `fn` with each trimmed, non-empty item.
template <class Fn>
void for_each_item(std::string_view value, Fn fn) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    const std::string_view item = trim(value.substr(0, comma));
    if (!item.empty()) fn(item);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

std::string_view header_of(const Response& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (iequal(n, name)) return v;
  }
  return {};
}

}  // namespace

bool accepts_gzip(std::string_view accept_encoding) {
  bool gzip = false, star = false, gzip_named = false;
  for_each_item(accept_encoding, [&](std::string_view item) {
    const size_t semi = item.find(';');
    const std::string_view coding = trim(item.substr(0, semi));
    bool zero = false;
    if (semi != std::string_view::npos) {
      std::string_view params = item.substr(semi + 1);
      // q=0, q=0.0, q=0.00, q=0.000 refuse; anything else accepts.
      const size_t q = params.find("q=");
      if (q != std::string_view::npos) {
        std::string_view value = trim(params.substr(q + 2));
        value = value.substr(0, value.find(';'));
        zero = !value.empty() && value.find_first_not_of("0.") == std::string_view::npos;
      }
    }
    if (iequal(coding, "gzip") || iequal(coding, "x-gzip")) {
      gzip_named = true;
      gzip = !zero;
    } else if (coding == "*") {
      star = !zero;
    }
  });
  return gzip_named ? gzip : star;
}

bool is_compressible(std::string_view content_type) {
  const std::string_view type = trim(content_type.substr(0, content_type.find(';')));
  return type.starts_with("text/") || iequal(type, "application/json") ||
         iequal(type, "application/javascript") || iequal(type, "image/svg+xml") ||
         (type.starts_with("application/") && type.ends_with("+json"));
}

std::string gzip_etag(std::string_view etag) {
  if (etag.size() >= 2 && etag.back() == '"') {
    return std::string(etag.substr(0, etag.size() - 1)) + "-gzip\"";
  }
  return std::string(etag);
}

bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  if (etag.empty()) return false;
  auto opaque = [](std::string_view tag) {
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    return tag;
  };
  const std::string_view mine = opaque(etag);
  const std::string zipped = gzip_etag(mine);
  bool match = false;
  for_each_item(if_none_match, [&](std::string_view item) {
    const std::string_view tag = opaque(item);
    match = match || item == "*" || tag == mine || tag == zipped;
  });
  return match;
}

void compress_for(const Request& request, Response& response, size_t min_bytes) {
  if (min_bytes == 0 || !response.file_path.empty() || response.status < 200 ||
      response.status == 204 || response.status == 206 || response.status >= 300 ||
      response.body.size() < min_bytes || !is_compressible(response.content_type) ||
      !header_of(response, "Content-Encoding").empty()) {
    return;
  }
  response.headers.emplace_back("Vary", "Accept-Encoding");
  const auto accept = request[boost::beast::http::field::accept_encoding];
  if (!accepts_gzip(std::string_view(accept.data(), accept.size()))) return;
  struct Free {
    void operator()(libdeflate_compressor* c) const { libdeflate_free_compressor(c); }
  };
  thread_local std::unique_ptr<libdeflate_compressor, Free> compressor(
      libdeflate_alloc_compressor(kGzipLevel));
  if (!compressor) return;
  std::string out(libdeflate_gzip_compress_bound(compressor.get(), response.body.size()), '\0');
  const size_t size = libdeflate_gzip_compress(compressor.get(), response.body.data(),
                                               response.body.size(), out.data(), out.size());
  if (size == 0 || size >= response.body.size()) return;  // not worth it
  out.resize(size);
  response.body = std::move(out);
  response.headers.emplace_back("Content-Encoding", "gzip");
  for (auto& [name, value] : response.headers) {
    if (iequal(name, "ETag")) value = gzip_etag(value);
  }
}

}  // namespace dither::http
