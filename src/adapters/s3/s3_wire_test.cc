// Unit tests of the S3 adapter's wire format, without an S3 server: percent-encoding, digests,
// the XML it reads, and the exact requests it sends and how it reads the answers, against a local
// HTTP server that records requests and answers what each test tells it to. The behaviour against
// a real S3 server is in s3_blob_store_test.cc.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "adapters/s3/s3_blob_store.h"
#include "adapters/s3/s3_xml.h"
#include "adapters/shared/curl_client.h"
#include "http/errors.h"
#include "http/testing.h"

namespace dither {
namespace {

using http::Response;
using http::Verb;

std::vector<uint8_t> bytes_of(std::string_view s) { return {s.begin(), s.end()}; }

TEST(UriEncode, KeepsOnlyUnreservedCharacters) {
  EXPECT_EQ(curl::uri_encode("AZaz09-._~", false), "AZaz09-._~");
  EXPECT_EQ(curl::uri_encode("a b+c&d=e?f#g%h", false), "a%20b%2Bc%26d%3De%3Ff%23g%25h");
  EXPECT_EQ(curl::uri_encode("dithers/u/1.png", true), "dithers/u/1.png");
  EXPECT_EQ(curl::uri_encode("dithers/u/1.png", false), "dithers%2Fu%2F1.png");
  EXPECT_EQ(curl::uri_encode("caf\xC3\xA9 \xE2\x9C\x93", true), "caf%C3%A9%20%E2%9C%93");
  EXPECT_EQ(curl::uri_encode(std::string("\0\xFF", 2), true), "%00%FF");
  EXPECT_EQ(curl::uri_encode("", true), "");
}

TEST(Digests, KnownVectors) {
  EXPECT_EQ(curl::sha256_hex(std::string_view()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(curl::sha256_hex(std::string_view("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(curl::sha256_hex(bytes_of("abc")), curl::sha256_hex(std::string_view("abc")));
  EXPECT_EQ(curl::sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
}

TEST(XmlUnescape, PredefinedAndNumericEntities) {
  EXPECT_EQ(s3::xml_unescape("a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos;"),
            "a & b <c> \"d\" 'e'");
  EXPECT_EQ(s3::xml_unescape("caf&#233; &#x2713; &#X1F600;"),
            "caf\xC3\xA9 \xE2\x9C\x93 \xF0\x9F\x98\x80");
  EXPECT_EQ(s3::xml_unescape("&#13;&#10;"), "\r\n");
  // Unknown or malformed entities stay as written.
  EXPECT_EQ(s3::xml_unescape("&nbsp; & &; &#; &#xZZ; &#55296; tail &"),
            "&nbsp; & &; &#; &#xZZ; &#55296; tail &");
  EXPECT_EQ(s3::xml_unescape("&amp;amp;"), "&amp;");  // decoded once
}

TEST(ParseListObjects, KeysTruncationAndToken) {
  const std::string xml =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Name>dither</Name><Prefix>a/</Prefix><KeyCount>3</KeyCount><MaxKeys>3</MaxKeys>"
      "<IsTruncated>true</IsTruncated>"
      "<Contents><Key>a/1.png</Key><Size>3</Size><ETag>&quot;x&quot;</ETag></Contents>\n"
      "<Contents>\n  <Key>a/R&amp;D &lt;caf&#233;&gt;.png</Key>\n</Contents>"
      "<Contents><Key>a/z</Key></Contents>"
      "<NextContinuationToken>abc+/=&amp;</NextContinuationToken></ListBucketResult>";
  Result<s3::ListObjectsPage> page = s3::parse_list_objects(xml);
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_EQ(page->keys, (std::vector<std::string>{"a/1.png", "a/R&D <caf\xC3\xA9>.png", "a/z"}));
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_token, "abc+/=&");

  Result<s3::ListObjectsPage> last = s3::parse_list_objects(
      "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>");
  ASSERT_TRUE(last.ok());
  EXPECT_TRUE(last->keys.empty());
  EXPECT_FALSE(last->truncated);
}

TEST(ParseListObjects, MalformedIsInternal) {
  for (const char* bad :
       {"", "<Error><Code>NoSuchBucket</Code></Error>", "<ListBucketResult><Contents><Key>a</Key>",
        "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"}) {
    Result<s3::ListObjectsPage> page = s3::parse_list_objects(bad);
    ASSERT_FALSE(page.ok()) << bad;
    EXPECT_EQ(page.error().kind, ErrorKind::kInternal);
  }
}

TEST(ParseError, CodeAndMessage) {
  const s3::S3ErrorBody e = s3::parse_error(
      "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Please reduce your "
      "request rate &amp; retry.</Message><Resource>/b/k</Resource></Error>");
  EXPECT_EQ(e.code, "SlowDown");
  EXPECT_EQ(e.message, "Please reduce your request rate & retry.");
  const s3::S3ErrorBody none = s3::parse_error("");
  EXPECT_EQ(none.code, "");
  EXPECT_EQ(none.message, "");
}

Response xml(unsigned status, std::string body) {
  return http::body_response(status, "application/xml", std::move(body));
}

// What the fake server saw of one request.
struct Seen {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;
  std::string header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
      if (n == name) return v;
    }
    return "";
  }
  bool has(std::string_view name) const {
    for (const auto& h : headers) {
      if (h.first == name) return true;
    }
    return false;
  }
};

// A local HTTP server standing in for S3: records every request and answers with `answer`.
class RecordingServer {
 public:
  using Answer = std::function<Response(const Seen&)>;

  RecordingServer()
      : server_(make_router(),
                http::ServerOptions{.body_limit = 64 << 20, .generic_server_errors = false}, 2) {}

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(server_.port()); }
  void answer(Answer a) {
    std::lock_guard lock(mutex_);
    answer_ = std::move(a);
  }
  std::vector<Seen> seen() {
    std::lock_guard lock(mutex_);
    return seen_;
  }

 private:
  http::Router make_router() {
    http::Router router;
    auto handler = [this](const http::RequestContext& c) {
      Seen s;
      s.method = std::string(c.request.method_string());
      s.target = std::string(c.request.target());
      for (const auto& field : c.request) {
        std::string name(field.name_string());
        for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        s.headers.emplace_back(std::move(name), std::string(field.value()));
      }
      s.body = c.request.body();
      std::lock_guard lock(mutex_);
      seen_.push_back(s);
      return answer_ ? answer_(s) : xml(200, "");
    };
    for (Verb verb : {Verb::get, Verb::put, Verb::delete_, Verb::post}) {
      router.add(verb, "/{bucket}", handler);
      router.add(verb, "/{bucket}/{key...}", handler);
    }
    return router;
  }

  std::mutex mutex_;
  Answer answer_;
  std::vector<Seen> seen_;
  http::testing::RunningServer server_;
};

S3Options options_for(const std::string& endpoint) {
  return S3Options{.endpoint = endpoint,
                   .bucket = "bucket",
                   .access_key = "AKID",
                   .secret_key = "secret",
                   .timeout = std::chrono::milliseconds(5000)};
}

std::string error_xml(std::string_view code, std::string_view message) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + std::string(code) +
         "</Code><Message>" + std::string(message) + "</Message></Error>";
}

TEST(S3Requests, PutIsPathStyleSignedAndCarriesThePayloadHash) {
  RecordingServer server;
  S3BlobStore store(options_for(server.endpoint()));
  const std::vector<uint8_t> body = {'P', 'N', 'G', 0, 0xFF, '\n'};
  ASSERT_TRUE(store.put(ObjectKey{"dithers/u-1/2.png"}, body, "image/png").ok());
  const std::vector<Seen> seen = server.seen();
  ASSERT_EQ(seen.size(), 1u);
  const Seen& put = seen[0];
  EXPECT_EQ(put.method, "PUT");
  EXPECT_EQ(put.target, "/bucket/dithers/u-1/2.png");
  EXPECT_EQ(put.body, std::string(body.begin(), body.end()));
  EXPECT_EQ(put.header("x-amz-content-sha256"), curl::sha256_hex(body));
  EXPECT_EQ(put.header("content-type"), "image/png");
  EXPECT_EQ(put.header("content-length"), "6");
  EXPECT_FALSE(put.has("expect"));
  EXPECT_EQ(put.header("x-amz-date").size(), 16u);  // 20240101T000000Z
  const std::string auth = put.header("authorization");
  EXPECT_TRUE(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKID/")) << auth;
  EXPECT_NE(auth.find("/us-east-1/s3/aws4_request, "), std::string::npos) << auth;
  EXPECT_NE(auth.find("SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, "),
            std::string::npos)
      << auth;
  EXPECT_NE(auth.find("Signature="), std::string::npos) << auth;
}

TEST(S3Requests, LargeBodiesWaitFor100ContinueWithoutSigningIt) {
  // Over 1 MiB curl adds "Expect: 100-continue" itself, unsigned. Switching it off takes an empty
  // "Expect:" header, which curl 7.88 would sign although it is never sent: a signature the
  // server cannot match. So it stays, and costs one round trip on large bodies only.
  RecordingServer server;
  S3BlobStore store(options_for(server.endpoint()));
  std::vector<uint8_t> body(3 * 1024 * 1024 + 7);
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<uint8_t>(i * 31 + (i >> 12));
  ASSERT_TRUE(store.put(ObjectKey{"originals/big.png"}, body, "image/png").ok());
  const std::vector<Seen> seen = server.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].body == std::string(body.begin(), body.end()));
  EXPECT_EQ(seen[0].header("x-amz-content-sha256"), curl::sha256_hex(body));
  EXPECT_EQ(seen[0].header("authorization").find("expect"), std::string::npos);
}

TEST(S3Requests, BodilessRequestsCarryTheEmptyPayloadHash) {
  RecordingServer server;
  S3BlobStore store(options_for(server.endpoint()));
  server.answer(
      [](const Seen& s) { return s.method == "DELETE" ? xml(204, "") : xml(200, "bytes"); });
  ASSERT_TRUE(store.get(ObjectKey{"a/b.png"}).ok());
  ASSERT_TRUE(store.remove(ObjectKey{"a/b.png"}).ok());
  ASSERT_TRUE(store.ping().ok());
  const std::vector<Seen> seen = server.seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[1].method, "DELETE");
  EXPECT_EQ(seen[2].method, "HEAD");
  EXPECT_EQ(seen[2].target, "/bucket");
  for (const Seen& s : seen) {
    EXPECT_EQ(s.header("x-amz-content-sha256"),
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        << s.method;
    EXPECT_NE(s.header("authorization").find("SignedHeaders=host;x-amz-content-sha256;x-amz-date"),
              std::string::npos)
        << s.header("authorization");
  }
}

TEST(CurlClient, ReusesConnections) {
  RecordingServer server;
  curl::Client client({});
  const std::string url = server.endpoint() + "/bucket/k";
  for (int i = 0; i < 20; ++i) {
    Result<curl::Response> r = client.perform({.method = i % 2 ? "GET" : "PUT", .url = url});
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_EQ(client.connections_opened(), 1u);

  // Four threads at once: at most one connection each, kept for the next round.
  for (int round = 0; round < 3; ++round) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 10; ++i) EXPECT_TRUE(client.perform({.url = url}).ok());
      });
    }
    for (std::thread& thread : threads) thread.join();
  }
  EXPECT_LE(client.connections_opened(), 5u);
  EXPECT_EQ(server.seen().size(), 140u);
}

