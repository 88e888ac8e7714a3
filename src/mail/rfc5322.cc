#include "mail/rfc5322.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <random>

namespace dither::mail_format {
namespace {

constexpr size_t kMaxEncodedWord = 75;      // RFC 2047 section 2
constexpr size_t kMaxEncodedLine = 76;      // RFC 2047 section 2, RFC 2045 section 6.7
constexpr size_t kMaxHeaderLine = 78;       // RFC 5322 section 2.1.1 (SHOULD)
constexpr size_t kMaxUnfoldableWord = 900;  // below the hard limit of 998 with the name
constexpr std::string_view kCrlf = "\r\n";
constexpr char kHex[] = "0123456789ABCDEF";

Error invalid(std::string message) {
  return make_error(ErrorKind::kInvalidArgument, std::move(message));
}

bool is_alpha_digit(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// RFC 5322 atext.
bool is_atext(char c) {
  return is_alpha_digit(c) ||
         std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

bool is_dot_atom(std::string_view text) {
  if (text.empty() || text.front() == '.' || text.back() == '.') return false;
  if (text.find("..") != std::string_view::npos) return false;
  for (char c : text) {
    if (c != '.' && !is_atext(c)) return false;
  }
  return true;
}

bool is_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253 || host.find('.') == std::string_view::npos) return false;
  size_t start = 0;
  while (start <= host.size()) {
    size_t end = host.find('.', start);
    if (end == std::string_view::npos) end = host.size();
    const std::string_view label = host.substr(start, end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      if (!is_alpha_digit(c) && c != '-') return false;
    }
    start = end + 1;
  }
  return true;
}

bool is_address_literal(std::string_view host) {
  if (host.size() < 3 || host.front() != '[' || host.back() != ']') return false;
  for (char c : host.substr(1, host.size() - 2)) {
    if (!is_alpha_digit(c) && c != '.' && c != ':') return false;
  }
  return true;
}

// A control character (C0 other than tab, or DEL): never allowed in a header value.
bool has_control(std::string_view text) {
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7F) return true;
  }
  return false;
}

// The length of the UTF-8 sequence starting at text[i], or 0 when it is malformed (overlong
// forms, surrogates and code points above U+10FFFF included).
size_t utf8_sequence(std::string_view text, size_t i) {
  const auto b0 = static_cast<unsigned char>(text[i]);
  if (b0 < 0x80) return 1;
  size_t length = 0;
  uint32_t code = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
    code = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    code = b0 & 0x0F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    code = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    const auto b = static_cast<unsigned char>(text[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    code = (code << 6) | (b & 0x3F);
  }
  if ((length == 3 && (code < 0x800 || (code >= 0xD800 && code <= 0xDFFF))) ||
      (length == 4 && (code < 0x10000 || code > 0x10FFFF))) {
    return 0;
  }
  return length;
}

bool is_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8_sequence(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

bool is_printable_ascii(std::string_view text) {
  for (char c : text) {
    if (c < 0x20 || c > 0x7E) return false;
  }
  return true;
}

std::string base64(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t chunk = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) chunk |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) chunk |= static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(chunk >> 18) & 0x3F];
    out += kAlphabet[(chunk >> 12) & 0x3F];
    out += i + 1 < bytes.size() ? kAlphabet[(chunk >> 6) & 0x3F] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[chunk & 0x3F] : '=';
  }
  return out;
}

// RFC 2047 encoded-words, split between UTF-8 characters; the first starts `first_column`
// characters into its line, the others on continuation lines (" " + word).
std::string encoded_words(std::string_view text, size_t first_column) {
  constexpr size_t kOverhead = 12;  // "=?UTF-8?B?" and "?="
  std::string out;
  size_t column = first_column;
  size_t i = 0;
  do {
    const size_t room =
        std::min(kMaxEncodedWord, kMaxEncodedLine - std::min(column, kMaxEncodedLine));
    const size_t max_bytes = room > kOverhead + 4 ? (room - kOverhead) / 4 * 3 : 3;
    size_t end = i;
    while (end < text.size()) {
      const size_t n = std::max<size_t>(utf8_sequence(text, end), 1);
      if (end + n - i > max_bytes) break;
      end += n;
    }
    if (end == i && i < text.size()) end = i + std::max<size_t>(utf8_sequence(text, i), 1);
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + base64(text.substr(i, end - i)) + "?=";
    i = end;
    column = 1;
  } while (i < text.size());
  return out;
}

// Printable ASCII folded before a space whenever a line would pass kMaxHeaderLine.
std::string folded(std::string_view text, size_t first_column) {
  std::string out;
  size_t line_start = 0;  // index in `out`
  size_t column_offset = first_column;
  size_t last_space = std::string::npos;
  for (char c : text) {
    if (c == ' ' && out.size() > line_start) last_space = out.size();
    out += c;
    if (out.size() - line_start + column_offset > kMaxHeaderLine &&
        last_space != std::string::npos) {
      out.insert(last_space, kCrlf);
      line_start = last_space + kCrlf.size();
      column_offset = 0;
      last_space = std::string::npos;
    }
  }
  return out;
}

