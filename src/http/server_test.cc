#include "http/server.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <future>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>

#include "http/errors.h"
#include "http/testing.h"

namespace dither::http {
namespace {

using testing::RawClient;
using testing::RawResponse;
using testing::RunningServer;

std::string get(std::string_view target, std::string_view extra_headers = "") {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n" + std::string(extra_headers) +
         "\r\n";
}

std::string post(std::string_view target, std::string_view body) {
  return "POST " + std::string(target) +
         " HTTP/1.1\r\nHost: test\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         std::string(body);
}

// The "code" of a JSON error body ("" when the body is not one).
std::string error_code_of(const RawResponse& response) {
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(response.body(), ec);
  if (ec || !v.is_object()) return "";
  const auto* error = v.as_object().if_contains("error");
  if (error == nullptr || !error->is_object()) return "";
  const auto* code = error->as_object().if_contains("code");
  if (code == nullptr || !code->is_string() || !error->as_object().contains("message")) return "";
  return std::string(code->as_string());
}

std::string header(const RawResponse& response, std::string_view name) {
  const auto it = response.find(boost::beast::string_view(name.data(), name.size()));
  return it == response.end() ? "" : std::string(it->value());
}

// The routes most tests use; `calls` counts the handlers that ran.
// A POST /echo whose body is `chunks`, each its own chunk (sizes in hex, as HTTP wants them).
std::string chunked_echo(const std::vector<std::string>& chunks) {
  std::string request = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (const std::string& chunk : chunks) {
    char size[20];
    std::snprintf(size, sizeof size, "%zx", chunk.size());
    request += std::string(size) + "\r\n" + chunk + "\r\n";
  }
  return request + "0\r\n\r\n";
}

// Holds blocking handlers until released: a handler calls hold(), which lets wait_until_held()
// return (once the first handler holds) and returns itself once release() is called.
class Gate {
 public:
  void hold() {
    if (!held_.exchange(true)) started_.count_down();
    released_.wait();
  }
  void wait_until_held() { started_.wait(); }
  void release() { release_.set_value(); }

 private:
  std::atomic<bool> held_{false};
  std::latch started_{1};
  std::promise<void> release_;
  std::shared_future<void> released_ = release_.get_future().share();
};

// A handler that holds at `gate`, then answers `body`.
SyncHandler held_at(Gate& gate, std::string body) {
  return [&gate, body = std::move(body)](const RequestContext&) {
    gate.hold();
    return json_response(200, body);
  };
}

Router test_router(std::atomic<int>& calls) {
  Router router;
  router.add(Verb::get, "/hello", [&calls](const RequestContext&) {
    ++calls;
    return json_response(200, R"({"hello":"world"})");
  });
  router.add(Verb::get, "/images/{uuid}", [&calls](const RequestContext& c) {
    ++calls;
    return json_response(200, std::string(c.param("uuid")));
  });
  router.add(Verb::post, "/echo", [&calls](const RequestContext& c) {
    ++calls;
    Response r;
    r.content_type = "application/octet-stream";
    r.body = c.request.body();
    return r;
  });
  router.add(Verb::get, "/query", [&calls](const RequestContext& c) {
    ++calls;
    return json_response(200, std::string(c.query_value("name").value_or("<none>")));
  });
  router.add(Verb::get, "/id", [&calls](const RequestContext& c) {
    ++calls;
    return json_response(200, c.request_id);
  });
  return router;
}

class ServerTest : public ::testing::Test {
 protected:
  void start(ServerOptions options = {}) {
    server_ = std::make_unique<RunningServer>(test_router(calls_), std::move(options));
  }
  uint16_t port() const { return server_->port(); }

  std::atomic<int> calls_{0};
  std::unique_ptr<RunningServer> server_;
};

TEST_F(ServerTest, GetWithParams) {
  start();
  RawClient client(port());
  RawResponse r = client.exchange(get("/hello"));
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r.body(), R"({"hello":"world"})");
  EXPECT_EQ(header(r, "Content-Type"), "application/json");
  EXPECT_EQ(header(r, "Content-Length"), "17");
  EXPECT_EQ(header(r, "Server"), "dither");
  EXPECT_TRUE(r.keep_alive());

  r = client.exchange(get("/images/a%20b%2Fc"));
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r.body(), "a b/c");
}

TEST_F(ServerTest, QueryDecoding) {
  start();
  RawClient client(port());
  EXPECT_EQ(client.exchange(get("/query?x=1&name=red+dot%21")).body(), "red dot!");
  EXPECT_EQ(client.exchange(get("/query")).body(), "<none>");
  const RawResponse bad = client.exchange(get("/query?name=%zz"));
  EXPECT_EQ(bad.result_int(), 400);
  EXPECT_EQ(error_code_of(bad), "invalid_argument");
}