TEST(S3Requests, ListSendsACanonicalQueryAndFollowsContinuationTokens) {
  RecordingServer server;
  S3Options options = options_for(server.endpoint());
  options.list_page_size = 2;
  S3BlobStore store(options);
  server.answer([](const Seen& s) {
    if (s.target.find("continuation-token=") == std::string::npos) {
      return xml(200,
                 "<ListBucketResult><IsTruncated>true</IsTruncated>"
                 "<Contents><Key>p q/1.png</Key></Contents>"
                 "<Contents><Key>p q/not a key</Key></Contents>"
                 "<NextContinuationToken>t+/=&amp;1</NextContinuationToken></ListBucketResult>");
    }
    return xml(200,
               "<ListBucketResult><IsTruncated>false</IsTruncated>"
               "<Contents><Key>p_q/2.png</Key></Contents></ListBucketResult>");
  });
  Result<std::vector<ObjectKey>> keys = store.list("p q/\xC3\xA9&");
  ASSERT_TRUE(keys.ok()) << keys.error().message;
  // Keys that are not ObjectKeys (written by something else) are left out.
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].value, "p_q/2.png");
  const std::vector<Seen> seen = server.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].target, "/bucket?list-type=2&max-keys=2&prefix=p%20q%2F%C3%A9%26");
  EXPECT_EQ(seen[1].target,
            "/bucket?continuation-token=t%2B%2F%3D%261&list-type=2&max-keys=2&prefix=p%20q%2F%C3%"
            "A9%26");
}

