#include "http/client.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
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

// Beast reads as much as the buffer's free capacity, at least 512 bytes: from an empty buffer a
// 1 KB answer took three system calls. Reserved once per connection, kept across its requests.
constexpr size_t kReadBuffer = 16 * 1024;

// A connection with its read buffer; lives in the pool between requests.
struct Connection {
  Connection(const asio::any_io_executor& executor, bool own_strand)
      : stream(own_strand ? asio::any_io_executor(asio::make_strand(executor)) : executor) {
    buffer.reserve(kReadBuffer);
  }
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
};

// The outcome of one request on one connection.
struct Exchange {
  std::optional<UpstreamResponse> response;
  bool reusable = false;   // the connection may serve another request
  bool retryable = false;  // failed before any byte of a response arrived, not by timeout
  std::string error;
};

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
  asio::awaitable<Result<std::unique_ptr<Connection>>> connect(const asio::any_io_executor& on);
  static asio::awaitable<Exchange> exchange(Connection& connection, const Request& request,
                                            const UpstreamOptions& options);
  std::unique_ptr<Connection> take_idle(const void* context);
  void put_idle(const void* context, std::unique_ptr<Connection> connection);
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
  std::unordered_map<const void*, std::vector<std::unique_ptr<Connection>>> idle;  // by mutex
  bool closed = false;  // guarded by mutex; set by the destructor
};

std::unique_ptr<Connection> UpstreamClient::Impl::take_idle(const void* context) {
  const std::lock_guard lock(mutex);
  auto it = idle.find(context);
  if (it == idle.end() || it->second.empty()) return nullptr;
  std::unique_ptr<Connection> connection = std::move(it->second.back());
  it->second.pop_back();
  return connection;
}

void UpstreamClient::Impl::put_idle(const void* context, std::unique_ptr<Connection> connection) {
  connection->stream.expires_never();
  const std::lock_guard lock(mutex);
  auto& pool = idle[context];
  if (!closed && pool.size() < static_cast<size_t>(std::max(options.max_idle, 0))) {
    pool.push_back(std::move(connection));
  }
  // else: destroyed here, which closes it
}

void UpstreamClient::Impl::close() {
  std::unordered_map<const void*, std::vector<std::unique_ptr<Connection>>> closing;
  const std::lock_guard lock(mutex);
  closing.swap(idle);
}

asio::awaitable<Result<std::unique_ptr<Connection>>> UpstreamClient::Impl::connect(
    const asio::any_io_executor& on) {
  auto connection = std::make_unique<Connection>(on, !options.one_thread_per_context);
  beast::tcp_stream& stream = connection->stream;
  stream.expires_after(options.connect_timeout);
  error_code ec;
  if (endpoint) {
    std::tie(ec) = co_await stream.async_connect(*endpoint, kNoThrow);
  } else {
    tcp::resolver resolver(on);
    auto [resolve_ec, results] =
        co_await resolver.async_resolve(options.host, std::to_string(options.port), kNoThrow);
    if (resolve_ec) co_return unavailable("cannot resolve: " + resolve_ec.message());
    std::tie(ec, std::ignore) = co_await stream.async_connect(results, kNoThrow);
  }
  if (ec == beast::error::timeout) co_return unavailable("connect timed out");
  if (ec) co_return unavailable("cannot connect: " + ec.message());
  error_code ignored;
  stream.socket().set_option(tcp::no_delay(true), ignored);
  co_return std::move(connection);
}

asio::awaitable<Exchange> UpstreamClient::Impl::exchange(Connection& connection,
                                                         const Request& request,
                                                         const UpstreamOptions& options) {
  Exchange result;
  beast::tcp_stream& stream = connection.stream;
  stream.expires_after(options.request_timeout);
  auto [write_ec, written] = co_await bhttp::async_write(stream, request, kNoThrow);
  if (write_ec == beast::error::timeout) {
    result.error = "timed out";
    co_return result;
  }
  // Even when the write failed, read: a server may answer early (a 413 before the whole body)
  // and close, and that answer is what the caller wants.
  bhttp::response_parser<bhttp::string_body> parser;
  parser.header_limit(kResponseHeaderLimit);
  parser.body_limit(options.response_body_limit);
  parser.skip(request.method() == bhttp::verb::head);
  auto [read_ec, read] = co_await bhttp::async_read(stream, connection.buffer, parser, kNoThrow);
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
      std::unique_ptr<Connection> connection = attempt == 0 ? self->take_idle(context) : nullptr;
      const bool reused = connection != nullptr;
      if (!connection) {
        Result<std::unique_ptr<Connection>> connected = co_await self->connect(on);
        if (!connected) co_return connected.error();
        connection = std::move(*connected);
      }
      Exchange exchange = co_await Impl::exchange(*connection, request, self->options);
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
  std::shared_ptr<Impl> impl = impl_;  // the client may be destroyed while this runs
  co_return co_await Impl::send(std::move(impl), request);
}

boost::asio::awaitable<Result<UpstreamResponse>> UpstreamClient::send(Request&& request) {
  Request owned = std::move(request);  // kept in this frame until the answer
  co_return co_await send(owned);
}

void UpstreamClient::close() { impl_->close(); }

}  // namespace dither::http
