#include "http/client.h"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/parser.hpp>
#include <exception>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "http/beast_io.h"

namespace dither::http {
namespace {

using namespace io;  // Asio and Beast names, kNoThrow (beast_io.h)

constexpr uint32_t kResponseHeaderLimit = 64 * 1024;

// Read as much as the buffer's free capacity: from an empty buffer a 1 KB answer then takes one
// system call. Reserved once per connection, kept across its requests.
constexpr size_t kReadBuffer = 16 * 1024;

// A connection with its read buffer and the buffer its request headers are written into; lives
// in the pool between requests. A plain socket with one deadline per exchange (or connect): a
// beast::tcp_stream armed and cancelled a timer around every read and write, and its executor
// bookkeeping was a tenth of the gateway's CPU per proxied request (perf).
struct Connection : std::enable_shared_from_this<Connection> {
  explicit Connection(const asio::any_io_executor& on) : socket(on), timer(on) {
    buffer.reserve(kReadBuffer);
  }

  // Closes the socket if the exchange is not over by `timeout`: the operation in progress then
  // fails, and timed_out says why. Runs, like every use of the connection, on its executor.
  void start_deadline(std::chrono::milliseconds timeout) {
    timed_out = false;
    const uint64_t current = ++generation;
    timer.expires_after(timeout);
    timer.async_wait([self = shared_from_this(), current](const error_code& ec) {
      if (ec || self->generation != current) return;  // cancelled, or an earlier exchange's
      self->timed_out = true;
      error_code ignored;
      self->socket.close(ignored);
    });
  }
  void end_deadline() {
    ++generation;
    timer.cancel();
  }
  error_code failure(const error_code& ec) const {
    return timed_out ? error_code(beast::error::timeout) : ec;
  }

  tcp::socket socket;
  asio::steady_timer timer;
  beast::flat_buffer buffer;
  std::string header;  // the request's start line and fields, reused across requests
  uint64_t generation = 0;
  bool timed_out = false;
};

// The outcome of one request on one connection.
struct Exchange {
  std::optional<UpstreamResponse> response;
  bool reusable = false;   // the connection may serve another request
  bool retryable = false;  // failed before any byte of a response arrived, not by timeout
  std::string error;
};

// The request's start line and fields, as Beast's serializer writes them, into `out`: written by
// hand into a buffer the connection keeps, then sent with the body in one gathered write.
void serialize_header(const Request& request, std::string& out) {
  const auto append = [&out](beast::string_view s) { out.append(s.data(), s.size()); };
  out.clear();
  append(request.method_string());
  out.push_back(' ');
  append(request.target());
  out.append(request.version() == 10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  for (const auto& field : request) {
    append(field.name_string());
    out.append(": ");
    append(field.value());
    out.append("\r\n");
  }
  out.append("\r\n");
}

using ResponseParser = bhttp::response_parser<bhttp::string_body>;

// Reading one response into `parser` from the connection (what is already buffered first), as
// bhttp::async_read does: end_of_stream when the connection closed before any byte, a body that
// ends with the connection completed by put_eof. The loop is exchange's own (a coroutine of its
// own would be one more frame, an allocation, per request); these are its steps.
// Parses what is buffered: the outcome, or `more` set when the socket must be read first.
error_code parse_buffered(Connection& c, ResponseParser& parser, bool& more) {
  more = false;
  for (;;) {
    if (c.buffer.size() > 0) {
      error_code ec;
      const size_t used = parser.put(c.buffer.data(), ec);
      c.buffer.consume(used);
      if (ec && ec != bhttp::error::need_more) return ec;
      if (parser.is_done()) return {};
      if (!ec && used > 0) continue;
    }
    more = true;
    return {};
  }
}

// After a read of `n` bytes that ended with `ec`: the outcome when it ends the response.
std::optional<error_code> after_read(Connection& c, ResponseParser& parser, error_code ec,
                                     size_t n) {
  c.buffer.commit(n);
  if (ec == asio::error::eof) {
    if (!parser.got_some()) return error_code(bhttp::error::end_of_stream);
    error_code eof;
    parser.put_eof(eof);
    return eof;
  }
  if (ec) return c.failure(ec);
  return std::nullopt;
}

}  // namespace

struct UpstreamClient::Impl {
  Impl(asio::any_io_executor ex, UpstreamOptions o)
      : executor(std::move(ex)),
        options(std::move(o)),
        where(options.host + ":" + std::to_string(options.port)) {
    error_code ec;
    const asio::ip::address address = asio::ip::make_address(options.host, ec);
    if (!ec) endpoint = tcp::endpoint(address, options.port);
  }

