// Liveness and readiness (docs/OPERATIONS.md "Health"): what a load balancer, a container's
// health check or Kubernetes' probes ask.
//
//   GET /health/live   200 {"status": "ok", "service"} while the process serves HTTP at all.
//   GET /health/ready  200 when every part this process needs is usable now (its databases, the
//                      bus, the blob store, SMTP), 503 {"status": "unavailable", "checks": {...}}
//                      otherwise, and from the moment the process begins to stop. Each check's
//                      result is "ok" or "unavailable"; why stays in the log (the routes are
//                      public, docs/SECURITY.md).
//
//   Readiness ready;
//   ready.add("database", [&] { return images.ping(); });
//   ready.add("bus", [&] { return bus.ready(); });
//   add_health_routes(router, "upload", &ready);
//
// Results are cached for `ttl` (one second by default), so that probes from many balancers, or a
// client hammering the public route, cost the servers behind at most one check per part per
// second. Checks run on the blocking pool (the routes are synchronous). Thread-safe.
#pragma once

#include <atomic>
#include <boost/json/object.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "http/router.h"

namespace dither {

class Readiness {
 public:
  using Check = std::function<Status()>;
  explicit Readiness(std::chrono::milliseconds ttl = std::chrono::seconds{1}) : ttl_(ttl) {}

  // Adds a part to check, before the routes serve. A second check of the same name is checked
  // too (both must pass), under that one name.
  void add(std::string name, Check check);
  // From now on not ready (the process is stopping: balancers take it out first).
  void stopping() { stopping_ = true; }

  struct Report {
    bool ready = false;
    bool stopping = false;
    std::map<std::string, bool> checks;  // name -> usable
  };
  // Every check's result, from the cache when it is younger than `ttl`.
  Report check();

 private:
  std::chrono::milliseconds ttl_;
  std::atomic<bool> stopping_{false};
  std::vector<std::pair<std::string, Check>> checks_;
  std::mutex mutex_;  // one probe checks at a time; the others wait and take its result
  std::chrono::steady_clock::time_point checked_at_{};
  Report last_;
};

// {name: "ok" | "unavailable"} of each check in `report`.
boost::json::object checks_json(const Readiness::Report& report);
// 200 {"status": "ok", "service": service}.
http::Response live_response(std::string_view service);
// 200 {"status": "ok", "service", "checks": {name: "ok"}} or 503 with "unavailable" (and
// "stopping": true while the process stops).
http::Response ready_response(std::string_view service, Readiness& readiness);
// GET /health/live and GET /health/ready on `router`; `readiness` must outlive it.
void add_health_routes(http::Router& router, std::string service, Readiness& readiness);

}  // namespace dither