bool needs_encoding(std::string_view text) {
  if (!is_printable_ascii(text) || text.find("=?") != std::string_view::npos) return true;
  size_t word = 0;
  for (char c : text) {
    word = c == ' ' ? 0 : word + 1;
    if (word > kMaxUnfoldableWord) return true;
  }
  return false;
}

// "Name <a@b.c>" with the display name as atoms or a quoted string, folded at spaces like an
// unstructured value, or else as encoded-words (also when a word is too long to fold).
std::string format_mailbox(const Mailbox& box, size_t name_length) {
  const std::string_view name = box.display_name;
  if (name.empty()) return box.address;
  std::string phrase;
  if (is_printable_ascii(name) && name.find("=?") == std::string_view::npos) {
    if (std::all_of(name.begin(), name.end(), [](char c) { return c == ' ' || is_atext(c); })) {
      phrase = std::string(name);
    } else {
      phrase = "\"";
      for (char c : name) {
        if (c == '"' || c == '\\') phrase += '\\';
        phrase += c;
      }
      phrase += '"';
    }
  }
  phrase = phrase.empty() || needs_encoding(phrase) ? encoded_words(name, name_length)
                                                    : folded(phrase, name_length);
  return phrase + " <" + box.address + ">";
}

Status check_header(std::string_view field, std::string_view value) {
  if (has_control(value)) {
    return invalid(std::string(field) + " contains a line break or another control character");
  }
  if (!is_utf8(value)) return invalid(std::string(field) + " is not UTF-8");
  return {};
}

bool is_message_id(std::string_view id) {
  if (id.size() < 5 || id.size() > 250 || id.front() != '<' || id.back() != '>') return false;
  const std::string_view inner = id.substr(1, id.size() - 2);
  const size_t at = inner.rfind('@');
  if (at == std::string_view::npos) return false;
  const std::string_view right = inner.substr(at + 1);
  return is_dot_atom(inner.substr(0, at)) && (is_dot_atom(right) || is_address_literal(right));
}

std::string random_hex(size_t digits) {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  std::string out;
  out.reserve(digits);
  while (out.size() < digits) {
    uint64_t bits = engine();
    for (int k = 0; k < 16 && out.size() < digits; ++k, bits >>= 4)
      out += "0123456789abcdef"[bits & 0xF];
  }
  return out;
}

bool is_boundary(std::string_view b) {
  if (b.empty() || b.size() > 70) return false;
  for (char c : b) {
    if (!is_alpha_digit(c) && std::string_view("'()+_,-./:=?").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

void append_part(std::string& out, std::string_view boundary, std::string_view type,
                 std::string_view body) {
  out += "--";
  out += boundary;
  out += kCrlf;
  out += "Content-Type: ";
  out += type;
  out += "; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n";
  out += quoted_printable(body);
  out += kCrlf;
}

}  // namespace

Result<Mailbox> parse_mailbox(std::string_view text) {
  if (has_control(text)) return invalid("address contains a line break or a control character");
  if (!is_utf8(text)) return invalid("address is not UTF-8");
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  };
  text = trim(text);
  Mailbox box;
  if (!text.empty() && text.back() == '>') {
    const size_t open = text.rfind('<');
    if (open == std::string_view::npos) return invalid("malformed address");
    box.address = std::string(text.substr(open + 1, text.size() - open - 2));
    std::string_view name = trim(text.substr(0, open));
    if (name.size() >= 2 && name.front() == '"' && name.back() == '"') {
      name = name.substr(1, name.size() - 2);
      for (size_t i = 0; i < name.size(); ++i) {
        if (name[i] == '\\' && i + 1 < name.size()) {
          ++i;
        } else if (name[i] == '"') {
          return invalid("malformed display name");
        }
        box.display_name += name[i];
      }
    } else {
      if (name.find_first_of("\"<>@,;:\\") != std::string_view::npos) {
        return invalid("malformed display name");
      }
      box.display_name = std::string(name);
    }
  } else {
    box.address = std::string(text);
  }
  if (!is_valid_address(box.address)) {
    return invalid("'" + mask_email(box.address) + "' is not a valid e-mail address");
  }
  return box;
}

bool is_valid_address(std::string_view address) {
  if (address.size() > 254) return false;
  const size_t at = address.rfind('@');
  if (at == std::string_view::npos || at == 0 || at > 64) return false;
  const std::string_view domain = address.substr(at + 1);
  return is_dot_atom(address.substr(0, at)) && (is_host_name(domain) || is_address_literal(domain));
}

std::string mask_email(std::string_view address) {
  const size_t at = address.rfind('@');
  if (at == std::string_view::npos || at == 0) return "***";
  const std::string_view domain = address.substr(at + 1);
  // The first character only, and never a control character in a log line.
  const char first = address.front();
  std::string out;
  if (first >= 0x21 && first <= 0x7E) out += first;
  out += "***@";
  for (char c : domain) out += (c >= 0x20 && c <= 0x7E) ? c : '?';
  return out;
}

std::string encode_header_text(std::string_view text, size_t name_length) {
  if (needs_encoding(text)) return encoded_words(text, name_length);
  return folded(text, name_length);
}

std::string quoted_printable(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  size_t column = 0;
  auto emit = [&](std::string_view token) {
    if (column + token.size() > kMaxEncodedLine - 1) {  // room for the soft break's '='
      out += "=\r\n";
      column = 0;
    }
    out += token;
    column += token.size();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      out += kCrlf;
      column = 0;
      continue;
    }
    const auto u = static_cast<unsigned char>(c);
    const bool line_end = i + 1 == text.size() || text[i + 1] == '\r' || text[i + 1] == '\n';
    const bool literal =
        (u >= 0x21 && u <= 0x7E && c != '=') || ((c == ' ' || c == '\t') && !line_end);
    if (literal) {
      emit(std::string_view(&c, 1));
    } else {
      const char token[3] = {'=', kHex[u >> 4], kHex[u & 0xF]};
      emit(std::string_view(token, 3));
    }
  }
  return out;
}

