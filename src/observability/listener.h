// Serves the metrics (metrics.h) as GET /metrics on a listener of their own, never the public
// port: the project's own HTTP server (http/server.h) with a router of one route. Off unless an
// address is given.
//
//   Result<std::unique_ptr<MetricsListener>> listener =
//       serve_metrics(metrics, "127.0.0.1:9464");   // "" (off): a null listener
//   if (!listener) throw std::runtime_error(listener.error().message);
//   ...
//   listener->reset();                               // or let it go: stops and joins
//
// A program that already runs io_contexts can instead put metrics_router() on a Server of its
// own over them (with metrics_server_options()): no thread of its own then.
//
// Rendering runs on the I/O thread (a few hundred microseconds for a few hundred series, plus
// the Metrics::on_scrape callbacks), so it is not subject to the blocking pool's overload answers:
// metrics stay readable when the service is overloaded.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "http/router.h"
#include "http/server.h"
#include "observability/metrics.h"

namespace dither::observability {

struct ListenAddress {
  std::string host;  // an IP address or a name; IPv6 without its brackets
  uint16_t port = 0;
};

// "host:port" or "[v6]:port"; port 0 picks a free port. kInvalidArgument otherwise.
Result<ListenAddress> parse_listen_address(std::string_view address);

// GET (and HEAD) /metrics: render() as text/plain; version=0.0.4. Other paths 404.
http::Router metrics_router(const Metrics& metrics);

// Small limits: a scraper sends header-only requests and keeps one connection open.
http::ServerOptions metrics_server_options(const ListenAddress& address);

// A Server with metrics_router() and one I/O thread of its own. Thread-safe; the Metrics must
// outlive it.
class MetricsListener {
 public:
  ~MetricsListener();  // stops, waits for the thread
  MetricsListener(const MetricsListener&) = delete;
  MetricsListener& operator=(const MetricsListener&) = delete;

  uint16_t port() const;  // the bound port (useful with port 0)

 private:
  friend Result<std::unique_ptr<MetricsListener>> serve_metrics(const Metrics&, std::string_view);
  struct Impl;
  explicit MetricsListener(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Starts a MetricsListener on `address` (parse_listen_address), or nothing (a null pointer) when
// `address` is empty. kInvalidArgument for a malformed address, kUnavailable when it cannot bind.
Result<std::unique_ptr<MetricsListener>> serve_metrics(const Metrics& metrics,
                                                       std::string_view address);

}  // namespace dither::observability
