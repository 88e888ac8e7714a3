#include "http/client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <future>
#include <memory>
#include <optional>
#include <thread>

#include "http/errors.h"
#include "http/testing.h"

namespace dither::http {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

// A hand-made upstream that counts the connections it accepts and misbehaves on demand.
class FakeUpstream {
 public:
  enum class Mode {
    kKeepAlive,           // answers "<method> <target> <body>" and keeps the connection
    kCloseAfterResponse,  // answers once, then closes without saying so (a stale keep-alive)
    kSilent,              // reads the request and never answers
    kBigBody,             // answers with a 10000-byte body
  };

  explicit FakeUpstream(Mode mode)
      : mode_(mode), acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
    asio::co_spawn(ioc_, accept(), asio::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~FakeUpstream() {
    ioc_.stop();
    thread_.join();
  }
  FakeUpstream(const FakeUpstream&) = delete;
  FakeUpstream& operator=(const FakeUpstream&) = delete;

  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int connections() const { return connections_; }

 private:
  asio::awaitable<void> accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      ++connections_;
      asio::co_spawn(ioc_, serve(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> serve(tcp::socket socket) {
    constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
    boost::beast::flat_buffer buffer;
    for (;;) {
      Request request;
      auto [ec, n] = co_await bhttp::async_read(socket, buffer, request, kNoThrow);
      if (ec) co_return;
      if (mode_ == Mode::kSilent) {
        char byte;
        co_await socket.async_read_some(asio::buffer(&byte, 1),
                                        kNoThrow);  // until the client gives up
        co_return;
      }
      bhttp::response<bhttp::string_body> response(bhttp::status::ok, 11);
      response.set("X-Host-Seen", request[bhttp::field::host]);
      response.body() = mode_ == Mode::kBigBody
                            ? std::string(10000, 'b')
                            : std::string(request.method_string()) + " " +
                                  std::string(request.target()) + " " + request.body();
      response.keep_alive(true);
      response.prepare_payload();
      auto [write_ec, written] = co_await bhttp::async_write(socket, response, kNoThrow);
      if (write_ec) co_return;
      if (mode_ == Mode::kCloseAfterResponse) co_return;  // the socket closes here
    }
  }

  Mode mode_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::atomic<int> connections_{0};
  std::thread thread_;
};

// Runs the client's coroutines on an io_context with `threads` threads.
// Spawns `coroutine` on `ioc`; the future is ready when it ends. (asio::use_future trips a
// -Wmaybe-uninitialized inside Asio under the sanitizer build.)
template <class F>
std::future<void> run(asio::io_context& ioc, F coroutine) {
  auto promise = std::make_shared<std::promise<void>>();
  std::future<void> future = promise->get_future();
  asio::co_spawn(ioc, std::move(coroutine), [promise](const std::exception_ptr& error) {
    if (error) {
      promise->set_exception(error);
    } else {
      promise->set_value();
    }
  });
  return future;
}

class ClientHarness {
 public:
  explicit ClientHarness(UpstreamOptions options, int threads = 1)
      : guard_(asio::make_work_guard(ioc_)), client_(ioc_.get_executor(), std::move(options)) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }
  ~ClientHarness() {
    guard_.reset();
    client_.close();
    for (std::thread& t : threads_) t.join();
  }
  ClientHarness(const ClientHarness&) = delete;
  ClientHarness& operator=(const ClientHarness&) = delete;

  // (Result has no default constructor, so co_spawn cannot return it directly.)
  Result<UpstreamResponse> send(Request request) {
    std::optional<Result<UpstreamResponse>> result;
    run(ioc_, [&]() -> asio::awaitable<void> {
      result.emplace(co_await client_.send(std::move(request)));
    }).get();
    return std::move(*result);
  }
  UpstreamClient& client() { return client_; }
  asio::io_context& ioc() { return ioc_; }

 private:
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  UpstreamClient client_;
  std::vector<std::thread> threads_;
};

Request make_request(Verb verb, const std::string& target, std::string body = "") {
  Request request(verb, target, 11);
  request.body() = std::move(body);
  return request;
}

TEST(UpstreamClient, AgainstTheServer) {
  Router router;
  router.add(Verb::post, "/echo/{x}", [](const RequestContext& c) {
    Response r = json_response(201, c.request.body() + "|" + std::string(c.param("x")) + "|" +
                                        std::string(c.header("Host")));
    r.headers.emplace_back("X-Extra", "yes");
    return r;
  });
  router.add(Verb::get, "/missing", [](const RequestContext&) {
    return error_response(make_error(ErrorKind::kNotFound, "no such image"));
  });
  testing::RunningServer server(std::move(router));
  ClientHarness harness({.port = server.port()});

  const Result<UpstreamResponse> r =
      harness.send(make_request(Verb::post, "/echo/a%20b", "payload"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->result_int(), 201);
  EXPECT_EQ(r->body(), "payload|a b|127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ((*r)["X-Extra"], "yes");
  EXPECT_EQ((*r)[bhttp::field::content_type], "application/json");

  const Result<UpstreamResponse> missing = harness.send(make_request(Verb::get, "/missing"));
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->result_int(), 404);  // an HTTP error is a response, not a failure

  const Result<UpstreamResponse> head = harness.send(make_request(Verb::head, "/missing"));
  ASSERT_TRUE(head);
  EXPECT_EQ(head->result_int(), 404);
  EXPECT_TRUE(head->body().empty());
  // The HEAD response had no body to skip: the connection is still in step.
  const Result<UpstreamResponse> again = harness.send(make_request(Verb::post, "/echo/z", "again"));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->body().substr(0, 8), "again|z|");
}

// The upstream refuses a large body after its header: the 413 is what the client returns.
TEST(UpstreamClient, EarlyErrorResponseIsReturned) {
  std::atomic<int> calls{0};
  Router router;
  router.add(Verb::post, "/upload", [&calls](const RequestContext&) {
    ++calls;
    return json_response(201, "{}");
  });
  testing::RunningServer server(std::move(router), {.body_limit = 1024});
  ClientHarness harness({.port = server.port()});
  const Result<UpstreamResponse> r =
      harness.send(make_request(Verb::post, "/upload", std::string(4 * 1024 * 1024, 'x')));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->result_int(), 413);
  EXPECT_EQ(calls, 0);
  const Result<UpstreamResponse> small = harness.send(make_request(Verb::post, "/upload", "x"));
  ASSERT_TRUE(small) << small.error().message;
  EXPECT_EQ(small->result_int(), 201);
}

TEST(UpstreamClient, ReusesConnections) {
  FakeUpstream upstream(FakeUpstream::Mode::kKeepAlive);
  ClientHarness harness({.port = upstream.port()});
  for (int i = 0; i < 10; ++i) {
    const Result<UpstreamResponse> r =
        harness.send(make_request(Verb::post, "/p/" + std::to_string(i), "b"));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->body(), "POST /p/" + std::to_string(i) + " b");
    EXPECT_EQ((*r)["X-Host-Seen"], "127.0.0.1:" + std::to_string(upstream.port()));
  }
  EXPECT_EQ(upstream.connections(), 1);