TEST_F(ServerTest, NotFoundAndMethodNotAllowed) {
  start();
  RawClient client(port());
  RawResponse r = client.exchange(get("/nothing/here"));
  EXPECT_EQ(r.result_int(), 404);
  EXPECT_EQ(error_code_of(r), "not_found");
  EXPECT_EQ(header(r, "Content-Type"), "application/json");

  r = client.exchange("DELETE /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.result_int(), 405);
  EXPECT_EQ(error_code_of(r), "method_not_allowed");
  EXPECT_EQ(header(r, "Allow"), "GET, HEAD");

  r = client.exchange("BREW /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.result_int(), 405);
  EXPECT_EQ(header(r, "Allow"), "POST");
  EXPECT_TRUE(r.keep_alive());
  EXPECT_EQ(client.exchange(get("/hello")).result_int(), 200);  // still usable
}

TEST_F(ServerTest, BodyLimitByContentLength) {
  start({.body_limit = 1024});
  {
    RawClient client(port());
    const RawResponse r = client.exchange(post("/echo", std::string(1024, 'x')));
    EXPECT_EQ(r.result_int(), 200);
    EXPECT_EQ(r.body().size(), 1024u);
  }
  EXPECT_EQ(calls_, 1);
  RawClient client(port());
  // Only the header is sent: the answer must not wait for the body.
  const RawResponse r =
      client.exchange("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n");
  EXPECT_EQ(r.result_int(), 413);
  EXPECT_EQ(error_code_of(r), "too_large");
  EXPECT_FALSE(r.keep_alive());
  EXPECT_TRUE(client.closed_by_peer());
  EXPECT_EQ(calls_, 1);
}

TEST_F(ServerTest, BodyLimitWithTheBodySent) {
  start({.body_limit = 1024});
  RawClient client(port());
  const RawResponse r = client.exchange(post("/echo", std::string(5000, 'x')));
  EXPECT_EQ(r.result_int(), 413);
  EXPECT_TRUE(client.closed_by_peer());
  EXPECT_EQ(calls_, 0);
}

TEST_F(ServerTest, BodyLimitByChunkedBody) {
  start({.body_limit = 1024});
  {
    RawClient client(port());
    const RawResponse r =
        client.exchange(chunked_echo({std::string(512, 'a'), std::string(512, 'b')}));
    EXPECT_EQ(r.result_int(), 200);
    EXPECT_EQ(r.body(), std::string(512, 'a') + std::string(512, 'b'));
  }
  EXPECT_EQ(calls_, 1);
  RawClient client(port());
  const RawResponse r =
      client.exchange(chunked_echo({std::string(1024, 'a'), std::string(16, 'b')}));
  EXPECT_EQ(r.result_int(), 413);
  EXPECT_EQ(error_code_of(r), "too_large");
  EXPECT_TRUE(client.closed_by_peer());
  EXPECT_EQ(calls_, 1);
}

TEST_F(ServerTest, ExpectContinue) {
  start({.body_limit = 1024});
  RawClient client(port());
  client.send(
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(client.read().result_int(), 100);
  client.send("hello");
  const RawResponse r = client.read();
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r.body(), "hello");

  RawClient refused(port());
  const RawResponse big = refused.exchange(
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(big.result_int(), 413);
}

TEST_F(ServerTest, MalformedRequests) {
  start();
  for (const std::string& bytes : {
           std::string("GARBAGE\r\n\r\n"),
           std::string("GET /hello HTTP/1.1\r\nContent-Length: abc\r\n\r\n"),
           std::string("GET /hello HTTP/1.1\r\nBad Header\r\n\r\n"),
           std::string("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
       }) {
    RawClient client(port());
    const RawResponse r = client.exchange(bytes);
    EXPECT_EQ(r.result_int(), 400) << bytes;
    EXPECT_EQ(error_code_of(r), "invalid_argument") << bytes;
    EXPECT_TRUE(client.closed_by_peer()) << bytes;
  }
  RawClient client(port());
  for (const char* target : {"hello", "*", "http://host/hello"}) {
    const RawResponse r = client.exchange(get(target));
    EXPECT_EQ(r.result_int(), 400) << target;
    EXPECT_EQ(error_code_of(r), "invalid_argument") << target;
  }
  EXPECT_EQ(calls_, 0);
}

TEST_F(ServerTest, HeaderTooLarge) {
  start();
  RawClient client(port());
  const RawResponse r =
      client.exchange(get("/hello", "X-Big: " + std::string(40000, 'b') + "\r\n"));
  EXPECT_EQ(r.result_int(), 431);
  EXPECT_EQ(error_code_of(r), "too_large");
  EXPECT_EQ(calls_, 0);
}

TEST_F(ServerTest, KeepAliveAndPipelining) {
  start();
  RawClient client(port());
  EXPECT_EQ(client.exchange(get("/hello")).result_int(), 200);
  EXPECT_EQ(client.exchange(get("/images/1")).body(), "1");
  client.send(get("/images/2") + get("/images/3") + post("/echo", "four"));
  EXPECT_EQ(client.read().body(), "2");
  EXPECT_EQ(client.read().body(), "3");
  EXPECT_EQ(client.read().body(), "four");

  const RawResponse last = client.exchange(get("/hello", "Connection: close\r\n"));
  EXPECT_EQ(last.result_int(), 200);
  EXPECT_FALSE(last.keep_alive());
  EXPECT_TRUE(client.closed_by_peer());
}

TEST_F(ServerTest, Http10ClosesUnlessKeepAlive) {
  start();
  RawClient client(port());
  RawResponse r = client.exchange("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_EQ(r.version(), 10u);
  EXPECT_TRUE(r.keep_alive());
  r = client.exchange("GET /hello HTTP/1.0\r\n\r\n");
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_TRUE(client.closed_by_peer());
}

TEST_F(ServerTest, Head) {
  start();
  RawClient client(port());
  const RawResponse r = client.exchange("HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n", true);
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(header(r, "Content-Length"), "17");
  EXPECT_TRUE(r.body().empty());
  // Had a body been sent, this would read it as the next response.
  EXPECT_EQ(client.exchange(get("/hello")).body(), R"({"hello":"world"})");
}

TEST_F(ServerTest, RequestId) {
  start();
  RawClient client(port());
  RawResponse r = client.exchange(get("/id", "X-Request-Id: abc.DEF_123-x\r\n"));
  EXPECT_EQ(header(r, "X-Request-Id"), "abc.DEF_123-x");
  EXPECT_EQ(r.body(), "abc.DEF_123-x");

  r = client.exchange(get("/id", "X-Request-Id: bad id!\r\n"));
  const std::string generated = header(r, "X-Request-Id");
  EXPECT_FALSE(generated.empty());
  EXPECT_NE(generated, "bad id!");
  EXPECT_EQ(r.body(), generated);

  r = client.exchange(get("/id", "X-Request-Id: " + std::string(129, 'a') + "\r\n"));
  EXPECT_NE(header(r, "X-Request-Id"), std::string(129, 'a'));

  r = client.exchange(get("/hello"));
  const std::string another = header(r, "X-Request-Id");
  EXPECT_FALSE(another.empty());
  EXPECT_NE(another, generated);

  // Error responses carry it too.
  r = client.exchange(get("/nothing", "X-Request-Id: lost-1\r\n"));
  EXPECT_EQ(header(r, "X-Request-Id"), "lost-1");
}

TEST(Server, HandlerExceptionsGive500) {
  Router router;
  router.add(Verb::get, "/inline",
             [](const RequestContext&) -> Response { throw std::runtime_error("boom"); });
  router.add(
      Verb::get, "/blocking",
      [](const RequestContext&) -> Response { throw std::runtime_error("boom"); },
      Dispatch::kBlocking);
  router.add_async(Verb::get, "/async",
                   [](const RequestContext&) -> boost::asio::awaitable<Response> {
                     throw std::logic_error("boom");
                     co_return Response{};
                   });
  router.add(Verb::get, "/ok", [](const RequestContext&) { return json_response(200, "{}"); });
  RunningServer server(std::move(router));
  RawClient client(server.port());
  for (const char* path : {"/inline", "/blocking", "/async"}) {
    const RawResponse r = client.exchange(get(path));
    EXPECT_EQ(r.result_int(), 500) << path;
    EXPECT_EQ(error_code_of(r), "internal") << path;
    EXPECT_TRUE(r.keep_alive()) << path;
    EXPECT_EQ(client.exchange(get("/ok")).result_int(), 200) << path;  // the connection lives on
  }
}

// A message that quotes what a client sent (a cursor, a file name) stays valid JSON.
TEST(Errors, MessagesAreAlwaysValidUtf8) {
  const Response r = error_response(400, "invalid_argument", "cursor 'a\xff\xfe\xc3' is bad");
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(r.body, ec);
  ASSERT_FALSE(ec) << r.body;
  EXPECT_EQ(std::string(v.at("error").at("message").as_string()),
            "cursor 'a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD' is bad");
  EXPECT_EQ(std::string(boost::json::parse(error_response(400, "x", "caf\xC3\xA9").body)
                            .at("error")
                            .at("message")
                            .as_string()),
            "caf\xC3\xA9");
}

// No 5xx tells the client what went wrong inside: the message becomes a generic one with the
// request id (the detail goes to the log); 4xx answers and other bodies pass unchanged.
TEST(Server, ServerErrorsCarryNoDetail) {
  Router router;
  router.add(Verb::get, "/500", [](const RequestContext&) {
    return error_response(500, "internal", "cannot open /var/lib/secret/db: SQL error near x");
  });
  router.add(Verb::get, "/503", [](const RequestContext&) {
    return error_response(503, "unavailable", "cannot connect to 10.1.2.3:5432");
  });
  router.add(Verb::get, "/400", [](const RequestContext&) {
    return error_response(400, "invalid_argument", "limit must be an integer");
  });
  router.add(Verb::get, "/503-health",
             [](const RequestContext&) { return json_response(503, R"({"status":"degraded"})"); });
  RunningServer server(std::move(router));
  RawClient client(server.port());
  for (const char* path : {"/500", "/503"}) {
    const RawResponse r = client.exchange(get(path));
    EXPECT_GE(r.result_int(), 500u) << path;
    EXPECT_EQ(r.body().find("10.1.2.3"), std::string::npos) << r.body();
    EXPECT_EQ(r.body().find("/var/lib"), std::string::npos) << r.body();
    EXPECT_EQ(r.body().find("SQL"), std::string::npos) << r.body();
    const std::string id(r["X-Request-Id"]);
    EXPECT_NE(r.body().find("\"request_id\":\"" + id + "\""), std::string::npos) << r.body();
  }
  EXPECT_EQ(error_code_of(client.exchange(get("/503"))), "unavailable");
  EXPECT_NE(client.exchange(get("/400")).body().find("limit must be an integer"),
            std::string::npos);
  EXPECT_EQ(client.exchange(get("/503-health")).body(), R"({"status":"degraded"})");
}

// A service's server refuses every request without the gateway's token, but /health.
TEST(Server, RequiredHeaderGuardsAllButOpenPaths) {
  Router router;
  router.add(Verb::get, "/images", [](const RequestContext&) { return json_response(200, "[]"); });
  router.add(Verb::get, "/health", [](const RequestContext&) { return json_response(200, "{}"); });
  ServerOptions options;
  options.required_header = "X-Service-Token";
  options.required_value = "0123456789abcdef0123456789abcdef";
  RunningServer server(std::move(router), options);
  RawClient client(server.port());
  const auto with = [](std::string_view token) {
    return "GET /images HTTP/1.1\r\nHost: x\r\nX-Service-Token: " + std::string(token) + "\r\n\r\n";
  };
  EXPECT_EQ(client.exchange(get("/images")).result_int(), 403);
  EXPECT_EQ(error_code_of(client.exchange(get("/images"))), "forbidden");
  EXPECT_EQ(client.exchange(with("0123456789abcdef0123456789abcdeX")).result_int(), 403);
  EXPECT_EQ(client.exchange(with("0123456789abcdef0123456789abcde")).result_int(), 403);
  EXPECT_EQ(client.exchange(with("0123456789ABCDEF0123456789ABCDEF")).result_int(), 403);
  EXPECT_EQ(client.exchange(with("0123456789abcdef0123456789abcdef")).result_int(), 200);
  EXPECT_EQ(client.exchange(get("/health")).result_int(), 200);
}

TEST(Server, InvalidResponsesGive500) {
  Router router;
  router.add(Verb::get, "/status", [](const RequestContext&) { return json_response(42, "{}"); });
  router.add(Verb::get, "/header", [](const RequestContext&) {
    Response r = json_response(200, "{}");
    r.headers.emplace_back("X-Evil", "a\r\nSet-Cookie: x=1");
    return r;
  });
  router.add(Verb::get, "/framing", [](const RequestContext&) {
    Response r = json_response(200, "{}");
    r.headers.emplace_back("Content-Length", "1000");
    r.headers.emplace_back("connection", "close");
    r.headers.emplace_back("Cache-Control", "no-store");
    return r;
  });
  router.add(Verb::get, "/empty", [](const RequestContext&) {
    Response r;
    r.status = 204;
    r.body = "ignored";
    r.headers.emplace_back("X-Extra", "1");
    return r;
  });
  RunningServer server(std::move(router));
  RawClient client(server.port());
  EXPECT_EQ(client.exchange(get("/status")).result_int(), 500);
  const RawResponse evil = client.exchange(get("/header"));
  EXPECT_EQ(evil.result_int(), 500);
  EXPECT_EQ(header(evil, "Set-Cookie"), "");
  const RawResponse framing = client.exchange(get("/framing"));
  EXPECT_EQ(header(framing, "Content-Length"), "2");  // the handler's framing headers are dropped
  EXPECT_TRUE(framing.keep_alive());
  EXPECT_EQ(header(framing, "Cache-Control"), "no-store");
  const RawResponse empty = client.exchange(get("/empty"));
  EXPECT_EQ(empty.result_int(), 204);
  EXPECT_EQ(header(empty, "X-Extra"), "1");
  EXPECT_TRUE(empty.body().empty());
  EXPECT_EQ(client.exchange(get("/status")).result_int(), 500);  // framing intact after the 204
}

TEST(Server, DispatchKinds) {
  std::mutex mutex;
  std::thread::id io_thread;
  std::thread::id blocking_thread;
  Router router;
  router.add(Verb::get, "/inline", [&](const RequestContext&) {
    const std::lock_guard lock(mutex);
    io_thread = std::this_thread::get_id();
    return json_response(200, "inline");
  });
  router.add(
      Verb::get, "/blocking",
      [&](const RequestContext& c) {
        const std::lock_guard lock(mutex);
        blocking_thread = std::this_thread::get_id();
        return json_response(200, "blocking:" + std::string(c.param("x")));
      },
      Dispatch::kBlocking);
  router.add(
      Verb::get, "/blocking/{x}",
      [](const RequestContext& c) { return json_response(200, std::string(c.param("x"))); },
      Dispatch::kBlocking);
  router.add_async(
      Verb::get, "/async/{ms}", [](const RequestContext& c) -> boost::asio::awaitable<Response> {
        boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
        timer.expires_after(std::chrono::milliseconds(std::stoi(std::string(c.param("ms")))));
        co_await timer.async_wait(boost::asio::use_awaitable);
        co_return json_response(200, "slept " + std::string(c.param("ms")));
      });
  RunningServer server(std::move(router));
  RawClient client(server.port());
  EXPECT_EQ(client.exchange(get("/inline")).body(), "inline");
  EXPECT_EQ(client.exchange(get("/blocking")).body(), "blocking:");
  EXPECT_EQ(client.exchange(get("/blocking/7")).body(), "7");
  EXPECT_EQ(client.exchange(get("/async/20")).body(), "slept 20");
  const std::lock_guard lock(mutex);
  EXPECT_NE(io_thread, std::thread::id());
  EXPECT_NE(blocking_thread, std::thread::id());
  EXPECT_NE(io_thread, blocking_thread);
}

TEST(Server, MaxInFlight) {
  Gate gate;
  Router router;
  router.add(Verb::get, "/slow", held_at(gate, "slow"), Dispatch::kBlocking);
  router.add(Verb::get, "/fast", [](const RequestContext&) { return json_response(200, "fast"); });
  RunningServer server(std::move(router), {.max_in_flight = 1});

  RawClient slow(server.port());
  slow.send(get("/slow"));
  gate.wait_until_held();
  RawClient fast(server.port());
  const RawResponse refused = fast.exchange(get("/fast"));
  EXPECT_EQ(refused.result_int(), 503);
  EXPECT_EQ(error_code_of(refused), "overloaded");
  EXPECT_TRUE(refused.keep_alive());
  // Unknown paths are not requests in flight: still a 404.
  EXPECT_EQ(fast.exchange(get("/nothing")).result_int(), 404);

  gate.release();
  EXPECT_EQ(slow.read().body(), "slow");
  EXPECT_EQ(fast.exchange(get("/fast")).body(), "fast");
}

class FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "http_file_test_" + std::to_string(::getpid()) + ".bin";
    std::mt19937 random(7);
    content_.resize(300 * 1024 + 17);
    for (char& c : content_) c = static_cast<char>(random());
    std::ofstream(path_, std::ios::binary)
        .write(content_.data(), static_cast<std::streamsize>(content_.size()));
  }
  void TearDown() override { std::remove(path_.c_str()); }
  std::string path_;
  std::string content_;
};

TEST_F(FileTest, StreamsFilesAndMissingIs404) {
  Router router;
  router.add(Verb::get, "/file", [this](const RequestContext&) {
    Response r;
    r.content_type = "image/png";
    r.file_path = path_;
    r.body = "ignored";
    return r;
  });
  router.add(Verb::get, "/missing", [this](const RequestContext&) {
    Response r;
    r.file_path = path_ + ".does-not-exist";
    return r;
  });
  RunningServer server(std::move(router));
  RawClient client(server.port());
  const RawResponse r = client.exchange(get("/file"));
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(header(r, "Content-Type"), "image/png");
  EXPECT_EQ(header(r, "Content-Length"), std::to_string(content_.size()));
  EXPECT_TRUE(r.body() == content_);

  const RawResponse head = client.exchange("HEAD /file HTTP/1.1\r\nHost: x\r\n\r\n", true);
  EXPECT_EQ(header(head, "Content-Length"), std::to_string(content_.size()));
  EXPECT_TRUE(head.body().empty());

  const RawResponse missing = client.exchange(get("/missing"));
  EXPECT_EQ(missing.result_int(), 404);
  EXPECT_EQ(error_code_of(missing), "not_found");
  EXPECT_EQ(header(missing, "Content-Type"), "application/json");
}

TEST(Server, IdleAndHeaderTimeoutsClose) {
  Router router;
  router.add(Verb::get, "/x", [](const RequestContext&) { return json_response(200, "{}"); });
  RunningServer server(std::move(router), {.header_timeout = std::chrono::seconds(1),
                                           .idle_timeout = std::chrono::seconds(1)});
  RawClient idle(server.port());
  EXPECT_EQ(idle.exchange(get("/x")).result_int(), 200);
  EXPECT_TRUE(idle.closed_by_peer());  // after the idle timeout
  RawClient partial(server.port());
  partial.send("GET /x HTTP/1.1\r\nHost");
  EXPECT_TRUE(partial.closed_by_peer());  // after the header timeout
}

// The timeouts apply to reads and writes only: a connection that asks again and again within its
// idle timeout stays open past it, and a request handled for longer than the idle timeout gets
// its answer; the idle timeout closes the connection after that.
TEST(Server, TimeoutsCoverReadsAndWritesOnly) {
  Router router;
  router.add(Verb::get, "/x", [](const RequestContext&) { return json_response(200, "{}"); });
  router.add(
      Verb::get, "/slow",
      [](const RequestContext&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1200));
        return json_response(200, "{}");
      },
      Dispatch::kBlocking);
  RunningServer server(std::move(router), {.idle_timeout = std::chrono::seconds(1)});
  RawClient client(server.port());
  for (int i = 0; i < 4; ++i) {  // 1.6 s in all
    EXPECT_EQ(client.exchange(get("/x")).result_int(), 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
  }
  EXPECT_EQ(client.exchange(get("/slow")).result_int(), 200);
  EXPECT_TRUE(client.closed_by_peer());
}

// Connections are capped per client address (and in total): one more is closed at once, and a
// place frees when a connection ends.
TEST(Server, ConnectionsPerAddressAreCapped) {
  Router router;
  router.add(Verb::get, "/x", [](const RequestContext&) { return json_response(200, "{}"); });
  ServerOptions options;
  options.max_connections_per_address = 2;
  RunningServer server(std::move(router), options);
  auto a = std::make_unique<RawClient>(server.port());
  RawClient b(server.port());
  EXPECT_EQ(a->exchange(get("/x")).result_int(), 200);
  EXPECT_EQ(b.exchange(get("/x")).result_int(), 200);
  RawClient third(server.port());
  third.send(get("/x"));
  EXPECT_TRUE(third.closed_by_peer());
  a.reset();  // frees a place
  for (int i = 0; i < 100; ++i) {
    RawClient again(server.port());
    again.send(get("/x"));
    try {
      EXPECT_EQ(again.read().result_int(), 200);
      return;
    } catch (const std::exception&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the close is not seen yet
    }
  }
  ADD_FAILURE() << "no place freed after a connection closed";
}

// With a minimum body rate, a slow but steady body passes whatever its length, a drip does not.
TEST(Server, BodyMinimumRate) {
  Router router;
  router.add(Verb::post, "/up", [](const RequestContext& c) {
    return json_response(200, std::to_string(c.request.body().size()));
  });
  ServerOptions options;
  options.body_limit = 1 << 20;
  options.body_min_rate = 2000;  // bytes/s
  options.body_grace = std::chrono::seconds(1);
  options.body_timeout = std::chrono::seconds(1);  // not used with a rate
  RunningServer server(std::move(router), options);
  // 6000 bytes at about 4000 bytes/s: longer than body_timeout, faster than the rate.
  RawClient steady(server.port());
  steady.send("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 6000\r\n\r\n");
  for (int i = 0; i < 6; ++i) {
    steady.send(std::string(1000, 'a'));
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  const RawResponse ok = steady.read();
  EXPECT_EQ(ok.result_int(), 200);
  EXPECT_EQ(ok.body(), "6000");
  // 10 bytes a second: behind the rate once the grace is over.
  RawClient drip(server.port());
  drip.send("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
  bool closed = false;
  for (int i = 0; i < 40 && !closed; ++i) {
    boost::system::error_code ec;
    boost::asio::write(drip.socket(), boost::asio::buffer("0123456789", 10), ec);
    closed = static_cast<bool>(ec);
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  EXPECT_TRUE(closed || drip.closed_by_peer()) << "a slowloris body was still being read";
}

TEST(Server, StopClosesIdleConnectionsAndEnds) {
  Router router;
  router.add(Verb::get, "/x", [](const RequestContext&) { return json_response(200, "{}"); });
  RunningServer server(std::move(router));
  RawClient client(server.port());
  EXPECT_EQ(client.exchange(get("/x")).result_int(), 200);
  RawClient silent(server.port());
  server.server().stop();
  server.join();  // returns only once every connection is closed
  EXPECT_TRUE(client.closed_by_peer());
  EXPECT_TRUE(silent.closed_by_peer());
  EXPECT_THROW(RawClient{server.port()}, boost::system::system_error);
}

TEST(Server, StopLetsRequestsInProgressFinish) {
  Gate gate;
  Router router;
  router.add(Verb::get, "/slow", held_at(gate, "done"), Dispatch::kBlocking);
  RunningServer server(std::move(router));
  RawClient client(server.port());
  client.send(get("/slow"));
  gate.wait_until_held();
  server.server().stop();
  gate.release();
  const RawResponse r = client.read();
  EXPECT_EQ(r.body(), "done");
  EXPECT_FALSE(r.keep_alive());
  server.join();
}

TEST(Server, ListenFailures) {
  RunningServer first(Router{});
  boost::asio::io_context ioc;
  BlockingPool pool(1, -1);
  Server second(ioc, pool, Router{}, {.port = first.port()});
  const Status s = second.listen();
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(s.error().message.find(std::to_string(first.port())), std::string::npos);

  Server by_name(ioc, pool, Router{}, {.host = "localhost"});
  EXPECT_TRUE(by_name.listen());
  EXPECT_NE(by_name.port(), 0);
}

// Many clients on a server with two I/O threads: every answer is the right one.
TEST(Server, ConcurrentClients) {
  Router router;
  router.add(Verb::get, "/inline/{n}",
             [](const RequestContext& c) { return json_response(200, std::string(c.param("n"))); });
  router.add(
      Verb::get, "/blocking/{n}",
      [](const RequestContext& c) { return json_response(200, std::string(c.param("n"))); },
      Dispatch::kBlocking);
  router.add_async(Verb::get, "/async/{n}",
                   [](const RequestContext& c) -> boost::asio::awaitable<Response> {
                     co_return json_response(200, std::string(c.param("n")));
                   });
  RunningServer server(std::move(router), {}, 2);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      RawClient client(server.port());
      for (int i = 0; i < 60; ++i) {
        const std::string n = std::to_string(t * 1000 + i);
        const char* kind = i % 3 == 0 ? "/inline/" : i % 3 == 1 ? "/blocking/" : "/async/";
        const RawResponse r = client.exchange(get(kind + n));
        if (r.result_int() != 200 || r.body() != n) ++wrong;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong, 0);
}

}  // namespace
}  // namespace dither::http

namespace dither::http {
namespace {

// One acceptor per context (SO_REUSEPORT), each context on its own thread: every connection is
// served, on one of the threads, and the contexts share one port.
TEST(MultiContextServer, ServesEveryConnectionOnOnePort) {
  boost::asio::io_context a(1);
  boost::asio::io_context b(1);
  BlockingPool pool(1, -1);
  std::mutex mutex;
  std::set<std::thread::id> threads_seen;
  Router router;
  router.add(Verb::get, "/where", [&](const RequestContext&) {
    const std::lock_guard lock(mutex);
    threads_seen.insert(std::this_thread::get_id());
    return json_response(200, "{}");
  });
  {
    Server server(std::vector<boost::asio::io_context*>{&a, &b}, pool, std::move(router), {});
    ASSERT_TRUE(server.listen().ok());
    ASSERT_NE(server.port(), 0);
    std::thread ta([&] { a.run(); });
    std::thread tb([&] { b.run(); });
    for (int i = 0; i < 64; ++i) {
      testing::RawClient client(server.port());
      client.send("GET /where HTTP/1.1\r\nHost: x\r\n\r\n");
      EXPECT_EQ(client.read().result_int(), 200u);
    }
    server.stop();
    ta.join();
    tb.join();
  }
  // What is left (nothing, once stopped and run to the end) ends while both contexts live.
  a.restart();
  b.restart();
  a.poll();
  b.poll();
  EXPECT_GE(threads_seen.size(), 1u);
  EXPECT_LE(threads_seen.size(), 2u);
}

TEST(MultiContextServer, SecondServerOnTheSamePortIsRefused) {
  boost::asio::io_context a(1);
  boost::asio::io_context b(1);
  BlockingPool pool(1, -1);
  {
    Server first(std::vector<boost::asio::io_context*>{&a, &b}, pool, Router{}, {});
    ASSERT_TRUE(first.listen().ok());
    ServerOptions same;
    same.port = first.port();
    Server second(a, pool, Router{}, same);
    Status s = second.listen();
    EXPECT_FALSE(s.ok()) << "a server without SO_REUSEPORT must not share the port";
    if (!s.ok()) {
      EXPECT_EQ(s.error().kind, ErrorKind::kUnavailable);
    }
  }
  // The servers' stop handlers (and their accept loops) end while both contexts live.
  for (int round = 0; round < 10; ++round) {
    a.restart();
    b.restart();
    a.poll();
    b.poll();
  }
}

// The blocking pool's queue is bounded: one thread and one waiting task, so a third blocking
// request is refused at once with 503 and Retry-After, while inline routes still answer.
TEST(Server, BlockingQueueBound) {
  Gate gate;
  std::atomic<int> ran{0};
  Router router;
  router.add(
      Verb::get, "/slow",
      [&](const RequestContext&) {
        ++ran;
        gate.hold();
        return json_response(200, "slow");
      },
      Dispatch::kBlocking);
  router.add(Verb::get, "/fast", [](const RequestContext&) { return json_response(200, "fast"); });
  RunningServer server(std::move(router), {}, 1, /*blocking_threads=*/1, /*max_waiting=*/1);

  RawClient running(server.port());
  running.send(get("/slow"));
  gate.wait_until_held();
  RawClient waiting(server.port());
  waiting.send(get("/slow"));
  // The second waits behind the first (admitted, not running yet).
  for (int i = 0; i < 2000 && server.pool().load() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(server.pool().load(), 2);
  RawClient refused_client(server.port());
  const RawResponse refused = refused_client.exchange(get("/slow"));
  EXPECT_EQ(refused.result_int(), 503);
  EXPECT_EQ(error_code_of(refused), "overloaded");
  EXPECT_EQ(refused[boost::beast::http::field::retry_after], "1");
  EXPECT_EQ(refused_client.exchange(get("/fast")).body(), "fast");

  gate.release();
  EXPECT_EQ(running.read().body(), "slow");
  EXPECT_EQ(waiting.read().body(), "slow");
  // Once the queue drains, blocking requests are admitted again.
  EXPECT_EQ(refused_client.exchange(get("/slow")).body(), "slow");
  EXPECT_EQ(ran.load(), 3);
}

// A blocking route's precheck runs on the I/O thread: its answers (refusals, or answers that need
// no blocking work) are sent while the blocking pool is full.
TEST(Server, PrecheckAnswersWithoutThePool) {
  Gate gate;
  Router router;
  router.add(
      Verb::get, "/work/{what}",
      [&](const RequestContext& c) {
        if (c.param("what") == "hold") gate.hold();
        return json_response(200, "worked");
      },
      Dispatch::kBlocking,
      [](const RequestContext& c) -> std::optional<Response> {
        if (c.param("what") == "refuse") return error_response(429, "rate_limited", "no");
        if (c.param("what") == "cached") return json_response(200, "cached");
        return std::nullopt;
      });
  RunningServer server(std::move(router), {}, 1, /*blocking_threads=*/1, /*max_waiting=*/0);
  RawClient holder(server.port());
  holder.send(get("/work/hold"));
  gate.wait_until_held();
  RawClient client(server.port());
  EXPECT_EQ(client.exchange(get("/work/refuse")).result_int(), 429);
  EXPECT_EQ(client.exchange(get("/work/cached")).body(), "cached");
  EXPECT_EQ(error_code_of(client.exchange(get("/work/other"))), "overloaded");
  gate.release();
  EXPECT_EQ(holder.read().body(), "worked");
  EXPECT_EQ(client.exchange(get("/work/other")).body(), "worked");
}

// A response with a delay is sent that much later, on a connection that stays usable; the request
// is no longer in flight meanwhile.
TEST(Server, DelayedAnswers) {
  Router router;
  router.add(Verb::get, "/slow", [](const RequestContext&) {
    Response r = json_response(429, "later");
    r.delay = std::chrono::milliseconds{300};
    return r;
  });
  router.add(Verb::get, "/fast", [](const RequestContext&) { return json_response(200, "now"); });
  RunningServer server(std::move(router), {.max_in_flight = 1});
  RawClient delayed(server.port());
  const auto t0 = std::chrono::steady_clock::now();
  delayed.send(get("/slow"));
  RawClient other(server.port());
  EXPECT_EQ(other.exchange(get("/fast")).body(), "now") << "a delayed answer is not in flight";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds{300});
  EXPECT_EQ(delayed.read().body(), "later");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds{300});
  EXPECT_EQ(delayed.exchange(get("/fast")).body(), "now");
}

TEST(BlockingPool, TicketsCountUntilReleased) {
  BlockingPool pool(2, 1);
  EXPECT_EQ(pool.capacity(), 3);
  {
    const BlockingPool::Ticket a(pool), b(pool), c(pool);
    EXPECT_TRUE(a && b && c);
    const BlockingPool::Ticket d(pool);
    EXPECT_FALSE(d);
    EXPECT_EQ(pool.load(), 3);
  }
  EXPECT_EQ(pool.load(), 0);
  BlockingPool unbounded(1, -1);
  EXPECT_EQ(unbounded.capacity(), 0);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(BlockingPool::Ticket(unbounded));
}

TEST(BlockingPool, OneKeyHoldsAtMostHalfThePlaces) {
  BlockingPool pool(4, 4, 2);
  EXPECT_EQ(pool.capacity(), 8);
  EXPECT_EQ(pool.per_key_capacity(), 4);
  EXPECT_EQ(pool.per_key_running(), 2);
  {
    std::vector<std::unique_ptr<BlockingPool::Ticket>> a;
    for (int i = 0; i < 4; ++i) {
      a.push_back(std::make_unique<BlockingPool::Ticket>(pool, "a"));
      EXPECT_TRUE(*a.back()) << i;
    }
    EXPECT_FALSE(BlockingPool::Ticket(pool, "a")) << "a fifth place for one key";
    EXPECT_TRUE(BlockingPool::Ticket(pool, "b")) << "another key is still admitted";
    EXPECT_TRUE(BlockingPool::Ticket(pool, "")) << "nobody's task: only the pool's bound";
    a.pop_back();
    EXPECT_TRUE(BlockingPool::Ticket(pool, "a")) << "a released place is the key's again";
  }
  EXPECT_EQ(pool.load(), 0);
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(BlockingPool::Ticket(pool, "a")) << "all released";
  // An unbounded pool bounds no key's places, and still shares running places (below).
  BlockingPool unbounded(2, -1, 1);
  EXPECT_EQ(unbounded.per_key_capacity(), 0);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(BlockingPool::Ticket(unbounded, "a"));
}

// A client past its running share waits behind its own requests, never in front of another's:
// with one running place per key, "a"'s three requests run one at a time while "b"'s runs beside
// the first of them.
TEST(BlockingPool, AClientPastItsShareWaitsBehindItself) {
  for (const int max_waiting : {16, -1}) {
    boost::asio::io_context io;
    BlockingPool pool(4, max_waiting, 1);
    std::mutex m;
    std::condition_variable cv;
    std::map<std::string, int> running, most;
    bool open = false;
    Router router;
    router.add(
        Verb::get, "/work",
        [&](const RequestContext& c) {
          std::unique_lock lock(m);
          most[c.client_key] = std::max(most[c.client_key], ++running[c.client_key]);
          cv.notify_all();
          cv.wait(lock, [&] { return open; });
          --running[c.client_key];
          return json_response(200, "{}");
        },
        Dispatch::kBlocking);
    std::vector<Request> requests(4, Request{Verb::get, "/work", 11});
    std::atomic<int> answered{0};
    const char* keys[] = {"a", "a", "a", "b"};
    for (int i = 0; i < 4; ++i) {
      boost::asio::co_spawn(
          io,
          [&, i]() -> boost::asio::awaitable<void> {
            const Response r = co_await dispatch(router, pool, requests[i], "rid", nullptr, 0,
                                                 "127.0.0.1", keys[i]);
            if (r.status == 200) ++answered;
          },
          boost::asio::detached);
    }
    std::thread loop([&] { io.run(); });
    bool both = false;
    std::string seen;
    {
      std::unique_lock lock(m);
      // "b" starts while "a"'s first request still holds a's only running place.
      both = cv.wait_for(lock, std::chrono::seconds{10},
                         [&] { return running["a"] == 1 && running["b"] == 1; });
      seen = "a running " + std::to_string(running["a"]) + ", b running " +
             std::to_string(running["b"]);
      open = true;
      cv.notify_all();
    }
    loop.join();
    EXPECT_TRUE(both) << seen;
    EXPECT_EQ(answered.load(), 4);
    EXPECT_EQ(most["a"], 1);
    EXPECT_EQ(most["b"], 1);
    EXPECT_EQ(pool.load(), 0);
    pool.join();
  }
}

// A handler may move the body out of the server's request (no second copy for a gateway); a
// context without a movable request copies it.
TEST(Dispatch, TakeBodyMovesTheServersBody) {
  boost::asio::io_context io;
  BlockingPool pool(1, -1);
  Router router;
  std::string taken;
  router.add(Verb::post, "/take", [&](const RequestContext& c) {
    taken = c.take_body();
    return json_response(200, std::to_string(c.request.body().size()));
  });
  Request post{Verb::post, "/take", 11};
  post.body() = std::string(1000, 'b');
  std::optional<Response> answer;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        answer = co_await dispatch(router, pool, post, "rid");
      },
      boost::asio::detached);
  io.run();
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->body, "0");
  EXPECT_EQ(taken, std::string(1000, 'b'));
  EXPECT_TRUE(post.body().empty());

  Request copy{Verb::post, "/take", 11};
  copy.body() = "kept";
  const RequestContext context{copy, "/take", {}, {}, "rid"};
  EXPECT_EQ(context.take_body(), "kept");
  EXPECT_EQ(copy.body(), "kept");
}

// dispatch() answers like the server, without a socket.
TEST(Dispatch, RoutesLikeTheServer) {
  boost::asio::io_context io;
  BlockingPool pool(1, -1);
  std::atomic<int> calls{0};
  const Router router = test_router(calls);
  std::vector<Response> answers;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        for (const char* target :
             {"/images/abc", "/nowhere", "/query?name=a%20b", "/query?x=%zz"}) {
          Request request{Verb::get, target, 11};
          answers.push_back(co_await dispatch(router, pool, request, "rid"));
        }
        Request post{Verb::get, "/echo", 11};
        answers.push_back(co_await dispatch(router, pool, post, "rid"));
      },
      boost::asio::detached);
  io.run();
  ASSERT_EQ(answers.size(), 5u);
  EXPECT_EQ(answers[0].status, 200u);
  EXPECT_EQ(answers[0].body, "abc");
  EXPECT_EQ(answers[1].status, 404u);
  EXPECT_EQ(answers[2].body, "a b");
  EXPECT_EQ(answers[3].status, 400u);
  EXPECT_EQ(answers[4].status, 405u);
  EXPECT_EQ(calls.load(), 2);
}

}  // namespace
}  // namespace dither::http
