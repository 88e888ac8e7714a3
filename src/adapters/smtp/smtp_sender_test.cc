// CurlSmtpSender against a real SMTP server: aiosmtpd running scripts/infra/smtp_sink.py, started
// by scripts/infra/smtp.sh (ctest runs it as the infra_smtp fixture on DITHER_TEST_SMTP_PORT,
// TLS from the first byte on the next port). The sink stores each mail it accepts; the tests read
// it back: envelope, headers, both parts, links; then the error mapping of ports/mail.h.
//
// By hand:
//   DITHER_INFRA_RUN=<build>/infra-test SMTP_PORT=<DITHER_TEST_SMTP_PORT> scripts/infra/smtp.sh
//   start <build>/src/adapters/smtp/smtp_sender_test
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "adapters/smtp/curl_smtp_sender.h"
#include "mail/testing/parsed_mail.h"

namespace dither {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kPort = DITHER_TEST_SMTP_PORT;
constexpr int kTlsPort = DITHER_TEST_SMTP_PORT + 1;
const fs::path kSmtpDir = fs::path(DITHER_TEST_INFRA_RUN) / "smtp";

std::string start_hint() {
  return std::string("start it with: DITHER_INFRA_RUN=") + DITHER_TEST_INFRA_RUN +
         " SMTP_PORT=" + std::to_string(kPort) + " " + DITHER_SOURCE_DIR +
         "/scripts/infra/smtp.sh start (ctest does this through the infra_smtp fixture)";
}

// A TCP socket on 127.0.0.1; `listening` keeps it open with listen() (connections complete, but
// nobody ever answers), otherwise it is closed at once and its port is free (refused).
class LocalSocket {
 public:
  explicit LocalSocket(bool listening) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof addr;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &length), 0);
    port_ = ntohs(addr.sin_port);
    if (listening) {
      EXPECT_EQ(::listen(fd_, 8), 0);
    } else {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~LocalSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

bool server_answers(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// A recipient no other test (or earlier run) uses, so its mail is found among all received.
std::string unique_recipient(std::string_view domain = "example.org") {
  static std::atomic<int> counter{0};
  static const std::string run = std::to_string(std::random_device{}());
  return "user-" + std::to_string(::getpid()) + "-" + run + "-" + std::to_string(counter++) + "@" +
         std::string(domain);
}

Mail sample(const std::string& to) {
  const std::string link = "https://dither.example.org/files/dithers/0b5c8a9e/1.png";
  const std::string original = "https://dither.example.org/files/originals/0b5c8a9e.jpg";
  return Mail{.from = "Dither <noreply@dither.example.org>",
              .to = to,
              .subject = "Your dithered image is ready (café.jpg)",
              .text = "Hello,\n\nyour dithered image is ready.\n\nDithered image: " + link +
                      "\nOriginal:       " + original + "\n",
              .html = "<p>Hello,</p>\n<p><a href=\"" + link +
                      "\">View the dithered image</a><br>"
                      "<a href=\"" +
                      original + "\">View the original</a></p>\n",
              .message_id = "<test." + to.substr(0, to.find('@')) + "@dither.example.org>"};
}

SmtpOptions options(SmtpSecurity security = SmtpSecurity::kNone, int port = kPort) {
  return SmtpOptions{.host = "127.0.0.1",
                     .port = port,
                     .security = security,
                     .verify_tls = false,
                     .connect_timeout = std::chrono::milliseconds(5000),
                     .timeout = std::chrono::milliseconds(30000)};
}

struct Received {
  std::string record;  // its line in received.jsonl
  mail_testing::ParsedMail mail;
  std::string raw;
};

// The mail the sink received for `recipient` (a test failure when there is none).
Received received_for(const std::string& recipient) {
  std::ifstream index(kSmtpDir / "received.jsonl");
  std::string line;
  while (std::getline(index, line)) {
    if (line.find("\"rcpt_tos\": [\"" + recipient + "\"]") == std::string::npos) continue;
    const std::string key = "\"file\": \"";
    const size_t start = line.find(key) + key.size();
    const fs::path file = line.substr(start, line.find('"', start) - start);
    Received r{.record = line, .mail = {}, .raw = mail_testing::read_file(file)};
    r.mail = mail_testing::parse_mail(r.raw);
    return r;
  }
  ADD_FAILURE() << "the SMTP sink received no mail for " << recipient << " (in "
                << (kSmtpDir / "received.jsonl") << ")";
  return {};
}

class SmtpSenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_answers(kPort))
        << "the SMTP test server on 127.0.0.1:" << kPort << " does not answer: " << start_hint();
  }

  // Sends a sample mail with `o` and returns what the sink received.
  Received send_and_receive(const SmtpOptions& o) {
    const std::string to = unique_recipient();
    CurlSmtpSender sender(o);
    const Status sent = sender.send(sample(to));
    EXPECT_TRUE(sent.ok()) << sent.error().message;
    return received_for(to);
  }

  void expect_sample(const Received& r, const std::string& recipient_fragment) {
    EXPECT_NE(r.record.find("\"mail_from\": \"noreply@dither.example.org\""), std::string::npos)
        << r.record;
    EXPECT_NE(r.mail.header("to").find(recipient_fragment), std::string::npos);
    EXPECT_EQ(r.mail.header("subject"), "Your dithered image is ready (café.jpg)");
    EXPECT_EQ(r.mail.header("from"), "Dither <noreply@dither.example.org>");
    EXPECT_EQ(r.mail.header("mime-version"), "1.0");
    EXPECT_NE(r.mail.header("date"), "");
    EXPECT_NE(r.mail.header("message-id"), "");
    const std::string link = "https://dither.example.org/files/dithers/0b5c8a9e/1.png";
    const std::string original = "https://dither.example.org/files/originals/0b5c8a9e.jpg";
    EXPECT_NE(r.mail.text.find("Dithered image: " + link), std::string::npos) << r.mail.text;
    EXPECT_NE(r.mail.text.find(original), std::string::npos);
    EXPECT_NE(r.mail.html.find("<a href=\"" + link + "\">"), std::string::npos) << r.mail.html;
    EXPECT_NE(r.mail.html.find("<a href=\"" + original + "\">"), std::string::npos);
  }
};

