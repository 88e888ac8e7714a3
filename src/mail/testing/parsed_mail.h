// For tests: reads back the RFC 5322 text mail_format::to_rfc5322 writes (as stored by the
// mailbox sender or received by the test SMTP server): unfolded and decoded headers, the
// text/plain and text/html parts decoded from quoted-printable. Written independently of the
// encoder (its own base64 and quoted-printable decoders), so tests check the encoder against it.
#pragma once

#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace dither::mail_testing {

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Quoted-printable to bytes; hard line breaks (CRLF) become "\n". Records a test failure on a
// malformed escape or a line longer than 76 characters.
inline std::string decode_quoted_printable(std::string_view qp) {
  std::string out;
  size_t line_start = 0;
  for (size_t i = 0; i < qp.size(); ++i) {
    if (qp[i] == '\r' && i + 1 < qp.size() && qp[i + 1] == '\n') {
      EXPECT_LE(i - line_start, 76u) << "quoted-printable line too long";
      out += '\n';
      ++i;
      line_start = i + 1;
    } else if (qp[i] == '=') {
      if (i + 2 < qp.size() && qp[i + 1] == '\r' && qp[i + 2] == '\n') {  // soft break
        EXPECT_LE(i + 1 - line_start, 76u) << "quoted-printable line too long";
        i += 2;
        line_start = i + 1;
      } else if (i + 2 < qp.size() && hex_value(qp[i + 1]) >= 0 && hex_value(qp[i + 2]) >= 0) {
        out += static_cast<char>(hex_value(qp[i + 1]) * 16 + hex_value(qp[i + 2]));
        i += 2;
      } else {
        ADD_FAILURE() << "malformed quoted-printable escape at " << i;
      }
    } else {
      out += qp[i];
    }
  }
  EXPECT_LE(qp.size() - line_start, 76u) << "quoted-printable line too long";
  return out;
}

inline std::string decode_base64(std::string_view text) {
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    int v = -1;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    if (c >= '0' && c <= '9') v = c - '0' + 52;
    if (c == '+') v = 62;
    if (c == '/') v = 63;
    if (v < 0) continue;  // '=' padding
    bits = (bits << 6) | static_cast<uint32_t>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out += static_cast<char>((bits >> count) & 0xFF);
    }
  }
  return out;
}

// Unfolds (CRLF + space -> space) and decodes "=?UTF-8?B?...?=" words; white space between two
// encoded-words is dropped, as RFC 2047 says.
inline std::string decode_header(std::string_view value) {
  std::string unfolded;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\r' && i + 1 < value.size() && value[i + 1] == '\n') {
      ++i;
      continue;
    }
    unfolded += value[i];
  }
  std::string out;
  size_t i = 0;
  bool last_was_word = false;
  while (i < unfolded.size()) {
    if (unfolded.compare(i, 10, "=?UTF-8?B?") == 0) {
      const size_t end = unfolded.find("?=", i + 10);
      if (end == std::string::npos) break;
      if (last_was_word) {
        while (!out.empty() && out.back() == ' ') out.pop_back();
      }
      out += decode_base64(std::string_view(unfolded).substr(i + 10, end - i - 10));
      i = end + 2;
      last_was_word = true;
      continue;
    }
    if (unfolded[i] != ' ') last_was_word = false;
    out += unfolded[i++];
  }
  return out;
}

struct ParsedMail {
  std::map<std::string, std::string> headers;      // lower-case name -> decoded value
  std::map<std::string, std::string> raw_headers;  // lower-case name -> value as sent
  std::vector<std::string> header_lines;           // as sent, without CRLF
  std::string text;                                // the decoded text/plain part, "\n" line ends
  std::string html;                                // the decoded text/html part
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

inline std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Header block -> (name, raw value) pairs; records the physical lines too.
inline std::map<std::string, std::string> split_headers(std::string_view block,
                                                        std::vector<std::string>* lines) {
  std::map<std::string, std::string> out;
  std::string last;
  size_t start = 0;
  while (start < block.size()) {
    size_t end = block.find("\r\n", start);
    if (end == std::string_view::npos) end = block.size();
    const std::string line(block.substr(start, end - start));
    if (lines != nullptr) lines->push_back(line);
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
      out[last] += "\r\n" + line;
    } else {
      const size_t colon = line.find(':');
      last = lower(line.substr(0, colon));
      out[last] = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    }
    start = end + 2;
  }
  return out;
}

inline ParsedMail parse_mail(std::string_view raw) {
  ParsedMail mail;
  const size_t split = raw.find("\r\n\r\n");
  if (split == std::string_view::npos) {
    ADD_FAILURE() << "no blank line after the headers";
    return mail;
  }
  mail.raw_headers = split_headers(raw.substr(0, split), &mail.header_lines);
  for (const auto& [name, value] : mail.raw_headers) mail.headers[name] = decode_header(value);
  const std::string_view body = raw.substr(split + 4);
  const std::string type = mail.header("content-type");
  auto assign = [&](const std::string& part_type, std::string_view content) {
    if (part_type.starts_with("text/plain")) mail.text = decode_quoted_printable(content);
    if (part_type.starts_with("text/html")) mail.html = decode_quoted_printable(content);
  };
  if (!type.starts_with("multipart/")) {
    assign(type, body.substr(0, body.size() - (body.ends_with("\r\n") ? 2 : 0)));
    return mail;
  }
  const size_t b = type.find("boundary=\"");
  const std::string boundary = type.substr(b + 10, type.find('"', b + 10) - b - 10);
  const std::string delimiter = "--" + boundary;
  size_t pos = body.find(delimiter);
  while (pos != std::string_view::npos) {
    pos += delimiter.size();
    if (body.compare(pos, 2, "--") == 0) break;  // the close delimiter
    pos += 2;                                    // CRLF
    const size_t next = body.find("\r\n" + delimiter, pos);
    if (next == std::string_view::npos) {
      ADD_FAILURE() << "unterminated MIME part";
      break;
    }
    const std::string_view part = body.substr(pos, next - pos);
    const size_t part_split = part.find("\r\n\r\n");
    const auto part_headers = split_headers(part.substr(0, part_split), nullptr);
    EXPECT_EQ(part_headers.at("content-transfer-encoding"), "quoted-printable");
    assign(part_headers.at("content-type"), part.substr(part_split + 4));
    pos = next + 2;
  }
  return mail;
}

}  // namespace dither::mail_testing
