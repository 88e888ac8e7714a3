// The API gateway: the one public listener. It forwards /api/images... to the upload service,
// /api/dithers... to the dithering service and /api/notifications to the notification service
// (keep-alive connection pools, timeouts), serves the stored files under /files/ (and previews of
// them under /thumbnails/), the web page at / (src/web, its files under /static/), the OpenAPI
// document at /openapi.json, and an aggregated /health. It holds no business logic: every answer
// about an image comes from a service.
//
//   Gateway gateway({.upload = http_upstream(ex, {.port = 8081}), .dither = ..., .files_root =
//   ...}); http::Server server(ioc, pool, gateway.routes(), server_options);
//
// Route mapping (docs/API.md):
//   POST   /api/images                   -> upload  POST   /images
//   GET    /api/images                   -> upload  GET    /images
//   GET    /api/images/{uuid}            -> upload  GET    /images/{uuid}
//   DELETE /api/images/{uuid}            -> upload  DELETE /images/{uuid}
//   GET    /api/dithers                  -> dither  GET    /images
//   GET    /api/dithers/{uuid}           -> dither  GET    /images/{uuid}
//   POST   /api/dithers/{uuid}/{channels}-> dither  POST   /images/{uuid}/{channels}
//   DELETE /api/dithers/{uuid}           -> dither  DELETE /images/{uuid}
//   DELETE /api/dithers/{uuid}/{id}      -> dither  DELETE /images/{uuid}/{id}
//   GET    /api/notifications            -> notify  GET    /notifications
//   GET    /api/outbox/upload            -> upload  GET    /outbox/parked
//   POST   /api/outbox/upload/{seq}      -> upload  POST   /outbox/parked/{seq}
//   GET    /api/outbox/dither            -> dither  GET    /outbox/parked
//   POST   /api/outbox/dither/{seq}      -> dither  POST   /outbox/parked/{seq}
// and, answered by the gateway itself (Access): GET /api/me, POST/GET /api/keys,
// DELETE /api/keys/{id}, DELETE /api/session. A browser gets its session from GET /.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "auth/link_signer.h"
#include "common/result.h"
#include "gateway/access.h"
#include "gateway/limits.h"
#include "http/blocking_pool.h"
#include "http/client.h"
#include "http/router.h"
#include "imaging/codec.h"
#include "ports/blob_store.h"
#include "services/common/health.h"

namespace dither::observability {
class Tracer;
}  // namespace dither::observability

namespace dither {

// How the gateway reaches a service. Two adapters: over HTTP with a keep-alive pool (services in
// other processes; also selectable in one process), and in process, straight into the service's
// router (ditherd's default: the same routes, validation and limits without a TCP hop).
class Upstream {
 public:
  virtual ~Upstream() = default;
  // The service's answer; kUnavailable when it cannot be reached. `request` stays the caller's
  // and must outlive the call (the body is never copied); an upstream may set headers on it,
  // and it can be sent again (to another instance).
  virtual boost::asio::awaitable<Result<http::Response>> send(http::Request& request) = 0;
  virtual void close() {}
};

// Every request carries `service_token` (X-Service-Token) when it is not empty: the services'
// servers require it (docs/SECURITY.md).
std::shared_ptr<Upstream> http_upstream(boost::asio::any_io_executor executor,
                                        http::UpstreamOptions options,
                                        std::string service_token = {});
// Whose share of a service's blocking pool a request from the gateway uses: its owner (the
// gateway's X-Dither-Owner), "" when it has none. Services' servers and local upstreams key by it.
std::string owner_client_key(const http::Request& request);

// `routes` and `blocking` must outlive the upstream. Bodies over `body_limit` are refused with
// 413, as the service's own server would.
std::shared_ptr<Upstream> local_upstream(http::Router routes, http::BlockingPool& blocking,
                                         uint64_t body_limit);

// Several instances of one service (e.g. two dithering-service processes): requests go round-robin;
// when an instance cannot be reached, the request goes to the next one (always when it was never
// sent, i.e. the connection failed; for GET, HEAD and DELETE, which are idempotent here, after
// any kUnavailable). kUnavailable only when no instance answers.
std::shared_ptr<Upstream> failover_upstream(std::vector<std::shared_ptr<Upstream>> instances);

struct GatewayOptions {
  std::shared_ptr<Upstream> upload;
  std::shared_ptr<Upstream> dither;
  // The notification service (GET /api/notifications -> GET /notifications); optional.
  std::shared_ptr<Upstream> notify;
  // Where stored files live when blobs are on the local disk (served straight from disk) ...
  std::filesystem::path files_root;
  // ... or the blob store /files/ reads them from (S3 in distributed mode; not owned). With
  // neither, /files/ is not served.
  BlobStore* files_store = nullptr;
  // Previews for the web page: GET /thumbnails/<key> is the stored file <key> shrunk to fit in
  // 400 x 400 as a lossy WebP, made at the first request (the same decoding gate and limits as
  // uploads) and kept in `thumbnail_store` (not owned; the store of the files) under
  // thumbnail_key_of(key); none: made on every request.
  imaging::Limits thumbnail_limits;
  BlobStore* thumbnail_store = nullptr;
  // Who may call (gateway/access.h; not owned). Every /api/ route needs a caller, which is
  // passed on to the service (X-Dither-Owner, X-Dither-Admin); every route but /health checks
  // the Host.
  Access* access = nullptr;
  // Checks the links of /files/ and /thumbnails/ (not owned): without one, files are not served.
  const LinkSigner* links = nullptr;
  // Rate limits per client address (every route but /health) and per owner (/api/); not owned;
  // none: no limits.
  RateLimits* limits = nullptr;
  // Where the spans of forwarded requests go (a CLIENT span each, whose context the service gets
  // in `traceparent`; docs/TRACING.md); not owned; none: no spans.
  observability::Tracer* tracer = nullptr;
  // GET /health/ready: this process's own parts (not owned; none: nothing of its own to check),
  // checked on `readiness_executor` (blocking checks must not hold an I/O thread), and, when
  // `probe_services_ready`, each service's GET /health/ready. In process (the embedded mode) the
  // services' parts are this process's, so their checks are in `readiness` already.
  Readiness* readiness = nullptr;
  boost::asio::any_io_executor readiness_executor;
  bool probe_services_ready = true;
};

class Gateway {
 public:
  explicit Gateway(GatewayOptions options);
  http::Router routes();
  void close();

 private:
  GatewayOptions options_;
};

std::string_view openapi_document();
// The web page's files (src/web), embedded at build time: index.html is served at /, the others
// under /static/<name>.
struct WebAsset {
  std::string_view name;
  std::string_view body;
};
std::span<const WebAsset> web_assets();
// "image/png" etc. from a file name's extension; "application/octet-stream" otherwise.
std::string_view content_type_for(std::string_view filename);

}  // namespace dither
