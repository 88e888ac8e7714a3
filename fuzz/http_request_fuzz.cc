// The HTTP request path up to the handlers: raw bytes parsed by Beast's request parser (as the
// server does, with a body limit), then each complete request run through http::dispatch() with a
// small Router shaped like the services' (literal segments, placeholders, a rest placeholder,
// inline, blocking and coroutine handlers, one that throws) on an io_context. Also the URL
// decoding helpers on the raw bytes.
//
// Invariants: every answer has a status from 200 to 599 and a JSON error body for errors; a 405
// names what the path allows; a 5xx carries no detail; handlers only see decoded, non-empty
// placeholders and a path starting with '/'; percent_decode never grows its input, is the
// identity without '%' (and '+'), and round-trips through a full %XX encoding.
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "fuzz/fuzz_support.h"
#include "http/router.h"
#include "http/server.h"
#include "http/url_decode.h"

namespace {

using namespace dither;
using dither::http::Dispatch;
using dither::http::RequestContext;
using dither::http::Response;
using dither::http::Verb;

void check_context(const RequestContext& c) {
  FUZZ_CHECK(!c.path.empty() && c.path.front() == '/');
  FUZZ_CHECK(c.path.find('?') == std::string_view::npos);
  for (const auto& [name, value] : c.params) {
    FUZZ_CHECK(!name.empty());
    FUZZ_CHECK(!value.empty());
  }
  (void)c.header("Content-Type");
  (void)c.query_value("name");
}

Response echo(const RequestContext& c) {
  check_context(c);
  std::string body;
  for (const auto& [name, value] : c.params) body += name + "=" + value + ";";
  for (const auto& [name, value] : c.query) body += name + ":" + value + ";";
  return Response{.status = 200, .content_type = "text/plain", .body = std::move(body)};
}

http::Router make_router() {
  http::Router router;
  router.add(Verb::get, "/health", echo);
  router.add(Verb::get, "/images", echo);
  router.add(Verb::get, "/images/{uuid}", echo);
  router.add(Verb::post, "/images", echo, Dispatch::kBlocking);
  router.add(Verb::post, "/images/{uuid}/{channels}", echo, Dispatch::kBlocking);
  router.add(Verb::delete_, "/images/{uuid}", echo);
  router.add(Verb::delete_, "/images/{uuid}/{dither_id}", echo);
  router.add(Verb::get, "/files/{key...}", [](const RequestContext& c) {
    FUZZ_CHECK(!c.param("key").empty());
    return echo(c);
  });
  router.add(Verb::get, "/thumbnails/{key...}", echo, Dispatch::kBlocking);
  router.add_async(
      Verb::get, "/async/{name}",
      [](const RequestContext& c) -> boost::asio::awaitable<Response> { co_return echo(c); });
  router.add(Verb::get, "/throw/{what}", [](const RequestContext& c) -> Response {
    check_context(c);
    throw std::runtime_error("secret detail " + std::string(c.param("what")));
  });
  router.add(Verb::get, "/fail/{what}", [](const RequestContext& c) -> Response {
    check_context(c);
    return Response{.status = 500,
                    .body = R"({"error":{"code":"internal","message":"secret detail"}})"};
  });
  return router;
}

void check_response(const Response& r) {
  FUZZ_CHECK(r.status >= 200 && r.status <= 599);
  if (r.status >= 400) {
    FUZZ_CHECK(r.body.starts_with("{\"error\":"));
  }
  if (r.status >= 500) {
    FUZZ_CHECK(r.body.find("secret detail") == std::string::npos);
  }
  if (r.status == 405) {
    bool allow = false;
    for (const auto& [name, value] : r.headers)
      allow = allow || (name == "Allow" && !value.empty());
    FUZZ_CHECK(allow);
  }
}

void check_decoding(std::string_view text) {
  for (const bool plus : {false, true}) {
    const Result<std::string> decoded = http::percent_decode(text, plus);
    if (!decoded) continue;
    FUZZ_CHECK(decoded->size() <= text.size());
    if (text.find('%') == std::string_view::npos &&
        (!plus || text.find('+') == std::string_view::npos)) {
      FUZZ_CHECK(*decoded == text);
    }
    std::string encoded;
    for (const char ch : *decoded) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      const auto u = static_cast<unsigned char>(ch);
      encoded += '%';
      encoded += kHex[u >> 4];
      encoded += kHex[u & 15];
    }
    const Result<std::string> again = http::percent_decode(encoded, plus);
    FUZZ_CHECK(again.ok() && *again == *decoded);
  }
  const Result<http::QueryPairs> query = http::parse_query(text);
  if (query) {
    for (const auto& [name, value] : *query) FUZZ_CHECK(name.size() + value.size() <= text.size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const http::Router router = make_router();
  static http::BlockingPool blocking(1, -1);
  static boost::asio::io_context io;

  const std::string_view input = fuzz::as_text(data, size);
  check_decoding(input.substr(0, 4096));

  std::string_view rest = input;
  int requests = 0;
  while (!rest.empty() && requests < 8) {
    boost::beast::http::request_parser<boost::beast::http::string_body> parser;
    parser.header_limit(8 * 1024);
    parser.body_limit(64 * 1024);
    parser.eager(true);
    boost::system::error_code ec;
    size_t used = 0;
    while (!parser.is_done() && used < rest.size()) {
      const size_t n = parser.put(boost::asio::buffer(rest.data() + used, rest.size() - used), ec);
      used += n;
      if (ec || n == 0) break;
    }
    if (!parser.is_done() && !ec && used == rest.size()) {
      parser.put_eof(ec);  // the connection closed here
    }
    if (ec || !parser.is_done()) break;
    rest.remove_prefix(used);
    ++requests;

    http::Request request = parser.release();
    std::atomic<int> in_flight{0};
    std::optional<Response> answer;
    boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
          answer =
              co_await http::dispatch(router, blocking, request, "fuzz-request", &in_flight, 4);
        },
        boost::asio::detached);
    io.run();
    io.restart();
    FUZZ_CHECK(answer.has_value());
    FUZZ_CHECK(in_flight.load() == 0);
    // What a Server sends: dispatch()'s answer through without_detail() (ServerOptions'
    // generic_server_errors, on by default).
    check_response(http::without_detail(std::move(*answer), "fuzz-request"));

    // The router on its own, and the same path as the router sees it.
    const std::string_view target(request.target().data(), request.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    const http::Router::Match match = router.match(request.method(), path);
    if (match.handler != nullptr) FUZZ_CHECK(match.path_known);
    if (match.handler == nullptr && match.path_known) FUZZ_CHECK(!match.allow.empty());
  }
  return 0;
}
