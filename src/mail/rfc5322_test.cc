// mail_format: the RFC 5322 text both MailSenders produce, read back by an independent parser.
#include "mail/rfc5322.h"

#include <gtest/gtest.h>

#include <chrono>
#include <set>

#include "mail/testing/parsed_mail.h"

namespace dither::mail_format {
namespace {

using mail_testing::decode_header;
using mail_testing::decode_quoted_printable;
using mail_testing::parse_mail;

Mail sample() {
  return Mail{.from = "Dither <noreply@example.org>",
              .to = "someone@example.org",
              .subject = "Your dithered image is ready (cat.jpg)",
              .text = "Hello,\n\nyour image is ready.\n",
              .html = "<p>Hello,</p>\n<p>your image is ready.</p>\n",
              .message_id = "<dither-1-2-uploaded@example.org>"};
}

FormatOptions fixed() {
  // 2026-11-30 12:34:56 UTC, a Monday.
  return FormatOptions{
      .date = std::chrono::system_clock::time_point(std::chrono::seconds(1796042096)),
      .boundary = "=_dither_test"};
}

std::string format(const Mail& mail) {
  Result<std::string> text = to_rfc5322(mail, fixed());
  EXPECT_TRUE(text.ok()) << (text ? "" : text.error().message);
  return text ? *text : "";
}

TEST(Rfc5322, HeadersInOrderWithCrlfAndAMultipartBody) {
  const std::string text = format(sample());
  const std::string expected_head =
      "Date: Mon, 30 Nov 2026 12:34:56 +0000\r\n"
      "From: Dither <noreply@example.org>\r\n"
      "To: someone@example.org\r\n"
      "Subject: Your dithered image is ready (cat.jpg)\r\n"
      "Message-ID: <dither-1-2-uploaded@example.org>\r\n"
      "MIME-Version: 1.0\r\n"
      "Auto-Submitted: auto-generated\r\n"
      "Content-Type: multipart/alternative; boundary=\"=_dither_test\"\r\n"
      "\r\n"
      "--=_dither_test\r\n"
      "Content-Type: text/plain; charset=UTF-8\r\n"
      "Content-Transfer-Encoding: quoted-printable\r\n"
      "\r\n"
      "Hello,\r\n\r\nyour image is ready.\r\n\r\n"
      "--=_dither_test\r\n"
      "Content-Type: text/html; charset=UTF-8\r\n";
  EXPECT_EQ(text.substr(0, expected_head.size()), expected_head);
  EXPECT_TRUE(text.ends_with("\r\n--=_dither_test--\r\n"));
  // Every line ends with CRLF: no bare LF or CR anywhere.
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') {
      ASSERT_TRUE(i > 0 && text[i - 1] == '\r') << "bare LF at " << i;
    }
    if (text[i] == '\r') {
      ASSERT_TRUE(i + 1 < text.size() && text[i + 1] == '\n') << "bare CR at " << i;
    }
  }
  const auto parsed = parse_mail(text);
  EXPECT_EQ(parsed.text, sample().text);
  EXPECT_EQ(parsed.html, sample().html);
}

TEST(Rfc5322, TextOnlyWhenThereIsNoHtml) {
  Mail mail = sample();
  mail.html.clear();
  const std::string text = format(mail);
  EXPECT_NE(text.find("\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                      "Content-Transfer-Encoding: quoted-printable\r\n\r\nHello,"),
            std::string::npos);
  EXPECT_EQ(text.find("multipart"), std::string::npos);
  EXPECT_EQ(parse_mail(text).text, mail.text);
}

TEST(Rfc5322, RandomBoundariesDifferAndNeverOccurInQuotedPrintable) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string b = random_boundary();
    EXPECT_TRUE(b.starts_with("=_dither_")) << b;
    EXPECT_EQ(b.size(), 9u + 32u);
    seen.insert(b);
  }
  EXPECT_EQ(seen.size(), 100u);
  // "=_" is not a valid quoted-printable escape, so no encoded text contains it.
  EXPECT_EQ(quoted_printable("=_dither_ --=_dither_x =_").find("=_"), std::string::npos);
  Result<std::string> a = to_rfc5322(sample());
  Result<std::string> b = to_rfc5322(sample());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);  // different boundaries
  EXPECT_EQ(parse_mail(*a).text, sample().text);
}

