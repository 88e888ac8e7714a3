// MailboxSender: one .eml file per Message-ID, written atomically, readable as the mail sent.
#include "adapters/mailbox/mailbox_sender.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "mail/testing/parsed_mail.h"

namespace dither {
namespace {

namespace fs = std::filesystem;

class MailboxSenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = fs::temp_directory_path() /
           ("mailbox-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<fs::path> files() const {
    std::vector<fs::path> out;
    for (const auto& entry : fs::directory_iterator(dir_)) out.push_back(entry.path());
    return out;
  }

  fs::path dir_;
};

Mail sample(std::string message_id = "<dither-0b5c8a9e-1-uploaded@dither.example.org>") {
  return Mail{
      .from = "Dither <noreply@dither.example.org>",
      .to = "someone@example.org",
      .subject = "Your dithered image is ready (café.jpg)",
      .text = "Your image is ready: https://dither.example.org/files/dithers/x/1.png\n",
      .html = "<p><a href=\"https://dither.example.org/files/dithers/x/1.png\">View</a></p>",
      .message_id = std::move(message_id)};
}

TEST_F(MailboxSenderTest, WritesTheMailAsAnEmlFile) {
  MailboxSender mailbox(dir_);
  EXPECT_EQ(mailbox.name(), "mailbox");
  ASSERT_TRUE(mailbox.send(sample()).ok());
  const std::vector<fs::path> written = files();
  ASSERT_EQ(written.size(), 1u);
  const std::string name = written[0].filename().string();
  EXPECT_TRUE(name.ends_with(".eml")) << name;
  // <UTC timestamp>-<from the Message-ID>-<hash>.eml
  EXPECT_NE(name.find("Z-dither-0b5c8a9e-1-uploaded_dither.example.org-"), std::string::npos)
      << name;
  EXPECT_EQ(mailbox.path_of(sample().message_id), written[0]);

  const auto parsed = mail_testing::parse_mail(mail_testing::read_file(written[0]));
  EXPECT_EQ(parsed.header("to"), "someone@example.org");
  EXPECT_EQ(parsed.header("from"), "Dither <noreply@dither.example.org>");
  EXPECT_EQ(parsed.header("subject"), "Your dithered image is ready (café.jpg)");
  EXPECT_EQ(parsed.header("message-id"), sample().message_id);
  EXPECT_EQ(parsed.text, sample().text);
  EXPECT_EQ(parsed.html, sample().html);
}

TEST_F(MailboxSenderTest, TheSameMessageIdStaysOneFileWithTheLatestContent) {
  MailboxSender mailbox(dir_);
  ASSERT_TRUE(mailbox.send(sample()).ok());
  const fs::path first = files().at(0);
  Mail again = sample();
  again.subject = "second attempt";
  ASSERT_TRUE(mailbox.send(again).ok());
  ASSERT_EQ(files().size(), 1u);
  EXPECT_EQ(files()[0], first);
  EXPECT_EQ(mail_testing::parse_mail(mail_testing::read_file(first)).header("subject"),
            "second attempt");

  // Also across a restart (a new sender on the same folder).
  MailboxSender reopened(dir_);
  EXPECT_EQ(reopened.path_of(sample().message_id), first);
  ASSERT_TRUE(reopened.send(sample()).ok());
  EXPECT_EQ(files().size(), 1u);

  ASSERT_TRUE(reopened.send(sample("<dither-0b5c8a9e-1-failed@dither.example.org>")).ok());
  EXPECT_EQ(files().size(), 2u);
}

TEST_F(MailboxSenderTest, ConcurrentSendsOfOneMessageLeaveOneFile) {
  MailboxSender mailbox(dir_);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 5; ++k) EXPECT_TRUE(mailbox.send(sample()).ok());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(files().size(), 1u);  // and no temporary files left
}

TEST_F(MailboxSenderTest, SafeNamesAreFileNamesAndDistinct) {
  const std::string a = MailboxSender::safe_name("<a/b@example.org>");
  const std::string b = MailboxSender::safe_name("<a_b@example.org>");
  const std::string c = MailboxSender::safe_name("<../../etc/passwd@x>");
  EXPECT_NE(a, b);
  for (const std::string& name : {a, b, c, MailboxSender::safe_name(std::string(500, '<'))}) {
    EXPECT_EQ(name.find('/'), std::string::npos) << name;
    EXPECT_EQ(name.find(".."), std::string::npos) << name;
    EXPECT_LE(name.size(), 100u + 17u);
    EXPECT_FALSE(name.empty());
  }
  EXPECT_EQ(MailboxSender::safe_name("<x@y>"), MailboxSender::safe_name("<x@y>"));
}

TEST_F(MailboxSenderTest, RefusesWhatCannotBeAMailAndWritesNothing) {
  MailboxSender mailbox(dir_);
  Mail bad = sample();
  bad.subject = "x\r\nBcc: someone@example.org";
  const Status sent = mailbox.send(bad);
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().kind, ErrorKind::kInvalidArgument);
  bad = sample();
  bad.to = "not an address";
  EXPECT_EQ(mailbox.send(bad).error().kind, ErrorKind::kInvalidArgument);
  EXPECT_TRUE(files().empty());
}

TEST_F(MailboxSenderTest, AMailWithoutMessageIdGetsItsOwnFile) {
  MailboxSender mailbox(dir_);
  Mail mail = sample("");
  ASSERT_TRUE(mailbox.send(mail).ok());
  ASSERT_TRUE(mailbox.send(mail).ok());
  EXPECT_EQ(files().size(), 2u);
}

}  // namespace
}  // namespace dither
