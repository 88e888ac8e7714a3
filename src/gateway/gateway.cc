#include "gateway/gateway.h"

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <mutex>
#include <stdexcept>

#include "common/hash.h"
#include "http/compress.h"
#include "http/errors.h"
#include "http/server.h"
#include "observability/tracing.h"
#include "ports/records.h"
#include "services/common/caller.h"

namespace dither {
namespace {

namespace json = boost::json;
namespace beast = boost::beast;
using boost::asio::awaitable;
using http::RequestContext;
using http::Response;

// The request headers a service may need; everything else stays at the gateway.
constexpr std::string_view kForwardedHeaders[] = {
    "Content-Type", "X-Filename", "traceparent", "Idempotency-Key", "Accept",
};

std::string_view query_of(const http::Request& request) {
  const std::string_view target(request.target().data(), request.target().size());
  const size_t q = target.find('?');
  return q == std::string_view::npos ? std::string_view{} : target.substr(q);
}

// Builds the upstream request: `path` with the original query string, for `caller`.
http::Request upstream_request(const RequestContext& c, const std::string& path,
                               const Caller& caller) {
  http::Request out{c.request.method(), path, 11};
  if (const std::string_view query = query_of(c.request); !query.empty()) {
    out.target(path + std::string(query));
  }
  for (std::string_view name : kForwardedHeaders) {
    const std::string_view value = c.header(name);
    if (!value.empty()) out.set(beast::string_view(name.data(), name.size()), value);
  }
  out.set("X-Request-Id", c.request_id);
  out.set(beast::string_view(kOwnerHeader.data(), kOwnerHeader.size()), caller.owner);
  if (caller.admin) out.set(beast::string_view(kAdminHeader.data(), kAdminHeader.size()), "1");
  out.body() = c.take_body();  // the one copy of the body the gateway holds moves on
  return out;
}

// The parts of a service's answer the client gets.
Response from_upstream(http::UpstreamResponse& r) {
  Response out;
  out.status = r.result_int();
  const auto type = r[beast::http::field::content_type];
  out.content_type = std::string(type.data(), type.size());
  out.body = std::move(r.body());
  const auto location = r[beast::http::field::location];
  if (!location.empty()) out.headers.emplace_back("Location", std::string(location));
  // A service's refusal says when to try again (quotas, the dither queue's bound).
  const auto retry_after = r[beast::http::field::retry_after];
  if (!retry_after.empty()) out.headers.emplace_back("Retry-After", std::string(retry_after));
  return out;
}

class HttpUpstream final : public Upstream {
 public:
  HttpUpstream(boost::asio::any_io_executor executor, http::UpstreamOptions options,
               std::string service_token)
      : client_(std::make_shared<http::UpstreamClient>(std::move(executor), std::move(options))),
        service_token_(std::move(service_token)) {}
  awaitable<Result<Response>> send(http::Request& request) override {
    if (!service_token_.empty()) {
      request.set(beast::string_view(kServiceTokenHeader.data(), kServiceTokenHeader.size()),
                  service_token_);
    }
    auto client = client_;
    Result<http::UpstreamResponse> r = co_await client->send(request);
    if (!r) co_return r.error();
    co_return from_upstream(*r);
  }
  void close() override { client_->close(); }

 private:
  std::shared_ptr<http::UpstreamClient> client_;
  const std::string service_token_;
};

class LocalUpstream final : public Upstream {
 public:
  LocalUpstream(http::Router routes, http::BlockingPool& blocking, uint64_t body_limit)
      : routes_(std::move(routes)), blocking_(blocking), body_limit_(body_limit) {}
  awaitable<Result<Response>> send(http::Request& request) override {
    if (request.body().size() > body_limit_) {
      co_return http::error_response(
          413, "too_large", "the request body is over " + std::to_string(body_limit_) + " bytes");
    }
    const auto id = request["X-Request-Id"];
    Response r = co_await http::dispatch(routes_, blocking_, request, std::string(id), nullptr, 0,
                                         {}, owner_client_key(request));
    // Only what a service's server would send on: its own framing headers never apply here.
    std::erase_if(r.headers,
                  [](const auto& h) { return h.first != "Location" && h.first != "Retry-After"; });
    co_return r;
  }