  static asio::awaitable<Result<UpstreamResponse>> send(std::shared_ptr<Impl> self,
                                                        Request& request);
  asio::awaitable<Result<std::shared_ptr<Connection>>> connect(const asio::any_io_executor& on);
  // Connects `connection`; the error, and whether it was the name that could not be resolved.
  asio::awaitable<std::pair<error_code, bool>> open(Connection& connection);
  static asio::awaitable<Exchange> exchange(Connection& connection, const Request& request,
                                            const UpstreamOptions& options);
  // Runs `work` on the connection's executor: its own strand unless one thread runs each
  // context, so that the deadline's handler and the exchange never run at once.
  // (Not a coroutine itself: no frame of its own when one thread runs the context.)
  template <class T>
  asio::awaitable<T> on(Connection& connection, asio::awaitable<T> work) const {
    if (options.one_thread_per_context) return work;
    return asio::co_spawn(connection.socket.get_executor(), std::move(work), asio::use_awaitable);
  }
  std::shared_ptr<Connection> take_idle(const void* context);
  void put_idle(const void* context, std::shared_ptr<Connection> connection);
  void close();
  Error unavailable(std::string_view what) const {
    return make_error(ErrorKind::kUnavailable, "upstream " + where + ": " + std::string(what));
  }

  const asio::any_io_executor executor;
  const UpstreamOptions options;
  const std::string where;                // host:port, also the Host header
  std::optional<tcp::endpoint> endpoint;  // when the host is an address (no resolving)

