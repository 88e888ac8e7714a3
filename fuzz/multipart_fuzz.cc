// multipart/form-data: the first line of the input is the Content-Type header, the rest the body.
//
// Invariants: every part's data is a view inside the body; a part has a name; a boundary that was
// accepted is 1 to 70 allowed characters and was taken from the content type.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_support.h"
#include "http/multipart.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dither;
  std::string_view rest = fuzz::as_text(data, size);
  const std::string_view content_type = fuzz::next_field(rest, '\n');
  const std::string_view body = rest;

  const Result<std::string> boundary = http::multipart_boundary(content_type);
  if (boundary) {
    FUZZ_CHECK(!boundary->empty() && boundary->size() <= 70);
    FUZZ_CHECK(boundary->back() != ' ');
    FUZZ_CHECK(boundary->find_first_of("\r\n\"") == std::string::npos);
  }

  const Result<std::vector<http::FormPart>> parts = http::parse_multipart(content_type, body);
  if (!parts) {
    FUZZ_CHECK(parts.error().kind == ErrorKind::kInvalidArgument);
    return 0;
  }
  FUZZ_CHECK(boundary.ok());  // no parts without a boundary
  FUZZ_CHECK(parts->size() <= 1000);
  const char* const begin = body.data();
  const char* const end = body.data() + body.size();
  const char* previous_end = begin;
  for (const http::FormPart& part : *parts) {
    FUZZ_CHECK(part.data.empty() ||
               (part.data.data() >= begin && part.data.data() + part.data.size() <= end));
    // Parts come in order and never overlap.
    if (!part.data.empty()) {
      FUZZ_CHECK(part.data.data() >= previous_end);
      previous_end = part.data.data() + part.data.size();
    }
    // A part's content never holds the delimiter ("\r\n--boundary").
    FUZZ_CHECK(part.data.find("\r\n--" + *boundary) == std::string_view::npos);
  }
  return 0;
}
