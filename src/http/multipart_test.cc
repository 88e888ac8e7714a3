#include "http/multipart.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace dither::http {
namespace {

using namespace std::literals;

constexpr std::string_view kType = "multipart/form-data; boundary=XyZ";

void expect_part(const FormPart& part, std::string_view name, std::string_view filename,
                 std::string_view content_type, std::string_view data) {
  EXPECT_EQ(part.name, name);
  EXPECT_EQ(part.filename, filename);
  EXPECT_EQ(part.content_type, content_type);
  EXPECT_EQ(part.data, data);
}

TEST(MultipartBoundary, Valid) {
  EXPECT_EQ(*multipart_boundary("multipart/form-data; boundary=abc"), "abc");
  EXPECT_EQ(*multipart_boundary("Multipart/Form-Data;boundary=abc"), "abc");
  EXPECT_EQ(*multipart_boundary("multipart/form-data; charset=utf-8; BOUNDARY=\"a b:c\""), "a b:c");
  EXPECT_EQ(*multipart_boundary("multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxk"),
            "----WebKitFormBoundary7MA4YWxk");
  EXPECT_EQ(*multipart_boundary("multipart/form-data; boundary=" + std::string(70, 'b')),
            std::string(70, 'b'));
}

TEST(MultipartBoundary, Invalid) {
  for (const std::string& type : {
           std::string("application/json"),
           std::string("multipart/form-data"),
           std::string("multipart/form-data;"),
           std::string("multipart/mixed; boundary=abc"),
           std::string("multipart/form-data; boundary="),
           std::string("multipart/form-data; boundary=\"\""),
           std::string("multipart/form-data; boundary=\"abc"),
           std::string("multipart/form-data; boundary=\"abc \""),
           std::string("multipart/form-data; boundary=a\x01"),
           std::string("multipart/form-data; boundary=a\"b"),
           std::string("multipart/form-data; boundary=" + std::string(71, 'b')),
           std::string("multipart/form-data; =abc"),
           std::string("multipart/form-data; boundary abc"),
           std::string(""),
       }) {
    const Result<std::string> r = multipart_boundary(type);
    ASSERT_FALSE(r) << type;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
    EXPECT_NE(r.error().message.find("multipart"), std::string::npos);
  }
}

TEST(Multipart, FieldAndFile) {
  const std::string body =
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"email\"\r\n"
      "\r\n"
      "a@b.c\r\n"
      "--XyZ\r\n"
      "content-disposition: form-data; name=\"file\"; filename=\"photo.png\"\r\n"
      "Content-Type:  image/png \r\n"
      "\r\n"
      "\x89PNG\r\n\x1a\n\0\0--XyZ-not\r\n--Xy\r\n"
      "\r\n--XyZ--\r\n"s;
  const auto parts = parse_multipart(kType, body);
  ASSERT_TRUE(parts) << parts.error().message;
  ASSERT_EQ(parts->size(), 2u);
  expect_part((*parts)[0], "email", "", "", "a@b.c");
  expect_part((*parts)[1], "file", "photo.png", "image/png",
              "\x89PNG\r\n\x1a\n\0\0--XyZ-not\r\n--Xy\r\n"sv);
  // Views into the body.
  EXPECT_GE((*parts)[1].data.data(), body.data());
  EXPECT_LE((*parts)[1].data.data() + (*parts)[1].data.size(), body.data() + body.size());
}

TEST(Multipart, PreambleEpiloguePaddingAndQuoting) {
  const std::string body =
      "This is the preamble.\r\n--XyZ  \t\r\n"
      "Content-Disposition: form-data; name=\"a %22quoted%22 \\ name\"; "
      "filename=\"C:\\dir\\x.jpg\\\"\r\n"
      "\r\n"
      "\r\n--XyZ\r\n"
      "Content-Disposition: form-data; name=plain\r\n"
      "X-Other: ignored\r\n"
      "\r\n"
      "v\r\n--XyZ--epilogue\r\nmore epilogue --XyZ\r\n";
  const auto parts = parse_multipart("multipart/form-data; boundary=\"XyZ\"", body);
  ASSERT_TRUE(parts) << parts.error().message;
  ASSERT_EQ(parts->size(), 2u);
  // A backslash is itself in a part's header (browsers write `"` as %22, which stays as sent).
  expect_part((*parts)[0], "a %22quoted%22 \\ name", "C:\\dir\\x.jpg\\", "", "");
  expect_part((*parts)[1], "plain", "", "", "v");
}

TEST(Multipart, NoParts) {
  const auto parts = parse_multipart(kType, "--XyZ--\r\n");
  ASSERT_TRUE(parts);
  EXPECT_TRUE(parts->empty());
}

TEST(Multipart, Malformed) {
  const std::string disposition = "Content-Disposition: form-data; name=\"f\"\r\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"empty body", ""},
      {"no opening delimiter", "hello"},
      {"only a delimiter", "--XyZ"},
      {"no closing delimiter", "--XyZ\r\n" + disposition + "\r\ndata"},
      {"no closing delimiter after a part", "--XyZ\r\n" + disposition + "\r\ndata\r\n--XyZ"},
      {"truncated closing", "--XyZ\r\n" + disposition + "\r\ndata\r\n--XyZ-"},
      {"junk after delimiter", "--XyZ\r\n" + disposition + "\r\nd\r\n--XyZjunk\r\n--XyZ--"},
      {"junk after first delimiter", "--XyZ junk\r\n" + disposition + "\r\nd\r\n--XyZ--"},
      {"no headers", "--XyZ\r\n\r\ndata\r\n--XyZ--"},
      {"unterminated headers", "--XyZ\r\n" + disposition + "data\r\n--XyZ--"},
      {"no disposition", "--XyZ\r\nContent-Type: text/plain\r\n\r\nd\r\n--XyZ--"},
      {"no name", "--XyZ\r\nContent-Disposition: form-data; filename=\"a\"\r\n\r\nd\r\n--XyZ--"},
      {"not form-data", "--XyZ\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nd\r\n--XyZ--"},
      {"unclosed quote", "--XyZ\r\nContent-Disposition: form-data; name=\"a\r\n\r\nd\r\n--XyZ--"},
      {"header without colon", "--XyZ\r\n" + disposition + "Nonsense\r\n\r\nd\r\n--XyZ--"},
      {"folded header", "--XyZ\r\n" + disposition + " folded\r\n\r\nd\r\n--XyZ--"},
      {"two dispositions", "--XyZ\r\n" + disposition + disposition + "\r\nd\r\n--XyZ--"},
      {"bare LF delimiters", "--XyZ\n" + disposition + "\nd\n--XyZ--"},
      {"disposition without parameters",
       "--XyZ\r\nContent-Disposition: form-data\r\n\r\nd\r\n--XyZ--"},
  };
  for (const auto& [what, body] : cases) {
    const auto parts = parse_multipart(kType, body);
    ASSERT_FALSE(parts) << what;
    EXPECT_EQ(parts.error().kind, ErrorKind::kInvalidArgument) << what;
  }
  EXPECT_FALSE(parse_multipart("text/plain", "--XyZ--"));
}

