#include "http/server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/file_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <cstdio>
#include <exception>
#include <mutex>
#include <optional>
#include <random>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "common/crypto.h"
#include "http/beast_io.h"
#include "http/compress.h"
#include "http/errors.h"
#include "http/url_decode.h"
#include "observability/http_metrics.h"
#include "observability/log_context.h"
#include "observability/logging.h"
#include "observability/tracing.h"

namespace dither::http {
namespace {

using namespace io;  // Asio and Beast names, kNoThrow (beast_io.h)

constexpr uint32_t kHeaderLimit = 16 * 1024;
// Bytes kept in a connection's read buffer: a header (kHeaderLimit) plus one read.
constexpr size_t kReadBufferLimit = 256 * 1024;
constexpr size_t kReadSize = 64 * 1024;
// After an error response the connection is closed; reading what the client still sends for a
// little while lets it see the response instead of a reset.
constexpr std::chrono::seconds kLingerTime{3};

using Parser = bhttp::request_parser<bhttp::string_body>;
using Clock = asio::steady_timer::clock_type;

bool is_http_error(const error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::end_of_stream).category();
}

// A client's X-Request-Id is echoed only when it cannot smuggle anything into logs or headers.
bool is_sane_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string_view to_std(beast::string_view s) { return {s.data(), s.size()}; }

// What the server and its synchronous handlers log under (observability/log_context.h): the
// request id and, from the `traceparent` header, the trace and span. With tracing on, the server
// span has replaced the header by then, so the ids are its own; off, they are the caller's.
observability::LogContext request_log_context(const Request& request, std::string_view request_id) {
  const auto it = request.find("traceparent");
  return observability::log_context_from(
      request_id, it == request.end() ? std::string_view{} : to_std(it->value()));
}

// Runs a synchronous handler or precheck with the request's log context on this thread (never
// across a co_await: another request's code may run on the thread meanwhile).
template <class Call>
auto in_log_context(const observability::LogContext& log, const Call& call) {
  const observability::ScopedLogContext scope(log);
  return call();
}

bool is_valid_header(std::string_view name, std::string_view value) {
  if (name.empty()) return false;
  for (const char c : name) {
    if (c <= ' ' || c == ':' || c == 127) return false;
  }
  for (const char c : value) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

// Content-Length, Transfer-Encoding and Connection are the server's to set.
bool is_framing_header(std::string_view name) {
  return beast::iequals(name, "Content-Length") || beast::iequals(name, "Transfer-Encoding") ||
         beast::iequals(name, "Connection");
}

// The request's `traceparent` header when it is a valid W3C trace context, else "".
std::string valid_traceparent(const Request& request) {
  const auto it = request.find("traceparent");
  if (it == request.end() || !observability::parse_traceparent(to_std(it->value()))) return {};
  return std::string(to_std(it->value()));
}

// The SERVER span of a request (docs/TRACING.md): it continues the caller's `traceparent`, and the
// request carries the span's own context from here on (handlers pass it on; the logs show it).
// Without a tracer, nothing is recorded and the header stays as it came. Health checks (probes
// every few seconds from every balancer) are not traced.
observability::Span start_server_span(observability::Tracer* tracer, Request& request) {
  if (tracer == nullptr) return {};
  const std::string_view target = to_std(request.target());
  if (target.starts_with("/health") &&
      (target.size() == 7 || target[7] == '/' || target[7] == '?')) {
    return {};
  }
  const auto it = request.find("traceparent");
  observability::Span span = observability::start_span(
      tracer, to_std(request.method_string()).substr(0, 32), observability::SpanKind::kServer,
      it == request.end() ? std::string_view{} : to_std(it->value()));
  request.set("traceparent", span.traceparent());
  return span;
}

// Names the span after its route's template ("GET /images/{uuid}"; the method alone when no route
// matched) and ends it. 5xx answers are errors (4xx are the client's).
void end_server_span(observability::Span& span, const Request& request, std::string_view route,
                     unsigned status, std::string_view server, const std::string& request_id) {
  if (!span.recording()) return;
  const std::string_view method = to_std(request.method_string()).substr(0, 32);
  span.set_name(route.empty() ? std::string(method)
                              : std::string(method) + " " + std::string(route));
  span.set("http.request.method", method)
      .set("http.response.status_code", status)
      .set("dither.server", server)
      .set("dither.request_id", request_id);
  if (!route.empty()) span.set("http.route", route);
  if (status >= 500) span.set_error("HTTP " + std::to_string(status));
  span.end();
}

// Counts a request as in flight for its lifetime; `admitted()` is false past the bound.
class InFlight {
 public:
  InFlight(std::atomic<int>& count, int max) : count_(count) {
    const int before = count_.fetch_add(1, std::memory_order_relaxed);
    admitted_ = max <= 0 || before < max;
  }
  ~InFlight() { count_.fetch_sub(1, std::memory_order_relaxed); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
  bool admitted() const { return admitted_; }

 private:
  std::atomic<int>& count_;
  bool admitted_ = false;
};

}  // namespace

namespace {

// 503 `overloaded`: the client may come back in a second.
Response overloaded(std::string_view message) {
  Response response = error_response(503, "overloaded", message);
  response.headers.emplace_back("Retry-After", "1");
  return response;
}

asio::awaitable<Response> invoke_sync(const Router::Match& match, const RequestContext& context,
                                      BlockingPool& blocking,
                                      const observability::LogContext& log) {
  const SyncHandler& sync = std::get<SyncHandler>(*match.handler);
  if (match.precheck != nullptr) {
    if (std::optional<Response> answer =
            in_log_context(log, [&] { return (*match.precheck)(context); })) {
      co_return std::move(*answer);
    }
  }
  if (match.dispatch == Dispatch::kInline) {
    co_return in_log_context(log, [&] { return sync(context); });
  }
  BlockingPool::Ticket ticket(blocking, context.client_key);
  if (!ticket) co_return overloaded("the server is busy; retry later");
  // Past the client's running share, wait for its own earlier requests (not for anyone else's).
  co_await ticket.turn();
  // Run on the blocking pool; co_spawn's completion brings this coroutine back to its executor,
  // and rethrows what the handler threw.
  co_return co_await asio::co_spawn(
      blocking.get_executor(),
      [&sync, &context, &log]() -> asio::awaitable<Response> {
        co_return in_log_context(log, [&] { return sync(context); });
      },
      asio::use_awaitable);
}

// Not a coroutine: an async handler's own awaitable is handed on, without a frame of this one
// in between (each frame is an allocation per request); `match` and `context` outlive it in the
// caller's frame.
asio::awaitable<Response> invoke(const Router::Match& match, const RequestContext& context,
                                 BlockingPool& blocking, const observability::LogContext& log) {
  if (const auto* async = std::get_if<AsyncHandler>(match.handler)) return (*async)(context);
  return invoke_sync(match, context, blocking, log);
}

}  // namespace

Response without_detail(Response response, const std::string& request_id) {
  if (response.status < 500) return response;
  // A JSON body that is not an error (an aggregated /health) says nothing internal.
  if (response.content_type.starts_with("application/json") &&
      !response.body.starts_with("{\"error\":")) {
    return response;
  }
  boost::system::error_code ec;
  boost::json::value body = boost::json::parse(response.body, ec);
  const boost::json::object* error = nullptr;
  if (!ec && body.is_object()) {
    if (const boost::json::value* e = body.as_object().if_contains("error"); e && e->is_object()) {
      error = &e->as_object();
    }
  }
  std::string code(to_string(ErrorKind::kInternal));
  if (error != nullptr) {
    if (const boost::json::value* c = error->if_contains("code"); c && c->is_string()) {
      code = std::string(c->as_string());
    }
    if (const boost::json::value* m = error->if_contains("message"); m && m->is_string()) {
      // The detail stays here, in the log, under the request id the client sees.
      spdlog::error("http: {} {} (request {}): {}", response.status, code, request_id,
                    std::string_view(m->as_string()));
    }
  }
  const std::string_view message = response.status == 503
                                       ? "the service is unavailable right now; try again later"
                                       : "internal error";
  boost::json::object inner;
  inner["code"] = code;
  inner["message"] = message;
  inner["request_id"] = request_id;
  boost::json::object outer;
  outer["error"] = std::move(inner);
  response.body = boost::json::serialize(outer);
  response.content_type = "application/json";
  return response;
}

namespace {

// A request's route and query, or the answer when it goes no further: a malformed target, no
// route (404, 405) or a malformed query. Not part of dispatch's coroutine, where each of these
// answers took room of its own in the frame (allocated per request; 1264 -> 1136 bytes).
struct Routed {
  Router::Match match;
  QueryPairs query;
  std::string_view path;
};

std::variant<Routed, Response> route(const Router& router, const Request& request,
                                     std::string_view* matched_pattern) {
  const std::string_view target = to_std(request.target());
  const size_t question = target.find('?');
  const std::string_view path = target.substr(0, question);
  if (path.empty() || path.front() != '/') {
    // Origin form only: no proxy requests ("http://host/..."), no "*".
    return error_response(400, to_string(ErrorKind::kInvalidArgument), "malformed request target");
  }
  Router::Match match = router.match(request.method(), path);
  if (match.handler == nullptr) {
    if (!match.path_known) return error_response(404, "not_found", "no such resource");
    Response response = error_response(405, "method_not_allowed", "method not allowed here");
    response.headers.emplace_back("Allow", std::move(match.allow));
    return response;
  }
  if (matched_pattern != nullptr) *matched_pattern = match.pattern;
  Result<QueryPairs> query = parse_query(
      question == std::string_view::npos ? std::string_view{} : target.substr(question + 1));
  if (!query) return error_response(query.error());
  return Routed{std::move(match), std::move(*query), path};
}

}  // namespace

asio::awaitable<Response> dispatch(const Router& router, BlockingPool& blocking, Request& request,
                                   const std::string& request_id, std::atomic<int>* in_flight_count,
                                   int max_in_flight, std::string_view remote_address,
                                   std::string_view client_key, std::string_view* matched_pattern) {
  std::variant<Routed, Response> routed = route(router, request, matched_pattern);
  if (Response* answer = std::get_if<Response>(&routed)) co_return std::move(*answer);
  Routed& r = std::get<Routed>(routed);
  const std::string_view path = r.path;
  const Router::Match& match = r.match;

  std::atomic<int> unbounded{0};
  const InFlight in_flight(in_flight_count != nullptr ? *in_flight_count : unbounded,
                           in_flight_count != nullptr ? max_in_flight : 0);
  if (!in_flight.admitted()) {
    co_return overloaded("too many requests in flight; retry later");
  }
  const RequestContext context{request,
                               path,
                               std::move(r.match.params),
                               std::move(r.query),
                               request_id,
                               std::string(remote_address),
                               &request,
                               std::string(client_key.empty() ? remote_address : client_key),
                               valid_traceparent(request)};
  // The traceparent just validated (the server span's, with tracing on) gives the log its ids.
  const observability::LogContext log =
      observability::log_context_from(request_id, context.traceparent);
  std::string failure;
  try {
    co_return co_await invoke(match, context, blocking, log);
  } catch (const std::exception& e) {
    failure = e.what();
  } catch (...) {
    failure = "unknown exception";
  }
  {
    const observability::ScopedLogContext scope(log);
    spdlog::error("http server: {} {} (request {}) failed: {}", to_std(request.method_string()),
                  path, request_id, failure);
  }
  co_return error_response(500, to_string(ErrorKind::kInternal), "internal error");
}

namespace server_detail {

class Connection;

// What the server and all its connections share. Owned jointly by Server and by every coroutine
// (accept loop, connections), so it outlives the Server object until the last of them ends.
class ServerCore : public std::enable_shared_from_this<ServerCore> {
 public:
  ServerCore(std::vector<asio::io_context*> io, BlockingPool& pool, Router r, ServerOptions o)
      : contexts(std::move(io)), blocking(pool), router(std::move(r)), options(std::move(o)) {
    for (asio::io_context* context : contexts) {
      acceptors.push_back(std::make_unique<tcp::acceptor>(executor_for(*context)));
    }
    std::random_device random;
    char prefix[16];
    std::snprintf(prefix, sizeof prefix, "%08x-", static_cast<unsigned>(random()));
    id_prefix_ = prefix;
  }

  Status listen();
  void stop();
  // Where a connection (or an acceptor) of `context` runs: a strand of its own, or the context
  // itself when one thread runs it.
  asio::any_io_executor executor_for(asio::io_context& context) const {
    if (options.one_thread_per_context) return context.get_executor();
    return asio::make_strand(context);
  }
  std::string new_request_id();
  // False when the server is stopping, or when the connection is one too many (in total, or
  // from its address): it must close at once.
  bool add_connection(Connection* connection, const std::string& address);
  void remove_connection(Connection* connection, const std::string& address);

  // One acceptor per context, all on the same port (SO_REUSEPORT): the kernel spreads new
  // connections over them, and a connection stays on the context (thread) that accepted it.
  const std::vector<asio::io_context*> contexts;
  BlockingPool& blocking;
  const Router router;
  const ServerOptions options;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;  // each on its own strand once listening
  std::atomic<uint16_t> port{0};
  std::atomic<int> in_flight{0};

 private:
  static asio::awaitable<void> accept_loop(std::shared_ptr<ServerCore> core,
                                           tcp::acceptor& acceptor, asio::io_context& context);

  std::mutex mutex_;
  bool stopped_ = false;                              // guarded by mutex_
  std::unordered_set<Connection*> connections_;       // guarded by mutex_
  std::unordered_map<std::string, int> per_address_;  // guarded by mutex_: open connections
  std::string id_prefix_;
  std::atomic<uint64_t> next_id_{1};
};

// One client connection: a coroutine on its own strand serving requests one after another.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<ServerCore> core, tcp::socket socket)
      : core_(std::move(core)),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        buffer_(kReadBufferLimit) {
    // Beast reads as much as the free capacity, at least 512 bytes: a browser's request header
    // with its cookie fits in one read of 4 KB, not three of 512.
    buffer_.reserve(4096);
    error_code ec;
    const tcp::endpoint peer = socket_.remote_endpoint(ec);
    if (!ec) {
      // An IPv4 client of a dual-stack socket is named as IPv4.
      const asio::ip::address a = peer.address();
      remote_ = a.is_v6() && a.to_v6().is_v4_mapped()
                    ? asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).to_string()
                    : a.to_string();
    }
    stopping_ = !core_->add_connection(this, remote_);
  }
  ~Connection() { core_->remove_connection(this, remote_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  static asio::awaitable<void> run(std::shared_ptr<Connection> self);
  // Runs on the connection's executor: closes it now if it is between requests, else after the
  // response being prepared.
  void stop();
  asio::any_io_executor executor() { return socket_.get_executor(); }

 private:
  asio::awaitable<bool> serve_one();
  asio::awaitable<error_code> read(Parser& parser, bool header_only);
  asio::awaitable<bool> reject(const error_code& ec, const Parser& parser);
  asio::awaitable<Response> handle(Request& request, const std::string& request_id);
  asio::awaitable<bool> write(Response response, unsigned version, bool keep_alive, bool head,
                              const std::string& request_id);
  template <class Body>
  asio::awaitable<bool> send(bhttp::response<Body>& message, bool head);
  template <class Body>
  void fill_header(bhttp::response<Body>& message, const Response& response, unsigned version,
                   bool keep_alive, const std::string& request_id) const;
  void serialize_header(const Response& response, unsigned version, bool keep_alive,
                        const std::string& request_id, bool bodiless);
  asio::awaitable<void> close();
  // Every read and write runs between begin(deadline) and end(): past the deadline the socket is
  // closed and end() gives beast::error::timeout (what beast::tcp_stream did, without a timer
  // armed and cancelled around each operation: see on_deadline()).
  void begin(Clock::time_point deadline);
  error_code end(const error_code& ec);
  void on_deadline(const error_code& ec);
  template <class Op>
  auto timed(Clock::time_point deadline, Op op) -> decltype(op()) {
    begin(deadline);
    auto [ec, n] = co_await op();
    co_return std::tuple{end(ec), n};
  }
  std::string request_id_for(const Request& request) const;
  observability::HttpMetrics::Route& metrics_route(const Request& request);
  void log_access(const Request& request, const std::string& request_id, unsigned status,
                  std::chrono::steady_clock::time_point arrived) const;

  std::shared_ptr<ServerCore> core_;
  tcp::socket socket_;
  // One timer per connection: it is armed for the earliest deadline an operation had and left
  // armed; an operation with a later deadline (the usual case: each request's comes later than
  // the last one's) only moves deadline_, and a timer that fires early re-arms for it.
  asio::steady_timer timer_;
  Clock::time_point deadline_{};
  bool waiting_ = false;    // an operation is in progress under deadline_
  bool armed_ = false;      // timer_ waits
  bool timed_out_ = false;  // the socket was closed at the deadline
  // The metrics of the last request's route and method: a keep-alive connection mostly asks the
  // same route again, and HttpMetrics::route() locks and builds its key on every call.
  observability::HttpMetrics::Route* metrics_route_ = nullptr;
  std::string_view metrics_pattern_;
  bhttp::verb metrics_verb_ = bhttp::verb::unknown;
  std::string remote_;         // the peer's address ("" when unknown)
  std::string_view route_;     // the pattern of the route handle() matched ("" when none)
  beast::flat_buffer buffer_;  // reused across the connection's requests
  std::optional<Parser> parser_;
  // Body bytes of the last response written: the access log's `bytes`.
  uint64_t body_bytes_ = 0;
  std::string header_;     // a response header being written; reused across requests
  bool handling_ = false;  // a request's header has arrived and its response is not written yet
  bool stopping_ = false;
  bool linger_ = false;  // the close follows an error response
};

Status ServerCore::listen() {
  const std::string where = options.host + ":" + std::to_string(options.port);
  const auto fail = [&](std::string_view what, const error_code& ec) -> Status {
    for (auto& acceptor : acceptors) {
      error_code ignored;
      acceptor->close(ignored);
    }
    return make_error(ErrorKind::kUnavailable,
                      "cannot listen on " + where + ": " + std::string(what) + ec.message());
  };
  if (acceptors.front()->is_open()) {
    return make_error(ErrorKind::kUnavailable, "already listening");
  }
  error_code ec;
  tcp::endpoint endpoint;
  const asio::ip::address address = asio::ip::make_address(options.host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, options.port);
  } else {
    tcp::resolver resolver(*contexts.front());
    const auto results = resolver.resolve(options.host, std::to_string(options.port), ec);
    if (ec) return fail("", ec);
    if (results.empty()) return fail("", asio::error::host_not_found);
    endpoint = results.begin()->endpoint();
  }
  using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
  for (auto& acceptor : acceptors) {
    if (acceptor->open(endpoint.protocol(), ec); ec) return fail("", ec);
    if (acceptor->set_option(asio::socket_base::reuse_address(true), ec); ec) return fail("", ec);
    if (acceptors.size() > 1 && (acceptor->set_option(reuse_port(true), ec), ec)) {
      return fail("", ec);
    }
    if (acceptor->bind(endpoint, ec); ec) return fail("", ec);
    if (acceptor->listen(asio::socket_base::max_listen_connections, ec); ec) return fail("", ec);
    const tcp::endpoint bound = acceptor->local_endpoint(ec);
    if (ec) return fail("", ec);
    endpoint.port(bound.port());  // with port 0, the others join the port the first one got
  }
  port = endpoint.port();
  for (size_t i = 0; i < acceptors.size(); ++i) {
    asio::co_spawn(acceptors[i]->get_executor(),
                   accept_loop(shared_from_this(), *acceptors[i], *contexts[i]),
                   [](const std::exception_ptr& error) {
                     if (!error) return;
                     try {
                       std::rethrow_exception(error);
                     } catch (const std::exception& e) {
                       spdlog::error("http server: accept loop failed: {}", e.what());
                     }
                   });
  }
  return {};
}

asio::awaitable<void> ServerCore::accept_loop(std::shared_ptr<ServerCore> core,
                                              tcp::acceptor& acceptor, asio::io_context& context) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(core->executor_for(context), kNoThrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      // Out of descriptors or a connection reset before accept: wait a little, do not spin.
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(20));
      co_await pause.async_wait(kNoThrow);
      continue;
    }
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto connection = std::make_shared<Connection>(core, std::move(socket));
    const asio::any_io_executor executor = connection->executor();
    asio::co_spawn(executor, Connection::run(std::move(connection)),
                   [](const std::exception_ptr&) {});
  }
}

