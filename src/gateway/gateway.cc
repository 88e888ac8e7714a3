#include "gateway/gateway.h"

#include <array>
#include <atomic>
#include <boost/asio/experimental/awaitable_operators.hpp>
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
  http::Request out{c.request.method(), path + std::string(query_of(c.request)), 11};
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

awaitable<Response> forward(Upstream& upstream, const RequestContext& c, std::string path,
                            const Caller& caller) {
  http::Request request = upstream_request(c, path, caller);
  Result<Response> r = co_await upstream.send(request);
  if (!r) co_return http::error_response(503, "unavailable", r.error().message);
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

// The page and its files. GET / also hands out a browser session when the request has none
// (docs/SECURITY.md): the only place sessions are made.
template <class OnHost>
void add_web_routes(http::Router& router, Access& access, RateLimits* limits,
                    const OnHost& on_host) {
  for (const WebAsset& asset : web_assets()) {
    const bool page = asset.name == "index.html";
    const std::string path = page ? std::string("/") : "/static/" + std::string(asset.name);
    const std::string tag = entity_tag(asset.body);
    const std::string_view type = web_content_type(asset.name);
    const std::string_view body = asset.body;
    router.add(http::Verb::get, path,
               on_host([tag, type, body, page, &access, limits](const RequestContext& c) {
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
                 r.headers.emplace_back("X-Content-Type-Options", "nosniff");
                 if (type.starts_with("text/html")) {
                   r.headers.emplace_back("Content-Security-Policy", std::string(kPagePolicy));
                   r.headers.emplace_back("Referrer-Policy", "no-referrer");
                   r.headers.emplace_back("X-Frame-Options", "DENY");
                 }
                 if (http::etag_matches(c.header("If-None-Match"), tag)) {
                   r.status = 304;
                   return r;
                 }
                 r.content_type = std::string(type);
                 r.body = std::string(body);
                 return r;
               }));
  }
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

http::Router Gateway::routes() {
  http::Router router;
  auto upload = options_.upload;
  auto dither = options_.dither;
  Access* access = options_.access;
  if (access == nullptr) throw std::invalid_argument("Gateway needs GatewayOptions::access");

  RateLimits* limits = options_.limits;
  // Every route but /health answers only for our own host names (DNS rebinding), and each client
  // address only within its rate (`budget`).
  const auto admitted = [access, limits](const RequestContext& c,
                                         Budget budget) -> std::optional<Response> {
    if (std::optional<Response> refusal = access->check_host(c)) return refusal;
    if (limits != nullptr) return limits->check_address(c, budget);
    return std::nullopt;
  };
  const auto on_host = [admitted](http::AsyncHandler h,
                                  Budget budget = Budget::kRead) -> http::AsyncHandler {
    return [admitted, budget, h = std::move(h)](const RequestContext& c) -> awaitable<Response> {
      if (std::optional<Response> refusal = admitted(c, budget)) co_return std::move(*refusal);
      co_return co_await h(c);
    };
  };
  const auto on_host_sync = [admitted](http::SyncHandler h) -> http::SyncHandler {
    return [admitted, h = std::move(h)](const RequestContext& c) -> Response {
      if (std::optional<Response> refusal = admitted(c, Budget::kRead)) return std::move(*refusal);
      return h(c);
    };
  };
  // For blocking routes: the same checks, made on the I/O thread before the request takes a
  // place in the blocking pool (http::Precheck), then `more` (a link check...).
  const auto precheck = [admitted](http::Precheck more = {}) -> http::Precheck {
    return [admitted, more = std::move(more)](const RequestContext& c) -> std::optional<Response> {
      if (std::optional<Response> refusal = admitted(c, Budget::kRead)) return refusal;
      if (more) return more(c);
      return std::nullopt;
    };
  };
  // /api/ routes also need a caller, within the owner's rate.
  const auto api = [&router, access, limits, on_host](http::Verb verb, std::string pattern,
                                                      ApiHandler handler) {
    const Budget budget = RateLimits::budget_of(verb, pattern);
    router.add_async(verb, std::move(pattern),
                     on_host(
                         [access, limits, budget, handler = std::move(handler)](
                             const RequestContext& c) -> awaitable<Response> {
                           Access::Outcome who = access->authenticate(c);
                           if (who.refusal) co_return std::move(*who.refusal);
                           if (limits != nullptr) {
                             if (auto refusal = limits->check_owner(*who.caller, budget)) {
                               co_return std::move(*refusal);
                             }
                           }
                           co_return co_await handler(c, who);
                         },
                         budget));
  };
  // Forwards to `upstream` at the path `to(c)` builds.
  const auto forwarded = [](std::shared_ptr<Upstream> upstream,
                            std::function<std::string(const RequestContext&)> to) -> ApiHandler {
    return [upstream, to = std::move(to)](const RequestContext& c,
                                          const Access::Outcome& who) -> awaitable<Response> {
      co_return co_await forward(*upstream, c, to(c), *who.caller);
    };
  };
  const auto fixed = [](std::string path) {
    return [path = std::move(path)](const RequestContext&) { return path; };
  };
  const auto images_uuid = [](const RequestContext& c) {
    return "/images/" + encode_segment(c.param("uuid"));
  };

  api(http::Verb::post, "/api/images", forwarded(upload, fixed("/images")));
  api(http::Verb::get, "/api/images", forwarded(upload, fixed("/images")));
  api(http::Verb::get, "/api/images/{uuid}", forwarded(upload, images_uuid));
  api(http::Verb::delete_, "/api/images/{uuid}", forwarded(upload, images_uuid));
  if (auto notify = options_.notify) {
    api(http::Verb::get, "/api/notifications", forwarded(notify, fixed("/notifications")));
  }
  api(http::Verb::get, "/api/dithers", forwarded(dither, fixed("/images")));
  api(http::Verb::get, "/api/dithers/{uuid}", forwarded(dither, images_uuid));
  api(http::Verb::delete_, "/api/dithers/{uuid}", forwarded(dither, images_uuid));
  api(http::Verb::delete_, "/api/dithers/{uuid}/{dither_id}",
      forwarded(dither, [](const RequestContext& c) {
        return "/images/" + encode_segment(c.param("uuid")) + "/" +
               encode_segment(c.param("dither_id"));
      }));
  api(http::Verb::post, "/api/dithers/{uuid}/{channels}",
      forwarded(dither, [](const RequestContext& c) {
        return "/images/" + encode_segment(c.param("uuid")) + "/" +
               encode_segment(c.param("channels"));
      }));

  // Parked outbox messages of each service (admins; the services check): GET lists them,
  // POST .../{seq} puts one back in the queue.
  for (const auto& [name, upstream] :
       {std::pair<const char*, std::shared_ptr<Upstream>>{"upload", upload}, {"dither", dither}}) {
    api(http::Verb::get, std::string("/api/outbox/") + name,
        forwarded(upstream, fixed("/outbox/parked")));
    api(http::Verb::post, std::string("/api/outbox/") + name + "/{seq}",
        forwarded(upstream, [](const RequestContext& c) {
          return "/outbox/parked/" + encode_segment(c.param("seq"));
        }));
  }

  // Identity: answered here.
  api(http::Verb::get, "/api/me",
      [access](const RequestContext&, const Access::Outcome& who) -> awaitable<Response> {
        co_return access->me(who);
      });
  api(http::Verb::post, "/api/keys",
      [access](const RequestContext& c, const Access::Outcome& who) -> awaitable<Response> {
        co_return access->create_key(c, *who.caller);
      });
  api(http::Verb::get, "/api/keys",
      [access](const RequestContext&, const Access::Outcome& who) -> awaitable<Response> {
        co_return access->list_keys(*who.caller);
      });
  api(http::Verb::delete_, "/api/keys/{id}",
      [access](const RequestContext& c, const Access::Outcome& who) -> awaitable<Response> {
        co_return access->revoke_key(c.param("id"), *who.caller);
      });
  api(http::Verb::delete_, "/api/session",
      [access](const RequestContext&, const Access::Outcome& who) -> awaitable<Response> {
        co_return access->end_session(who);
      });

  router.add_async(
      http::Verb::get, "/health",
      [upload, dither, notify = options_.notify](const RequestContext& c) -> awaitable<Response> {
        json::object services;
        bool all_ok = true;
        std::vector<std::pair<const char*, std::shared_ptr<Upstream>>> parts = {{"upload", upload},
                                                                                {"dither", dither}};
        if (notify) parts.emplace_back("notify", notify);
        for (auto& [name, client] : parts) {
          http::Request probe{http::Verb::get, "/health", 11};
          probe.set("X-Request-Id", c.request_id);
          Result<Response> r = co_await client->send(probe);
          json::object entry;
          if (!r) {
            // Why (an address, a system error) stays in the log: /health is public.
            std::fprintf(stderr, "gateway: health of %s (request %s): %s\n", name,
                         c.request_id.c_str(), r.error().message.c_str());
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
        co_return http::json_response(all_ok ? 200 : 503, json::serialize(o));
      });

  router.add(http::Verb::get, "/openapi.json", on_host_sync([](const RequestContext&) {
               return http::json_response(200, std::string(openapi_document()));
             }));
  add_web_routes(router, *access, limits, on_host_sync);

  // Stored files are private: served through a signed link only (docs/SECURITY.md). Keys never
  // change content, so a signed response may be cached until the link expires.
  const auto file_headers = [](Response& r, std::string_view key, int64_t max_age) {
    r.content_type = std::string(content_type_for(key));
    r.headers.emplace_back("Cache-Control", "private, max-age=" + std::to_string(max_age));
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    // Uploaded bytes on our own origin: never a document that runs anything.
    r.headers.emplace_back("Content-Security-Policy", "default-src 'none'; sandbox");
  };
  const auto servable = [](std::string_view key) {
    return is_valid_object_key(key) && key.find("/.") == std::string_view::npos &&
           !key.starts_with(".");
  };
  const auto not_found = [] { return http::error_response(404, "not_found", "no such file"); };
  // 404 for a missing file (whatever the store says), any other error as it is.
  const auto file_error = [not_found](const Error& e) {
    return e.kind == ErrorKind::kNotFound ? not_found() : http::error_response(e);
  };
  // The stored file under `key`, from the disk or the blob store; kNotFound also for keys that
  // are never served.
  const std::filesystem::path root = options_.files_root;
  BlobStore* store = options_.files_store;
  const auto read_file = [root, store,
                          servable](std::string_view key) -> Result<std::vector<uint8_t>> {
    if (!servable(key)) return make_error(ErrorKind::kNotFound, "no such file");
    if (store != nullptr) return store->get(ObjectKey{std::string(key)});
    std::ifstream in(root / std::string(key), std::ios::binary);
    if (!in) return make_error(ErrorKind::kNotFound, "no such file");
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                               std::istreambuf_iterator<char>());
    if (in.bad()) return make_error(ErrorKind::kUnavailable, "cannot read the file");
    return bytes;
  };
  if (root.empty() && store == nullptr) return router;
  const LinkSigner* links = options_.links;

  if (!root.empty()) {
    // Straight from the disk, streamed.
    router.add(http::Verb::get, "/files/{key...}",
               on_host_sync([root, file_headers, servable, not_found,
                             links](const RequestContext& c) -> Response {
                 const std::string_view key = c.param("key");
                 int64_t max_age = 0;
                 if (auto refusal = check_link(links, c, key, &max_age)) return *refusal;
                 if (!servable(key)) return not_found();
                 Response r;
                 r.file_path = (root / std::string(key)).string();
                 file_headers(r, key, max_age);
                 return r;
               }));
  } else {
    router.add(
        http::Verb::get, "/files/{key...}",
        [read_file, file_headers, file_error, links](const RequestContext& c) -> Response {
          int64_t max_age = 0;
          if (auto refusal = check_link(links, c, c.param("key"), &max_age)) return *refusal;
          Result<std::vector<uint8_t>> bytes = read_file(c.param("key"));
          if (!bytes) return file_error(bytes.error());
          Response r;
          r.body.assign(bytes->begin(), bytes->end());
          file_headers(r, c.param("key"), max_age);
          return r;
        },
        http::Dispatch::kBlocking, precheck([links](const RequestContext& c) {
          int64_t max_age = 0;
          return check_link(links, c, c.param("key"), &max_age);
        }));
  }

  // Previews: made once, at the first request, and stored beside the file under
  // thumbnails/<key>.webp (removed with the file by the services); later requests are served from
  // there without decoding. The file's own signature opens its preview.
  BlobStore* thumbs = options_.thumbnail_store;
  auto making = std::make_shared<std::array<std::mutex, 64>>();
  // A stored preview, when there is one (on disk: only while its file exists).
  const auto stored = [root, store, file_headers](std::string_view key, const ObjectKey& thumb,
                                                  int64_t max_age) -> std::optional<Response> {
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
    file_headers(r, "thumbnail.webp", max_age);
    return r;
  };
  router.add(
      http::Verb::get, "/thumbnails/{key...}",
      [read_file, file_headers, file_error, links, root, thumbs, making, stored,
       limits = options_.thumbnail_limits](const RequestContext& c) -> Response {
        const std::string_view key = c.param("key");
        int64_t max_age = 0;
        if (auto refusal = check_link(links, c, key, &max_age)) return *refusal;
        const ObjectKey thumb = thumbnail_key_of(ObjectKey{std::string(key)});
        if (std::optional<Response> r = stored(key, thumb, max_age)) return std::move(*r);
        // One maker per key at a time: a flood of requests for a new preview decodes it once.
        std::lock_guard lock((*making)[std::hash<std::string_view>{}(key) % making->size()]);
        if (std::optional<Response> r = stored(key, thumb, max_age)) return std::move(*r);
        Result<std::vector<uint8_t>> bytes = read_file(key);
        if (!bytes) return file_error(bytes.error());
        Result<std::vector<uint8_t>> small = imaging::thumbnail(*bytes, kThumbnailBox, limits);
        if (!small) return http::error_response(small.error());
        if (thumbs != nullptr) {
          if (Status s = thumbs->put(thumb, *small, "image/webp"); !s) {
            std::fprintf(stderr, "gateway: cannot store the preview of %.*s: %s\n",
                         static_cast<int>(key.size()), key.data(), s.error().message.c_str());
          } else if (!root.empty()) {
            // The file may have been deleted meanwhile: then its preview must not outlive it.
            std::error_code ec;
            if (!std::filesystem::is_regular_file(root / std::string(key), ec)) {
              (void)thumbs->remove(thumb);
            }
          }
        }
        Response r;
        r.body.assign(small->begin(), small->end());
        file_headers(r, "thumbnail.webp", max_age);
        return r;
      },
      http::Dispatch::kBlocking,
      // Refusals, and a preview already on the disk (streamed like /files/), are answered on the
      // I/O thread: a flood of preview GETs takes no place in the blocking pool (only making a
      // preview, or reading one from S3, does).
      precheck([links, servable, not_found, root,
                stored](const RequestContext& c) -> std::optional<Response> {
        const std::string_view key = c.param("key");
        int64_t max_age = 0;
        if (auto refusal = check_link(links, c, key, &max_age)) return refusal;
        if (!servable(key)) return not_found();
        if (root.empty()) return std::nullopt;
        return stored(key, thumbnail_key_of(ObjectKey{std::string(key)}), max_age);
      }));
  return router;
}

}  // namespace dither
