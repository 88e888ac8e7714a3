#include "observability/http_metrics.h"

#include <string>
#include <tuple>

namespace dither::observability {

HttpMetrics::HttpMetrics(Metrics& metrics, std::string server)
    : server_(std::move(server)),
      requests_(metrics.counter("http_requests_total", "HTTP requests answered.",
                                {"server", "route", "method", "status"})),
      durations_(metrics.histogram("http_request_duration_seconds",
                                   "Time from a request's header to its answer.",
                                   {"server", "route", "method"}, kHttpBuckets)),
      rejections_(metrics.counter("http_rejections_total",
                                  "Requests or connections refused before a handler ran.",
                                  {"server", "reason"})),
      in_flight_(
          metrics.gauge("http_requests_in_flight", "HTTP requests being handled now.", {"server"})
              .with({server_})),
      connections_(metrics.gauge("http_connections", "HTTP connections open now.", {"server"})
                       .with({server_})) {}

HttpMetrics::Route& HttpMetrics::route(std::string_view route_template, std::string_view method) {
  std::lock_guard lock(mutex_);
  auto key = std::make_pair(std::string(route_template), std::string(method));
  auto it = routes_.find(key);
  if (it == routes_.end()) {
    it = routes_
             .emplace(std::piecewise_construct, std::forward_as_tuple(key),
                      std::forward_as_tuple(*this, key.first, key.second))
             .first;
  }
  return it->second;
}

HttpMetrics::Route::Route(const HttpMetrics& owner, std::string route, std::string method)
    : owner_(owner),
      route_(std::move(route)),
      method_(std::move(method)),
      duration_(owner.durations_.with({owner.server_, route_, method_})) {}

prometheus::Counter& HttpMetrics::Route::requests(unsigned status) {
  std::lock_guard lock(mutex_);
  for (const auto& [seen, counter] : by_status_) {
    if (seen == status) return *counter;
  }
  prometheus::Counter& counter =
      owner_.requests_.with({owner_.server_, route_, method_, std::to_string(status)});
  by_status_.emplace_back(status, &counter);
  return counter;
}

void HttpMetrics::Route::record(unsigned status, double seconds) {
  requests(status).Increment();
  duration_.Observe(seconds);
}

void HttpMetrics::Request::finish(Route& route, unsigned status) {
  if (in_flight_ == nullptr) return;
  route.record(status, stopwatch_.seconds());
  finish_in_flight();
}

void HttpMetrics::Request::finish_in_flight() {
  if (in_flight_ != nullptr) std::exchange(in_flight_, nullptr)->Decrement();
}

}  // namespace dither::observability
