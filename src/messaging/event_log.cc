#include "messaging/event_log.h"

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace dither {

EventLog::EventLog(const std::string& path) : file_(std::fopen(path.c_str(), "ae")) {
  if (file_ == nullptr) {
    throw std::runtime_error("cannot open the event log " + path + ": " + std::strerror(errno));
  }
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
  if (std::fwrite(text.data(), 1, text.size(), file_) != text.size() || std::fflush(file_) != 0) {
    return make_error(ErrorKind::kUnavailable, "cannot write the event log");
  }
  return {};
}

}  // namespace dither