void ServerCore::stop() {
  std::vector<std::shared_ptr<Connection>> live;
  {
    const std::lock_guard lock(mutex_);
    // Once is enough; posting again (e.g. from ~Server after stop()) would leave handlers that
    // keep this core alive in contexts that may be destroyed before the others.
    if (stopped_) return;
    stopped_ = true;
    for (auto& acceptor : acceptors) {
      asio::post(acceptor->get_executor(), [self = shared_from_this(), a = acceptor.get()] {
        error_code ignored;
        a->close(ignored);
      });
    }
    live.reserve(connections_.size());
    for (Connection* connection : connections_) {
      if (auto alive = connection->weak_from_this().lock()) live.push_back(std::move(alive));
    }
  }
  for (auto& connection : live) {
    const asio::any_io_executor executor = connection->executor();
    asio::post(executor, [c = std::move(connection)] { c->stop(); });
  }
}

std::string ServerCore::new_request_id() {
  const uint64_t n = next_id_.fetch_add(1, std::memory_order_relaxed);
  char digits[16];
  const auto end = std::to_chars(digits, digits + sizeof digits, n, 16).ptr;
  std::string id;
  id.reserve(id_prefix_.size() + static_cast<size_t>(end - digits));
  id += id_prefix_;
  id.append(digits, end);
  return id;
}

