// A subscriber that appends every message it sees to a file, one JSON object per line:
// {"topic": ..., "key": ..., "headers": {name: value, ...}, "body": <the body, parsed>}.
// Set DITHER_EVENT_LOG to use it; the functional tests read it to check the message flow.
//
// Thread-safe; each line is written whole and flushed.
#pragma once

#include <cstdio>
#include <mutex>
#include <string>

#include "common/result.h"
#include "ports/message.h"

namespace dither {

class EventLog {
 public:
  explicit EventLog(const std::string& path);  // throws when the file cannot be opened
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  Status append(const Message& message);

 private:
  std::mutex mutex_;
  std::FILE* file_ = nullptr;
};

}  // namespace dither