std::string format_date(std::chrono::system_clock::time_point time) {
  const std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  gmtime_r(&t, &tm);
  static constexpr std::array<std::string_view, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                            "Thu", "Fri", "Sat"};
  static constexpr std::array<std::string_view, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buffer[128];
  std::snprintf(buffer, sizeof buffer, "%s, %02d %s %04d %02d:%02d:%02d +0000",
                kDays[static_cast<size_t>(tm.tm_wday)].data(), tm.tm_mday,
                kMonths[static_cast<size_t>(tm.tm_mon)].data(), tm.tm_year + 1900, tm.tm_hour,
                tm.tm_min, tm.tm_sec);
  return buffer;
}

std::string random_boundary() { return "=_dither_" + random_hex(32); }

std::string random_message_id(std::string_view domain) {
  return "<" + random_hex(32) + "@" + std::string(domain) + ">";
}

Result<std::string> to_rfc5322(const Mail& mail, const FormatOptions& options) {
  for (const auto& [field, value] :
       {std::pair<std::string_view, std::string_view>{"From", mail.from},
        {"To", mail.to},
        {"Subject", mail.subject},
        {"Message-ID", mail.message_id}}) {
    if (Status ok = check_header(field, value); !ok) return ok.error();
  }
  if (!is_utf8(mail.text)) return invalid("the text part is not UTF-8");
  if (!is_utf8(mail.html)) return invalid("the HTML part is not UTF-8");
  if (!is_boundary(options.boundary)) return invalid("malformed MIME boundary");
  Result<Mailbox> from = parse_mailbox(mail.from);
  if (!from) return make_error(ErrorKind::kInvalidArgument, "From: " + from.error().message);
  Result<Mailbox> to = parse_mailbox(mail.to);
  if (!to) return make_error(ErrorKind::kInvalidArgument, "To: " + to.error().message);
  std::string message_id = mail.message_id;
  if (message_id.empty()) {
    message_id = random_message_id(from->address.substr(from->address.rfind('@') + 1));
  } else if (!is_message_id(message_id)) {
    return invalid("Message-ID must look like <left@right>");
  }

  std::string out;
  out.reserve(mail.text.size() + mail.html.size() + 1024);
  auto header = [&](std::string_view name, std::string_view value) {
    out += name;
    out += ": ";
    out += value;
    out += kCrlf;
  };
  header("Date", format_date(options.date));
  header("From", format_mailbox(*from, 6));
  header("To", format_mailbox(*to, 4));
  header("Subject", encode_header_text(mail.subject, 9));
  header("Message-ID", message_id);
  header("MIME-Version", "1.0");
  header("Auto-Submitted", "auto-generated");  // RFC 3834: no vacation replies
  if (mail.html.empty()) {
    header("Content-Type", "text/plain; charset=UTF-8");
    header("Content-Transfer-Encoding", "quoted-printable");
    out += kCrlf;
    out += quoted_printable(mail.text);
    out += kCrlf;
    return out;
  }
  header("Content-Type", "multipart/alternative; boundary=\"" + options.boundary + "\"");
  out += kCrlf;
  append_part(out, options.boundary, "text/plain", mail.text);
  append_part(out, options.boundary, "text/html", mail.html);
  out += "--";
  out += options.boundary;
  out += "--";
  out += kCrlf;
  return out;
}

Result<std::string> to_rfc5322(const Mail& mail) {
  return to_rfc5322(
      mail, FormatOptions{.date = std::chrono::system_clock::now(), .boundary = random_boundary()});
}

}  // namespace dither::mail_format