TEST(Rfc5322, NonAsciiSubjectIsEncodedWordsOfAtMost75CharactersOnShortLines) {
  Mail mail = sample();
  mail.subject =
      "Ihr gerastertes Bild ist fertig: Grüße aus Köln, 東京 und Zürich — "
      "a long subject that needs several encoded words 🎨🎨🎨";
  const auto parsed = parse_mail(format(mail));
  EXPECT_EQ(parsed.header("subject"), mail.subject);
  const std::string raw = parsed.raw_headers.at("subject");
  EXPECT_TRUE(raw.starts_with("=?UTF-8?B?")) << raw;
  EXPECT_NE(raw.find("\r\n "), std::string::npos) << "folded into several words";
  for (const std::string& line : parsed.header_lines) EXPECT_LE(line.size(), 76u) << line;
  // Each encoded word holds whole UTF-8 characters (decoding word by word gives valid text).
  size_t start = 0;
  while ((start = raw.find("=?UTF-8?B?", start)) != std::string::npos) {
    const size_t end = raw.find("?=", start + 10) + 2;
    EXPECT_LE(end - start, 75u);
    const std::string word = decode_header(raw.substr(start, end - start));
    EXPECT_EQ(mail.subject.find(word) != std::string::npos, true) << "word splits a character";
    start = end;
  }
}

TEST(Rfc5322, AsciiSubjectIsFoldedAtSpacesAndKeptReadable) {
  Mail mail = sample();
  mail.subject = "A subject " + std::string(30, 'x') + " that is long enough to need folding " +
                 "once or twice before it ends, with  two spaces";
  const auto parsed = parse_mail(format(mail));
  EXPECT_EQ(parsed.header("subject"), mail.subject);
  EXPECT_EQ(parsed.raw_headers.at("subject").find("=?"), std::string::npos);
  for (const std::string& line : parsed.header_lines) EXPECT_LE(line.size(), 78u) << line;
}

TEST(Rfc5322, AsciiThatLooksLikeAnEncodedWordIsEncoded) {
  Mail mail = sample();
  mail.subject = "=?UTF-8?B?aGk=?= is not an encoded word here";
  const auto parsed = parse_mail(format(mail));
  EXPECT_EQ(parsed.header("subject"), mail.subject);
}

TEST(Rfc5322, DisplayNamesAreAtomsQuotedOrEncoded) {
  Mail mail = sample();
  mail.from = "\"Dither, the service\" <noreply@example.org>";
  mail.to = "Zoë Müller <zoe@example.org>";
  const auto parsed = parse_mail(format(mail));
  EXPECT_EQ(parsed.raw_headers.at("from"), "\"Dither, the service\" <noreply@example.org>");
  EXPECT_TRUE(parsed.raw_headers.at("to").starts_with("=?UTF-8?B?"));
  EXPECT_EQ(parsed.header("to"), "Zoë Müller <zoe@example.org>");
}

// Found by fuzz/mail_fuzz.cc: a long display name (MAIL_FROM) was written on one line, past
// RFC 5322's hard limit of 998 characters. It is folded at spaces now (lines of about 78, plus the
// address on the last), or encoded when a word is too long to fold.
TEST(Rfc5322, LongDisplayNamesAreFoldedOrEncodedOnShortLines) {
  std::string atoms = "Dither";
  while (atoms.size() < 1200) atoms += " Dither";
  std::string quoted = "\"Dither, the service";
  while (quoted.size() < 1200) quoted += " of dithers, \\\"quoted\\\"";
  quoted += '"';
  const std::string word(1200, 'x');
  for (const std::string& name : {atoms, quoted, word}) {
    Mail mail = sample();
    mail.from = name + " <noreply@example.org>";
    const auto parsed = parse_mail(format(mail));
    size_t from_lines = 0;
    bool in_from = false;
    for (const std::string& line : parsed.header_lines) {
      EXPECT_LE(line.size(), 78u + std::string(" <noreply@example.org>").size()) << line;
      in_from = line.starts_with("From: ") || (in_from && line.starts_with(' '));
      from_lines += in_from ? 1 : 0;
    }
    EXPECT_GT(from_lines, 10u);
    EXPECT_EQ(parsed.header("from"), name + " <noreply@example.org>");
  }
}

TEST(Rfc5322, QuotedPrintableLinesAtMost76AndRoundTrip) {
  std::string text = "Grüße! é=è, tab\tend \nline with trailing space \n";
  text += std::string(200, 'a') + "\n";
  for (int i = 0; i < 40; ++i) text += "ü=";  // escapes next to soft breaks
  text += "\r\nCRLF and lone CR\rdone.\n.\n..dots stay as they are (curl stuffs them)";
  const std::string qp = quoted_printable(text);
  std::string expected = text;
  // Line breaks become CRLF (decoded back as "\n").
  for (size_t p; (p = expected.find("\r\n")) != std::string::npos;) expected.replace(p, 2, "\n");
  for (char& c : expected) {
    if (c == '\r') c = '\n';
  }
  EXPECT_EQ(decode_quoted_printable(qp), expected);  // also checks every line <= 76
  EXPECT_NE(qp.find("space=20\r\n"), std::string::npos) << "trailing space protected";
  EXPECT_NE(qp.find("=3D"), std::string::npos);
  EXPECT_NE(qp.find("Gr=C3=BC=C3=9Fe!"), std::string::npos);
  EXPECT_NE(qp.find("\r\n.\r\n"), std::string::npos);
  for (char c : qp) {
    EXPECT_TRUE(c == '\r' || c == '\n' || c == '\t' || (c >= 0x20 && c <= 0x7E)) << int(c);
  }
}