TEST(Multipart, Limits) {
  std::string many;
  for (int i = 0; i < 1001; ++i) {
    many += "--XyZ\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nd\r\n";
  }
  many += "--XyZ--";
  const auto parts = parse_multipart(kType, many);
  ASSERT_FALSE(parts);
  EXPECT_NE(parts.error().message.find("too many parts"), std::string::npos);

  const std::string huge_header = "--XyZ\r\nContent-Disposition: form-data; name=\"" +
                                  std::string(20000, 'n') + "\"\r\n\r\nd\r\n--XyZ--";
  EXPECT_FALSE(parse_multipart(kType, huge_header));
}

// Hostile shapes must cost linear time: this finishes quickly (a quadratic parser would take
// minutes), and never reads outside the body.
TEST(Multipart, AdversarialInputs) {
  std::string near_delimiters = "--XyZ\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n";
  while (near_delimiters.size() < 8 * 1024 * 1024) near_delimiters += "\r\n--Xy";
  EXPECT_FALSE(parse_multipart(kType, near_delimiters));

  std::string crlf_headers = "--XyZ\r\n";
  while (crlf_headers.size() < 8 * 1024 * 1024) crlf_headers += "\r\n\r";
  EXPECT_FALSE(parse_multipart(kType, crlf_headers));
}

TEST(Multipart, RandomMutationsNeverCrash) {
  const std::string valid =
      "pre\r\n--XyZ\r\n"
      "Content-Disposition: form-data; name=\"email\"\r\n\r\n"
      "a@b.c\r\n--XyZ\r\n"
      "Content-Disposition: form-data; name=\"file\"; filename=\"p\\.png\"\r\n"
      "Content-Type: image/png\r\n\r\n"
      "DATA\r\n--XyZ--\r\n";
  ASSERT_TRUE(parse_multipart(kType, valid));
  std::mt19937 random(42);
  const std::string alphabet = "\r\n-XyZ\";=\\: ab";
  for (int i = 0; i < 20000; ++i) {
    std::string body = valid;
    const int edits = 1 + static_cast<int>(random() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = random() % (body.size() + 1);
      switch (random() % 3) {
        case 0:
          body.insert(at, 1, alphabet[random() % alphabet.size()]);
          break;
        case 1:
          if (at < body.size()) body.erase(at, 1 + random() % 8);
          break;
        default:
          body.resize(at);
          break;
      }
    }
    const auto parts = parse_multipart(kType, body);
    if (!parts) continue;
    for (const FormPart& part : *parts) {
      ASSERT_GE(part.data.data(), body.data());
      ASSERT_LE(part.data.data() + part.data.size(), body.data() + body.size());
    }
  }
}

}  // namespace
}  // namespace dither::http
