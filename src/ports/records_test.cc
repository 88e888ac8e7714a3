#include "ports/records.h"

#include <gtest/gtest.h>

#include <set>

#include "ports/message.h"

namespace dither {
namespace {

TEST(ImageId, ParsesCanonicalUuidsAndLowersThem) {
  auto id = parse_image_id("123E4567-E89B-12D3-A456-426614174000");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->value, "123e4567-e89b-12d3-a456-426614174000");
}

TEST(ImageId, RejectsEverythingElse) {
  for (std::string_view bad :
       {"", "123", "123e4567e89b12d3a456426614174000", "123e4567-e89b-12d3-a456-42661417400g",
        "123e4567-e89b-12d3-a456_426614174000", "{123e4567-e89b-12d3-a456-426614174000}",
        "../../etc/passwd", "123e4567-e89b-12d3-a456-4266141740000"}) {
    auto id = parse_image_id(bad);
    ASSERT_FALSE(id.ok()) << bad;
    EXPECT_EQ(id.error().kind, ErrorKind::kInvalidArgument);
  }
}

TEST(ImageId, NewIdsAreVersion4AndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    ImageId id = new_image_id();
    ASSERT_TRUE(parse_image_id(id.value).ok()) << id.value;
    EXPECT_EQ(id.value[14], '4');
    EXPECT_NE(std::string_view("89ab").find(id.value[19]), std::string_view::npos);
    seen.insert(id.value);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(ObjectKey, Validation) {
  EXPECT_TRUE(is_valid_object_key("originals/abc.jpg"));
  EXPECT_TRUE(is_valid_object_key("dithers/u/12.png"));
  for (std::string_view bad : {"", "/abs", "a/../b", "a//b", "dir/", "sp ace", "a\\b", "é"}) {
    EXPECT_FALSE(is_valid_object_key(bad)) << bad;
  }
}

TEST(Message, StandardHeaders) {
  Message m = make_message("images", kImageUploaded, "k", "{}");
  EXPECT_EQ(m.message_type(), "IMAGE_UPLOADED");
  EXPECT_EQ(m.header("version").value_or(""), "1.1.0");
  EXPECT_TRUE(parse_image_id(m.message_id()).ok());
  const std::string tp(m.header("traceparent").value_or(""));
  ASSERT_EQ(tp.size(), 55u) << tp;
  EXPECT_EQ(tp.substr(0, 3), "00-");
  EXPECT_EQ(tp.substr(52), "-01");
  EXPECT_NE(make_message("images", kImageUploaded, "k", "{}").message_id(), m.message_id());
}

TEST(Message, TraceparentContinuesTheTrace) {
  const std::string parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const std::string child = new_traceparent(parent);
  EXPECT_EQ(child.substr(0, 36), parent.substr(0, 36));
  EXPECT_NE(child.substr(36, 16), parent.substr(36, 16));
  EXPECT_NE(new_traceparent("garbage").substr(3, 32), parent.substr(3, 32));
}

TEST(Message, DedupeIdIsTheMessageIdOrAStableContentHash) {
  Message m = make_message("images", kImageUploaded, "k", R"({"uuid":"x"})");
  EXPECT_EQ(m.dedupe_id(), m.message_id());
  // The prototype's messages have no message_id: same content, same id; other content, another.
  Message a{"dithers", "k", {{"message_type", "DITHER_UPLOADED"}, {"version", "1.0.0"}}, "{}"};
  Message b = a;
  EXPECT_EQ(a.dedupe_id(), b.dedupe_id());
  EXPECT_TRUE(a.dedupe_id().starts_with("content:")) << a.dedupe_id();
  b.body = R"({"a":1})";
  EXPECT_NE(a.dedupe_id(), b.dedupe_id());
  Message c = a;
  c.headers[0].second = "DITHER_DELETED";
  EXPECT_NE(a.dedupe_id(), c.dedupe_id());
  Message d = a;
  d.key = "other";
  EXPECT_NE(a.dedupe_id(), d.dedupe_id());
}

}  // namespace
}  // namespace dither