  // Idle connections per execution context (most recent last): a request takes a connection of
  // the context it runs on, so with one context per thread nothing crosses threads.
  std::mutex mutex;
  std::unordered_map<const void*, std::vector<std::shared_ptr<Connection>>> idle;  // by mutex
  bool closed = false;  // guarded by mutex; set by the destructor
};

std::shared_ptr<Connection> UpstreamClient::Impl::take_idle(const void* context) {
  const std::lock_guard lock(mutex);
  auto it = idle.find(context);
  if (it == idle.end() || it->second.empty()) return nullptr;
  std::shared_ptr<Connection> connection = std::move(it->second.back());
  it->second.pop_back();
  return connection;
}

void UpstreamClient::Impl::put_idle(const void* context, std::shared_ptr<Connection> connection) {
  const std::lock_guard lock(mutex);
  auto& pool = idle[context];
  if (!closed && pool.size() < static_cast<size_t>(std::max(options.max_idle, 0))) {
    pool.push_back(std::move(connection));
  }
  // else: destroyed here (or when its cancelled deadline's handler has run), which closes it
}

void UpstreamClient::Impl::close() {
  std::unordered_map<const void*, std::vector<std::shared_ptr<Connection>>> closing;
  const std::lock_guard lock(mutex);
  closing.swap(idle);
}

asio::awaitable<std::pair<error_code, bool>> UpstreamClient::Impl::open(Connection& connection) {
  connection.start_deadline(options.connect_timeout);
  error_code ec;
  if (endpoint) {
    std::tie(ec) = co_await connection.socket.async_connect(*endpoint, kNoThrow);
  } else {
    tcp::resolver resolver(connection.socket.get_executor());
    auto [resolve_ec, results] =
        co_await resolver.async_resolve(options.host, std::to_string(options.port), kNoThrow);
    if (resolve_ec) {
      connection.end_deadline();
      co_return std::pair{resolve_ec, true};
    }
    std::tie(ec, std::ignore) = co_await asio::async_connect(connection.socket, results, kNoThrow);
  }
  ec = connection.failure(ec);
  connection.end_deadline();
  co_return std::pair{ec, false};
}

asio::awaitable<Result<std::shared_ptr<Connection>>> UpstreamClient::Impl::connect(
    const asio::any_io_executor& on) {
  auto connection = std::make_shared<Connection>(
      options.one_thread_per_context ? on : asio::any_io_executor(asio::make_strand(on)));
  const auto [ec, unresolved] = co_await this->on(*connection, open(*connection));
  if (unresolved) co_return unavailable("cannot resolve: " + ec.message());
  if (ec == beast::error::timeout) co_return unavailable("connect timed out");
  if (ec) co_return unavailable("cannot connect: " + ec.message());
  error_code ignored;
  connection->socket.set_option(tcp::no_delay(true), ignored);
  co_return std::move(connection);
}
asio::awaitable<Exchange> UpstreamClient::Impl::exchange(Connection& connection,
                                                         const Request& request,
                                                         const UpstreamOptions& options) {
  Exchange result;
  connection.start_deadline(options.request_timeout);
  serialize_header(request, connection.header);
  const std::array<asio::const_buffer, 2> buffers{asio::buffer(connection.header),
                                                  asio::buffer(request.body())};
  auto [write_error, written] = co_await asio::async_write(connection.socket, buffers, kNoThrow);
  const error_code write_ec = connection.failure(write_error);
  if (write_ec == beast::error::timeout) {
    connection.end_deadline();
    result.error = "timed out";
    co_return result;
  }
  // Even when the write failed, read: a server may answer early (a 413 before the whole body)
  // and close, and that answer is what the caller wants.
  ResponseParser parser;
  parser.header_limit(kResponseHeaderLimit);
  parser.body_limit(options.response_body_limit);
  parser.skip(request.method() == bhttp::verb::head);
  error_code read_ec;
  for (;;) {
    bool more = false;
    read_ec = parse_buffered(connection, parser, more);
    if (!more) break;
    const size_t size = beast::read_size(connection.buffer, kReadBuffer);
    if (size == 0) {
      read_ec = bhttp::error::buffer_overflow;
      break;
    }
    auto [ec, n] =
        co_await connection.socket.async_read_some(connection.buffer.prepare(size), kNoThrow);
    if (std::optional<error_code> end = after_read(connection, parser, ec, n)) {
      read_ec = *end;
      break;
    }
  }
  connection.end_deadline();
  if (read_ec) {
    result.retryable =
        read_ec != beast::error::timeout && !parser.got_some() && connection.buffer.size() == 0;
    if (read_ec == beast::error::timeout) {
      result.error = "timed out";
    } else if (write_ec) {
      result.error = "write: " + write_ec.message();
    } else if (read_ec == bhttp::error::body_limit) {
      result.error = "response body over " + std::to_string(options.response_body_limit) + " bytes";
    } else if (read_ec == bhttp::error::end_of_stream) {
      result.error = "connection closed before a response";
    } else {
      result.error = "read: " + read_ec.message();
    }
    co_return result;
  }
  result.reusable = !write_ec && parser.get().keep_alive() && connection.buffer.size() == 0;
  result.response.emplace(parser.release());
  co_return result;
}

asio::awaitable<Result<UpstreamResponse>> UpstreamClient::Impl::send(std::shared_ptr<Impl> self,
                                                                     Request& request) {
  try {
    request.set(bhttp::field::host, self->where);
    request.keep_alive(true);
    request.prepare_payload();
    // Connections are made on, and pooled by, the context of the coroutine that sends.
    const asio::any_io_executor on = co_await asio::this_coro::executor;
    const void* context = &asio::query(on, asio::execution::context);
    for (int attempt = 0;; ++attempt) {
      // A retry always takes a fresh connection: the pool may hold more stale ones.
      std::shared_ptr<Connection> connection = attempt == 0 ? self->take_idle(context) : nullptr;
      const bool reused = connection != nullptr;
      if (!connection) {
        Result<std::shared_ptr<Connection>> connected = co_await self->connect(on);
        if (!connected) co_return connected.error();
        connection = std::move(*connected);
      }
      Exchange exchange =
          co_await self->on(*connection, Impl::exchange(*connection, request, self->options));
      if (exchange.response) {
        if (exchange.reusable) self->put_idle(context, std::move(connection));
        co_return std::move(*exchange.response);
      }
      if (!(reused && exchange.retryable && attempt == 0))
        co_return self->unavailable(exchange.error);
    }
  } catch (const std::exception& e) {
    co_return self->unavailable(e.what());
  }
}

UpstreamClient::UpstreamClient(boost::asio::any_io_executor executor, UpstreamOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options))) {}

UpstreamClient::~UpstreamClient() {
  {
    const std::lock_guard lock(impl_->mutex);
    impl_->closed = true;
  }
  impl_->close();
}

boost::asio::awaitable<Result<UpstreamResponse>> UpstreamClient::send(Request& request) {
  return Impl::send(impl_, request);  // its copy of impl_: the client may be destroyed meanwhile
}

boost::asio::awaitable<Result<UpstreamResponse>> UpstreamClient::send(Request&& request) {
  Request owned = std::move(request);  // kept in this frame until the answer
  co_return co_await send(owned);
}

void UpstreamClient::close() { impl_->close(); }

}  // namespace dither::http
