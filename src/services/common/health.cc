#include "services/common/health.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <utility>

#include "http/errors.h"

namespace dither {

void Readiness::add(std::string name, Check check) {
  checks_.emplace_back(std::move(name), std::move(check));
}

Readiness::Report Readiness::check() {
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (checked_at_ == std::chrono::steady_clock::time_point{} || now - checked_at_ >= ttl_) {
    Report report;
    report.ready = true;
    for (const auto& [name, part] : checks_) {
      Status status = part ? part() : Status{};
      if (!status) {
        // Public route: the reason goes to the log only.
        spdlog::warn("not ready: {}: {}", name, status.error().message);
      }
      auto [it, added] = report.checks.emplace(name, status.ok());
      if (!added) it->second = it->second && status.ok();
      report.ready = report.ready && status.ok();
    }
    last_ = std::move(report);
    checked_at_ = now;
  }
  Report out = last_;
  out.stopping = stopping_;
  out.ready = out.ready && !out.stopping;
  return out;
}

boost::json::object checks_json(const Readiness::Report& report) {
  boost::json::object checks;
  for (const auto& [name, ok] : report.checks) checks[name] = ok ? "ok" : "unavailable";
  return checks;
}

http::Response live_response(std::string_view service) {
  boost::json::object o;
  o["status"] = "ok";
  o["service"] = service;
  return http::json_response(200, boost::json::serialize(o));
}

http::Response ready_response(std::string_view service, Readiness& readiness) {
  const Readiness::Report report = readiness.check();
  boost::json::object o;
  o["status"] = report.ready ? "ok" : "unavailable";
  o["service"] = service;
  o["checks"] = checks_json(report);
  if (report.stopping) o["stopping"] = true;
  return http::json_response(report.ready ? 200 : 503, boost::json::serialize(o));
}

void add_health_routes(http::Router& router, std::string service, Readiness& readiness) {
  router.add(http::Verb::get, "/health/live",
             [service](const http::RequestContext&) { return live_response(service); });
  router.add(http::Verb::get, "/health/ready", [service, &readiness](const http::RequestContext&) {
    return ready_response(service, readiness);
  });
}

}  // namespace dither