TEST_F(SmtpSenderTest, PlainSmtp) {
  CurlSmtpSender sender(options());
  EXPECT_EQ(sender.name(), "smtp");
  const std::string to = unique_recipient();
  ASSERT_TRUE(sender.send(sample(to)).ok());
  const Received r = received_for(to);
  expect_sample(r, to);
  EXPECT_NE(r.record.find("\"tls\": false"), std::string::npos) << r.record;
  EXPECT_NE(r.record.find("\"auth\": null"), std::string::npos) << r.record;
  EXPECT_EQ(r.mail.header("message-id"), sample(to).message_id);
}

TEST_F(SmtpSenderTest, StartTlsWithoutVerification) {
  const Received r = send_and_receive(options(SmtpSecurity::kStartTls));
  expect_sample(r, "@example.org");
  EXPECT_NE(r.record.find("\"tls\": true"), std::string::npos) << r.record;
}

TEST_F(SmtpSenderTest, StartTlsVerifiedAgainstTheServersCertificate) {
  SmtpOptions o = options(SmtpSecurity::kStartTls);
  o.verify_tls = true;
  o.ca_file = (kSmtpDir / "cert.pem").string();
  const Received r = send_and_receive(o);
  EXPECT_NE(r.record.find("\"tls\": true"), std::string::npos) << r.record;

  // The system's CAs do not know the self-signed certificate: nothing is sent, try later.
  o.ca_file.clear();
  CurlSmtpSender untrusted(o);
  const Status sent = untrusted.send(sample(unique_recipient()));
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().kind, ErrorKind::kUnavailable) << sent.error().message;
}

TEST_F(SmtpSenderTest, TlsFromTheFirstByte) {
  const Received r = send_and_receive(options(SmtpSecurity::kTls, kTlsPort));
  expect_sample(r, "@example.org");
  EXPECT_NE(r.record.find("\"tls\": true"), std::string::npos) << r.record;
}

TEST_F(SmtpSenderTest, AuthenticatesWithUserAndPassword) {
  for (SmtpSecurity security : {SmtpSecurity::kStartTls, SmtpSecurity::kNone}) {
    SmtpOptions o = options(security);
    o.user = "dither";
    o.password = "dither-mail";
    const Received r = send_and_receive(o);
    expect_sample(r, "@example.org");
    EXPECT_NE(r.record.find("\"auth\": \"dither\""), std::string::npos) << r.record;
  }
}

TEST_F(SmtpSenderTest, AWrongPasswordIsUnavailableNotTheMailsFault) {
  SmtpOptions o = options(SmtpSecurity::kStartTls);
  o.user = "dither";
  o.password = "wrong";
  const Status sent = CurlSmtpSender(o).send(sample(unique_recipient()));
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().kind, ErrorKind::kUnavailable) << sent.error().message;
  EXPECT_EQ(sent.error().message.find("wrong"), std::string::npos) << "password in the message";
}