bool ServerCore::add_connection(Connection* connection, const std::string& address) {
  const std::lock_guard lock(mutex_);
  if (stopped_) return false;
  const auto refuse = [this](std::string_view reason) {
    if (options.metrics != nullptr) options.metrics->rejected(reason);
    return false;
  };
  if (options.max_connections > 0 &&
      connections_.size() >= static_cast<size_t>(options.max_connections)) {
    return refuse("too_many_connections");
  }
  const bool counted =
      options.max_connections_per_address > 0 && !address.empty() &&
      std::find(options.unlimited_addresses.begin(), options.unlimited_addresses.end(), address) ==
          options.unlimited_addresses.end();
  if (counted) {
    int& open = per_address_[address];
    if (open >= options.max_connections_per_address) {
      if (open == 0) per_address_.erase(address);
      return refuse("too_many_connections_per_address");
    }
    ++open;
  }
  connections_.insert(connection);
  if (options.metrics != nullptr) options.metrics->connections().Increment();
  return true;
}

void ServerCore::remove_connection(Connection* connection, const std::string& address) {
  const std::lock_guard lock(mutex_);
  if (connections_.erase(connection) == 0) return;
  if (options.metrics != nullptr) options.metrics->connections().Decrement();
  if (auto it = per_address_.find(address); it != per_address_.end() && --it->second <= 0) {
    per_address_.erase(it);
  }
}

