#include "observability/logging.h"

#include <gtest/gtest.h>
#include <spdlog/details/log_msg.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "observability/log_context.h"

namespace dither::observability {
namespace {

namespace json = boost::json;

// One line as the JSON formatter writes it, for a message logged now at `level`.
std::string format_line(std::string_view message,
                        spdlog::level::level_enum level = spdlog::level::info,
                        spdlog::log_clock::time_point time = spdlog::log_clock::now()) {
  const std::unique_ptr<spdlog::formatter> formatter = json_formatter("test-program");
  const spdlog::details::log_msg msg(time, spdlog::source_loc{}, "", level,
                                     spdlog::string_view_t(message.data(), message.size()));
  spdlog::memory_buf_t out;
  formatter->format(msg, out);
  return std::string(out.data(), out.size());
}

// The line parsed (it must be one line of one JSON object, ending in a newline).
json::object parse_line(const std::string& line) {
  EXPECT_TRUE(line.ends_with('\n')) << line;
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
  boost::system::error_code ec;
  json::value value = json::parse(line, ec);
  EXPECT_FALSE(ec) << ec.message() << ": " << line;
  if (ec || !value.is_object()) return {};
  return value.as_object();
}

std::string field(const json::object& object, std::string_view name) {
  const json::value* value = object.if_contains(name);
  return value != nullptr && value->is_string() ? std::string(value->as_string()) : "";
}

TEST(JsonLogs, HasTheFields) {
  // 2026-01-02T03:04:05.678Z
  const auto time = spdlog::log_clock::time_point(std::chrono::seconds{1767323045} +
                                                  std::chrono::milliseconds{678});
  const json::object line =
      parse_line(format_line("dither 42 finished", spdlog::level::warn, time));
  EXPECT_EQ(field(line, "time"), "2026-01-02T03:04:05.678Z");
  EXPECT_EQ(field(line, "level"), "warning");
  EXPECT_EQ(field(line, "program"), "test-program");
  EXPECT_EQ(field(line, "message"), "dither 42 finished");
  // No context: no context fields (rather than empty ones).
  EXPECT_FALSE(line.contains("request_id"));
  EXPECT_FALSE(line.contains("trace_id"));
  EXPECT_FALSE(line.contains("span_id"));
  EXPECT_FALSE(line.contains("event"));
}

TEST(JsonLogs, TimeKeepsMillisecondsAcrossSeconds) {
  const auto base = spdlog::log_clock::time_point(std::chrono::seconds{1767323045});
  EXPECT_EQ(field(parse_line(format_line("a", spdlog::level::info, base)), "time"),
            "2026-01-02T03:04:05.000Z");
  // One formatter over several seconds: the cached date is renewed.
  const std::unique_ptr<spdlog::formatter> formatter = json_formatter("p");
  for (const auto& [offset, expected] :
       {std::pair{std::chrono::milliseconds{999}, "2026-01-02T03:04:05.999Z"},
        std::pair{std::chrono::milliseconds{1000}, "2026-01-02T03:04:06.000Z"},
        std::pair{std::chrono::milliseconds{86'400'001}, "2026-01-03T03:04:05.001Z"}}) {
    const spdlog::details::log_msg msg(base + offset, spdlog::source_loc{}, "", spdlog::level::info,
                                       "m");
    spdlog::memory_buf_t out;
    formatter->format(msg, out);
    EXPECT_EQ(field(parse_line(std::string(out.data(), out.size())), "time"), expected);
  }
}

TEST(JsonLogs, EscapesAndStaysOneLine) {
  const std::string message = std::string("a \"quoted\" back\\slash\nsecond line\r\ttab ") +
                              '\x01' + '\x1b' + "[31m" + '\x7f' + " " + std::string(1, '\0') + "!";
  const std::string line = format_line(message);
  EXPECT_EQ(field(parse_line(line), "message"), message);
  EXPECT_NE(line.find("\\n"), std::string::npos);
  EXPECT_NE(line.find("\\u0001"), std::string::npos);
  EXPECT_NE(line.find("\\u001b"), std::string::npos);
  EXPECT_NE(line.find("\\u007f"), std::string::npos);
  EXPECT_NE(line.find("\\u0000"), std::string::npos);
}

TEST(JsonLogs, KeepsValidUtf8AndReplacesTheRest) {
  // Well-formed: é (2 bytes), € (3), 😀 (4).
  const std::string valid = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80";
  EXPECT_EQ(field(parse_line(format_line(valid)), "message"), valid);
  const std::string replacement = "\xEF\xBF\xBD";
  const std::pair<std::string, std::string> cases[] = {
      {"a\xFFz", "a" + replacement + "z"},                        // never in UTF-8
      {"a\xC3", "a" + replacement},                               // cut short at the end
      {"a\xC3z", "a" + replacement + "z"},                        // cut short before ASCII
      {"\xC0\xAF", replacement + replacement},                    // overlong '/'
      {"\xE0\x80\xAF", replacement + replacement + replacement},  // overlong, 3 bytes
      {"\xED\xA0\x80", replacement + replacement + replacement},  // a surrogate
      {"\xF4\x90\x80\x80", replacement + replacement + replacement + replacement},  // > U+10FFFF
      {"\x80", replacement},  // a lone continuation byte
  };
  for (const auto& [input, expected] : cases) {
    const std::string line = format_line(input);
    EXPECT_EQ(field(parse_line(line), "message"), expected) << line;
  }
}

TEST(JsonLogs, ContextFieldsAppearWhenSetAndScopesNest) {
  EXPECT_TRUE(current_log_context().request_id.empty());
  {
    const ScopedLogContext outer({.request_id = "req-1",
                                  .trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
                                  .span_id = "00f067aa0ba902b7"});
    json::object line = parse_line(format_line("outer"));
    EXPECT_EQ(field(line, "request_id"), "req-1");
    EXPECT_EQ(field(line, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    EXPECT_EQ(field(line, "span_id"), "00f067aa0ba902b7");
    {
      const ScopedLogContext inner({.request_id = "req-2", .trace_id = "", .span_id = ""});
      line = parse_line(format_line("inner"));
      EXPECT_EQ(field(line, "request_id"), "req-2");
      EXPECT_FALSE(line.contains("trace_id"));
      EXPECT_FALSE(line.contains("span_id"));
    }
    // The outer context is back.
    EXPECT_EQ(current_log_context().request_id, "req-1");
    EXPECT_EQ(current_log_context().span_id, "00f067aa0ba902b7");
    // Another thread has its own context: none.
    std::string other = "unset";
    std::thread([&] { other = current_log_context().request_id; }).join();
    EXPECT_EQ(other, "");
  }
  EXPECT_TRUE(current_log_context().request_id.empty());
  EXPECT_TRUE(current_log_context().trace_id.empty());
  EXPECT_FALSE(parse_line(format_line("after")).contains("request_id"));
}

TEST(JsonLogs, ContextFromTraceparent) {
  const LogContext valid =
      log_context_from("r1", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  EXPECT_EQ(valid.request_id, "r1");
  EXPECT_EQ(valid.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(valid.span_id, "00f067aa0ba902b7");
  // A later version may append fields.
  EXPECT_EQ(
      log_context_from("", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz").trace_id,
      "4bf92f3577b34da6a3ce929d0e0e4736");
  for (const std::string_view bad : {
           "", "garbage",
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    // upper case
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    // zero trace
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    // zero span
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // version ff
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // 00 is 55 chars
           "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",    // not hex
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // separator
       }) {
    const LogContext context = log_context_from("r2", bad);
    EXPECT_EQ(context.request_id, "r2");
    EXPECT_EQ(context.trace_id, "") << bad;
    EXPECT_EQ(context.span_id, "") << bad;
  }
}

TEST(LogFormat, Parses) {
  EXPECT_EQ(parse_log_format("text"), LogFormat::kText);
  EXPECT_EQ(parse_log_format("json"), LogFormat::kJson);
  EXPECT_EQ(parse_log_format("JSON"), std::nullopt);
  EXPECT_EQ(parse_log_format(""), std::nullopt);
}

// The default logger, configured as a program would be, writing into a string.
class CapturedLogs {
 public:
  explicit CapturedLogs(const LogOptions& options) : previous_(spdlog::default_logger()) {
    configure_logging(options);
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    if (options.format == LogFormat::kJson) sink->set_formatter(json_formatter(options.program));
    spdlog::default_logger()->sinks() = {sink};
  }
  ~CapturedLogs() {
    configure_logging({});
    spdlog::set_default_logger(previous_);
  }
  CapturedLogs(const CapturedLogs&) = delete;
  CapturedLogs& operator=(const CapturedLogs&) = delete;
  std::string text() const { return out_.str(); }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream out_;
};

const AccessEntry kAccess{.server = "dither",
                          .method = "GET",
                          .route = "/api/images/{uuid}",
                          .status = 200,
                          .duration_ms = 1.2346,
                          .bytes = 512,
                          .request_id = "req-9",
                          .client = "127.0.0.1"};

TEST(AccessLog, JsonHasSeparateFields) {
  const CapturedLogs logs({.format = LogFormat::kJson, .program = "ditherd"});
  ASSERT_TRUE(access_log_enabled());
  {
    const ScopedLogContext scope({.request_id = "req-9",
                                  .trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
                                  .span_id = "00f067aa0ba902b7"});
    log_access(kAccess);
  }
  spdlog::info("not an access line");
  const std::string text = logs.text();
  const size_t first_end = text.find('\n');
  ASSERT_NE(first_end, std::string::npos) << text;
  const json::object access = parse_line(text.substr(0, first_end + 1));
  EXPECT_EQ(field(access, "event"), "access");
  EXPECT_EQ(field(access, "program"), "ditherd");
  EXPECT_EQ(field(access, "server"), "dither");
  EXPECT_EQ(field(access, "method"), "GET");
  EXPECT_EQ(field(access, "route"), "/api/images/{uuid}");
  EXPECT_EQ(access.at("status").as_int64(), 200);
  EXPECT_NEAR(access.at("duration_ms").as_double(), 1.235, 0.0005);
  EXPECT_EQ(access.at("bytes").as_int64(), 512);
  EXPECT_EQ(field(access, "request_id"), "req-9");
  EXPECT_EQ(field(access, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(field(access, "client"), "127.0.0.1");
  EXPECT_EQ(field(access, "level"), "info");
  // The next line is an ordinary one again.
  const json::object plain = parse_line(text.substr(first_end + 1));
  EXPECT_EQ(field(plain, "message"), "not an access line");
  EXPECT_FALSE(plain.contains("event"));
  EXPECT_FALSE(plain.contains("route"));
}

TEST(AccessLog, TextIsOneReadableLine) {
  const CapturedLogs logs({.format = LogFormat::kText, .program = "ditherd"});
  log_access(kAccess);
  const std::string text = logs.text();
  EXPECT_NE(text.find("access dither 127.0.0.1 GET /api/images/{uuid} 200 1.235ms 512B "
                      "request=req-9"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find('\n'), text.size() - 1) << text;
}

TEST(AccessLog, OffOrBelowTheLevelIsDisabled) {
  {
    const CapturedLogs logs({.format = LogFormat::kJson, .program = "p", .access_log = false});
    EXPECT_FALSE(access_log_enabled());
  }
  {
    const CapturedLogs logs({.format = LogFormat::kJson, .program = "p", .level = "warn"});
    EXPECT_FALSE(access_log_enabled());
  }
}

}  // namespace
}  // namespace dither::observability
