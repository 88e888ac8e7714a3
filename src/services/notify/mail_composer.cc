#include "services/notify/mail_composer.h"

#include <utility>
#include <vector>

#include "ports/message.h"

namespace dither {
namespace {

constexpr size_t kMaxNameCharacters = 60;

bool starts_with_ignoring_case(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

// The host of "scheme://[user@]host[:port][/...]", lower-cased; "localhost" when there is none
// usable in a Message-ID.
std::string host_of(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return "localhost";
  std::string_view rest = url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) rest.remove_prefix(at + 1);
  std::string_view host;
  if (!rest.empty() && rest.front() == '[') {
    host = rest.substr(0, rest.find(']') + 1);
  } else {
    host = rest.substr(0, rest.find(':'));
  }
  std::string out;
  for (char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
                    c == '[' || c == ']' || c == ':';
    if (c >= 'A' && c <= 'Z') {
      out += static_cast<char>(c - 'A' + 'a');
    } else if (ok) {
      out += c;
    } else {
      return "localhost";
    }
  }
  const bool literal = out.size() > 2 && out.front() == '[' && out.back() == ']';
  if (out.empty() || out.front() == '.' || out.back() == '.' ||
      out.find("..") != std::string::npos ||
      (!literal && out.find_first_of("[]:") != std::string::npos)) {
    return "localhost";
  }
  return out;
}

// The file name for the subject and the text: control characters become spaces, at most
// kMaxNameCharacters characters ("..." after), the uuid when there is none.
std::string display_name(std::string_view filename, const ImageId& uuid) {
  std::string out;
  size_t characters = 0;
  for (size_t i = 0; i < filename.size(); ++i) {
    const auto u = static_cast<unsigned char>(filename[i]);
    if ((u & 0xC0) != 0x80) {  // the first byte of a UTF-8 character
      if (characters == kMaxNameCharacters) {
        out += "...";
        break;
      }
      ++characters;
    }
    out += (u < 0x20 || u == 0x7F) ? ' ' : filename[i];
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  while (!out.empty() && out.front() == ' ') out.erase(0, 1);
  return out.empty() ? uuid.value : out;
}

std::vector<std::pair<std::string, std::string>> settings(const DitherEvent& e) {
  std::vector<std::pair<std::string, std::string>> rows;
  if (!e.algorithm.empty()) rows.emplace_back("Algorithm", e.algorithm);
  if (!e.palette.empty()) rows.emplace_back("Palette", e.palette);
  if (e.channels > 0) rows.emplace_back("Channels", std::to_string(e.channels));
  if (!e.format.empty()) rows.emplace_back("Format", e.format);
  return rows;
}

struct Content {
  bool failed = false;
  std::string name;
  std::string dither_url;
  std::string original_url;
  std::string error;
  std::vector<std::pair<std::string, std::string>> settings;
  std::string reference;  // "image <uuid>, dither 3"
  std::string valid_until;
};

constexpr std::string_view kFooter =
    "You receive this e-mail because this address was given when the image was uploaded.";

std::string text_part(const Content& c) {
  std::string t = "Hello,\n\n";
  if (c.failed) {
    t += "we could not dither your image \"" + c.name + "\".\n\nWhat went wrong: " +
         (c.error.empty() ? std::string("no reason was given") : c.error) + "\n\n";
  } else {
    t += "your dithered image \"" + c.name + "\" is ready.\n\n";
  }
  if (!c.dither_url.empty()) t += "Dithered image: " + c.dither_url + "\n";
  if (!c.original_url.empty()) t += "Original:       " + c.original_url + "\n";
  if (!c.valid_until.empty() && (!c.dither_url.empty() || !c.original_url.empty())) {
    t += "(The links work until " + c.valid_until + ".)\n";
  }
  if (!c.dither_url.empty() || !c.original_url.empty()) t += "\n";
  if (!c.settings.empty()) {
    t += "Settings used:\n";
    for (const auto& [label, value] : c.settings) {
      t += "  " + label + ":" + std::string(10 - label.size(), ' ') + value + "\n";
    }
    t += "\n";
  }
  t += "(" + c.reference + ")\n\n";
  t += std::string(kFooter) + "\n\n-- \nDither\n";
  return t;
}

std::string link(const std::string& url, std::string_view label) {
  const std::string href = html_escape(url);
  return "<a href=\"" + href + "\" style=\"color:#1a5fb4\">" + std::string(label) + "</a>";
}

std::string html_part(const Content& c, std::string_view subject) {
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>" +
                  html_escape(subject) +
                  "</title></head>\n"
                  "<body style=\"margin:0;padding:24px;font-family:Helvetica,Arial,sans-serif;"
                  "font-size:15px;line-height:1.5;color:#222\">\n"
                  "<p>Hello,</p>\n";
  const std::string name = "<strong>" + html_escape(c.name) + "</strong>";
  if (c.failed) {
    h += "<p>we could not dither your image " + name + ".</p>\n<p>What went wrong: " +
         html_escape(c.error.empty() ? std::string("no reason was given") : c.error) + "</p>\n";
  } else {
    h += "<p>your dithered image " + name + " is ready.</p>\n";
  }
  if (!c.dither_url.empty() || !c.original_url.empty()) {
    h += "<p>";
    if (!c.dither_url.empty()) h += link(c.dither_url, "View the dithered image");
    if (!c.dither_url.empty() && !c.original_url.empty()) h += "<br>\n";
    if (!c.original_url.empty()) h += link(c.original_url, "View the original");
    h += "</p>\n";
    if (!c.valid_until.empty()) {
      h += "<p style=\"color:#555\">The links work until " + html_escape(c.valid_until) + ".</p>\n";
    }
  }
  if (!c.settings.empty()) {
    h += "<table style=\"border-collapse:collapse;margin:8px 0 16px\">\n"
         "<caption style=\"text-align:left;font-weight:bold\">Settings used</caption>\n";
    for (const auto& [label, value] : c.settings) {
      h += "<tr><td style=\"padding:2px 16px 2px 0;color:#555\">" + html_escape(label) +
           "</td><td style=\"padding:2px 0\">" + html_escape(value) + "</td></tr>\n";
    }
    h += "</table>\n";
  }
  h += "<p style=\"color:#777;font-size:12px\">" + html_escape(c.reference) + "<br>\n" +
       html_escape(kFooter) + "</p>\n</body>\n</html>\n";
  return h;
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string absolute_url(std::string_view url, std::string_view base) {
  if (url.empty()) return {};
  if (starts_with_ignoring_case(url, "http://") || starts_with_ignoring_case(url, "https://")) {
    return std::string(url);
  }
  if (base.empty()) return std::string(url);
  if (url.starts_with("//")) {
    return (starts_with_ignoring_case(base, "https:") ? "https:" : "http:") + std::string(url);
  }
  while (!base.empty() && base.back() == '/') base.remove_suffix(1);
  while (!url.empty() && url.front() == '/') url.remove_prefix(1);
  return std::string(base) + "/" + std::string(url);
}

Result<Mail> compose_dither_mail(std::string_view kind, const DitherEvent& event,
                                 const DitherMailContext& context) {
  if (kind != kDitherUploaded && kind != kDitherFailed) {
    return make_error(ErrorKind::kInvalidArgument,
                      "no notification for a " + std::string(kind) + " message");
  }
  if (!mail_format::is_valid_address(event.email)) {
    return make_error(ErrorKind::kInvalidArgument,
                      "'" + mask_email(event.email) + "' is not a valid e-mail address");
  }
  if (Result<mail_format::Mailbox> from = mail_format::parse_mailbox(context.from); !from) {
    return make_error(ErrorKind::kInvalidArgument, "sender: " + from.error().message);
  }
  Content c;
  c.failed = kind == kDitherFailed;
  c.name = display_name(context.filename, event.uuid);
  c.dither_url = c.failed ? "" : absolute_url(event.url_dither, context.public_base_url);
  c.original_url = absolute_url(context.original_url, context.public_base_url);
  if (context.sign) {
    c.dither_url = context.sign(c.dither_url);
    c.original_url = context.sign(c.original_url);
    c.valid_until = context.links_valid_until;
  }
  c.error = event.error;
  c.settings = settings(event);
  c.reference = "Image " + event.uuid.value +
                (event.dither_id != 0 ? ", dither " + std::to_string(event.dither_id) : "");

  Mail mail;
  mail.from = context.from;
  mail.to = event.email;
  mail.subject =
      (c.failed ? "Your image could not be dithered (" : "Your dithered image is ready (") +
      c.name + ")";
  mail.text = text_part(c);
  mail.html = html_part(c, mail.subject);
  mail.message_id = "<dither-" + event.uuid.value + "-" + std::to_string(event.dither_id) + "-" +
                    (c.failed ? "failed" : "uploaded") + "@" + host_of(context.public_base_url) +
                    ">";
  return mail;
}

}  // namespace dither
