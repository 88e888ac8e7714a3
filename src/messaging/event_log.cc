#include "messaging/event_log.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace dither {

EventLog::EventLog(const std::string& path) : file_(std::fopen(path.c_str(), "ae")) {
  if (file_ == nullptr) {
    throw std::runtime_error("cannot open the event log " + path + ": " + std::strerror(errno));
  }
  // Unbuffered: each line goes out in one write(), and a failed one leaves nothing behind in a
  // buffer to come out later in the middle of another line.
  std::setvbuf(file_, nullptr, _IONBF, 0);
  target_ = file_;
}

uint64_t EventLog::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

void EventLog::write_to_for_testing(std::FILE* file) {
  std::lock_guard lock(mutex_);
  target_ = file != nullptr ? file : file_;
  broken_line_ = false;
}

bool EventLog::write_line(const std::string& text) {
  if (broken_line_) {
    if (std::fputc('\n', target_) == EOF) {
      std::clearerr(target_);
      return false;
    }
    broken_line_ = false;
  }
  const bool written =
      std::fwrite(text.data(), 1, text.size(), target_) == text.size() && std::fflush(target_) == 0;
  if (!written) {
    std::clearerr(target_);
    broken_line_ = true;
  }
  return written;
}

EventLog::~EventLog() {
  if (file_ != nullptr) std::fclose(file_);
}

Status EventLog::append(const Message& message) {
  namespace json = boost::json;
  json::object line;
  line["topic"] = message.topic;
  line["key"] = message.key;
  json::object headers;
  for (const auto& [name, value] : message.headers) headers[name] = value;
  line["headers"] = std::move(headers);
  boost::system::error_code ec;
  json::value body = json::parse(message.body, ec);
  line["body"] = ec ? json::value(message.body) : std::move(body);
  std::string text = json::serialize(line);
  text.push_back('\n');
  std::lock_guard lock(mutex_);
  if (write_line(text)) return {};
  const int error = errno;
  ++dropped_;
  ++dropped_unreported_;
  const auto now = std::chrono::steady_clock::now();
  if (!reported_ || now - last_report_ >= std::chrono::minutes{1}) {
    spdlog::error(
        "event log: cannot write ({}); {} line(s) dropped since the last report; the "
        "messages themselves flow on",
        std::strerror(error), dropped_unreported_);
    reported_ = true;
    last_report_ = now;
    dropped_unreported_ = 0;
  }
  return {};
}

}  // namespace dither
