// A Mail as Internet Message Format text (RFC 5322 + MIME), shared by both MailSenders: the SMTP
// sender sends it, the mailbox sender stores it as an .eml file. Plus the address helpers both
// ends of the notification flow need (parsing, validation, masking for logs).
//
//   Result<std::string> text = mail_format::to_rfc5322(mail);  // Date now, random boundary
//   if (!text) return text.error();                           // kInvalidArgument
//
// The message: Date, From, To, Subject (RFC 2047 encoded-words when not plain ASCII), Message-ID,
// MIME-Version, Auto-Submitted, then multipart/alternative with a text/plain and a text/html part
// (text/plain alone when `html` is empty), both UTF-8 and quoted-printable, lines of at most 76
// characters, CRLF line ends. No dot-stuffing: that is the SMTP transport's job (curl does it).
//
// Header injection is impossible: a header value with CR, LF or another control character, an
// address that is not exactly one plain `local@domain`, or text that is not UTF-8 is refused
// with kInvalidArgument. Pure functions, thread-safe.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/result.h"
#include "ports/mail.h"

namespace dither::mail_format {

struct Mailbox {
  std::string display_name;  // "" when none, UTF-8
  std::string address;       // "local@domain"
};

// "a@b.c", "<a@b.c>", "Name <a@b.c>" or "\"Name, Jr.\" <a@b.c>"; kInvalidArgument otherwise.
Result<Mailbox> parse_mailbox(std::string_view text);

// One ASCII address: a dot-atom local part (at most 64 bytes) "@" a host name with at least one
// dot or an address literal "[...]"; at most 254 bytes. No quoted local parts, no SMTPUTF8.
bool is_valid_address(std::string_view address);

// For logs: "someone@example.org" -> "s***@example.org"; "***" when there is no '@'.
std::string mask_email(std::string_view address);

// An unstructured header value (after "Name: ", whose length is `name_length` including ": "):
// printable ASCII folded at spaces to lines of at most 78 characters, or else UTF-8 as RFC 2047
// "=?UTF-8?B?...?=" encoded-words of at most 75 characters on lines of at most 76.
// `text` must already be checked (no control characters, valid UTF-8).
std::string encode_header_text(std::string_view text, size_t name_length);

// RFC 2045 quoted-printable of UTF-8 text: line breaks (LF, CRLF or CR) become CRLF, lines are at
// most 76 characters (soft breaks "=" CRLF), '=', control and non-ASCII bytes become =XX, as does
// a space or tab at the end of a line.
std::string quoted_printable(std::string_view text);

// "Mon, 30 Nov 2026 12:00:00 +0000" (UTC).
std::string format_date(std::chrono::system_clock::time_point time);

// "=_dither_" + 32 random hex digits. "=_" never occurs in quoted-printable text, so the boundary
// cannot collide with a part's content.
std::string random_boundary();

// "<32 random hex digits@domain>", for a mail that has no Message-ID.
std::string random_message_id(std::string_view domain);

struct FormatOptions {
  std::chrono::system_clock::time_point date;
  std::string boundary;  // characters allowed by RFC 2046, 1 to 70 of them
};

// kInvalidArgument for a header value with a control character, a malformed From or To, a
// Message-ID that is not "<left@right>", or text that is not UTF-8. An empty message_id gets a
// random one on the From address's domain.
Result<std::string> to_rfc5322(const Mail& mail, const FormatOptions& options);
Result<std::string> to_rfc5322(const Mail& mail);

}  // namespace dither::mail_format
