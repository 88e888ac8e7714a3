#include "gateway/gateway.h"

#include <atomic>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/json.hpp>
#include <cstdio>
#include <fstream>
#include <iterator>

#include "common/hash.h"
#include "http/errors.h"
#include "http/server.h"
#include "ports/records.h"

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

// Builds the upstream request: `path` with the original query string.
http::Request upstream_request(const RequestContext& c, const std::string& path) {
  http::Request out{c.request.method(), path + std::string(query_of(c.request)), 11};
  for (std::string_view name : kForwardedHeaders) {
    const std::string_view value = c.header(name);
    if (!value.empty()) out.set(beast::string_view(name.data(), name.size()), value);
  }
  out.set("X-Request-Id", c.request_id);
  out.body() = c.request.body();
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
  return out;
}

class HttpUpstream final : public Upstream {
 public:
  HttpUpstream(boost::asio::any_io_executor executor, http::UpstreamOptions options)
      : client_(std::make_shared<http::UpstreamClient>(std::move(executor), std::move(options))) {}
  awaitable<Result<Response>> send(http::Request request) override {
    auto client = client_;
    Result<http::UpstreamResponse> r = co_await client->send(std::move(request));
    if (!r) co_return r.error();
    co_return from_upstream(*r);
  }
  void close() override { client_->close(); }

 private:
  std::shared_ptr<http::UpstreamClient> client_;
};

class LocalUpstream final : public Upstream {
 public:
  LocalUpstream(http::Router routes, boost::asio::thread_pool& blocking, uint64_t body_limit)
      : routes_(std::move(routes)), blocking_(blocking), body_limit_(body_limit) {}
  awaitable<Result<Response>> send(http::Request request) override {
    if (request.body().size() > body_limit_) {
      co_return http::error_response(
          413, "too_large", "the request body is over " + std::to_string(body_limit_) + " bytes");
    }
    const auto id = request["X-Request-Id"];
    Response r = co_await http::dispatch(routes_, blocking_, request, std::string(id));
    // Only what a service's server would send on: its own framing headers never apply here.
    std::erase_if(r.headers, [](const auto& h) { return h.first != "Location"; });
    co_return r;
  }

 private:
  const http::Router routes_;
  boost::asio::thread_pool& blocking_;
  const uint64_t body_limit_;
};

