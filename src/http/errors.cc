#include "http/errors.h"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <string>
#include <utility>

#include "common/utf8.h"

namespace dither::http {

unsigned http_status(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidArgument:
      return 400;
    case ErrorKind::kNotFound:
      return 404;
    case ErrorKind::kTooLarge:
      return 413;
    case ErrorKind::kUnsupported:
      return 415;
    case ErrorKind::kUndecodable:
    case ErrorKind::kTooManyPixels:
      return 422;
    case ErrorKind::kUnavailable:
      return 503;
    case ErrorKind::kInternal:
      return 500;
  }
  return 500;
}

Response error_response(const Error& error, std::string_view code) {
  return error_response(http_status(error.kind), code.empty() ? to_string(error.kind) : code,
                        error.message);
}

Response error_response(unsigned status, std::string_view code, std::string_view message) {
  boost::json::object inner;
  inner["code"] = code;
  // Messages may quote what a client sent: always valid UTF-8, so always valid JSON.
  inner["message"] = to_valid_utf8(message);
  boost::json::object outer;
  outer["error"] = std::move(inner);
  return json_response(status, boost::json::serialize(outer));
}

Response body_response(unsigned status, std::string content_type, std::string body) {
  Response response;
  response.status = status;
  response.content_type = std::move(content_type);
  response.body = std::move(body);
  return response;
}

Response json_response(unsigned status, std::string body) {
  return body_response(status, "application/json", std::move(body));
}

}  // namespace dither::http
