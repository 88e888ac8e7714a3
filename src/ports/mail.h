// Port: send one e-mail (the notification service, issue 5).
//
// Adapters: SMTP over libcurl (SMTP_HOST set) and, the embedded default, a folder of .eml files
// (each message written as RFC 5322 text and logged). Both send exactly what Mail says; building
// the message (subject, plain-text and HTML parts, links) is the notification service's job.
//
// Errors: kUnavailable when trying again later may work (server down, timeout, a 4xx SMTP
// reply); kInvalidArgument when it never will (a 5xx reply such as an unknown recipient, or a
// malformed address). Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace dither {

struct Mail {
  std::string from;        // an address, optionally with a display name: "Dither <a@b.c>"
  std::string to;          // one address
  std::string subject;     // UTF-8
  std::string text;        // the plain-text part, UTF-8
  std::string html;        // the HTML part, UTF-8
  std::string message_id;  // "<...@...>": the same notification always gets the same id
};

class MailSender {
 public:
  virtual ~MailSender() = default;
  virtual Status send(const Mail& mail) = 0;
  // Removes whatever this sender keeps of the mails about image `uuid` (their Message-IDs start
  // with "<dither-<uuid>-"): the image was deleted, its address must go (docs/SECURITY.md). A
  // sender that keeps nothing (SMTP) does nothing. Returns how many it removed.
  virtual Result<int> erase_image(std::string_view uuid) {
    (void)uuid;
    return 0;
  }
  // "smtp", "mailbox", for logs and /health.
  virtual std::string_view name() const = 0;
  // Whether mail can be handed over now (GET /health/ready): the SMTP server answers and
  // accepts our login. Called at most once a second.
  virtual Status ready() { return {}; }
};

}  // namespace dither
