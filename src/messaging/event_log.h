// A subscriber that appends every message it sees to a file, one JSON object per line:
// {"topic": ..., "key": ..., "headers": {name: value, ...}, "body": <the body, parsed>}.
// Set DITHER_EVENT_LOG to use it; the functional tests read it to check the message flow.
//
// Thread-safe; each line is written whole and flushed.
//
// Best-effort: the log must never stop the flow of messages. A line that cannot be written (a
// full disk, an I/O error) is dropped, append() still returns OK, and the failure is logged at
// most once a minute with the number of lines dropped meanwhile. After a failed write the next
// line starts on a new line, so a partly written one stands alone.
#pragma once

#include <chrono>
#include <cstdint>
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

  // Always OK (see above); the Status is kept for the subscriber's signature.
  Status append(const Message& message);

  // Lines dropped since the log was opened (tests).
  uint64_t dropped() const;

  // For tests: writes to `file` instead (not owned; e.g. fopen("/dev/full")); nullptr: back
  // to the log's own file.
  void write_to_for_testing(std::FILE* file);

 private:
  bool write_line(const std::string& text);  // under mutex_

  mutable std::mutex mutex_;
  std::FILE* file_ = nullptr;
  std::FILE* target_ = nullptr;  // file_, or the test's
  bool broken_line_ = false;     // the last write failed midway
  uint64_t dropped_ = 0;
  uint64_t dropped_unreported_ = 0;
  std::chrono::steady_clock::time_point last_report_{};
  bool reported_ = false;
};

}  // namespace dither
