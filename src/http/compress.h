// gzip for text answers: a client that accepts it gets HTML, CSS, JavaScript, JSON and SVG of at
// least `min_bytes` compressed (libdeflate, whole body at once), with `Vary: Accept-Encoding`; the
// compressed form has its own entity tag ("tag" -> "tag-gzip"), and a conditional request with
// either form matches.
//
//   if (options.compress_min_bytes > 0) compress_for(request, response,
//   options.compress_min_bytes);
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "http/router.h"

namespace dither::http {

// Whether an Accept-Encoding value accepts gzip (`gzip` or `*`, with a q-value above 0).
bool accepts_gzip(std::string_view accept_encoding);
// Text types worth compressing.
bool is_compressible(std::string_view content_type);
// The entity tag of the gzip form: "abc" -> "abc-gzip", W/"abc" -> W/"abc-gzip".
std::string gzip_etag(std::string_view etag);
// If-None-Match against `etag`: "*", or a list naming the tag or its gzip form, weak or strong.
bool etag_matches(std::string_view if_none_match, std::string_view etag);
// Compresses `response` in place when the request accepts gzip and the answer is worth it.
void compress_for(const Request& request, Response& response, size_t min_bytes);

}  // namespace dither::http