asio::awaitable<void> Connection::run(std::shared_ptr<Connection> self) {
  try {
    while (co_await self->serve_one()) {
    }
  } catch (const std::exception& e) {
    // Nothing a request can do should get here (handler exceptions are answered with 500).
    spdlog::error("http server: connection failed: {}", e.what());
  }
  co_await self->close();
}

void Connection::stop() {
  stopping_ = true;
  if (!handling_) {
    error_code ignored;
    socket_.close(ignored);
  }
}

void Connection::begin(Clock::time_point deadline) {
  deadline_ = deadline;
  waiting_ = true;
  if (armed_ && timer_.expiry() <= deadline) return;
  armed_ = true;
  timer_.expires_at(deadline);  // a wait for a later time ends with operation_aborted
  timer_.async_wait([self = shared_from_this()](const error_code& ec) { self->on_deadline(ec); });
}

error_code Connection::end(const error_code& ec) {
  waiting_ = false;
  return timed_out_ ? error_code(beast::error::timeout) : ec;
}

void Connection::on_deadline(const error_code& ec) {
  if (ec == asio::error::operation_aborted) return;  // replaced by an earlier deadline
  armed_ = false;
  if (!waiting_ || timed_out_) return;  // no operation to time out: armed again by the next one
  if (Clock::now() < deadline_) {
    begin(deadline_);
    return;
  }
  timed_out_ = true;
  error_code ignored;
  socket_.close(ignored);  // the operation in progress ends; end() tells it why
}

