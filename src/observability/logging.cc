#include "observability/logging.h"

#include <fmt/format.h>
#include <spdlog/details/log_msg.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <utility>

namespace dither::observability {
namespace {

std::atomic<bool> access_on{false};
// Whether configure_logging installed the JSON logger (else spdlog's default is in use).
std::atomic<bool> json_on{false};
// The access entry being logged on this thread: log_access() sets it for the duration of its one
// spdlog call, and the JSON formatter, which runs in the same call on the same thread (the logger
// is synchronous), writes its fields.
thread_local const AccessEntry* pending_access = nullptr;

void append(spdlog::memory_buf_t& out, std::string_view text) {
  out.append(text.data(), text.data() + text.size());
}

bool continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Bytes of the well-formed UTF-8 sequence at the start of `text` (RFC 3629: no overlong forms, no
// surrogates, nothing past U+10FFFF); 0 when it is not one.
size_t utf8_sequence(std::string_view text) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  size_t length = 0;
  unsigned char low = 0x80;  // the second byte's range, narrowed for some lead bytes
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;   // overlong
    if (lead == 0xED) high = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;   // overlong
    if (lead == 0xF4) high = 0x8F;  // past U+10FFFF
  } else {
    return 0;
  }
  if (text.size() < length || byte(1) < low || byte(1) > high) return 0;
  for (size_t i = 2; i < length; ++i) {
    if (!continuation(byte(i))) return 0;
  }
  return length;
}

// `text` as the inside of a JSON string: quotes, backslashes and control characters escaped
// (a newline is "\n": a line stays one line), malformed UTF-8 replaced by U+FFFD. Runs of plain
// ASCII are copied at once: most log text is that.
void append_escaped(spdlog::memory_buf_t& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t i = 0;
  while (i < text.size()) {
    const size_t run = i;
    while (i < text.size()) {
      const auto c = static_cast<unsigned char>(text[i]);
      if (c < 0x20 || c == '"' || c == '\\' || c >= 0x7F) break;
      ++i;
    }
    append(out, text.substr(run, i - run));
    if (i == text.size()) return;
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const size_t length = utf8_sequence(text.substr(i));
      append(out, length == 0 ? std::string_view("\xEF\xBF\xBD") : text.substr(i, length));
      i += length == 0 ? 1 : length;
      continue;
    }
    ++i;
    switch (c) {
      case '"':
        append(out, "\\\"");
        break;
      case '\\':
        append(out, "\\\\");
        break;
      case '\n':
        append(out, "\\n");
        break;
      case '\r':
        append(out, "\\r");
        break;
      case '\t':
        append(out, "\\t");
        break;
      default: {  // other controls and DEL: never raw in a terminal or a log file
        const char escape[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out.append(escape, escape + sizeof escape);
      }
    }
  }
}

// ,"name":"value" with the value escaped.
void append_field(spdlog::memory_buf_t& out, std::string_view name, std::string_view value) {
  append(out, ",\"");
  append(out, name);
  append(out, "\":\"");
  append_escaped(out, value);
  out.push_back('"');
}

class JsonFormatter final : public spdlog::formatter {
 public:
  explicit JsonFormatter(std::string program) : program_(std::move(program)) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    append(dest, "{\"time\":\"");
    append_time(msg.time, dest);
    append(dest, "\",\"level\":\"");
    const spdlog::string_view_t level = spdlog::level::to_string_view(msg.level);
    append(dest, std::string_view(level.data(), level.size()));
    dest.push_back('"');
    append_field(dest, "program", program_);
    append_field(dest, "message", std::string_view(msg.payload.data(), msg.payload.size()));
    const LogContext& context = current_log_context();
    const AccessEntry* access = pending_access;
    const std::string_view request_id =
        access != nullptr ? access->request_id : std::string_view(context.request_id);
    if (!request_id.empty()) append_field(dest, "request_id", request_id);
    if (!context.trace_id.empty()) append_field(dest, "trace_id", context.trace_id);
    if (!context.span_id.empty()) append_field(dest, "span_id", context.span_id);
    if (access != nullptr) append_access(*access, dest);
    append(dest, "}\n");
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>(program_);
  }

 private:
  static void append_access(const AccessEntry& entry, spdlog::memory_buf_t& dest) {
    append(dest, ",\"event\":\"access\"");
    append_field(dest, "server", entry.server);
    append_field(dest, "method", entry.method);
    append_field(dest, "route", entry.route);
    fmt::format_to(fmt::appender(dest), ",\"status\":{},\"duration_ms\":{:.3f},\"bytes\":{}",
                   entry.status, entry.duration_ms, entry.bytes);
    append_field(dest, "client", entry.client);
  }

