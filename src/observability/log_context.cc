#include "observability/log_context.h"

#include <utility>

namespace dither::observability {
namespace {

thread_local LogContext current;

}  // namespace

const LogContext& current_log_context() { return current; }

ScopedLogContext::ScopedLogContext(LogContext context)
    : previous_(std::exchange(current, std::move(context))) {}

ScopedLogContext::~ScopedLogContext() { current = std::move(previous_); }

}  // namespace dither::observability
