// Test helpers: a Server running on its own threads, and a blocking raw-socket client that sends
// exact bytes and parses what comes back. For the tests of this folder (and any other test that
// wants a real server on 127.0.0.1).
#pragma once

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "http/blocking_pool.h"
#include "http/server.h"

namespace dither::http::testing {

// A Server on 127.0.0.1, an ephemeral port, `io_threads` threads running its io_context and a
// blocking pool of `blocking_threads` whose queue holds `max_waiting` (< 0: unbounded). The
// destructor stops the server and waits for the threads.
class RunningServer {
 public:
  explicit RunningServer(Router router, ServerOptions options = {}, int io_threads = 1,
                         int blocking_threads = 2, int max_waiting = -1)
      : pool_(blocking_threads, max_waiting),
        server_(std::make_unique<Server>(ioc_, pool_, std::move(router), std::move(options))) {
    if (Status s = server_->listen(); !s) throw std::runtime_error(s.error().message);
    for (int i = 0; i < io_threads; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }
  ~RunningServer() {
    server_->stop();
    for (std::thread& t : threads_) t.join();
  }
  RunningServer(const RunningServer&) = delete;
  RunningServer& operator=(const RunningServer&) = delete;

  uint16_t port() const { return server_->port(); }
  Server& server() { return *server_; }
  BlockingPool& pool() { return pool_; }
  // Waits for the io threads to end: after stop(), they end once no work is left.
  void join() {
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

 private:
  boost::asio::io_context ioc_;
  BlockingPool pool_;
  std::unique_ptr<Server> server_;
  std::vector<std::thread> threads_;
};

using RawResponse = boost::beast::http::response<boost::beast::http::string_body>;

// One blocking connection to 127.0.0.1:port. Reads time out after 20 s (a hung server fails the
// test instead of hanging it).
class RawClient {
 public:
  explicit RawClient(uint16_t port) : socket_(ioc_) {
    socket_.connect({boost::asio::ip::make_address("127.0.0.1"), port});
    timeval timeout{20, 0};
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }

  void send(std::string_view bytes) {
    boost::asio::write(socket_, boost::asio::buffer(bytes.data(), bytes.size()));
  }

  // Reads one response; throws on a closed connection or a parse error.
  RawResponse read(bool head = false) {
    boost::beast::http::response_parser<boost::beast::http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    parser.skip(head);
    boost::beast::http::read(socket_, buffer_, parser);
    return parser.release();
  }

  RawResponse exchange(std::string_view bytes, bool head = false) {
    send(bytes);
    return read(head);
  }

  // True when the server has closed the connection (a read returns end of file or a reset) and
  // nothing else arrived before.
  bool closed_by_peer() {
    if (buffer_.size() > 0) return false;
    char byte;
    boost::system::error_code ec;
    const size_t n = socket_.read_some(boost::asio::buffer(&byte, 1), ec);
    return n == 0 && (ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset);
  }

  boost::asio::ip::tcp::socket& socket() { return socket_; }

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace dither::http::testing