TEST(S3Requests, ARepeatedContinuationTokenIsAnError) {
  RecordingServer server;
  S3BlobStore store(options_for(server.endpoint()));
  server.answer([](const Seen&) {
    return xml(200,
               "<ListBucketResult><IsTruncated>true</IsTruncated>"
               "<NextContinuationToken>same</NextContinuationToken></ListBucketResult>");
  });
  Result<std::vector<ObjectKey>> keys = store.list("");
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(keys.error().kind, ErrorKind::kInternal);
}

TEST(S3Errors, StatusesMapToKinds) {
  RecordingServer server;
  S3BlobStore store(options_for(server.endpoint()));
  struct Case {
    unsigned status;
    std::string code;
    ErrorKind kind;
  };
  for (const Case& c :
       {Case{503, "SlowDown", ErrorKind::kUnavailable},
        Case{500, "InternalError", ErrorKind::kUnavailable}, Case{502, "", ErrorKind::kUnavailable},
        Case{429, "", ErrorKind::kUnavailable},
        Case{403, "SignatureDoesNotMatch", ErrorKind::kInternal},
        Case{403, "AccessDenied", ErrorKind::kInternal},
        Case{404, "NoSuchBucket", ErrorKind::kInternal},
        Case{400, "InvalidArgument", ErrorKind::kInternal}}) {
    server.answer([&](const Seen&) { return xml(c.status, error_xml(c.code, "the reason")); });
    const Status put = store.put(ObjectKey{"k.png"}, bytes_of("x"), "image/png");
    ASSERT_FALSE(put.ok()) << c.status;
    EXPECT_EQ(put.error().kind, c.kind) << c.status << " " << put.error().message;
    EXPECT_NE(put.error().message.find("HTTP " + std::to_string(c.status)), std::string::npos)
        << put.error().message;
    EXPECT_NE(put.error().message.find(c.code), std::string::npos) << put.error().message;
    if (!c.code.empty()) {
      EXPECT_NE(put.error().message.find("the reason"), std::string::npos);
    }
    Result<std::vector<uint8_t>> get = store.get(ObjectKey{"k.png"});
    ASSERT_FALSE(get.ok());
    EXPECT_EQ(get.error().kind, c.kind) << get.error().message;
    Result<std::vector<ObjectKey>> list = store.list("");
    ASSERT_FALSE(list.ok());
    EXPECT_EQ(list.error().kind, c.kind) << list.error().message;
  }
  server.answer([](const Seen&) { return xml(403, error_xml("SignatureDoesNotMatch", "no")); });
  const Status denied = store.put(ObjectKey{"k.png"}, bytes_of("x"), "");
  ASSERT_FALSE(denied.ok());
  EXPECT_NE(denied.error().message.find("secret key"), std::string::npos) << denied.error().message;
  EXPECT_EQ(denied.error().message.find("secret\""), std::string::npos);  // never the secret

  server.answer([](const Seen&) { return xml(404, error_xml("NoSuchKey", "gone")); });
  Result<std::vector<uint8_t>> missing = store.get(ObjectKey{"k.png"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
  EXPECT_TRUE(store.remove(ObjectKey{"k.png"}).ok()) << "a missing key is removed";
}

TEST(S3Errors, ConnectionRefusedIsUnavailable) {
  // A port that was just free: nothing listens there.
  uint16_t port = 0;
  {
    RecordingServer server;
    port = static_cast<uint16_t>(std::stoi(server.endpoint().substr(17)));
  }
  S3BlobStore store(options_for("http://127.0.0.1:" + std::to_string(port)));
  const auto start = std::chrono::steady_clock::now();
  const Status put = store.put(ObjectKey{"k.png"}, bytes_of("x"), "");
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().kind, ErrorKind::kUnavailable) << put.error().message;
  EXPECT_NE(put.error().message.find("127.0.0.1:" + std::to_string(port)), std::string::npos)
      << put.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(store.ping().error().kind, ErrorKind::kUnavailable);
}

TEST(S3Errors, AServerThatNeverAnswersTimesOutAsUnavailable) {
  // A listening socket that is never accepted from: the connection completes (kernel backlog),
  // the request goes out, no answer ever comes.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  socklen_t length = sizeof address;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  S3Options options = options_for("http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)));
  options.timeout = std::chrono::milliseconds(400);
  S3BlobStore store(options);
  const auto start = std::chrono::steady_clock::now();
  Result<std::vector<uint8_t>> got = store.get(ObjectKey{"k.png"});
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ::close(fd);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().kind, ErrorKind::kUnavailable) << got.error().message;
  EXPECT_GE(elapsed, std::chrono::milliseconds(350));
  EXPECT_LT(elapsed, std::chrono::milliseconds(2000));
}

