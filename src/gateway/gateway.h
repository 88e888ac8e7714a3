// The API gateway: the one public listener. It forwards /api/images... to the upload service and
// /api/dithers... to the dithering service (keep-alive connection pools, timeouts), serves the
// stored files under /files/, a landing page at /, the OpenAPI document at /openapi.json, and an
// aggregated /health. It holds no business logic: every answer about an image comes from a
// service.
//
//   Gateway gateway(ioc.get_executor(), options);
//   http::Server server(ioc, pool, gateway.routes(), server_options);
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
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>

#include "http/client.h"
#include "http/router.h"

namespace dither {

struct GatewayOptions {
  http::UpstreamOptions upload;
  http::UpstreamOptions dither;
  // Where stored files live when blobs are on the local disk; empty: /files/ is not served.
  std::filesystem::path files_root;
};

class Gateway {
 public:
  Gateway(boost::asio::any_io_executor executor, GatewayOptions options);
  http::Router routes();
  void close();

 private:
  GatewayOptions options_;
  std::shared_ptr<http::UpstreamClient> upload_;
  std::shared_ptr<http::UpstreamClient> dither_;
};

std::string_view openapi_document();
std::string_view landing_page();
// "image/png" etc. from a file name's extension; "application/octet-stream" otherwise.
std::string_view content_type_for(std::string_view filename);

}  // namespace dither
