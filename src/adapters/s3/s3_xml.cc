#include "adapters/s3/s3_xml.h"

#include <charconv>
#include <cstdint>
#include <optional>

namespace dither::s3 {
namespace {

// The text between <name> and </name>, searching from `pos`; `pos` moves past the element.
// nullopt when there is no such element; kInternal when it is opened but not closed.
Result<std::optional<std::string_view>> next_element(std::string_view xml, std::string_view name,
                                                     size_t& pos) {
  const std::string open = "<" + std::string(name) + ">";
  const std::string close = "</" + std::string(name) + ">";
  const size_t start = xml.find(open, pos);
  if (start == std::string_view::npos) return std::optional<std::string_view>();
  const size_t text = start + open.size();
  const size_t end = xml.find(close, text);
  if (end == std::string_view::npos) {
    return make_error(ErrorKind::kInternal,
                      "S3 sent malformed XML: <" + std::string(name) + "> is not closed");
  }
  pos = end + close.size();
  return std::optional<std::string_view>(xml.substr(text, end - text));
}

std::string first_text(std::string_view xml, std::string_view name) {
  size_t pos = 0;
  Result<std::optional<std::string_view>> found = next_element(xml, name, pos);
  if (!found || !found->has_value()) return "";
  return xml_unescape(**found);
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// The character an entity body (between '&' and ';') stands for, appended to `out`; false when
// the entity is unknown or malformed.
bool append_entity(std::string& out, std::string_view entity) {
  if (entity == "amp") {
    out.push_back('&');
  } else if (entity == "lt") {
    out.push_back('<');
  } else if (entity == "gt") {
    out.push_back('>');
  } else if (entity == "quot") {
    out.push_back('"');
  } else if (entity == "apos") {
    out.push_back('\'');
  } else if (entity.size() >= 2 && entity[0] == '#') {
    const bool hex = entity[1] == 'x' || entity[1] == 'X';
    const std::string_view digits = entity.substr(hex ? 2 : 1);
    uint32_t cp = 0;
    const auto [end, ec] =
        std::from_chars(digits.data(), digits.data() + digits.size(), cp, hex ? 16 : 10);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    append_utf8(out, cp);
  } else {
    return false;
  }
  return true;
}

}  // namespace

std::string xml_unescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const size_t amp = text.find('&', i);
    if (amp == std::string_view::npos) {
      out.append(text.substr(i));
      break;
    }
    out.append(text.substr(i, amp - i));
    const size_t semi = text.find(';', amp + 1);
    // Entities are short; a lone '&' far from any ';' is kept as written.
    if (semi != std::string_view::npos && semi - amp <= 12 &&
        append_entity(out, text.substr(amp + 1, semi - amp - 1))) {
      i = semi + 1;
    } else {
      out.push_back('&');
      i = amp + 1;
    }
  }
  return out;
}

Result<ListObjectsPage> parse_list_objects(std::string_view xml) {
  if (xml.find("<ListBucketResult") == std::string_view::npos) {
    return make_error(ErrorKind::kInternal,
                      "S3 sent no ListBucketResult: " + std::string(xml.substr(0, 200)));
  }
  ListObjectsPage page;
  size_t pos = 0;
  for (;;) {
    Result<std::optional<std::string_view>> contents = next_element(xml, "Contents", pos);
    if (!contents) return contents.error();
    if (!contents->has_value()) break;
    size_t inner = 0;
    Result<std::optional<std::string_view>> key = next_element(**contents, "Key", inner);
    if (!key) return key.error();
    if (!key->has_value())
      return make_error(ErrorKind::kInternal, "S3 sent <Contents> without <Key>");
    page.keys.push_back(xml_unescape(**key));
  }
  page.truncated = first_text(xml, "IsTruncated") == "true";
  page.next_token = first_text(xml, "NextContinuationToken");
  if (page.truncated && page.next_token.empty()) {
    return make_error(ErrorKind::kInternal,
                      "S3 sent a truncated list without a NextContinuationToken");
  }
  return page;
}

S3ErrorBody parse_error(std::string_view xml) {
  return S3ErrorBody{first_text(xml, "Code"), first_text(xml, "Message")};
}

}  // namespace dither::s3
