// Routes a request to its handler by method and path pattern.
//
// Patterns are literal segments and `{name}` placeholders that match one non-empty segment
// ("/images/{uuid}/{channels}"); a final `{name...}` matches the rest of the path, slashes
// included ("/files/{key...}"). Percent-escapes in the path are decoded per segment. The first
// matching route wins.
//
// A handler is either synchronous (returns a Response; runs on an I/O thread with
// Dispatch::kInline, or on the blocking pool with Dispatch::kBlocking) or a coroutine (returns
// asio::awaitable<Response>; always runs on an I/O thread and must not block).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace dither::http {

using Verb = boost::beast::http::verb;
using Request = boost::beast::http::request<boost::beast::http::string_body>;

// What a handler returns. With `file_path` set, the body is that file's content (streamed; a
// missing file gives 404), and `body` is ignored.
struct Response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  std::string file_path;
  // The server waits this long before sending the answer, keeping the connection (a tarpit for
  // clients over their rate: each of their connections then asks at most once per delay). The
  // request no longer counts as in flight meanwhile.
  std::chrono::milliseconds delay{0};
};

struct RequestContext {
  const Request& request;
  std::string_view path;                                    // without the query
  std::vector<std::pair<std::string, std::string>> params;  // from the pattern, decoded
  std::vector<std::pair<std::string, std::string>> query;   // decoded, in order
  std::string request_id;        // X-Request-Id from the client, or a new one
  std::string remote_address{};  // the TCP peer's address; "" in process (no socket)
  // The same request when its body may be moved out by take_body (the server's own copy, not
  // needed once the handler has it); null: take_body copies.
  Request* movable = nullptr;
  // Whose share of the blocking pool this request uses (BlockingPool): the client's address at a
  // public server (trusted proxies honoured), the owner for a call in process; "" is nobody's.
  std::string client_key{};
  // The W3C trace context this request runs in (observability/tracing.h): the server's span for
  // it when tracing is on, else the caller's valid `traceparent` header; "" when none. What a
  // handler passes on to the messages it makes and the requests it forwards.
  std::string traceparent{};

  std::string_view param(std::string_view name) const;  // "" when absent
  std::optional<std::string_view> query_value(std::string_view name) const;
  std::string_view header(std::string_view name) const;  // "" when absent
  // Whether Content-Type says application/json (parameters and case aside): a JSON body must
  // say so, since a cross-site form can post text/plain without asking first.
  bool has_json_body_type() const;
  // The body, moved out of the request when `movable` allows it (request.body() is empty after:
  // call it once, when nothing else reads the body), copied otherwise. A handler that forwards
  // the body elsewhere takes it so that no second copy exists.
  std::string take_body() const;
};

using SyncHandler = std::function<Response(const RequestContext&)>;
using AsyncHandler = std::function<boost::asio::awaitable<Response>(const RequestContext&)>;

enum class Dispatch { kInline, kBlocking };

// Runs on the I/O thread before a blocking handler is queued. An answer here (a refusal, or one
// that needs no blocking work) is sent at once and takes no place in the blocking pool: a flood
// that is refused (rate limits, bad links) never fills the pool's queue.
using Precheck = std::function<std::optional<Response>(const RequestContext&)>;

class Router {
 public:
  void add(Verb verb, std::string pattern, SyncHandler handler,
           Dispatch dispatch = Dispatch::kInline, Precheck precheck = {});
  void add_async(Verb verb, std::string pattern, AsyncHandler handler);

  struct Match {
    const std::variant<SyncHandler, AsyncHandler>* handler = nullptr;
    Dispatch dispatch = Dispatch::kInline;
    const Precheck* precheck = nullptr;  // set when the route has one
    std::vector<std::pair<std::string, std::string>> params;
    std::string_view pattern;  // the matched route's pattern ("/images/{uuid}"), for metrics
    bool path_known = false;   // some route matches the path with another verb (405)
    std::string allow;         // with path_known: the verbs the path answers ("GET, HEAD, POST")
  };
  // GET routes also answer HEAD.
  Match match(Verb verb, std::string_view path) const;

 private:
  struct Route {
    Verb verb;
    std::string pattern;
    std::vector<std::string> segments;
    bool rest = false;  // last segment is {name...}
    std::variant<SyncHandler, AsyncHandler> handler;
    Dispatch dispatch;
    Precheck precheck{};
  };
  std::vector<Route> routes_;
};

}  // namespace dither::http
