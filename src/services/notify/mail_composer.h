// The notification e-mail for a finished dither: subject, plain-text and HTML parts, built from
// the DITHER_UPLOADED / DITHER_FAILED message the notification service consumed.
//
//   Result<Mail> mail = compose_dither_mail(kDitherUploaded, event,
//                                           {.public_base_url = "https://dither.example.org",
//                                            .from = "Dither <noreply@example.org>",
//                                            .original_url = image_url, .filename = "cat.jpg"});
//
// Links are absolute: an http(s) URL is kept, anything else is taken as relative to the public
// base URL (so a "javascript:" link cannot be produced). Every value put into the HTML part is
// escaped; header values (the file name in the subject) lose their control characters. The
// Message-ID is stable, so a notification composed twice is recognisably the same mail:
// "<dither-<uuid>-<dither_id>-<uploaded|failed>@<host of the public base URL>>".
//
// Pure functions, thread-safe.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "mail/rfc5322.h"
#include "messaging/events.h"
#include "ports/mail.h"

namespace dither {

struct DitherMailContext {
  std::string public_base_url;  // "https://dither.example.org" (a path prefix is kept)
  std::string from;             // "Dither <noreply@example.org>"
  std::string original_url;     // the original image's URL; "" when unknown
  std::string filename;         // the original's file name; "" when unknown (the uuid is shown)
  // Signs an absolute link to a stored file (docs/SECURITY.md); none: links as they are.
  std::function<std::string(std::string_view)> sign{};
  std::string links_valid_until{};  // "2026-12-12 12:00 UTC": said in the mail when not ""
};

// `kind` is kDitherUploaded or kDitherFailed; the recipient is event.email. kInvalidArgument for
// another kind, or when event.email or context.from is not a valid address.
Result<Mail> compose_dither_mail(std::string_view kind, const DitherEvent& event,
                                 const DitherMailContext& context);

// `url` made absolute against `base`: "http(s)://..." as it is; "//host/x" with the base's
// scheme; anything else appended to the base ("/files/a.png" -> "<base>/files/a.png").
// "" stays "".
std::string absolute_url(std::string_view url, std::string_view base);

// &, <, >, " and ' as character references.
std::string html_escape(std::string_view text);

// For logs: "someone@example.org" -> "s***@example.org" (one implementation, shared with the
// mail senders).
using mail_format::mask_email;

}  // namespace dither