TEST(Rfc5322, HeaderInjectionIsRefused) {
  // Each case: the sample mail with one field set to a bad value.
  struct Case {
    const char* name;
    std::string Mail::*field;
    std::string value;
  };
  const std::vector<Case> cases = {
      {"subject CRLF", &Mail::subject, "hi\r\nBcc: victim@example.org"},
      {"subject LF", &Mail::subject, "hi\nBcc: victim@example.org"},
      {"subject CR", &Mail::subject, "hi\rthere"},
      {"subject NUL", &Mail::subject, std::string("nul\0byte", 8)},
      {"to CRLF", &Mail::to, "someone@example.org\r\nBcc: victim@example.org"},
      {"two recipients", &Mail::to, "a@example.org, b@example.org"},
      {"from LF", &Mail::from, "Evil\n <noreply@example.org>"},
      {"message id CRLF", &Mail::message_id, "<a@b>\r\nBcc: victim@example.org"},
      {"message id shape", &Mail::message_id, "no-angle-brackets@example.org"},
      {"subject not UTF-8", &Mail::subject, "\xC3\x28 invalid UTF-8"},
      {"text not UTF-8", &Mail::text, "\xFF"},
  };
  for (const Case& c : cases) {
    Mail mail = sample();
    mail.*c.field = c.value;
    Result<std::string> text = to_rfc5322(mail, fixed());
    ASSERT_FALSE(text.ok()) << c.name;
    EXPECT_EQ(text.error().kind, ErrorKind::kInvalidArgument) << c.name;
  }
}

TEST(Rfc5322, AMissingMessageIdGetsARandomOne) {
  Mail mail = sample();
  mail.message_id.clear();
  const auto parsed = parse_mail(format(mail));
  const std::string id = parsed.header("message-id");
  EXPECT_TRUE(id.starts_with("<") && id.ends_with("@example.org>")) << id;
}

TEST(Rfc5322, Addresses) {
  EXPECT_TRUE(is_valid_address("someone@example.org"));
  EXPECT_TRUE(is_valid_address("first.last+tag@mail.example.co.uk"));
  EXPECT_TRUE(is_valid_address("x@[127.0.0.1]"));
  for (std::string_view bad :
       {"", "someone", "@example.org", "someone@", "some one@example.org", "a..b@example.org",
        ".a@example.org", "a@localhost", "a@-example.org", "a@exa_mple.org", "a@b@example.org",
        "zoë@example.org", "a@example.org\r\n", "\"quoted\"@example.org"}) {
    EXPECT_FALSE(is_valid_address(bad)) << bad;
  }
  EXPECT_FALSE(is_valid_address(std::string(65, 'a') + "@example.org"));

  Result<Mailbox> box = parse_mailbox("  \"Dither \\\"D\\\" Bot\" <bot@example.org> ");
  ASSERT_TRUE(box.ok());
  EXPECT_EQ(box->display_name, "Dither \"D\" Bot");
  EXPECT_EQ(box->address, "bot@example.org");
  EXPECT_EQ(parse_mailbox("<bot@example.org>")->address, "bot@example.org");
  EXPECT_EQ(parse_mailbox("bot@example.org")->display_name, "");
  EXPECT_FALSE(parse_mailbox("Bad <Name> <bot@example.org>").ok());
  EXPECT_FALSE(parse_mailbox("Name <not an address>").ok());
}

TEST(Rfc5322, MaskEmail) {
  EXPECT_EQ(mask_email("someone@example.org"), "s***@example.org");
  EXPECT_EQ(mask_email("a@example.org"), "a***@example.org");
  EXPECT_EQ(mask_email("no-at-sign"), "***");
  EXPECT_EQ(mask_email("@example.org"), "***");
  EXPECT_EQ(mask_email("x@bad\ndomain"), "x***@bad?domain");
}

TEST(Rfc5322, Dates) {
  EXPECT_EQ(format_date(std::chrono::system_clock::time_point{}),
            "Thu, 01 Jan 1970 00:00:00 +0000");
  EXPECT_EQ(format_date(fixed().date), "Mon, 30 Nov 2026 12:34:56 +0000");
}

}  // namespace
}  // namespace dither::mail_format
