// The programs' logs (issue 17, item 4; docs/LOGGING.md): LOG_FORMAT=text keeps spdlog's default
// output; LOG_FORMAT=json writes one JSON object per line to standard error, with the time, level,
// program, message and the context of the work being done (observability/log_context.h). Every
// HTTP server also writes an access line per request answered (ACCESS_LOG).
//
//   configure_logging({.format = LogFormat::kJson, .program = "ditherd", .level = "info"});
//   spdlog::info("dither {} finished", id);
//   // {"time":"2026-01-02T03:04:05.678Z","level":"info","program":"ditherd",
//   //  "message":"dither 42 finished","request_id":"ab12-3","trace_id":"...","span_id":"..."}
//
// Everything goes through spdlog's default logger, which formats and writes a line under one lock:
// lines from different threads never interleave.
#pragma once

#include <spdlog/formatter.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "observability/log_context.h"

namespace dither::observability {

enum class LogFormat { kText, kJson };

// "text" or "json"; nullopt for anything else.
std::optional<LogFormat> parse_log_format(std::string_view text);

struct LogOptions {
  LogFormat format = LogFormat::kText;
  std::string program;         // "ditherd", "api-gateway", ...: the `program` field
  std::string level = "info";  // a spdlog level name: trace, debug, info, warn, error, off
  bool access_log = true;      // ACCESS_LOG: a line per HTTP request answered
};

// Sets up spdlog's default logger and the access log. Text: spdlog's default logger (standard
// output, its usual pattern); json: one object per line on standard error. Call at start-up,
// before other threads log; calling it again replaces the earlier set-up.
void configure_logging(const LogOptions& options);

// The formatter of LOG_FORMAT=json, for a sink of one's own (tests).
std::unique_ptr<spdlog::formatter> json_formatter(std::string program);

// A context with `request_id` and, when `traceparent` is a valid W3C trace context
// ("00-<32 hex>-<16 hex>-<2 hex>", ids not all zero), its trace id and (parent) span id.
LogContext log_context_from(std::string_view request_id, std::string_view traceparent);

// One request answered by an HTTP server. Never the path or the query (ids, signatures and tokens
// live there), a header value or a body: only what is bounded and public.
struct AccessEntry {
  std::string_view server;  // the server's name (http::ServerOptions::server_name)
  std::string_view method;  // GET, POST, ...
  std::string_view route;   // the matched route's template ("/api/images/{uuid}"), "unmatched"
  unsigned status = 0;      // the status sent
  double duration_ms = 0;   // from the request's header to its answer written
  uint64_t bytes = 0;       // response body bytes sent (0 for HEAD, 204, 304)
  std::string_view request_id;
  std::string_view client;  // the TCP peer's address
};

// Whether access lines are wanted (ACCESS_LOG on, info enabled): check it before measuring.
bool access_log_enabled();

// Logs `entry` at info level: one readable line in text mode, separate fields ("event":"access")
// in json mode; the trace ids come from the thread's log context.
void log_access(const AccessEntry& entry);

}  // namespace dither::observability
