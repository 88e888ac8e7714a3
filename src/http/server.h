// The HTTP/1.1 server every service and the gateway run on: Boost.Beast over Asio, one C++20
// coroutine per connection, keep-alive, timeouts, a body limit enforced while reading, and a
// bounded number of requests in flight.
//
//   Router router;
//   router.add(Verb::get, "/images/{uuid}", [&](const RequestContext& c) {
//     return json_response(200, record_json(c.param("uuid")));
//   });
//   Server server(ioc, blocking_pool, std::move(router), ServerOptions{.port = 8081});
//   if (Status s = server.listen(); !s) throw ...;   // binds; port 0 picks a free port
//   ioc.run();
//
// Requests over `body_limit` are refused with 413 as soon as the Content-Length says so, or as
// soon as a chunked body passes the limit: never more than the limit is buffered. Past
// `max_in_flight` concurrent requests, or when the blocking pool's queue is full
// (http/blocking_pool.h), the server answers 503 `overloaded` with Retry-After at once. Unknown
// paths are 404, known paths with another method 405, malformed requests 400: all with the JSON
// error body of errors.h. Handlers marked Dispatch::kBlocking run on the blocking pool so that slow
// work (SQLite, files, decoding) never stalls the I/O threads.
//
// Thread-safe: run the io_context on any number of threads (unless one_thread_per_context).
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "http/blocking_pool.h"
#include "http/router.h"

namespace dither::observability {
class HttpMetrics;
class Tracer;
}  // namespace dither::observability

namespace dither::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;                        // 0: any free port; see Server::port()
  uint64_t body_limit = 64 * 1024;          // bytes of request body
  int max_in_flight = 256;                  // requests being handled at once; past it 503
  std::chrono::seconds header_timeout{10};  // to receive a request's header
  std::chrono::seconds body_timeout{60};    // to receive its body (without body_min_rate)
  // With a minimum rate (bytes/s), the body has `body_grace` plus one second per `body_min_rate`
  // bytes received so far, instead of body_timeout: slow honest uploads pass, a slowloris not.
  uint64_t body_min_rate = 0;
  std::chrono::seconds body_grace{10};
  // Open connections at most, in total and per client address (0: no cap); one more is closed
  // at once. `unlimited_addresses` (trusted proxies) are not capped per address.
  int max_connections = 0;
  int max_connections_per_address = 0;
  std::vector<std::string> unlimited_addresses{};
  std::chrono::seconds idle_timeout{60};  // keep-alive connection with no request
  std::string server_name = "dither";     // the Server header
  // An access line per request (when ACCESS_LOG is on); off for the metrics listener, whose
  // scrapes every few seconds would drown the requests' lines.
  bool access_log = true;
  // When set, every request must carry this header with exactly `required_value` (compared in
  // constant time), except GET/HEAD of `open_paths`; otherwise 403 `forbidden`. The services'
  // servers require the gateway's service token (docs/SECURITY.md).
  std::string required_header{};
  std::string required_value{};
  std::vector<std::string> open_paths = {"/health", "/health/live", "/health/ready"};
  // Every 5xx answer goes out through without_detail() (docs/SECURITY.md); off only for test
  // doubles of other servers (an S3 stand-in must answer as S3 would).
  bool generic_server_errors = true;
  // Text answers (HTML, CSS, JavaScript, JSON, SVG) of at least this many bytes are sent
  // gzip-compressed to clients that accept it (http/compress.h); 0: never.
  size_t compress_min_bytes = 0;
  // The client a request counts against in the blocking pool's fair share (RequestContext::
  // client_key), from the TCP peer and the request; unset: the peer's address.
  std::function<std::string(std::string_view peer, const Request& request)> client_key{};
  // Set when each io_context is run by exactly one thread (ditherd's programs: one context per
  // thread): a connection's work is then serialised by its thread, and it needs no strand (in
  // `perf` of the gateway, strand dispatch and its executor copies were among the top symbols).
  bool one_thread_per_context = false;
  // Where the server records its requests (by route pattern, method and status, with their
  // durations), open connections and refusals (observability/http_metrics.h); unset: nowhere.
  // It must outlive the server.
  observability::HttpMetrics* metrics = nullptr;
  // Where the server's spans go: a SERVER span per request, which continues the caller's
  // `traceparent` and replaces it in the request (so that handlers, their logs and what they
  // forward carry the span's own context; docs/TRACING.md). Unset: no spans, the header as it
  // came. It must outlive the server.
  observability::Tracer* tracer = nullptr;
};

// A 5xx JSON error with its message replaced by a generic one and the request id added; the
// original message goes to the log (stderr). Other responses pass unchanged. Every response a
// Server sends has been through it (docs/SECURITY.md: no detail leaks), unless
// ServerOptions::generic_server_errors is off.
Response without_detail(Response response, const std::string& request_id);

// Routes and runs one request exactly as a Server does once the request is read (400 for a bad
// target or query, 404/405, 503 past `max_in_flight` when a counter is given, a handler's
// exception as 500), but without a socket: the in-process path from the gateway to a service.
// A handler may move the request's body out (RequestContext::take_body). `matched_pattern`, when
// given, is set to the pattern of the route that matched (left empty for 400, 404 and 405).
// RequestContext::traceparent is the request's `traceparent` header when it is valid.
boost::asio::awaitable<Response> dispatch(const Router& router, BlockingPool& blocking,
                                          Request& request, const std::string& request_id,
                                          std::atomic<int>* in_flight = nullptr,
                                          int max_in_flight = 0,
                                          std::string_view remote_address = {},
                                          std::string_view client_key = {},
                                          std::string_view* matched_pattern = nullptr);

class Server {
 public:
  Server(boost::asio::io_context& ioc, BlockingPool& blocking, Router router,
         ServerOptions options);
  // One acceptor per context on the same port (SO_REUSEPORT); a connection is served on the
  // context that accepted it. Run each context on its own thread and nothing crosses threads
  // but blocking handlers (the nginx model: no shared queue, no wake-ups between threads).
  Server(std::vector<boost::asio::io_context*> contexts, BlockingPool& blocking, Router router,
         ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts accepting. kUnavailable when the address cannot be bound.
  Status listen();
  // The bound port (after listen()).
  uint16_t port() const;
  // Stops accepting and closes idle connections; requests being handled finish.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace dither::http