asio::awaitable<void> Connection::close() {
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
  if (linger_ && !stopping_ && !timed_out_) {
    const Clock::time_point until = Clock::now() + kLingerTime;
    for (;;) {
      buffer_.clear();
      auto [ec, n] = co_await timed(
          until, [&] { return socket_.async_read_some(buffer_.prepare(kReadSize), kNoThrow); });
      if (ec) break;
    }
  }
  socket_.close(ignored);
  waiting_ = false;
  timer_.cancel();  // its handler holds the connection
}

asio::awaitable<bool> Connection::serve_one() {
  handling_ = false;
  if (stopping_) co_return false;
  Parser& parser = parser_.emplace();
  parser.header_limit(kHeaderLimit);
  parser.body_limit(core_->options.body_limit);
  parser.eager(true);

  if (error_code ec = co_await read(parser, true); ec) co_return co_await reject(ec, parser);
  handling_ = true;
  // From the header's arrival to the answer written (a request refused while its body is read
  // counts as a rejection instead: reject()).
  const bool access_log = core_->options.access_log && observability::access_log_enabled();
  const auto arrived =
      access_log ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  std::optional<observability::HttpMetrics::Request> timing;
  if (core_->options.metrics != nullptr) timing.emplace(core_->options.metrics->start());
  if (!parser.is_done()) {
    const Request& partial = parser.get();
    const auto expect = partial.find(bhttp::field::expect);
    if (expect != partial.end() && partial.version() >= 11 &&
        beast::iequals(expect->value(), "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      auto [ec, n] = co_await timed(Clock::now() + core_->options.body_timeout, [&] {
        return asio::async_write(socket_, asio::buffer(kContinue), kNoThrow);
      });
      if (ec) co_return false;
    }
    if (error_code ec = co_await read(parser, false); ec) co_return co_await reject(ec, parser);
  }

  Request& request = parser.get();  // a handler may move its body out (take_body)
  const std::string request_id = request_id_for(request);
  observability::Span span = start_server_span(core_->options.tracer, request);
  Response response = co_await handle(request, request_id);
  if (response.delay.count() > 0 && !stopping_) {
    asio::steady_timer wait(socket_.get_executor());
    wait.expires_after(response.delay);
    co_await wait.async_wait(kNoThrow);
  }
  const bool keep_alive = request.keep_alive() && !stopping_;
  const unsigned status = response.status;
  const bool written = co_await write(std::move(response), request.version(), keep_alive,
                                      request.method() == bhttp::verb::head, request_id);
  if (timing) timing->finish(metrics_route(request), status);
  if (access_log) log_access(request, request_id, status, arrived);
  end_server_span(span, request, route_, status, core_->options.server_name, request_id);
  route_ = {};
  co_return written&& keep_alive;
}

