#include "observability/process_metrics.h"

#include <dirent.h>
#include <prometheus/metric_family.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace dither::observability {

namespace {

// The fields of /proc/self/stat after the command name (which may hold spaces and parentheses,
// hence the search for the last ')'): field 3 (state) is element 0 (proc(5)).
std::vector<std::string> stat_fields() {
  std::ifstream file("/proc/self/stat");
  const std::string line((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(line.substr(close + 1));
  return {std::istream_iterator<std::string>(rest), std::istream_iterator<std::string>()};
}

// The boot time (seconds since the epoch): the "btime" line of /proc/stat.
double boot_time() {
  std::ifstream file("/proc/stat");
  for (std::string key; file >> key;) {
    if (key == "btime") {
      double seconds = 0;
      file >> seconds;
      return seconds;
    }
    file.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return 0;
}

double open_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  double count = 0;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count - 1;  // the descriptor of `dir` itself
}

prometheus::MetricFamily one_value(const char* name, const char* help, prometheus::MetricType type,
                                   double value) {
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  return {name, help, type, {metric}};
}

class ProcessCollector : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    const ProcessStats s = read_process_stats();
    using prometheus::MetricType;
    return {
        one_value("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                  MetricType::Counter, s.cpu_seconds),
        one_value("process_resident_memory_bytes", "Resident memory size in bytes.",
                  MetricType::Gauge, s.resident_bytes),
        one_value("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                  MetricType::Gauge, s.virtual_bytes),
        one_value("process_open_fds", "Number of open file descriptors.", MetricType::Gauge,
                  s.open_fds),
        one_value("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge,
                  s.max_fds),
        one_value("process_start_time_seconds",
                  "Start time of the process since unix epoch in seconds.", MetricType::Gauge,
                  s.start_time_seconds),
    };
  }
};

}  // namespace

ProcessStats read_process_stats() {
  ProcessStats stats;
  const std::vector<std::string> f = stat_fields();
  // utime 14, stime 15, starttime 22 (clock ticks), vsize 23 (bytes), rss 24 (pages).
  if (f.size() >= 22) {
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    stats.cpu_seconds = (std::stod(f[14 - 3]) + std::stod(f[15 - 3])) / ticks;
    stats.start_time_seconds = boot_time() + std::stod(f[22 - 3]) / ticks;
    stats.virtual_bytes = std::stod(f[23 - 3]);
    stats.resident_bytes = std::stod(f[24 - 3]) * static_cast<double>(::sysconf(_SC_PAGESIZE));
  }
  stats.open_fds = open_fds();
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) stats.max_fds = static_cast<double>(limit.rlim_cur);
  return stats;
}

std::unique_ptr<prometheus::Collectable> make_process_collector() {
  return std::make_unique<ProcessCollector>();
}

}  // namespace dither::observability
