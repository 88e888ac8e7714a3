#include "adapters/smtp/curl_smtp_sender.h"

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <utility>

#include "adapters/shared/curl_client.h"
#include "mail/rfc5322.h"

namespace dither {
namespace {

struct EasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
struct ListDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

struct Upload {
  std::string_view data;
  size_t offset = 0;
};

size_t read_upload(char* buffer, size_t size, size_t count, void* user) {
  auto* upload = static_cast<Upload*>(user);
  const size_t n = std::min(size * count, upload->data.size() - upload->offset);
  std::memcpy(buffer, upload->data.data() + upload->offset, n);
  upload->offset += n;
  return n;
}

}  // namespace

// Options that only fail on a bug (an option this libcurl does not know, out of memory).
class CurlSmtpSender::Setter {
 public:
  explicit Setter(CURL* handle) : handle_(handle) {}
  template <class T>
  void operator()(CURLoption option, T value) {
    if (ok_ != CURLE_OK) return;
    ok_ = curl_easy_setopt(handle_, option, value);
  }
  CURLcode result() const { return ok_; }

 private:
  CURL* handle_;
  CURLcode ok_ = CURLE_OK;
};

namespace {

size_t discard(char*, size_t size, size_t count, void*) { return size * count; }

bool is_configuration_bug(CURLcode code) {
  switch (code) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
    case CURLE_READ_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
      return true;
    default:
      return false;
  }
}

// Each SmtpSecurity with its name (SMTP_SECURITY), for parsing and printing.
constexpr std::array<std::pair<SmtpSecurity, std::string_view>, 3> kSecurityNames = {{
    {SmtpSecurity::kNone, "none"},
    {SmtpSecurity::kStartTls, "starttls"},
    {SmtpSecurity::kTls, "tls"},
}};

}  // namespace

Result<SmtpSecurity> parse_smtp_security(std::string_view text) {
  for (const auto& [security, name] : kSecurityNames) {
    if (text == name) return security;
  }
  return make_error(ErrorKind::kInvalidArgument,
                    "SMTP security must be none, starttls or tls, not '" + std::string(text) + "'");
}

std::string_view to_string(SmtpSecurity security) {
  for (const auto& [value, name] : kSecurityNames) {
    if (value == security) return name;
  }
  return "none";
}

CurlSmtpSender::CurlSmtpSender(SmtpOptions options) : options_(std::move(options)) {
  curl::global_init();
  const bool ipv6 = options_.host.find(':') != std::string::npos;
  url_ = std::string(options_.security == SmtpSecurity::kTls ? "smtps://" : "smtp://") +
         (ipv6 ? "[" + options_.host + "]" : options_.host) + ":" + std::to_string(options_.port);
}

// What every session sets: the server, TLS, login and time limits.
void CurlSmtpSender::set_session(Setter& set, char* error_buffer) const {
  set(CURLOPT_URL, url_.c_str());
  set(CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_ERRORBUFFER, error_buffer);
  set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
  set(CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  set(CURLOPT_USE_SSL,
      static_cast<long>(options_.security == SmtpSecurity::kStartTls ? CURLUSESSL_ALL
                                                                     : CURLUSESSL_NONE));
  set(CURLOPT_SSL_VERIFYPEER, options_.verify_tls ? 1L : 0L);
  set(CURLOPT_SSL_VERIFYHOST, options_.verify_tls ? 2L : 0L);
  if (!options_.ca_file.empty()) set(CURLOPT_CAINFO, options_.ca_file.c_str());
  if (!options_.user.empty()) {
    set(CURLOPT_USERNAME, options_.user.c_str());
    set(CURLOPT_PASSWORD, options_.password.c_str());
  }
}

// A session that sends NOOP after the greeting, EHLO, STARTTLS and login: what a mail needs
// before MAIL FROM, so a server that passes would take a mail.
Status CurlSmtpSender::ready() {
  std::unique_ptr<CURL, EasyDeleter> handle(curl_easy_init());
  if (!handle) return make_error(ErrorKind::kInternal, "curl_easy_init failed");
  char error_buffer[CURL_ERROR_SIZE] = {};
  Setter set(handle.get());
  set_session(set, error_buffer);
  set(CURLOPT_CUSTOMREQUEST, "NOOP");
  set(CURLOPT_WRITEFUNCTION, discard);
  if (set.result() != CURLE_OK) {
    return make_error(ErrorKind::kInternal,
                      std::string("curl_easy_setopt: ") + curl_easy_strerror(set.result()));
  }
  const CURLcode code = curl_easy_perform(handle.get());
  if (code == CURLE_OK) return {};
  const std::string detail = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(code);
  return make_error(ErrorKind::kUnavailable,
                    "smtp " + options_.host + ":" + std::to_string(options_.port) + ": " + detail);
}

Status CurlSmtpSender::send(const Mail& mail) {
  Result<std::string> message = mail_format::to_rfc5322(mail);
  if (!message) return message.error();
  // to_rfc5322 accepted both, so they parse.
  const std::string from = "<" + mail_format::parse_mailbox(mail.from)->address + ">";
  const std::string to_address = mail_format::parse_mailbox(mail.to)->address;
  const std::string to = "<" + to_address + ">";

  std::unique_ptr<CURL, EasyDeleter> handle(curl_easy_init());
  if (!handle) return make_error(ErrorKind::kInternal, "curl_easy_init failed");
  std::unique_ptr<curl_slist, ListDeleter> recipients(curl_slist_append(nullptr, to.c_str()));
  if (!recipients) return make_error(ErrorKind::kInternal, "curl_slist_append failed");

  Upload upload{.data = *message};
  char error_buffer[CURL_ERROR_SIZE] = {};
  CURL* h = handle.get();
  Setter set(h);
  set_session(set, error_buffer);
  set(CURLOPT_MAIL_FROM, from.c_str());
  set(CURLOPT_MAIL_RCPT, recipients.get());
  set(CURLOPT_UPLOAD, 1L);
  set(CURLOPT_READFUNCTION, read_upload);
  set(CURLOPT_READDATA, &upload);
  set(CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(message->size()));
  if (set.result() != CURLE_OK) {
    return make_error(ErrorKind::kInternal,
                      std::string("curl_easy_setopt: ") + curl_easy_strerror(set.result()));
  }

  const CURLcode code = curl_easy_perform(h);
  if (code == CURLE_OK) return {};
  long reply = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply);
  const std::string detail = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(code);
  const std::string what = "smtp " + options_.host + ":" + std::to_string(options_.port) +
                           ": sending to " + mail_format::mask_email(to_address) +
                           " failed: " + detail +
                           (reply != 0 ? " (reply " + std::to_string(reply) + ")" : "");
  // A refused login is a 5xx reply too, but about our configuration, not this mail.
  if (reply >= 500 && reply < 600 && code != CURLE_LOGIN_DENIED) {
    return make_error(ErrorKind::kInvalidArgument, what);
  }
  if (is_configuration_bug(code)) return make_error(ErrorKind::kInternal, what);
  return make_error(ErrorKind::kUnavailable, what);
}

}  // namespace dither
