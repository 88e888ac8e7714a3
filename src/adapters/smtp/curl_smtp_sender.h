// MailSender over SMTP with libcurl: one SMTP session per mail (EHLO, optional STARTTLS and AUTH,
// MAIL FROM, RCPT TO, DATA), the message serialised by mail_format::to_rfc5322.
//
//   CurlSmtpSender smtp({.host = "smtp.example.org", .port = 587,
//                        .security = SmtpSecurity::kStartTls, .user = "u", .password = "p"});
//   Status sent = smtp.send(mail);
//
// Errors (ports/mail.h): a 4xx reply, a refused or dropped connection, a timeout, a TLS or login
// failure -> kUnavailable (retry later; a login or certificate problem needs the operator, and
// the mail is not lost meanwhile); any other 5xx reply (unknown recipient, sender refused,
// message too big) -> kInvalidArgument; a mail that cannot be serialised -> kInvalidArgument.
// The reply code comes from CURLINFO_RESPONSE_CODE. Dot-stuffing is done by curl.
//
// Thread-safe: each send() uses its own curl handle. curl types stay in the .cc.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "ports/mail.h"

namespace dither {

enum class SmtpSecurity {
  kNone,      // plain SMTP (tests, a relay on localhost)
  kStartTls,  // smtp:// and STARTTLS required (CURLUSESSL_ALL), usually port 587
  kTls,       // smtps://, TLS from the first byte, usually port 465
};

// "none", "starttls", "tls"; kInvalidArgument otherwise.
Result<SmtpSecurity> parse_smtp_security(std::string_view text);
std::string_view to_string(SmtpSecurity security);

struct SmtpOptions {
  std::string host{};  // a name or an IP address (IPv6 without brackets)
  int port = 587;
  SmtpSecurity security = SmtpSecurity::kStartTls;
  std::string user{};      // AUTH only when set
  std::string password{};  // never logged
  std::string ca_file{};   // PEM bundle to verify the server with; "" = the system's
  bool verify_tls = true;  // false only for tests against a self-signed certificate
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds timeout{30000};  // the whole session
};

class CurlSmtpSender final : public MailSender {
 public:
  explicit CurlSmtpSender(SmtpOptions options);

  Status send(const Mail& mail) override;
  std::string_view name() const override { return "smtp"; }
  Status ready() override;

 private:
  class Setter;
  void set_session(Setter& set, char* error_buffer) const;

  SmtpOptions options_;
  std::string url_;
};

}  // namespace dither