  harness.client().close();
  ASSERT_TRUE(harness.send(make_request(Verb::get, "/after-close")));
  EXPECT_EQ(upstream.connections(), 2);
}

TEST(UpstreamClient, NoIdleConnectionsKept) {
  FakeUpstream upstream(FakeUpstream::Mode::kKeepAlive);
  ClientHarness harness({.port = upstream.port(), .max_idle = 0});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(harness.send(make_request(Verb::get, "/")));
  EXPECT_EQ(upstream.connections(), 3);
}

TEST(UpstreamClient, RetriesAStaleConnectionOnce) {
  FakeUpstream upstream(FakeUpstream::Mode::kCloseAfterResponse);
  ClientHarness harness({.port = upstream.port()});
  for (int i = 0; i < 5; ++i) {
    const Result<UpstreamResponse> r =
        harness.send(make_request(Verb::post, "/x", "not idempotent"));
    ASSERT_TRUE(r) << i << ": " << r.error().message;
    EXPECT_EQ(r->body(), "POST /x not idempotent");
  }
  EXPECT_EQ(upstream.connections(), 5);
}

TEST(UpstreamClient, RefusedConnection) {
  uint16_t port = 0;
  {
    asio::io_context ioc;
    tcp::acceptor acceptor(ioc, {asio::ip::make_address("127.0.0.1"), 0});
    port = acceptor.local_endpoint().port();
  }  // closed: nothing listens there now
  ClientHarness harness({.port = port});
  const Result<UpstreamResponse> r = harness.send(make_request(Verb::get, "/"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(r.error().message.find("127.0.0.1:" + std::to_string(port)), std::string::npos);
}

TEST(UpstreamClient, RequestTimeout) {
  FakeUpstream upstream(FakeUpstream::Mode::kSilent);
  ClientHarness harness(
      {.port = upstream.port(), .request_timeout = std::chrono::milliseconds(200)});
  const Result<UpstreamResponse> r = harness.send(make_request(Verb::get, "/"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(r.error().message.find("timed out"), std::string::npos) << r.error().message;
  EXPECT_EQ(upstream.connections(), 1);  // a timeout is not retried
}

// The deadline covers one exchange: a pooled connection outlives it (reused after it passed), and
// the next exchange on it has a deadline of its own. Both with and without a strand.
TEST(UpstreamClient, EachExchangeHasADeadlineOfItsOwn) {
  for (const bool one_thread : {false, true}) {
    SCOPED_TRACE(one_thread ? "one thread per context" : "strand");
    const UpstreamOptions options{.request_timeout = std::chrono::milliseconds(100),
                                  .one_thread_per_context = one_thread};
    {
      FakeUpstream upstream(FakeUpstream::Mode::kKeepAlive);
      UpstreamOptions o = options;
      o.port = upstream.port();
      ClientHarness harness(o);
      for (int i = 0; i < 3; ++i) {
        const Result<UpstreamResponse> r = harness.send(make_request(Verb::get, "/"));
        ASSERT_TRUE(r) << r.error().message;
        std::this_thread::sleep_for(std::chrono::milliseconds(150));  // past the last deadline
      }
      EXPECT_EQ(upstream.connections(), 1);  // never closed by a deadline that had passed
    }
    Router router;
    router.add(Verb::get, "/fast", [](const RequestContext&) { return json_response(200, "{}"); });
    router.add(
        Verb::get, "/slow",
        [](const RequestContext&) {
          std::this_thread::sleep_for(std::chrono::milliseconds(400));
          return json_response(200, "{}");
        },
        Dispatch::kBlocking);
    testing::RunningServer server(std::move(router));
    UpstreamOptions o = options;
    o.port = server.port();
    ClientHarness harness(o);
    ASSERT_TRUE(harness.send(make_request(Verb::get, "/fast")));
    const Result<UpstreamResponse> slow = harness.send(make_request(Verb::get, "/slow"));
    ASSERT_FALSE(slow);  // on the pooled connection
    EXPECT_NE(slow.error().message.find("timed out"), std::string::npos) << slow.error().message;
    const Result<UpstreamResponse> after = harness.send(make_request(Verb::get, "/fast"));
    ASSERT_TRUE(after) << after.error().message;
  }
}

// The request goes out as written: start line, every field, the body.
TEST(UpstreamClient, SendsEveryFieldAndTheBody) {
  Router router;
  router.add(Verb::put, "/fields", [](const RequestContext& c) {
    return json_response(
        200, std::string(c.header("X-One")) + "|" + std::string(c.header("X-Two")) + "|" +
                 std::string(c.header("Content-Length")) + "|" +
                 std::string(c.query_value("q").value_or("")) + "|" + c.request.body());
  });
  testing::RunningServer server(std::move(router));
  ClientHarness harness({.port = server.port()});
  Request request = make_request(Verb::put, "/fields?q=1", std::string(50000, 'x'));
  request.set("X-One", "1");
  request.set("X-Two", "two words");
  const Result<UpstreamResponse> r = harness.send(request);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->body(), "1|two words|50000|1|" + std::string(50000, 'x'));
}

TEST(UpstreamClient, ResponseBodyLimit) {
  FakeUpstream upstream(FakeUpstream::Mode::kBigBody);
  ClientHarness harness({.port = upstream.port(), .response_body_limit = 1000});
  const Result<UpstreamResponse> r = harness.send(make_request(Verb::get, "/"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
}

TEST(UpstreamClient, UnresolvableHost) {
  ClientHarness harness({.host = "localhost", .port = 1});
  const Result<UpstreamResponse> r = harness.send(make_request(Verb::get, "/"));
  ASSERT_FALSE(r);  // port 1: refused
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
}

// 16 coroutines send 25 requests each at once, the i-th for `path_of(i, n)` with a number n of
// its own, to a server that answers n: how many answers were failures or not n.
template <class PathOf>
int wrong_answers(ClientHarness& harness, const PathOf& path_of) {
  std::atomic<int> wrong{0};
  std::vector<std::future<void>> done;
  for (int c = 0; c < 16; ++c) {
    done.push_back(run(harness.ioc(), [&, c]() -> asio::awaitable<void> {
      for (int i = 0; i < 25; ++i) {
        const std::string n = std::to_string(c * 100 + i);
        Result<UpstreamResponse> r =
            co_await harness.client().send(make_request(Verb::get, path_of(i, n)));
        if (!r || r->body() != n) ++wrong;
      }
    }));
  }
  for (auto& f : done) f.get();
  return wrong.load();
}

// Sends from coroutines on two threads share the pool safely.
TEST(UpstreamClient, ConcurrentSends) {
  Router router;
  router.add(Verb::get, "/n/{n}",
             [](const RequestContext& c) { return json_response(200, std::string(c.param("n"))); });
  testing::RunningServer server(std::move(router), {}, 2);
  ClientHarness harness({.port = server.port(), .max_idle = 4}, 2);
  EXPECT_EQ(wrong_answers(harness, [](int, const std::string& n) { return "/n/" + n; }), 0);
}

// ditherd's programs: one thread per context, so neither the server's connections nor the
// client's need a strand. Blocking handlers hand their answers back across threads.
TEST(UpstreamClient, ConcurrentSendsOneThreadPerContext) {
  Router router;
  router.add(Verb::get, "/n/{n}",
             [](const RequestContext& c) { return json_response(200, std::string(c.param("n"))); });
  router.add(
      Verb::get, "/blocking/{n}",
      [](const RequestContext& c) { return json_response(200, std::string(c.param("n"))); },
      Dispatch::kBlocking);
  testing::RunningServer server(std::move(router), {.one_thread_per_context = true}, 1);
  ClientHarness harness({.port = server.port(), .max_idle = 4, .one_thread_per_context = true}, 1);
  EXPECT_EQ(
      wrong_answers(harness,
                    [](int i, const std::string& n) { return (i % 2 ? "/blocking/" : "/n/") + n; }),
      0);
}

}  // namespace
}  // namespace dither::http
