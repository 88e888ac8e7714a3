// The context a log line belongs to: the request or message this thread is working on now, so
// that every line logged meanwhile (by any library code, through spdlog) carries its request id
// and its trace (observability/logging.h writes them as JSON fields).
//
//   void handle(const RequestContext& c) {
//     ScopedLogContext scope({.request_id = c.request_id, .trace_id = ..., .span_id = ...});
//     spdlog::info("...");   // {"request_id": "...", "trace_id": "...", ...}
//   }                        // the previous context (usually none) is back
//
// Per thread: a thread_local, set and read without locks. Never hold a ScopedLogContext across a
// co_await: another request's code may run on this thread meanwhile, and the scope may end on
// another thread.
#pragma once

#include <string>

namespace dither::observability {

struct LogContext {
  std::string request_id;  // X-Request-Id of the request being handled, or empty
  std::string trace_id;    // 32 lowercase hex, or empty
  std::string span_id;     // 16 lowercase hex, or empty
};

// The context of the work this thread does now (empty fields when none).
const LogContext& current_log_context();

// Sets this thread's context for its lifetime and restores the previous one after. Never hold
// one across a co_await: another request's code may run on this thread meanwhile.
class ScopedLogContext {
 public:
  explicit ScopedLogContext(LogContext context);
  ~ScopedLogContext();
  ScopedLogContext(const ScopedLogContext&) = delete;
  ScopedLogContext& operator=(const ScopedLogContext&) = delete;

 private:
  LogContext previous_;
};

}  // namespace dither::observability
