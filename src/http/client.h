// An HTTP/1.1 client for one upstream (host:port) with a pool of keep-alive connections: what the
// gateway uses to reach the services.
//
//   UpstreamClient upload(ioc.get_executor(), {.host = "127.0.0.1", .port = 8081});
//   Result<UpstreamResponse> r = co_await upload.send(std::move(request));
//
// A request reuses an idle connection when there is one (at most `max_idle` are kept) and opens a
// new one otherwise. A reused connection that turns out closed by the server before any byte of
// the response arrived is retried once on a fresh connection (idempotent or not: the server never
// saw it). Connect and whole-exchange timeouts give kUnavailable errors; so does a refused
// connection.
//
// Thread-safe: send() may be called from coroutines on any thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"
#include "http/router.h"

namespace dither::http {

using UpstreamResponse = boost::beast::http::response<boost::beast::http::string_body>;

struct UpstreamOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  int max_idle = 64;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds request_timeout{30000};
  uint64_t response_body_limit = 64 * 1024 * 1024;
  // Set when every coroutine that sends runs on an io_context that one thread runs (ditherd's
  // programs): a connection then needs no strand of its own.
  bool one_thread_per_context = false;
};

class UpstreamClient {
 public:
  UpstreamClient(boost::asio::any_io_executor executor, UpstreamOptions options);
  ~UpstreamClient();
  UpstreamClient(const UpstreamClient&) = delete;
  UpstreamClient& operator=(const UpstreamClient&) = delete;

  // Sends `request` (its Host header and Content-Length are set here; keep-alive is used) and
  // reads the whole response. The request is the caller's until the answer (never copied) and
  // may be sent again.
  boost::asio::awaitable<Result<UpstreamResponse>> send(Request& request);
  boost::asio::awaitable<Result<UpstreamResponse>> send(Request&& request);

  // Closes the idle connections.
  void close();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace dither::http
