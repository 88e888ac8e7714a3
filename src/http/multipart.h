// multipart/form-data (RFC 7578) parsing of a body already in memory.
//
//   Result<std::vector<FormPart>> parts = parse_multipart(content_type_header, body);
//
// The parts' data are views into `body`. Errors are kInvalidArgument with a message that says
// what is wrong (no boundary, missing closing delimiter, a part without headers, ...).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace dither::http {

struct FormPart {
  std::string name;          // from Content-Disposition
  std::string filename;      // "" when the part is not a file
  std::string content_type;  // "" when absent
  std::string_view data;
};

// "multipart/form-data; boundary=..." -> the boundary; kInvalidArgument when not multipart or
// the boundary is missing or malformed (1..70 characters).
Result<std::string> multipart_boundary(std::string_view content_type);
Result<std::vector<FormPart>> parse_multipart(std::string_view content_type, std::string_view body);

}  // namespace dither::http