asio::awaitable<error_code> Connection::read(Parser& parser, bool header_only) {
  const ServerOptions& options = core_->options;
  // Until a request's first byte: the idle timeout. Then one deadline for the whole header (a
  // slow drip of bytes does not extend it). The body: one fixed deadline, or, with a minimum
  // rate, a deadline that moves with the bytes received: after `body_grace`, the body must have
  // come at `body_min_rate` on average (an honest slow upload of any size passes, a slowloris
  // does not).
  std::optional<Clock::time_point> deadline;
  const Clock::time_point started = Clock::now();
  uint64_t received = 0;
  const bool by_rate = !header_only && options.body_min_rate > 0;
  if (by_rate) {
    deadline = started + options.body_grace;
  } else if (!header_only) {
    deadline = started + options.body_timeout;
  } else if (buffer_.size() > 0) {
    deadline = started + options.header_timeout;
  }
  const auto done = [&] { return header_only ? parser.is_header_done() : parser.is_done(); };
  for (;;) {
    if (done()) co_return error_code{};
    if (buffer_.size() > 0) {
      error_code ec;
      const size_t used = parser.put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec && ec != bhttp::error::need_more) co_return ec;
      if (!ec && used > 0) continue;
      if (done()) co_return error_code{};
    }
    const size_t size = beast::read_size(buffer_, kReadSize);
    if (size == 0) co_return bhttp::error::buffer_overflow;
    // (begin/end inline, not timed(): one coroutine frame less on the hot path)
    begin(deadline ? *deadline : Clock::now() + options.idle_timeout);
    auto [read_ec, n] = co_await socket_.async_read_some(buffer_.prepare(size), kNoThrow);
    const error_code ec = end(read_ec);
    buffer_.commit(n);
    if (by_rate) {
      received += n;
      deadline = started + options.body_grace +
                 std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                     static_cast<double>(received) / static_cast<double>(options.body_min_rate)));
    }
    if (ec == asio::error::eof) {
      if (!parser.got_some() && buffer_.size() == 0) co_return bhttp::error::end_of_stream;
      co_return bhttp::error::partial_message;
    }
    if (ec) co_return ec;
    if (!deadline) deadline = Clock::now() + options.header_timeout;
  }
}

