// The one place where an error becomes an HTTP response (SPEC section 3).
//
// Body: {"error": {"code": "<code>", "message": "<message>"}}. Status by kind:
// kInvalidArgument 400, kNotFound 404, kTooLarge 413, kUnsupported 415, kUndecodable 422,
// kTooManyPixels 422, kUnavailable 503, kInternal 500. The code is to_string(kind) unless the
// caller gives a more specific one (e.g. "invalid_uuid", "overloaded").
#pragma once

#include <string_view>

#include "common/result.h"
#include "http/router.h"

namespace dither::http {

unsigned http_status(ErrorKind kind);
Response error_response(const Error& error, std::string_view code = {});
Response error_response(unsigned status, std::string_view code, std::string_view message);
// A JSON body with the given status.
Response json_response(unsigned status, std::string body);
// An answer of any type (`body` is sent as it is).
Response body_response(unsigned status, std::string content_type, std::string body);

}  // namespace dither::http