 private:
  const http::Router routes_;
  http::BlockingPool& blocking_;
  const uint64_t body_limit_;
};

// The service's route `to` answers. A CLIENT span (named "POST /images": the service's route)
// covers the exchange, and the service continues it (its `traceparent`).
awaitable<Response> forward(Upstream& upstream, const RequestContext& c, std::string path,
                            const Caller& caller, observability::Tracer* tracer,
                            std::string_view service, std::string_view to) {
  http::Request request = upstream_request(c, path, caller);
  const std::string_view method(request.method_string().data(), request.method_string().size());
  observability::Span span =
      observability::start_span(tracer, method, observability::SpanKind::kClient, c.traceparent);
  if (span.recording()) span.set_name(std::string(method) + " " + std::string(to));
  if (span.traced()) request.set("traceparent", span.traceparent());
  span.set("http.request.method", method).set("url.template", to).set("peer.service", service);
  Result<Response> r = co_await upstream.send(request);
  if (!r) {
    span.set_error("the service did not answer");
    co_return http::error_response(503, "unavailable", r.error().message);
  }
  span.set("http.response.status_code", r->status);
  if (r->status >= 500) span.set_error("HTTP " + std::to_string(r->status));
  co_return std::move(*r);
}

// Encodes a path segment taken from our own decoded params before it goes upstream.
std::string encode_segment(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// The side of the square a thumbnail fits in: a gallery card is at most ~300 CSS pixels wide, and
// phones have 2 device pixels per CSS pixel or more.
constexpr int kThumbnailBox = 400;

// The page may load only its own files and talk only to this gateway; stored images may come from
// another origin (a CDN-backed blob store).
constexpr std::string_view kPagePolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: http: "
    "https:; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";

std::string_view web_content_type(std::string_view name) {
  if (name.ends_with(".html")) return "text/html; charset=utf-8";
  if (name.ends_with(".css")) return "text/css; charset=utf-8";
  if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (name.ends_with(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

// The page's files change only with the binary: a strong validator from their bytes lets browsers
// revalidate (no-cache) with a 304 instead of downloading them again.
std::string entity_tag(std::string_view body) {
  char out[24];
  std::snprintf(out, sizeof out, "\"%016llx\"", static_cast<unsigned long long>(fnv1a(body)));
  return out;
}

}  // namespace

std::string_view content_type_for(std::string_view filename) {
  const size_t dot = filename.rfind('.');
  const std::string_view ext = dot == std::string_view::npos ? "" : filename.substr(dot + 1);
  if (ext == "png") return "image/png";
  if (ext == "gif") return "image/gif";
  if (ext == "webp") return "image/webp";
  if (ext == "jpeg" || ext == "jpg") return "image/jpeg";
  if (ext == "tiff" || ext == "tif") return "image/tiff";
  return "application/octet-stream";
}

namespace {

class FailoverUpstream final : public Upstream {
 public:
  explicit FailoverUpstream(std::vector<std::shared_ptr<Upstream>> instances)
      : instances_(std::move(instances)) {}
  awaitable<Result<Response>> send(http::Request& request) override {
    const size_t n = instances_.size();
    const size_t first = next_.fetch_add(1, std::memory_order_relaxed) % n;
    const http::Verb verb = request.method();
    const bool idempotent =
        verb == http::Verb::get || verb == http::Verb::head || verb == http::Verb::delete_;
    Error last = make_error(ErrorKind::kUnavailable, "no instance");
    for (size_t i = 0; i < n; ++i) {
      // The same request for every attempt: an upstream leaves it as it can be sent again.
      Result<Response> r = co_await instances_[(first + i) % n]->send(request);
      if (r || r.error().kind != ErrorKind::kUnavailable) co_return r;
      last = r.error();
      if (!idempotent && !never_sent(last)) break;
    }
    co_return last;
  }
  void close() override {
    for (auto& instance : instances_) instance->close();
  }

 private:
  // The upstream client's messages for a request that never left (nothing to undo).
  static bool never_sent(const Error& e) {
    return e.message.find("cannot connect") != std::string::npos ||
           e.message.find("connect timed out") != std::string::npos ||
           e.message.find("cannot resolve") != std::string::npos;
  }
  std::vector<std::shared_ptr<Upstream>> instances_;
  std::atomic<size_t> next_{0};
};

}  // namespace

std::shared_ptr<Upstream> failover_upstream(std::vector<std::shared_ptr<Upstream>> instances) {
  if (instances.size() == 1) return std::move(instances.front());
  return std::make_shared<FailoverUpstream>(std::move(instances));
}

std::shared_ptr<Upstream> http_upstream(boost::asio::any_io_executor executor,
                                        http::UpstreamOptions options, std::string service_token) {
  return std::make_shared<HttpUpstream>(std::move(executor), std::move(options),
                                        std::move(service_token));
}

std::string owner_client_key(const http::Request& request) {
  const auto owner = request[beast::string_view(kOwnerHeader.data(), kOwnerHeader.size())];
  return owner.empty() ? std::string() : "owner/" + std::string(owner);
}

std::shared_ptr<Upstream> local_upstream(http::Router routes, http::BlockingPool& blocking,
                                         uint64_t body_limit) {
  return std::make_shared<LocalUpstream>(std::move(routes), blocking, body_limit);
}

Gateway::Gateway(GatewayOptions options) : options_(std::move(options)) {}

void Gateway::close() {
  options_.upload->close();
  options_.dither->close();
  if (options_.notify) options_.notify->close();
}

namespace {

// A route handler given the authenticated caller.
using ApiHandler =
    std::function<awaitable<Response>(const RequestContext&, const Access::Outcome&)>;

// Refusals and answers about stored files: JSON, or a short page for a person's browser (an old
// mail's link).
Response link_refusal(const RequestContext& c, std::string_view code, std::string_view message) {
  Response r = http::error_response(403, code, message);
  if (c.header("Accept").find("text/html") != std::string_view::npos) {
    r.content_type = "text/html; charset=utf-8";
    r.body =
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Link not "
        "valid</title></head><body><h1>This link does not work</h1><p>" +
        std::string(message) + "</p></body></html>\n";
  }
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

// nullopt when the link may be served; the refusal otherwise. `max_age` gets the seconds the
// link has left.
std::optional<Response> check_link(const LinkSigner* links, const RequestContext& c,
                                   std::string_view key, int64_t* max_age) {
  const int64_t now = now_seconds();
  if (links == nullptr) return link_refusal(c, "link_invalid", "files are not served here");
  const LinkSigner::Verdict verdict =
      links->verify(key, c.query_value("expires"), c.query_value("sig"), now);
  switch (verdict) {
    case LinkSigner::Verdict::kValid: {
      std::string_view e = *c.query_value("expires");
      int64_t expires = 0;
      std::from_chars(e.data(), e.data() + e.size(), expires);
      *max_age = std::max<int64_t>(0, expires - now);
      return std::nullopt;
    }
    case LinkSigner::Verdict::kUnsigned:
      return link_refusal(c, "link_unsigned",
                          "stored files are private: use the signed link from the API or the "
                          "e-mail");
    case LinkSigner::Verdict::kExpired:
      return link_refusal(c, "link_expired",
                          "this link has expired: open the image again to get a fresh one");
    case LinkSigner::Verdict::kInvalid:
      break;
  }
  return link_refusal(c, "link_invalid", "this link is not valid (altered or not ours)");
}

}  // namespace

namespace {

// What kind of answer a route gives, for the security headers every answer of that kind carries
// (added in one place, Guards::secure, never by a route).
enum class Surface {
  kApi,    // JSON (and the OpenAPI document)
  kPage,   // the web page: its content security policy, no referrer, no framing
  kAsset,  // the page's scripts, styles and icons
  kFile,   // stored files and previews: uploaded bytes, never a document that runs anything
};

// The checks every route shares: the Host (DNS rebinding) and the client address's rate on every
// route but /health; for /api/ routes also the caller (API key or session) and the owner's rate;
// and the security headers of each answer.
class Guards {
 public:
  Guards(Access* access, RateLimits* limits) : access_(access), limits_(limits) {}

  static Response secure(Response r, Surface surface) {
    add_security_headers(r, surface);
    return r;
  }
  static void add_security_headers(Response& r, Surface surface) {
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    if (surface == Surface::kPage) {
      r.headers.emplace_back("Content-Security-Policy", std::string(kPagePolicy));
      r.headers.emplace_back("Referrer-Policy", "no-referrer");
      r.headers.emplace_back("X-Frame-Options", "DENY");
    } else if (surface == Surface::kFile) {
      r.headers.emplace_back("Content-Security-Policy", "default-src 'none'; sandbox");
    }
  }

  std::optional<Response> admitted(const RequestContext& c, Budget budget) const {
    if (std::optional<Response> refusal = access_->check_host(c)) return refusal;
    if (limits_ != nullptr) return limits_->check_address(c, budget);
    return std::nullopt;
  }

  // A route of the page or of the API that answers at once (on the I/O thread).
  http::SyncHandler on_host(http::SyncHandler h, Surface surface) const {
    return [self = *this, surface, h = std::move(h)](const RequestContext& c) -> Response {
      if (std::optional<Response> refusal = self.admitted(c, Budget::kRead)) {
        return secure(std::move(*refusal), surface);
      }
      return secure(h(c), surface);
    };
  }

  // A blocking route: the checks run on the I/O thread before the request takes a place in the
  // blocking pool (http::Precheck), then `more` (a link check, an answer that needs no blocking
  // work); `h` runs in the pool.
  http::Precheck precheck(http::Precheck more, Surface surface) const {
    return [self = *this, surface,
            more = std::move(more)](const RequestContext& c) -> std::optional<Response> {
      std::optional<Response> r = self.admitted(c, Budget::kRead);
      if (!r && more) r = more(c);
      if (r) return secure(std::move(*r), surface);
      return std::nullopt;
    };
  }
  static http::SyncHandler secured(http::SyncHandler h, Surface surface) {
    return [surface, h = std::move(h)](const RequestContext& c) { return secure(h(c), surface); };
  }

  // An /api/ route: every check, then `handler` with the caller.
  http::AsyncHandler api(http::Verb verb, std::string_view pattern, ApiHandler handler) const {
    const Budget budget = RateLimits::budget_of(verb, pattern);
    // Not a coroutine: checked's frame is the only one (this lambda, `self` and `handler` live
    // in the router, `c` in the caller's frame).
    return [self = *this, budget,
            handler = std::move(handler)](const RequestContext& c) -> awaitable<Response> {
      return self.checked(c, budget, handler);
    };
  }

 private:
  // Every check, then `handler` with the caller; the answer, refusals included, secured as an
  // API answer. (The checks are not in the coroutine: each Response they may answer would take
  // room in its frame, an allocation per request that past 1 KiB glibc serves more slowly.)
  awaitable<Response> checked(const RequestContext& c, Budget budget,
                              const ApiHandler& handler) const {
    Access::Outcome who;
    if (refused(c, budget, who)) co_return std::move(*who.refusal);
    Response out = co_await handler(c, who);
    add_security_headers(out, Surface::kApi);
    co_return std::move(out);
  }

  // Whether the request is refused (the answer, secured, in who.refusal); else who.caller.
  bool refused(const RequestContext& c, Budget budget, Access::Outcome& who) const {
    if (std::optional<Response> refusal = admitted(c, budget)) {
      who.refusal = std::move(refusal);
    } else {
      who = access_->authenticate(c);
      if (!who.refusal && limits_ != nullptr)
        who.refusal = limits_->check_owner(*who.caller, budget);
    }
    if (!who.refusal) return false;
    add_security_headers(*who.refusal, Surface::kApi);
    return true;
  }

  Access* access_;
  RateLimits* limits_;
};

// The API the services answer: the gateway checks the caller, then forwards to the service's own
// route; `{name}` in `to` is the request's parameter, percent-encoded again.
enum class Service { kUpload, kDither, kNotify };
struct Forward {
  http::Verb verb;
  std::string_view pattern;
  Service service;
  std::string_view to;
};
constexpr std::array<Forward, 18> kForwards = {{
    {http::Verb::post, "/api/images", Service::kUpload, "/images"},
    {http::Verb::get, "/api/images", Service::kUpload, "/images"},
    {http::Verb::get, "/api/images/{uuid}", Service::kUpload, "/images/{uuid}"},
    {http::Verb::delete_, "/api/images/{uuid}", Service::kUpload, "/images/{uuid}"},
    {http::Verb::get, "/api/notifications", Service::kNotify, "/notifications"},
    {http::Verb::get, "/api/dithers", Service::kDither, "/images"},
    {http::Verb::get, "/api/dithers/{uuid}", Service::kDither, "/images/{uuid}"},
    {http::Verb::delete_, "/api/dithers/{uuid}", Service::kDither, "/images/{uuid}"},
    {http::Verb::delete_, "/api/dithers/{uuid}/{dither_id}", Service::kDither,
     "/images/{uuid}/{dither_id}"},
    {http::Verb::post, "/api/dithers/{uuid}/{channels}", Service::kDither,
     "/images/{uuid}/{channels}"},
    // The option table and the presets (docs/API.md "Options", "Presets").
    {http::Verb::get, "/api/options", Service::kDither, "/options"},
    {http::Verb::get, "/api/presets", Service::kDither, "/presets"},
    {http::Verb::post, "/api/presets", Service::kDither, "/presets"},
    {http::Verb::delete_, "/api/presets/{name}", Service::kDither, "/presets/{name}"},
    // Parked outbox messages of each service (admins; the services check): GET lists them,
    // POST .../{seq} puts one back in the queue.
    {http::Verb::get, "/api/outbox/upload", Service::kUpload, "/outbox/parked"},
    {http::Verb::post, "/api/outbox/upload/{seq}", Service::kUpload, "/outbox/parked/{seq}"},
    {http::Verb::get, "/api/outbox/dither", Service::kDither, "/outbox/parked"},
    {http::Verb::post, "/api/outbox/dither/{seq}", Service::kDither, "/outbox/parked/{seq}"},
}};

// `to` with each {name} replaced by the request's parameter, encoded as a path segment.
std::string upstream_path(std::string_view to, const RequestContext& c) {
  std::string path;
  while (!to.empty()) {
    const size_t open = to.find('{');
    if (open == std::string_view::npos) break;
    const size_t close = to.find('}', open);
    path += to.substr(0, open);
    path += encode_segment(c.param(to.substr(open + 1, close - open - 1)));
    to.remove_prefix(close + 1);
  }
  path += to;
  return path;
}

// The identity routes, answered here (gateway/access.h).
void add_identity_routes(http::Router& router, const Guards& guards, Access* access) {
  using Outcome = Access::Outcome;
  const std::array<std::tuple<http::Verb, std::string_view, ApiHandler>, 5> routes = {{
      {http::Verb::get, "/api/me",
       [access](const RequestContext&, const Outcome& who) -> awaitable<Response> {
         co_return access->me(who);
       }},
      {http::Verb::post, "/api/keys",
       [access](const RequestContext& c, const Outcome& who) -> awaitable<Response> {
         co_return access->create_key(c, *who.caller);
       }},
      {http::Verb::get, "/api/keys",
       [access](const RequestContext&, const Outcome& who) -> awaitable<Response> {
         co_return access->list_keys(*who.caller);
       }},
      {http::Verb::delete_, "/api/keys/{id}",
       [access](const RequestContext& c, const Outcome& who) -> awaitable<Response> {
         co_return access->revoke_key(c.param("id"), *who.caller);
       }},
      {http::Verb::delete_, "/api/session",
       [access](const RequestContext&, const Outcome& who) -> awaitable<Response> {
         co_return access->end_session(who);
       }},
  }};
  for (const auto& [verb, pattern, handler] : routes) {
    router.add_async(verb, std::string(pattern), guards.api(verb, pattern, handler));
  }
}

// GET /health: the gateway and each service behind it; public (no Host check), and why a
// service is down stays in the log.
void add_health_route(http::Router& router,
                      const std::vector<std::pair<const char*, std::shared_ptr<Upstream>>>& parts) {
  router.add_async(
      http::Verb::get, "/health", [parts](const RequestContext& c) -> awaitable<Response> {
        json::object services;
        bool all_ok = true;
        for (const auto& [name, client] : parts) {
          http::Request probe{http::Verb::get, "/health", 11};
          probe.set("X-Request-Id", c.request_id);
          Result<Response> r = co_await client->send(probe);
          json::object entry;
          if (!r) {
            spdlog::warn("gateway: health of {} (request {}): {}", name, c.request_id,
                         r.error().message);
          } else {
            boost::system::error_code ec;
            json::value body = json::parse(r->body, ec);
            if (!ec && body.is_object()) entry = std::move(body.as_object());
            entry.erase("error");
            if (r->status != 200) entry["status"] = "unavailable";
          }
          if (!entry.contains("status")) entry["status"] = "unavailable";
          all_ok = all_ok && entry["status"] == "ok";
          services[name] = std::move(entry);
        }
        json::object o;
        o["status"] = all_ok ? "ok" : "degraded";
        o["services"] = std::move(services);
        co_return Guards::secure(http::json_response(all_ok ? 200 : 503, json::serialize(o)),
                                 Surface::kApi);
      });
}

// GET /health/live (the gateway serves) and GET /health/ready: this process's parts and, over
// HTTP, each service's readiness. Public like /health; only "ok"/"unavailable" per part.
void add_readiness_routes(http::Router& router, const GatewayOptions& options,
                          std::vector<std::pair<const char*, std::shared_ptr<Upstream>>> parts) {
  router.add(http::Verb::get, "/health/live", [](const RequestContext&) {
    return Guards::secure(live_response("gateway"), Surface::kApi);
  });
  if (!options.probe_services_ready) parts.clear();
  router.add_async(
      http::Verb::get, "/health/ready",
      [parts, readiness = options.readiness,
       executor = options.readiness_executor](const RequestContext& c) -> awaitable<Response> {
        // ?scope=self: the gateway's own parts only, for a balancer or an orchestrator in front
        // of several gateways (one service down must not take every gateway out).
        const std::optional<std::string_view> scope = c.query_value("scope");
        if (scope && *scope != "self") {
          co_return Guards::secure(
              http::error_response(400, "invalid_argument", "scope must be self when given"),
              Surface::kApi);
        }
        const bool self_only = scope.has_value();
        bool ready = true;
        json::object o;
        if (readiness != nullptr) {
          const Readiness::Report report = co_await boost::asio::co_spawn(
              executor,
              [readiness]() -> awaitable<Readiness::Report> { co_return readiness->check(); },
              boost::asio::use_awaitable);
          o["checks"] = checks_json(report);
          if (report.stopping) o["stopping"] = true;
          ready = report.ready;
        }
        json::object services;
        for (const auto& [name, client] : parts) {
          if (self_only) break;
          http::Request probe{http::Verb::get, "/health/ready", 11};
          probe.set("X-Request-Id", c.request_id);
          Result<Response> r = co_await client->send(probe);
          const bool ok = r && r->status == 200;
          if (!r) {
            spdlog::warn("gateway: readiness of {} (request {}): {}", name, c.request_id,
                         r.error().message);
          }
          services[name] = ok ? "ok" : "unavailable";
          ready = ready && ok;
        }
        if (!parts.empty() && !self_only) o["services"] = std::move(services);
        o["status"] = ready ? "ok" : "unavailable";
        o["service"] = "gateway";
        co_return Guards::secure(http::json_response(ready ? 200 : 503, json::serialize(o)),
                                 Surface::kApi);
      });
}

// The page and its files. GET / also hands out a browser session when the request has none
// (docs/SECURITY.md): the only place sessions are made.
void add_web_routes(http::Router& router, const Guards& guards, Access& access,
                    RateLimits* limits) {
  for (const WebAsset& asset : web_assets()) {
    const bool page = asset.name == "index.html";
    const std::string path = page ? std::string("/") : "/static/" + std::string(asset.name);
    const std::string tag = entity_tag(asset.body);
    const std::string_view type = web_content_type(asset.name);
    const std::string_view body = asset.body;
    const Surface surface = type.starts_with("text/html") ? Surface::kPage : Surface::kAsset;
    router.add(http::Verb::get, path,
               guards.on_host(
                   [tag, type, body, page, &access, limits](const RequestContext& c) {
                     Response r;
                     if (page) {
                       Result<bool> live = access.has_live_session(c);
                       if (!live) return http::error_response(live.error());
                       if (!*live) {
                         // New sessions have their own budget per client address: page loads
                         // cannot fill the sessions table.
                         if (limits != nullptr) {
                           if (auto refusal = limits->check_address(c, Budget::kSession)) {
                             return std::move(*refusal);
                           }
                         }
                         Result<std::string> made = access.new_session();
                         if (!made) return http::error_response(made.error());
                         r.headers.emplace_back("Set-Cookie", std::move(*made));
                       }
                     }
                     r.headers.emplace_back("ETag", tag);
                     r.headers.emplace_back("Cache-Control", "no-cache");
                     if (http::etag_matches(c.header("If-None-Match"), tag)) {
                       r.status = 304;
                       return r;
                     }
                     r.content_type = std::string(type);
                     r.body = std::string(body);
                     return r;
                   },
                   surface));
  }
}

// Stored files, from the disk (served straight from it) or from the blob store. They are private:
// served through a signed link only (docs/SECURITY.md). Keys never change content, so a signed
// answer may be cached until the link expires.
struct StoredFiles {
  std::filesystem::path root;
  BlobStore* store = nullptr;
  const LinkSigner* links = nullptr;

  static bool servable(std::string_view key) {
    return is_valid_object_key(key) && key.find("/.") == std::string_view::npos &&
           !key.starts_with(".");
  }
  static Response not_found() { return http::error_response(404, "not_found", "no such file"); }
  // 404 for a missing file (whatever the store says), any other error as it is.
  static Response error(const Error& e) {
    return e.kind == ErrorKind::kNotFound ? not_found() : http::error_response(e);
  }
  static void headers(Response& r, std::string_view key, int64_t max_age) {
    r.content_type = std::string(content_type_for(key));
    r.headers.emplace_back("Cache-Control", "private, max-age=" + std::to_string(max_age));
  }
  // nullopt when the request's link opens `key`, else the refusal; `max_age`: what it has left.
  std::optional<Response> check(const RequestContext& c, std::string_view key,
                                int64_t* max_age) const {
    return check_link(links, c, key, max_age);
  }
  // The file under `key`; kNotFound also for keys that are never served.
  Result<std::vector<uint8_t>> read(std::string_view key) const {
    if (!servable(key)) return make_error(ErrorKind::kNotFound, "no such file");
    if (store != nullptr) return store->get(ObjectKey{std::string(key)});
    std::ifstream in(root / std::string(key), std::ios::binary);
    if (!in) return make_error(ErrorKind::kNotFound, "no such file");
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                               std::istreambuf_iterator<char>());
    if (in.bad()) return make_error(ErrorKind::kUnavailable, "cannot read the file");
    return bytes;
  }
  // A stored preview of `key`, when there is one (on disk: only while its file exists).
  std::optional<Response> preview(std::string_view key, const ObjectKey& thumb,
                                  int64_t max_age) const {
    Response r;
    if (!root.empty()) {
      std::error_code ec;
      if (!std::filesystem::is_regular_file(root / std::string(key), ec) ||
          !std::filesystem::is_regular_file(root / thumb.value, ec)) {
        return std::nullopt;
      }
      r.file_path = (root / thumb.value).string();
    } else {
      Result<std::vector<uint8_t>> bytes = store->get(thumb);
      if (!bytes) return std::nullopt;
      r.body.assign(bytes->begin(), bytes->end());
    }
    headers(r, "thumbnail.webp", max_age);
    return r;
  }
};

// GET /files/<key>: from the disk streamed on the I/O thread, or read from the blob store in the
// blocking pool.
void add_files_route(http::Router& router, const Guards& guards, const StoredFiles& files) {
  if (!files.root.empty()) {
    router.add(http::Verb::get, "/files/{key...}",
               guards.on_host(
                   [files](const RequestContext& c) -> Response {
                     const std::string_view key = c.param("key");
                     int64_t max_age = 0;
                     if (auto refusal = files.check(c, key, &max_age)) return *refusal;
                     if (!StoredFiles::servable(key)) return StoredFiles::not_found();
                     Response r;
                     r.file_path = (files.root / std::string(key)).string();
                     StoredFiles::headers(r, key, max_age);
                     return r;
                   },
                   Surface::kFile));
    return;
  }
  router.add(http::Verb::get, "/files/{key...}",
             Guards::secured(
                 [files](const RequestContext& c) -> Response {
                   int64_t max_age = 0;
                   if (auto refusal = files.check(c, c.param("key"), &max_age)) return *refusal;
                   Result<std::vector<uint8_t>> bytes = files.read(c.param("key"));
                   if (!bytes) return StoredFiles::error(bytes.error());
                   Response r;
                   r.body.assign(bytes->begin(), bytes->end());
                   StoredFiles::headers(r, c.param("key"), max_age);
                   return r;
                 },
                 Surface::kFile),
             http::Dispatch::kBlocking,
             guards.precheck(
                 [files](const RequestContext& c) {
                   int64_t max_age = 0;
                   return files.check(c, c.param("key"), &max_age);
                 },
                 Surface::kFile));
}

// GET /thumbnails/<key>: previews, made once at the first request and stored beside the file
// under thumbnails/<key>.webp (in `thumbs`; removed with the file by the services); later
// requests are served from there without decoding. The file's own signature opens its preview.
void add_thumbnails_route(http::Router& router, const Guards& guards, const StoredFiles& files,
                          BlobStore* thumbs, const imaging::Limits& limits) {
  auto making = std::make_shared<std::array<std::mutex, 64>>();
  router.add(
      http::Verb::get, "/thumbnails/{key...}",
      Guards::secured(
          [files, thumbs, making, limits](const RequestContext& c) -> Response {
            const std::string_view key = c.param("key");
            int64_t max_age = 0;
            if (auto refusal = files.check(c, key, &max_age)) return *refusal;
            const ObjectKey thumb = thumbnail_key_of(ObjectKey{std::string(key)});
            if (std::optional<Response> r = files.preview(key, thumb, max_age)) {
              return std::move(*r);
            }
            // One maker per key at a time: a flood of requests for a new preview decodes it once.
            std::lock_guard lock((*making)[std::hash<std::string_view>{}(key) % making->size()]);
            if (std::optional<Response> r = files.preview(key, thumb, max_age)) {
              return std::move(*r);
            }
            Result<std::vector<uint8_t>> bytes = files.read(key);
            if (!bytes) return StoredFiles::error(bytes.error());
            Result<std::vector<uint8_t>> small = imaging::thumbnail(*bytes, kThumbnailBox, limits);
            if (!small) return http::error_response(small.error());
            if (thumbs != nullptr) {
              if (Status s = thumbs->put(thumb, *small, "image/webp"); !s) {
                spdlog::warn("gateway: cannot store the preview of {}: {}", key, s.error().message);
              } else if (!files.root.empty()) {
                // The file may have been deleted meanwhile: then its preview must not outlive it.
                std::error_code ec;
                if (!std::filesystem::is_regular_file(files.root / std::string(key), ec)) {
                  (void)thumbs->remove(thumb);
                }
              }
            }
            Response r;
            r.body.assign(small->begin(), small->end());
            StoredFiles::headers(r, "thumbnail.webp", max_age);
            return r;
          },
          Surface::kFile),
      http::Dispatch::kBlocking,
      // Refusals, and a preview already on the disk (streamed like /files/), are answered on the
      // I/O thread: a flood of preview GETs takes no place in the blocking pool (only making a
      // preview, or reading one from S3, does).
      guards.precheck(
          [files](const RequestContext& c) -> std::optional<Response> {
            const std::string_view key = c.param("key");
            int64_t max_age = 0;
            if (auto refusal = files.check(c, key, &max_age)) return refusal;
            if (!StoredFiles::servable(key)) return StoredFiles::not_found();
            if (files.root.empty()) return std::nullopt;
            return files.preview(key, thumbnail_key_of(ObjectKey{std::string(key)}), max_age);
          },
          Surface::kFile));
}

}  // namespace

http::Router Gateway::routes() {
  Access* access = options_.access;
  if (access == nullptr) throw std::invalid_argument("Gateway needs GatewayOptions::access");
  const Guards guards(access, options_.limits);
  http::Router router;
  for (const Forward& f : kForwards) {
    const std::shared_ptr<Upstream>& upstream = f.service == Service::kUpload   ? options_.upload
                                                : f.service == Service::kDither ? options_.dither
                                                                                : options_.notify;
    if (!upstream) continue;  // the notification service is optional
    router.add_async(
        f.verb, std::string(f.pattern),
        guards.api(f.verb, f.pattern,
                   [upstream, to = f.to, tracer = options_.tracer,
                    service = f.service == Service::kUpload   ? "upload"
                              : f.service == Service::kDither ? "dithering"
                                                              : "notification"](
                       const RequestContext& c, const Access::Outcome& who) -> awaitable<Response> {
                     // Not a coroutine: forward's frame is the only one (`who` and `c` outlive
                     // it in the caller's).
                     return forward(*upstream, c, upstream_path(to, c), *who.caller, tracer,
                                    service, to);
                   }));
  }
  add_identity_routes(router, guards, access);
  std::vector<std::pair<const char*, std::shared_ptr<Upstream>>> parts = {
      {"upload", options_.upload}, {"dither", options_.dither}};
  if (options_.notify) parts.emplace_back("notify", options_.notify);
  add_readiness_routes(router, options_, parts);
  add_health_route(router, parts);
  router.add(http::Verb::get, "/openapi.json",
             guards.on_host(
                 [](const RequestContext&) {
                   return http::json_response(200, std::string(openapi_document()));
                 },
                 Surface::kApi));
  add_web_routes(router, guards, *access, options_.limits);
  if (!options_.files_root.empty() || options_.files_store != nullptr) {
    const StoredFiles files{options_.files_root, options_.files_store, options_.links};
    add_files_route(router, guards, files);
    add_thumbnails_route(router, guards, files, options_.thumbnail_store,
                         options_.thumbnail_limits);
  }
  return router;
}

}  // namespace dither