asio::awaitable<bool> Connection::reject(const error_code& ec, const Parser& parser) {
  Response response;
  observability::HttpMetrics* metrics = core_->options.metrics;
  const auto refused = [metrics](std::string_view reason) {
    if (metrics != nullptr) metrics->rejected(reason);
  };
  // A request begun and not finished in time (an idle keep-alive connection that times out is
  // no refusal).
  if (ec == beast::error::timeout && parser.got_some()) refused("timeout");
  if (ec == bhttp::error::body_limit) {
    refused("too_large");
    response = error_response(
        413, to_string(ErrorKind::kTooLarge),
        "the request body is over " + std::to_string(core_->options.body_limit) + " bytes");
  } else if (ec == bhttp::error::header_limit) {
    refused("header_too_large");
    response =
        error_response(431, to_string(ErrorKind::kTooLarge), "the request header is too large");
  } else if (is_http_error(ec) && ec != bhttp::error::end_of_stream &&
             ec != bhttp::error::partial_message) {
    refused("malformed");
    response = error_response(400, to_string(ErrorKind::kInvalidArgument),
                              "malformed HTTP request: " + ec.message());
  } else {
    co_return false;  // closed, reset or timed out: nobody to answer
  }
  handling_ = true;
  linger_ = true;
  // The header may be incomplete; its X-Request-Id is used when it got parsed.
  const std::string request_id = request_id_for(parser.get());
  co_await write(std::move(response), 11, false, false, request_id);
  co_return false;
}

// ACCESS_LOG (docs/LOGGING.md): the route's template, never the path or the query.
void Connection::log_access(const Request& request, const std::string& request_id, unsigned status,
                            std::chrono::steady_clock::time_point arrived) const {
  const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - arrived;
  const observability::ScopedLogContext scope(request_log_context(request, request_id));
  observability::log_access({.server = core_->options.server_name,
                             .method = to_std(request.method_string()).substr(0, 32),
                             .route = route_.empty() ? "unmatched" : route_,
                             .status = status,
                             .duration_ms = took.count(),
                             .bytes = body_bytes_,
                             .request_id = request_id,
                             .client = remote_});
}

observability::HttpMetrics::Route& Connection::metrics_route(const Request& request) {
  // route_ views the router's own pattern (or this literal), so the same route is the same view.
  const std::string_view pattern = route_.empty() ? std::string_view("unmatched") : route_;
  const bhttp::verb verb = request.method();
  if (metrics_route_ != nullptr && verb != bhttp::verb::unknown && verb == metrics_verb_ &&
      pattern.data() == metrics_pattern_.data() && pattern.size() == metrics_pattern_.size()) {
    return *metrics_route_;
  }
  const auto method = request.method_string();
  observability::HttpMetrics::Route& route =
      core_->options.metrics->route(pattern, std::string_view(method.data(), method.size()));
  metrics_route_ = &route;
  metrics_pattern_ = pattern;
  metrics_verb_ = verb;
  return route;
}

std::string Connection::request_id_for(const Request& request) const {
  const auto it = request.find("X-Request-Id");
  if (it != request.end() && is_sane_request_id(to_std(it->value()))) {
    return std::string(to_std(it->value()));
  }
  return core_->new_request_id();
}

asio::awaitable<Response> Connection::handle(Request& request, const std::string& request_id) {
  const ServerOptions& options = core_->options;
  if (!options.required_header.empty()) {
    const std::string_view target = to_std(request.target());
    const std::string_view path = target.substr(0, target.find('?'));
    const auto it = request.find(options.required_header);
    const bool read = request.method() == bhttp::verb::get || request.method() == bhttp::verb::head;
    const bool open = read && std::find(options.open_paths.begin(), options.open_paths.end(),
                                        path) != options.open_paths.end();
    if (!open && (it == request.end() ||
                  !constant_time_equal(to_std(it->value()), options.required_value))) {
      if (options.metrics != nullptr) options.metrics->rejected("forbidden");
      co_return error_response(403, "forbidden", "only the gateway may call this service");
    }
  }
  const std::string client_key =
      options.client_key ? options.client_key(remote_, request) : remote_;
  Response response =
      co_await dispatch(core_->router, core_->blocking, request, request_id, &core_->in_flight,
                        options.max_in_flight, remote_, client_key, &route_);
  if (options.generic_server_errors && response.status >= 500) {
    const observability::ScopedLogContext scope(request_log_context(request, request_id));
    response = without_detail(std::move(response), request_id);
  }
  compress_for(request, response, options.compress_min_bytes);
  co_return response;
}

template <class Body>
void Connection::fill_header(bhttp::response<Body>& message, const Response& response,
                             unsigned version, bool keep_alive,
                             const std::string& request_id) const {
  message.version(version);
  message.result(response.status);
  message.set(bhttp::field::server, core_->options.server_name);
  if (response.status != 204 && response.status != 304) {
    message.set(bhttp::field::content_type, response.content_type);
  }
  message.set("X-Request-Id", request_id);
  for (const auto& [name, value] : response.headers) {
    if (!is_framing_header(name)) message.insert(name, value);
  }
  message.keep_alive(keep_alive);
}