  // RFC 3339 in UTC with milliseconds: 2026-01-02T03:04:05.678Z. The date and time of day are
  // made once per second (the formatter runs under its sink's lock, one line at a time).
  void append_time(spdlog::log_clock::time_point time, spdlog::memory_buf_t& dest) {
    const auto since = time.time_since_epoch();
    const auto seconds = std::chrono::floor<std::chrono::seconds>(since);
    if (seconds.count() != cached_second_) {
      const std::time_t t = static_cast<std::time_t>(seconds.count());
      std::tm utc{};
      gmtime_r(&t, &utc);
      const auto end = fmt::format_to_n(
          cached_, sizeof cached_, "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", utc.tm_year + 1900,
          utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
      cached_size_ = std::min(end.size, sizeof cached_);
      cached_second_ = seconds.count();
    }
    dest.append(cached_, cached_ + cached_size_);
    const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since - seconds);
    fmt::format_to(fmt::appender(dest), ".{:03}Z", millis.count());
  }

  std::string program_;
  int64_t cached_second_ = -1;
  char cached_[32] = {};
  size_t cached_size_ = 0;
};

bool lower_hex(std::string_view text) {
  for (const char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool all_zero(std::string_view text) { return text.find_first_not_of('0') == text.npos; }

}  // namespace

std::optional<LogFormat> parse_log_format(std::string_view text) {
  if (text == "text") return LogFormat::kText;
  if (text == "json") return LogFormat::kJson;
  return std::nullopt;
}

std::unique_ptr<spdlog::formatter> json_formatter(std::string program) {
  return std::make_unique<JsonFormatter>(std::move(program));
}

void configure_logging(const LogOptions& options) {
  if (options.format == LogFormat::kJson) {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    sink->set_formatter(json_formatter(options.program));
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("", std::move(sink)));
    json_on = true;
  } else if (json_on.exchange(false)) {
    // Back to what spdlog starts with: its default logger, colours on a terminal, standard output.
    spdlog::set_default_logger(std::make_shared<spdlog::logger>(
        "", std::make_shared<spdlog::sinks::stdout_color_sink_mt>()));
  }
  spdlog::set_level(spdlog::level::from_str(options.level));
  access_on = options.access_log;
}

LogContext log_context_from(std::string_view request_id, std::string_view traceparent) {
  LogContext context;
  context.request_id = std::string(request_id);
  // version "-" trace id "-" parent id "-" flags; a later version may append "-..." fields.
  if (traceparent.size() < 55 || traceparent[2] != '-' || traceparent[35] != '-' ||
      traceparent[52] != '-') {
    return context;
  }
  const std::string_view version = traceparent.substr(0, 2);
  const std::string_view trace = traceparent.substr(3, 32);
  const std::string_view span = traceparent.substr(36, 16);
  const bool sized = traceparent.size() == 55 || (version != "00" && traceparent[55] == '-');
  if (!sized || version == "ff" || !lower_hex(version) || !lower_hex(trace) || !lower_hex(span) ||
      !lower_hex(traceparent.substr(53, 2)) || all_zero(trace) || all_zero(span)) {
    return context;
  }
  context.trace_id = std::string(trace);
  context.span_id = std::string(span);
  return context;
}

bool access_log_enabled() {
  return access_on.load(std::memory_order_relaxed) &&
         spdlog::default_logger_raw()->should_log(spdlog::level::info);
}

void log_access(const AccessEntry& entry) {
  spdlog::logger* logger = spdlog::default_logger_raw();
  if (!json_on.load(std::memory_order_relaxed)) {
    logger->info("access {} {} {} {} {} {:.3f}ms {}B request={}", entry.server, entry.client,
                 entry.method, entry.route, entry.status, entry.duration_ms, entry.bytes,
                 entry.request_id);
    return;
  }
  // The fields are the formatter's; the message is the short summary a log viewer shows.
  struct Pending {
    explicit Pending(const AccessEntry& e) { pending_access = &e; }
    ~Pending() { pending_access = nullptr; }
    Pending(const Pending&) = delete;
    Pending& operator=(const Pending&) = delete;
  } pending(entry);
  logger->info("{} {} {}", entry.method, entry.route, entry.status);
}

}  // namespace dither::observability
