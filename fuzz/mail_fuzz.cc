// The e-mail address check and the mail writer (src/mail/rfc5322.h).
//
// Input: fields separated by 0xFF: an address text (for is_valid_address and parse_mailbox), then
// a Mail's from, to, subject, text, html and message_id.
//
// Invariants: a valid address is at most 254 printable ASCII characters without spaces, with a
// local part of at most 64; a parsed mailbox's address is valid and its display name has no line
// break; a written message is 7-bit ASCII with CRLF line ends only (no bare CR or LF), lines of
// at most 998 characters (76 in the quoted-printable body), exactly the headers the writer
// makes, each once (no header injection: no CR/LF inside a header value), and the MIME
// boundary only where the writer puts it.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "fuzz/fuzz_support.h"
#include "mail/rfc5322.h"

namespace {

using namespace dither;

void check_address(std::string_view text) {
  if (mail_format::is_valid_address(text)) {
    FUZZ_CHECK(text.size() <= 254);
    const size_t at = text.rfind('@');
    FUZZ_CHECK(at != std::string_view::npos && at > 0 && at <= 64);
    for (const char c : text) FUZZ_CHECK(c > 0x20 && c < 0x7F);
  }
  const Result<mail_format::Mailbox> box = mail_format::parse_mailbox(text);
  if (box) {
    FUZZ_CHECK(mail_format::is_valid_address(box->address));
    FUZZ_CHECK(box->display_name.find_first_of("\r\n") == std::string::npos);
  }
  const std::string masked = mail_format::mask_email(text);
  for (const char c : masked) FUZZ_CHECK(c >= 0x20 && c < 0x7F);
}

void check_message(const std::string& out, const std::string& boundary, bool multipart) {
  for (size_t i = 0; i < out.size(); ++i) {
    const auto u = static_cast<unsigned char>(out[i]);
    FUZZ_CHECK(u != 0 && u < 0x80);
    if (out[i] == '\n') FUZZ_CHECK(i > 0 && out[i - 1] == '\r');
    if (out[i] == '\r') FUZZ_CHECK(i + 1 < out.size() && out[i + 1] == '\n');
  }
  FUZZ_CHECK(out.ends_with("\r\n"));
  const size_t header_end = out.find("\r\n\r\n");
  FUZZ_CHECK(header_end != std::string::npos);

  // Headers: each line a new "Name: value" or a continuation (starts with a space or a tab).
  static const std::set<std::string, std::less<>> kSingle = {
      "Date",         "From",           "To",          "Subject", "Message-ID",
      "MIME-Version", "Auto-Submitted", "Content-Type"};
  std::set<std::string, std::less<>> seen;
  std::string_view headers(out.data(), header_end + 2);
  bool first = true;
  while (!headers.empty()) {
    const size_t eol = headers.find("\r\n");
    const std::string_view line = headers.substr(0, eol);
    headers.remove_prefix(eol + 2);
    FUZZ_CHECK(line.size() <= 998);
    FUZZ_CHECK(!line.empty());
    if (line[0] == ' ' || line[0] == '\t') {
      FUZZ_CHECK(!first);
      continue;
    }
    first = false;
    const size_t colon = line.find(": ");
    FUZZ_CHECK(colon != std::string_view::npos);
    const std::string name(line.substr(0, colon));
    FUZZ_CHECK(kSingle.contains(name) || (!multipart && name == "Content-Transfer-Encoding"));
    FUZZ_CHECK(seen.insert(name).second);
  }
  FUZZ_CHECK(seen.size() == (multipart ? 8u : 9u));

  // Body: quoted-printable lines of at most 76 characters, and the boundary's delimiter lines
  // exactly where the writer puts them (two parts and the close).
  std::string_view body(out);
  body.remove_prefix(header_end + 4);
  size_t delimiters = 0;
  while (!body.empty()) {
    const size_t eol = body.find("\r\n");
    const std::string_view line = body.substr(0, eol);
    body.remove_prefix(eol + 2);
    if (multipart && line.starts_with("--" + boundary)) {
      ++delimiters;
      continue;
    }
    FUZZ_CHECK(line.size() <= 76);
  }
  FUZZ_CHECK(delimiters == (multipart ? 3u : 0u));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest = fuzz::as_text(data, size);
  check_address(fuzz::next_field(rest, fuzz::kFieldSeparator));

  Mail mail;
  mail.from = std::string(fuzz::next_field(rest, fuzz::kFieldSeparator));
  mail.to = std::string(fuzz::next_field(rest, fuzz::kFieldSeparator));
  mail.subject = std::string(fuzz::next_field(rest, fuzz::kFieldSeparator));
  mail.text = std::string(fuzz::next_field(rest, fuzz::kFieldSeparator));
  mail.html = std::string(fuzz::next_field(rest, fuzz::kFieldSeparator));
  mail.message_id = std::string(fuzz::next_field(rest, fuzz::kFieldSeparator));
  check_address(mail.to);

  const std::string boundary = "=_dither_0123456789abcdef0123456789abcdef";
  const mail_format::FormatOptions options{
      .date = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000)),
      .boundary = boundary};
  const Result<std::string> message = mail_format::to_rfc5322(mail, options);
  if (!message) {
    FUZZ_CHECK(message.error().kind == ErrorKind::kInvalidArgument);
    return 0;
  }
  check_message(*message, boundary, !mail.html.empty());

  // The pieces on their own.
  const std::string qp = mail_format::quoted_printable(mail.text);
  for (const char c : qp) FUZZ_CHECK(static_cast<unsigned char>(c) < 0x80);
  return 0;
}