TEST_F(SmtpSenderTest, ReadyWhenTheServerTakesOurLoginAndNotOtherwise) {
  // GET /health/ready's check: a session up to NOOP, no mail.
  SmtpOptions o = options(SmtpSecurity::kStartTls);
  EXPECT_TRUE(CurlSmtpSender(o).ready().ok());
  o.user = "dither";
  o.password = "dither-mail";
  EXPECT_TRUE(CurlSmtpSender(o).ready().ok());
  EXPECT_TRUE(CurlSmtpSender(options(SmtpSecurity::kTls, kTlsPort)).ready().ok());
  o.password = "wrong";
  Status refused = CurlSmtpSender(o).ready();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, ErrorKind::kUnavailable);
  EXPECT_EQ(refused.error().message.find("wrong"), std::string::npos) << "password in the message";
  Status closed = CurlSmtpSender(options(SmtpSecurity::kNone, 1)).ready();  // nothing listens
  ASSERT_FALSE(closed.ok());
  EXPECT_EQ(closed.error().kind, ErrorKind::kUnavailable);
}

TEST_F(SmtpSenderTest, DotsAtTheStartOfALineArriveIntact) {
  // SMTP ends the data at a line holding a single '.'; curl must double leading dots.
  const std::string to = unique_recipient();
  Mail mail = sample(to);
  mail.text = "first\n.\n.hidden line\n..two dots\nlast\n";
  mail.html.clear();
  ASSERT_TRUE(CurlSmtpSender(options()).send(mail).ok());
  const Received r = received_for(to);
  EXPECT_EQ(r.mail.text, mail.text);
}

TEST_F(SmtpSenderTest, ALargeMailArrivesWhole) {
  const std::string to = unique_recipient();
  Mail mail = sample(to);
  for (int i = 0; i < 5000; ++i) mail.text += "line " + std::to_string(i) + " äöü €\n";
  ASSERT_TRUE(CurlSmtpSender(options()).send(mail).ok());
  EXPECT_EQ(received_for(to).mail.text, mail.text);
}

TEST_F(SmtpSenderTest, ARejectedRecipientIsInvalidArgument) {
  const Status sent = CurlSmtpSender(options()).send(sample(unique_recipient("reject.invalid")));
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().kind, ErrorKind::kInvalidArgument) << sent.error().message;
  EXPECT_NE(sent.error().message.find("550"), std::string::npos) << sent.error().message;
  EXPECT_NE(sent.error().message.find("u***@reject.invalid"), std::string::npos)
      << "recipient masked: " << sent.error().message;
}

TEST_F(SmtpSenderTest, ATemporaryRefusalIsUnavailable) {
  const Status sent = CurlSmtpSender(options()).send(sample(unique_recipient("tempfail.invalid")));
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().kind, ErrorKind::kUnavailable) << sent.error().message;
  EXPECT_NE(sent.error().message.find("451"), std::string::npos) << sent.error().message;
}

TEST_F(SmtpSenderTest, AStoppedServerIsUnavailableAtOnce) {
  const LocalSocket closed(false);
  const auto start = Clock::now();
  const Status sent =
      CurlSmtpSender(options(SmtpSecurity::kNone, closed.port())).send(sample(unique_recipient()));
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().kind, ErrorKind::kUnavailable) << sent.error().message;
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
}

TEST_F(SmtpSenderTest, AServerThatNeverAnswersIsUnavailableWithinTheTimeout) {
  const LocalSocket silent(true);
  SmtpOptions o = options(SmtpSecurity::kNone, silent.port());
  o.timeout = std::chrono::milliseconds(1500);
  const auto start = Clock::now();
  const Status sent = CurlSmtpSender(o).send(sample(unique_recipient()));
  const auto took = Clock::now() - start;
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().kind, ErrorKind::kUnavailable) << sent.error().message;
  EXPECT_GE(took, std::chrono::milliseconds(1400));
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST_F(SmtpSenderTest, AMalformedMailIsRefusedBeforeConnecting) {
  Mail mail = sample(unique_recipient());
  mail.subject = "hello\r\nBcc: victim@example.org";
  const LocalSocket closed(false);  // would be kUnavailable if it connected
  const Status sent = CurlSmtpSender(options(SmtpSecurity::kNone, closed.port())).send(mail);
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().kind, ErrorKind::kInvalidArgument);
}

TEST(SmtpSecurity, Parse) {
  EXPECT_EQ(*parse_smtp_security("none"), SmtpSecurity::kNone);
  EXPECT_EQ(*parse_smtp_security("starttls"), SmtpSecurity::kStartTls);
  EXPECT_EQ(*parse_smtp_security("tls"), SmtpSecurity::kTls);
  EXPECT_FALSE(parse_smtp_security("ssl").ok());
  EXPECT_EQ(to_string(SmtpSecurity::kStartTls), "starttls");
}

}  // namespace
}  // namespace dither