TEST(S3Options, PublicUrlAndValidation) {
  S3Options options = options_for("http://127.0.0.1:7070/");
  EXPECT_EQ(S3BlobStore(options).public_url(ObjectKey{"originals/a.png"}),
            "http://127.0.0.1:7070/bucket/originals/a.png");
  options.public_base_url = "https://cdn.example.com/media";
  EXPECT_EQ(S3BlobStore(options).public_url(ObjectKey{"originals/a.png"}),
            "https://cdn.example.com/media/originals/a.png");
  EXPECT_EQ(S3BlobStore(options).name(), "s3");
  EXPECT_THROW(S3BlobStore(options_for("127.0.0.1:7070")), std::invalid_argument);
  options = options_for("http://127.0.0.1:7070");
  options.bucket = "";
  EXPECT_THROW(S3BlobStore{options}, std::invalid_argument);
  options = options_for("http://127.0.0.1:7070");
  options.list_page_size = 0;
  EXPECT_THROW(S3BlobStore{options}, std::invalid_argument);
}

TEST(S3Options, InvalidKeysSendNothing) {
  RecordingServer server;
  S3BlobStore store(options_for(server.endpoint()));
  EXPECT_EQ(store.put(ObjectKey{"../x"}, bytes_of("x"), "").error().kind,
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(store.get(ObjectKey{"a b"}).error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(store.remove(ObjectKey{"/x"}).error().kind, ErrorKind::kInvalidArgument);
  EXPECT_TRUE(server.seen().empty());
}

}  // namespace
}  // namespace dither
