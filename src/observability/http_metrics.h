// What an HTTP server records about its requests, in the families every server of the project
// shares (the `server` label tells ditherd's servers apart in one process):
//   dither_http_requests_total{server,route,method,status}      counter
//   dither_http_request_duration_seconds{server,route,method}   histogram (kHttpBuckets)
//   dither_http_requests_in_flight{server}                      gauge
//   dither_http_connections{server}                             gauge (open now)
//   dither_http_rejections_total{server,reason}                 counter
//
//   HttpMetrics http(metrics, "gateway");
//   HttpMetrics::Route& images = http.route("/images/{uuid}", "GET");  // once, when routing
//   ...
//   HttpMetrics::Request request = http.start();   // in flight from here to finish/destruction
//   ...handle...
//   request.finish(images, response.status);        // counted and timed
//   http.rejected("overloaded");
//
// `route` is the route's template, never the path itself (one series per route, not per id);
// requests that match no route are best recorded under one template such as "unmatched".
// Thread-safe. The Routes live as long as the HttpMetrics.
#pragma once

#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "observability/metrics.h"

namespace dither::observability {

class HttpMetrics {
 public:
  // One route and method: its duration histogram is kept, and the counters of the statuses seen.
  class Route {
   public:
    Route(const HttpMetrics& owner, std::string route, std::string method);
    void record(unsigned status, double seconds);

   private:
    prometheus::Counter& requests(unsigned status);

    const HttpMetrics& owner_;
    const std::string route_;
    const std::string method_;
    prometheus::Histogram& duration_;
    std::mutex mutex_;
    std::vector<std::pair<unsigned, prometheus::Counter*>> by_status_;  // a handful: a scan
  };

  // A request in flight: counted in the in-flight gauge until finished or destroyed.
  class Request {
   public:
    explicit Request(prometheus::Gauge& in_flight) : in_flight_(&in_flight) {
      in_flight_->Increment();
    }
    ~Request() { finish_in_flight(); }
    Request(Request&& other) noexcept
        : in_flight_(std::exchange(other.in_flight_, nullptr)), stopwatch_(other.stopwatch_) {}
    Request(const Request&) = delete;
    Request& operator=(const Request&) = delete;
    Request& operator=(Request&&) = delete;

    // Counts the request with its status and duration (once; later calls do nothing).
    void finish(Route& route, unsigned status);

   private:
    void finish_in_flight();

    prometheus::Gauge* in_flight_;
    Stopwatch stopwatch_;
  };

  HttpMetrics(Metrics& metrics, std::string server);

  // The Route of a template and method, made at the first call (a lookup under a lock later:
  // keep the reference).
  Route& route(std::string_view route_template, std::string_view method);
  Request start() { return Request(in_flight_); }
  // The open connections: the server calls these as it accepts and closes them.
  prometheus::Gauge& connections() { return connections_; }
  // A request or connection refused before any handler ran ("overloaded", "too_large", ...).
  void rejected(std::string_view reason) { rejections_.with({server_, reason}).Increment(); }

 private:
  const std::string server_;
  const CounterFamily requests_;
  const HistogramFamily durations_;
  const CounterFamily rejections_;
  prometheus::Gauge& in_flight_;
  prometheus::Gauge& connections_;
  std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, Route, std::less<>> routes_;
};

}  // namespace dither::observability