awaitable<Response> forward(Upstream& upstream, const RequestContext& c, std::string path) {
  Result<Response> r = co_await upstream.send(upstream_request(c, path));
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

void add_web_routes(http::Router& router) {
  for (const WebAsset& asset : web_assets()) {
    const std::string path =
        asset.name == "index.html" ? std::string("/") : "/static/" + std::string(asset.name);
    const std::string tag = entity_tag(asset.body);
    const std::string_view type = web_content_type(asset.name);
    const std::string_view body = asset.body;
    router.add(http::Verb::get, path, [tag, type, body](const RequestContext& c) {
      Response r;
      r.headers.emplace_back("ETag", tag);
      r.headers.emplace_back("Cache-Control", "no-cache");
      r.headers.emplace_back("X-Content-Type-Options", "nosniff");
      if (type.starts_with("text/html")) {
        r.headers.emplace_back("Content-Security-Policy", std::string(kPagePolicy));
        r.headers.emplace_back("Referrer-Policy", "no-referrer");
        r.headers.emplace_back("X-Frame-Options", "DENY");
      }
      if (c.header("If-None-Match") == tag) {
        r.status = 304;
        return r;
      }
      r.content_type = std::string(type);
      r.body = std::string(body);
      return r;
    });
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
  awaitable<Result<Response>> send(http::Request request) override {
    const size_t n = instances_.size();
    const size_t first = next_.fetch_add(1, std::memory_order_relaxed) % n;
    const http::Verb verb = request.method();
    const bool idempotent =
        verb == http::Verb::get || verb == http::Verb::head || verb == http::Verb::delete_;
    Error last = make_error(ErrorKind::kUnavailable, "no instance");
    for (size_t i = 0; i < n; ++i) {
      // A copy per attempt (a plain statement: GCC 12 mishandles a conditional's temporaries
      // inside co_await). Only instances of one service share this, and its requests are small.
      http::Request attempt = request;
      Result<Response> r = co_await instances_[(first + i) % n]->send(std::move(attempt));
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
                                        http::UpstreamOptions options) {
  return std::make_shared<HttpUpstream>(std::move(executor), std::move(options));
}

std::shared_ptr<Upstream> local_upstream(http::Router routes, boost::asio::thread_pool& blocking,
                                         uint64_t body_limit) {
  return std::make_shared<LocalUpstream>(std::move(routes), blocking, body_limit);
}

Gateway::Gateway(GatewayOptions options) : options_(std::move(options)) {}

void Gateway::close() {
  options_.upload->close();
  options_.dither->close();
}

http::Router Gateway::routes() {
  http::Router router;
  auto upload = options_.upload;
  auto dither = options_.dither;

  router.add_async(http::Verb::post, "/api/images",
                   [upload](const RequestContext& c) { return forward(*upload, c, "/images"); });
  router.add_async(http::Verb::get, "/api/images",
                   [upload](const RequestContext& c) { return forward(*upload, c, "/images"); });
  router.add_async(http::Verb::get, "/api/images/{uuid}", [upload](const RequestContext& c) {
    return forward(*upload, c, "/images/" + encode_segment(c.param("uuid")));
  });
  router.add_async(http::Verb::delete_, "/api/images/{uuid}", [upload](const RequestContext& c) {
    return forward(*upload, c, "/images/" + encode_segment(c.param("uuid")));
  });
  if (auto notify = options_.notify) {
    router.add_async(http::Verb::get, "/api/notifications", [notify](const RequestContext& c) {
      return forward(*notify, c, "/notifications");
    });
  }
  router.add_async(http::Verb::get, "/api/dithers",
                   [dither](const RequestContext& c) { return forward(*dither, c, "/images"); });
  router.add_async(http::Verb::get, "/api/dithers/{uuid}", [dither](const RequestContext& c) {
    return forward(*dither, c, "/images/" + encode_segment(c.param("uuid")));
  });
  router.add_async(http::Verb::delete_, "/api/dithers/{uuid}", [dither](const RequestContext& c) {
    return forward(*dither, c, "/images/" + encode_segment(c.param("uuid")));
  });
  router.add_async(http::Verb::delete_, "/api/dithers/{uuid}/{dither_id}",
                   [dither](const RequestContext& c) {
                     return forward(*dither, c,
                                    "/images/" + encode_segment(c.param("uuid")) + "/" +
                                        encode_segment(c.param("dither_id")));
                   });
  router.add_async(http::Verb::post, "/api/dithers/{uuid}/{channels}",
                   [dither](const RequestContext& c) {
                     return forward(*dither, c,
                                    "/images/" + encode_segment(c.param("uuid")) + "/" +
                                        encode_segment(c.param("channels")));
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
          Result<Response> r = co_await client->send(std::move(probe));
          json::object entry;
          if (!r) {
            entry["status"] = "unavailable";
            entry["error"] = r.error().message;
          } else {
            boost::system::error_code ec;
            json::value body = json::parse(r->body, ec);
            if (!ec && body.is_object()) entry = std::move(body.as_object());
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

  router.add(http::Verb::get, "/openapi.json", [](const RequestContext&) {
    return http::json_response(200, std::string(openapi_document()));
  });
  add_web_routes(router);

  // A key is never reused for other content (originals/<uuid>.<ext>, dithers/<uuid>/<id>...), so
  // files may be cached for ever.
  const auto file_headers = [](Response& r, std::string_view key) {
    r.content_type = std::string(content_type_for(key));
    r.headers.emplace_back("Cache-Control", "public, max-age=31536000, immutable");
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
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

  if (!root.empty()) {
    // Straight from the disk, streamed.
    router.add(http::Verb::get, "/files/{key...}",
               [root, file_headers, servable, not_found](const RequestContext& c) -> Response {
                 const std::string_view key = c.param("key");
                 if (!servable(key)) return not_found();
                 Response r;
                 r.file_path = (root / std::string(key)).string();
                 file_headers(r, key);
                 return r;
               });
  } else {
    router.add(
        http::Verb::get, "/files/{key...}",
        [read_file, file_headers, file_error](const RequestContext& c) -> Response {
          Result<std::vector<uint8_t>> bytes = read_file(c.param("key"));
          if (!bytes) return file_error(bytes.error());
          Response r;
          r.body.assign(bytes->begin(), bytes->end());
          file_headers(r, c.param("key"));
          return r;
        },
        http::Dispatch::kBlocking);
  }

  // Previews: made on each request (browsers keep them: the key never changes content).
  router.add(
      http::Verb::get, "/thumbnails/{key...}",
      [read_file, file_headers, file_error,
       limits = options_.thumbnail_limits](const RequestContext& c) -> Response {
        Result<std::vector<uint8_t>> bytes = read_file(c.param("key"));
        if (!bytes) return file_error(bytes.error());
        Result<std::vector<uint8_t>> small = imaging::thumbnail(*bytes, kThumbnailBox, limits);
        if (!small) return http::error_response(small.error());
        Response r;
        r.body.assign(small->begin(), small->end());
        file_headers(r, "thumbnail.webp");
        return r;
      },
      http::Dispatch::kBlocking);
  return router;
}

}  // namespace dither