asio::awaitable<bool> Connection::write(Response response, unsigned version, bool keep_alive,
                                        bool head, const std::string& request_id) {
  bool valid = response.status >= 200 && response.status <= 599 &&
               is_valid_header("Content-Type", response.content_type);
  for (const auto& [name, value] : response.headers) valid = valid && is_valid_header(name, value);
  if (!valid) {
    const observability::ScopedLogContext scope(
        {.request_id = request_id, .trace_id = "", .span_id = ""});
    spdlog::error("http server: a handler returned an invalid response (request {})", request_id);
    response = error_response(500, to_string(ErrorKind::kInternal), "internal error");
  }
  if (!response.file_path.empty()) {
    bhttp::file_body::value_type file;
    error_code ec;
    file.open(response.file_path.c_str(), beast::file_mode::scan, ec);
    if (!ec) {
      bhttp::response<bhttp::file_body> message;
      fill_header(message, response, version, keep_alive, request_id);
      message.body() = std::move(file);
      message.prepare_payload();
      body_bytes_ = head ? 0 : message.body().size();
      co_return co_await send(message, head);
    }
    response = error_response(404, "not_found", "no such file");
  }
  // Small bodies are the hot path: the header is written by hand into a buffer the connection
  // reuses, and sent with the body in one gathered write (no field allocations, no copy).
  const bool bodiless = response.status == 204 || response.status == 304;
  body_bytes_ = head || bodiless ? 0 : response.body.size();
  serialize_header(response, version, keep_alive, request_id, bodiless);
  const std::array<asio::const_buffer, 2> buffers{
      asio::buffer(header_), head || bodiless ? asio::const_buffer() : asio::buffer(response.body)};
  begin(Clock::now() + core_->options.body_timeout);
  auto [ec, n] = co_await asio::async_write(socket_, buffers, kNoThrow);
  co_return !end(ec);
}

void Connection::serialize_header(const Response& response, unsigned version, bool keep_alive,
                                  const std::string& request_id, bool bodiless) {
  const auto append_number = [this](uint64_t n) {
    char digits[24];
    header_.append(digits, std::to_chars(digits, digits + sizeof digits, n).ptr);
  };
  const auto append_field = [this](std::string_view name, std::string_view value) {
    header_.append(name).append(": ").append(value).append("\r\n");
  };
  header_.clear();
  header_.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  append_number(response.status);
  header_.push_back(' ');
  const bhttp::status status = bhttp::int_to_status(response.status);
  if (status != bhttp::status::unknown) header_.append(to_std(bhttp::obsolete_reason(status)));
  header_.append("\r\n");
  append_field("Server", core_->options.server_name);
  if (!bodiless) append_field("Content-Type", response.content_type);
  append_field("X-Request-Id", request_id);
  for (const auto& [name, value] : response.headers) {
    if (!is_framing_header(name)) append_field(name, value);
  }
  if (version == 10 && keep_alive) append_field("Connection", "keep-alive");
  if (version != 10 && !keep_alive) append_field("Connection", "close");
  if (!bodiless) {
    header_.append("Content-Length: ");
    append_number(response.body.size());
    header_.append("\r\n");
  }
  header_.append("\r\n");
}

template <class Body>
asio::awaitable<bool> Connection::send(bhttp::response<Body>& message, bool head) {
  bhttp::response_serializer<Body> serializer(message);
  if (head) {
    auto [ec, n] = co_await timed(Clock::now() + core_->options.body_timeout, [&] {
      return bhttp::async_write_header(socket_, serializer, kNoThrow);
    });
    co_return !ec;
  }
  // The timeout applies to each piece, so that a large file to a slow reader is not cut short
  // while it progresses.
  while (!serializer.is_done()) {
    auto [ec, n] = co_await timed(Clock::now() + core_->options.body_timeout, [&] {
      return bhttp::async_write_some(socket_, serializer, kNoThrow);
    });
    if (ec) co_return false;
  }
  co_return true;
}

}  // namespace server_detail

struct Server::Impl final : server_detail::ServerCore {
  using ServerCore::ServerCore;
};

Server::Server(boost::asio::io_context& ioc, BlockingPool& blocking, Router router,
               ServerOptions options)
    : Server(std::vector<boost::asio::io_context*>{&ioc}, blocking, std::move(router),
             std::move(options)) {}

Server::Server(std::vector<boost::asio::io_context*> contexts, BlockingPool& blocking,
               Router router, ServerOptions options)
    : impl_(std::make_shared<Impl>(std::move(contexts), blocking, std::move(router),
                                   std::move(options))) {}

Server::~Server() {
  try {
    impl_->stop();
  } catch (const std::exception& e) {
    spdlog::error("http server: stopping failed: {}", e.what());
  }
}

Status Server::listen() { return impl_->listen(); }

uint16_t Server::port() const { return impl_->port.load(); }

void Server::stop() { impl_->stop(); }

}  // namespace dither::http
