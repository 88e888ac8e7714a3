#include "observability/listener.h"

#include <boost/asio/io_context.hpp>
#include <charconv>
#include <thread>
#include <utility>

#include "http/blocking_pool.h"

namespace dither::observability {

Result<ListenAddress> parse_listen_address(std::string_view address) {
  const auto invalid = [&] {
    return make_error(ErrorKind::kInvalidArgument,
                      "metrics address: host:port expected, got \"" + std::string(address) + "\"");
  };
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return invalid();
  std::string_view host = address.substr(0, colon);
  const std::string_view port_text = address.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return invalid();
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return invalid();  // an IPv6 address needs its brackets
  }
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return invalid();
  }
  return ListenAddress{std::string(host), static_cast<uint16_t>(port)};
}

http::Router metrics_router(const Metrics& metrics) {
  http::Router router;
  router.add(http::Verb::get, "/metrics", [&metrics](const http::RequestContext&) {
    http::Response response;
    response.content_type = std::string(Metrics::kContentType);
    response.body = metrics.render();
    return response;
  });
  return router;
}

http::ServerOptions metrics_server_options(const ListenAddress& address) {
  http::ServerOptions options;
  options.host = address.host;
  options.port = address.port;
  options.body_limit = 1024;
  options.max_in_flight = 4;
  options.max_connections = 16;
  options.open_paths = {};
  options.server_name = "dither-metrics";  // the Server header
  options.access_log = false;
  // A scrape of a few hundred series is tens of KB of repetitive text; Prometheus asks for gzip.
  options.compress_min_bytes = 4096;
  return options;
}

struct MetricsListener::Impl {
  Impl(const Metrics& metrics, const ListenAddress& address)
      : blocking(1, 0),  // the Server needs one; /metrics never blocks
        server(ioc, blocking, metrics_router(metrics), metrics_server_options(address)) {}

  boost::asio::io_context ioc;
  http::BlockingPool blocking;
  http::Server server;
  std::thread thread;
};

MetricsListener::MetricsListener(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsListener::~MetricsListener() {
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->blocking.join();
}

uint16_t MetricsListener::port() const { return impl_->server.port(); }

Result<std::unique_ptr<MetricsListener>> serve_metrics(const Metrics& metrics,
                                                       std::string_view address) {
  if (address.empty()) return std::unique_ptr<MetricsListener>();
  Result<ListenAddress> parsed = parse_listen_address(address);
  if (!parsed) return parsed.error();
  auto impl = std::make_unique<MetricsListener::Impl>(metrics, *parsed);
  if (Status listening = impl->server.listen(); !listening) return listening.error();
  impl->thread = std::thread([&ioc = impl->ioc] { ioc.run(); });
  return std::unique_ptr<MetricsListener>(new MetricsListener(std::move(impl)));
}

}  // namespace dither::observability
