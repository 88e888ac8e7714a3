// The process metrics every Prometheus client exports, read from /proc/self when scraped (Linux):
// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds, process_start_time_seconds. Metrics (metrics.h) renders
// them with its own families; nothing else needs this header but the tests.
//
//   ProcessStats stats = read_process_stats();   // fields stay 0 when /proc cannot be read
//
// Thread-safe (reads files only).
#pragma once

#include <prometheus/collectable.h>

#include <memory>

namespace dither::observability {

struct ProcessStats {
  double cpu_seconds = 0;         // user + system time
  double resident_bytes = 0;      // resident set size
  double virtual_bytes = 0;       // virtual memory size
  double open_fds = 0;            // entries of /proc/self/fd
  double max_fds = 0;             // the soft RLIMIT_NOFILE
  double start_time_seconds = 0;  // since the Unix epoch
};

ProcessStats read_process_stats();

// A collectable that reads the stats at each Collect() and gives them their standard names.
std::unique_ptr<prometheus::Collectable> make_process_collector();

}  // namespace dither::observability
