// compose_dither_mail: what the notification e-mail says, for a finished and a failed dither.
#include "services/notify/mail_composer.h"

#include <gtest/gtest.h>

#include "mail/rfc5322.h"
#include "ports/message.h"

namespace dither {
namespace {

const ImageId kUuid{"0b5c8a9e-4f1d-4c7a-9a51-3d2f1e0c9b7a"};

DitherEvent finished() {
  DitherEvent e;
  e.uuid = kUuid;
  e.dither_id = 3;
  e.url_dither = "https://dither.example.org/files/dithers/" + kUuid.value + "/3.png";
  e.channels = 4;
  e.algorithm = "atkinson";
  e.palette = "pico8";
  e.format = "png";
  e.source = "request";
  e.email = "someone@example.org";
  return e;
}

DitherMailContext context() {
  return DitherMailContext{.public_base_url = "https://dither.example.org",
                           .from = "Dither <noreply@dither.example.org>",
                           .original_url = "/files/originals/" + kUuid.value + ".jpg",
                           .filename = "holiday.jpg"};
}

TEST(MailComposer, FinishedDither) {
  Result<Mail> mail = compose_dither_mail(kDitherUploaded, finished(), context());
  ASSERT_TRUE(mail.ok()) << mail.error().message;
  EXPECT_EQ(mail->from, "Dither <noreply@dither.example.org>");
  EXPECT_EQ(mail->to, "someone@example.org");
  EXPECT_EQ(mail->subject, "Your dithered image is ready (holiday.jpg)");
  EXPECT_EQ(mail->message_id, "<dither-" + kUuid.value + "-3-uploaded@dither.example.org>");
  const std::string dithered = finished().url_dither;
  const std::string original = "https://dither.example.org/files/originals/" + kUuid.value + ".jpg";
  for (const std::string* part : {&mail->text, &mail->html}) {
    EXPECT_NE(part->find(dithered), std::string::npos) << *part;
    EXPECT_NE(part->find(original), std::string::npos) << *part;
    EXPECT_NE(part->find("holiday.jpg"), std::string::npos);
    for (std::string_view value :
         {"atkinson", "pico8", "png", "Channels", "Algorithm", "Palette", "Format"}) {
      EXPECT_NE(part->find(value), std::string::npos) << value;
    }
  }
  EXPECT_NE(mail->html.find("<a href=\"" + dithered + "\""), std::string::npos);
  EXPECT_NE(mail->html.find("<a href=\"" + original + "\""), std::string::npos);
  EXPECT_NE(mail->text.find("Channels:  4"), std::string::npos) << mail->text;
  // The composed mail is a valid mail.
  EXPECT_TRUE(mail_format::to_rfc5322(*mail).ok());
}

TEST(MailComposer, FailedDither) {
  DitherEvent e = finished();
  e.url_dither.clear();
  e.error = "the image is too large for the <ordered> algorithm & palette";
  Result<Mail> mail = compose_dither_mail(kDitherFailed, e, context());
  ASSERT_TRUE(mail.ok());
  EXPECT_EQ(mail->subject, "Your image could not be dithered (holiday.jpg)");
  EXPECT_EQ(mail->message_id, "<dither-" + kUuid.value + "-3-failed@dither.example.org>");
  EXPECT_NE(mail->text.find("What went wrong: " + e.error), std::string::npos) << mail->text;
  EXPECT_NE(
      mail->html.find("the image is too large for the &lt;ordered&gt; algorithm &amp; palette"),
      std::string::npos)
      << mail->html;
  EXPECT_EQ(mail->html.find("<ordered>"), std::string::npos);
  EXPECT_EQ(mail->text.find("Dithered image:"), std::string::npos);
  EXPECT_NE(mail->text.find("https://dither.example.org/files/originals/"), std::string::npos);
  // Distinct from the finished dither's mail.
  EXPECT_NE(mail->message_id,
            compose_dither_mail(kDitherUploaded, finished(), context())->message_id);
}

TEST(MailComposer, EverythingInTheHtmlIsEscaped) {
  DitherEvent e = finished();
  e.algorithm = "<script>alert(1)</script>";
  e.palette = "\"quoted\" & 'single'";
  e.url_dither = "https://x.example/a.png?x=1&y=\"><script>";
  DitherMailContext c = context();
  c.filename = "<img src=x onerror=alert(1)>.png";
  Result<Mail> mail = compose_dither_mail(kDitherUploaded, e, c);
  ASSERT_TRUE(mail.ok());
  EXPECT_EQ(mail->html.find("<script>"), std::string::npos) << mail->html;
  EXPECT_EQ(mail->html.find("<img"), std::string::npos);
  EXPECT_NE(mail->html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(mail->html.find("&quot;quoted&quot; &amp; &#39;single&#39;"), std::string::npos);
  EXPECT_NE(mail->html.find("href=\"https://x.example/a.png?x=1&amp;y=&quot;&gt;&lt;script&gt;\""),
            std::string::npos);
  EXPECT_EQ(html_escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
}

TEST(MailComposer, RelativeLinksAreMadeAbsolute) {
  DitherEvent e = finished();
  e.url_dither = "/files/dithers/x/3.png";
  DitherMailContext c = context();
  c.public_base_url = "http://127.0.0.1:8080/";
  Result<Mail> mail = compose_dither_mail(kDitherUploaded, e, c);
  ASSERT_TRUE(mail.ok());
  EXPECT_NE(mail->text.find("http://127.0.0.1:8080/files/dithers/x/3.png"), std::string::npos);
  EXPECT_NE(mail->html.find("href=\"http://127.0.0.1:8080/files/originals/"), std::string::npos);
  EXPECT_EQ(mail->message_id, "<dither-" + kUuid.value + "-3-uploaded@127.0.0.1>");

  EXPECT_EQ(absolute_url("files/a.png", "https://h.example/app"),
            "https://h.example/app/files/a.png");
  EXPECT_EQ(absolute_url("/files/a.png", "https://h.example/app/"),
            "https://h.example/app/files/a.png");
  EXPECT_EQ(absolute_url("HTTPS://cdn.example/a.png", "http://h"), "HTTPS://cdn.example/a.png");
  EXPECT_EQ(absolute_url("//cdn.example/a.png", "https://h"), "https://cdn.example/a.png");
  EXPECT_EQ(absolute_url("javascript:alert(1)", "https://h"), "https://h/javascript:alert(1)");
  EXPECT_EQ(absolute_url("", "https://h"), "");
}

TEST(MailComposer, WithoutFileNameOrOriginalOrSettings) {
  DitherEvent e;
  e.uuid = kUuid;
  e.url_dither = "https://dither.example.org/files/d.png";
  e.email = "someone@example.org";
  DitherMailContext c = context();
  c.filename.clear();
  c.original_url.clear();
  c.public_base_url = "https://[::1]:8443";
  Result<Mail> mail = compose_dither_mail(kDitherUploaded, e, c);
  ASSERT_TRUE(mail.ok());
  EXPECT_EQ(mail->subject, "Your dithered image is ready (" + kUuid.value + ")");
  EXPECT_EQ(mail->text.find("Original"), std::string::npos);
  EXPECT_EQ(mail->text.find("Settings"), std::string::npos);
  EXPECT_EQ(mail->message_id, "<dither-" + kUuid.value + "-0-uploaded@[::1]>");
  EXPECT_TRUE(mail_format::to_rfc5322(*mail).ok());
}

TEST(MailComposer, FileNamesCannotBreakTheSubject) {
  DitherMailContext c = context();
  c.filename = "evil\r\nBcc: victim@example.org " + std::string(100, 'x') + ".png";
  Result<Mail> mail = compose_dither_mail(kDitherUploaded, finished(), c);
  ASSERT_TRUE(mail.ok());
  EXPECT_EQ(mail->subject.find_first_of("\r\n"), std::string::npos);
  EXPECT_NE(mail->subject.find("..."), std::string::npos);
  EXPECT_TRUE(mail_format::to_rfc5322(*mail).ok());
}

TEST(MailComposer, RefusesOtherKindsAndBadAddresses) {
  EXPECT_EQ(compose_dither_mail(kDitherDeleted, finished(), context()).error().kind,
            ErrorKind::kInvalidArgument);
  DitherEvent e = finished();
  e.email = "";
  EXPECT_EQ(compose_dither_mail(kDitherUploaded, e, context()).error().kind,
            ErrorKind::kInvalidArgument);
  e.email = "someone@example.org\r\nBcc: x@example.org";
  EXPECT_FALSE(compose_dither_mail(kDitherUploaded, e, context()).ok());
  DitherMailContext c = context();
  c.from = "nobody";
  EXPECT_FALSE(compose_dither_mail(kDitherUploaded, finished(), c).ok());
}

TEST(MailComposer, MaskEmail) { EXPECT_EQ(mask_email("someone@example.org"), "s***@example.org"); }

}  // namespace
}  // namespace dither
