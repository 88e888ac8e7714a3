#include "http/multipart.h"

#include <utility>

namespace dither::http {
namespace {

// Parts and part headers are bounded so that a hostile body costs time linear in its size and
// memory proportional to it, whatever its shape.
constexpr size_t kMaxParts = 1000;
constexpr size_t kMaxPartHeaderBytes = 16 * 1024;

Error invalid(std::string message) {
  return make_error(ErrorKind::kInvalidArgument, "multipart: " + std::move(message));
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// RFC 7230 tchar.
bool is_token_char(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// RFC 2046 bchars (without the space, which may only appear inside).
bool is_boundary_char(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos;
}

struct Parameter {
  std::string name;  // lower case
  std::string value;
};

// Parses `; name=value; name="quoted \"value\""` after a header's first item. Lenient about
// spaces, strict about structure (a quoted string must be closed). With `quoted_pairs` a
// backslash escapes the next character (RFC 9110, for Content-Type); without, it is itself: the
// form encoding browsers use (WHATWG) writes `"` as %22 and never escapes with a backslash, so
// a file named `C:\x\` must arrive as it was sent (Content-Disposition of form parts).
bool parse_parameters(std::string_view s, std::vector<Parameter>& out, bool quoted_pairs) {
  size_t i = 0;
  const auto skip_spaces = [&] {
    while (i < s.size() && is_space(s[i])) ++i;
  };
  for (;;) {
    skip_spaces();
    if (i == s.size()) return true;
    if (s[i] != ';') return false;
    ++i;
    skip_spaces();
    if (i == s.size()) return true;  // a trailing ';'
    Parameter p;
    while (i < s.size() && is_token_char(s[i])) p.name.push_back(lower(s[i++]));
    if (p.name.empty()) return false;
    skip_spaces();
    if (i == s.size() || s[i] != '=') return false;
    ++i;
    skip_spaces();
    if (i < s.size() && s[i] == '"') {
      ++i;
      bool closed = false;
      while (i < s.size()) {
        const char c = s[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (quoted_pairs && c == '\\' && i < s.size()) {
          p.value.push_back(s[i++]);
        } else {
          p.value.push_back(c);
        }
      }
      if (!closed) return false;
    } else {
      while (i < s.size() && s[i] != ';' && !is_space(s[i])) p.value.push_back(s[i++]);
      if (p.value.empty()) return false;
    }
    out.push_back(std::move(p));
  }
}

const std::string* find_parameter(const std::vector<Parameter>& params, std::string_view name) {
  for (const Parameter& p : params) {
    if (p.name == name) return &p.value;
  }
  return nullptr;
}

// Fills `part` from a part's header block (the lines between the delimiter and the blank line).
Status parse_part_headers(std::string_view block, FormPart& part) {
  bool have_disposition = false;
  while (!block.empty()) {
    const size_t eol = block.find("\r\n");
    const std::string_view line = block.substr(0, eol);
    block = eol == std::string_view::npos ? std::string_view{} : block.substr(eol + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 || is_space(line.front())) {
      return invalid("malformed part header");
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "content-disposition")) {
      if (have_disposition) return invalid("a part with two Content-Disposition headers");
      have_disposition = true;
      const size_t semicolon = value.find(';');
      if (!iequals(trim(value.substr(0, semicolon)), "form-data")) {
        return invalid("a part's Content-Disposition is not form-data");
      }
      std::vector<Parameter> params;
      if (semicolon == std::string_view::npos ||
          !parse_parameters(value.substr(semicolon), params, false)) {
        return invalid("malformed Content-Disposition");
      }
      const std::string* field = find_parameter(params, "name");
      if (field == nullptr) return invalid("a part without a name");
      part.name = *field;
      if (const std::string* filename = find_parameter(params, "filename")) {
        part.filename = *filename;
      }
    } else if (iequals(name, "content-type")) {
      part.content_type = std::string(value);
    }
  }
  if (!have_disposition) return invalid("a part without Content-Disposition");
  return {};
}

}  // namespace

Result<std::string> multipart_boundary(std::string_view content_type) {
  const size_t semicolon = content_type.find(';');
  if (!iequals(trim(content_type.substr(0, semicolon)), "multipart/form-data")) {
    return invalid("the content type is not multipart/form-data");
  }
  std::vector<Parameter> params;
  if (semicolon == std::string_view::npos) return invalid("no boundary");
  if (!parse_parameters(content_type.substr(semicolon), params, true)) {
    return invalid("malformed content type parameters");
  }
  const std::string* boundary = find_parameter(params, "boundary");
  if (boundary == nullptr) return invalid("no boundary");
  if (boundary->empty() || boundary->size() > 70 || boundary->back() == ' ') {
    return invalid("the boundary must have 1 to 70 characters");
  }
  for (const char c : *boundary) {
    if (!is_boundary_char(c)) return invalid("the boundary has a character not allowed");
  }
  return *boundary;
}

Result<std::vector<FormPart>> parse_multipart(std::string_view content_type,
                                              std::string_view body) {
  Result<std::string> boundary = multipart_boundary(content_type);
  if (!boundary) return boundary.error();
  // "\r\n--boundary": every delimiter but a first one at the very start of the body.
  const std::string delimiter = "\r\n--" + *boundary;
  const std::string_view dash_boundary = std::string_view(delimiter).substr(2);

  size_t pos = 0;
  if (body.starts_with(dash_boundary)) {
    pos = dash_boundary.size();
  } else {
    const size_t found = body.find(delimiter);
    if (found == std::string_view::npos) return invalid("no opening delimiter");
    pos = found + delimiter.size();  // the preamble before it is ignored
  }

  std::vector<FormPart> parts;
  for (;;) {
    // Just after a delimiter: "--" closes, else optional padding and CRLF.
    std::string_view rest = body.substr(pos);
    if (rest.starts_with("--")) return parts;  // the epilogue after it is ignored
    while (!rest.empty() && is_space(rest.front())) rest.remove_prefix(1);
    if (!rest.starts_with("\r\n")) {
      return rest.empty() ? invalid("missing closing delimiter") : invalid("malformed delimiter");
    }
    rest.remove_prefix(2);
    if (parts.size() == kMaxParts) return invalid("too many parts");
    if (rest.starts_with("\r\n")) return invalid("a part without headers");
    const size_t header_end = rest.substr(0, kMaxPartHeaderBytes).find("\r\n\r\n");
    if (header_end == std::string_view::npos) {
      return rest.size() < kMaxPartHeaderBytes ? invalid("a part with unterminated headers")
                                               : invalid("a part's headers are too large");
    }
    FormPart part;
    if (Status s = parse_part_headers(rest.substr(0, header_end), part); !s) return s.error();
    const std::string_view data = rest.substr(header_end + 4);
    const size_t data_end = data.find(delimiter);
    if (data_end == std::string_view::npos) return invalid("missing closing delimiter");
    part.data = data.substr(0, data_end);
    parts.push_back(std::move(part));
    pos = static_cast<size_t>(data.data() - body.data()) + data_end + delimiter.size();
  }
}

}  // namespace dither::http
