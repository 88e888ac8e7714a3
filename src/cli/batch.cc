#include "cli/batch.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "cli/files.h"
#include "pipeline/pipeline.h"

namespace dither::cli {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

bool has_image_name(const fs::path& path) {
  static constexpr std::array<std::string_view, 7> kExtensions = {".jpg", ".jpeg", ".png", ".webp",
                                                                  ".gif", ".tif",  ".tiff"};
  std::string ext = path.extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return std::find(kExtensions.begin(), kExtensions.end(), ext) != kExtensions.end();
}

// One input: where its result goes, or why it is not processed at all.
struct Item {
  std::string input;
  std::string output;
  std::string problem;  // not empty: fails without being read
};

// The inputs, folders expanded, each with its output path; two inputs that would write the same
// output file: the later one fails.
std::vector<Item> plan(const Batch& batch) {
  std::vector<Item> items;
  for (const std::string& input : batch.inputs) {
    std::error_code ec;
    if (!fs::is_directory(input, ec)) {
      items.push_back({input, "", ""});
      continue;
    }
    const std::vector<std::string> found = images_in(input);
    if (found.empty()) items.push_back({input, "", "no images in this folder"});
    for (const std::string& f : found) items.push_back({f, "", ""});
  }
  const std::string ext(imaging::to_string(batch.options.format));
  std::map<std::string, std::string> claimed;  // output -> the input writing it
  for (Item& item : items) {
    if (!item.problem.empty()) continue;
    item.output = (fs::path(batch.out_dir) / fs::path(item.input).stem()).string() + "." + ext;
    const auto [it, fresh] = claimed.emplace(item.output, item.input);
    if (!fresh) {
      item.problem =
          "its result would overwrite '" + item.output + "', written from '" + it->second + "'";
    }
  }
  return items;
}

// What the user sees: one line per file, or a bar redrawn in place with failures above it.
class Reporter {
 public:
  Reporter(std::ostream& err, bool bar, size_t total) : err_(err), bar_(bar), total_(total) {
    if (bar_) draw();
  }

  void finished(const Item& item, const Status& status, double seconds) {
    const std::lock_guard lock(mutex_);
    ++done_;
    if (!status) ++failed_;
    if (bar_) err_ << "\r\033[K";
    if (!status) {
      err_ << "dither: " << item.input << ": " << status.error().message << "\n";
    } else if (!bar_) {
      char time[32];
      std::snprintf(time, sizeof time, "%.2f", seconds);
      err_ << "dither: " << item.input << " -> " << item.output << " (" << time << " s)\n";
    }
    if (bar_) draw();
    err_.flush();
  }

  void summary() {
    const std::lock_guard lock(mutex_);
    if (bar_) err_ << "\r\033[K";
    char time[32];
    std::snprintf(time, sizeof time, "%.1f", seconds_since(start_));
    err_ << "dither: " << total_ << (total_ == 1 ? " file" : " files") << " in " << time
         << " s: " << (done_ - failed_) << " done, " << failed_ << " failed\n";
    err_.flush();
  }

  size_t failed() const { return failed_; }

 private:
  void draw() {
    constexpr size_t kWidth = 30;
    const size_t filled = total_ == 0 ? kWidth : done_ * kWidth / total_;
    const auto elapsed = static_cast<long>(seconds_since(start_));
    char clock[32];
    std::snprintf(clock, sizeof clock, "%ld:%02ld", elapsed / 60, elapsed % 60);
    err_ << "dither: [" << std::string(filled, '#') << std::string(kWidth - filled, '.') << "] "
         << done_ << "/" << total_;
    if (failed_ > 0) err_ << ", " << failed_ << " failed";
    err_ << ", " << clock;
  }

  std::mutex mutex_;
  std::ostream& err_;
  const bool bar_;
  const size_t total_;
  size_t done_ = 0;
  size_t failed_ = 0;
  const Clock::time_point start_ = Clock::now();
};

Status process_one(const Item& item, const pipeline::ProcessOptions& options,
                   const imaging::Limits& limits) {
  if (!item.problem.empty()) return make_error(ErrorKind::kInvalidArgument, item.problem);
  auto bytes = read_file(item.input, limits.max_bytes);
  if (!bytes) return bytes.error();
  auto result = process(*bytes, options, limits);
  if (!result) return result.error();
  std::ostringstream unused;  // write_file's "-" (standard output) is never an output here
  return write_file(item.output, result->bytes, unused);
}

}  // namespace

std::vector<std::string> images_in(const std::string& folder) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    std::error_code type_ec;
    if (entry.is_regular_file(type_ec) && has_image_name(entry.path())) {
      found.push_back(entry.path().string());
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

int run_batch(const Batch& batch, std::ostream& err, bool err_is_terminal) {
  const std::vector<Item> items = plan(batch);
  if (items.empty()) {
    err << "dither: no inputs (try --help)\n";
    return 2;
  }
  std::error_code ec;
  fs::create_directories(batch.out_dir, ec);
  if (ec || !fs::is_directory(batch.out_dir, ec)) {
    err << "dither: cannot make the output folder '" << batch.out_dir << "'"
        << (ec ? ": " + ec.message() : std::string()) << "\n";
    return 1;
  }
  // Files run side by side, one per core; each dither then needs fewer threads (threads never
  // change the output).
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const size_t jobs = std::min(
      items.size(), batch.jobs > 0 ? static_cast<size_t>(batch.jobs) : static_cast<size_t>(cores));
  pipeline::ProcessOptions options = batch.options;
  options.dither.threads = std::max(1, static_cast<int>(cores / jobs));
  const bool bar =
      batch.progress == Progress::kBar || (batch.progress == Progress::kAuto && err_is_terminal);
  Reporter reporter(err, bar, items.size());
  std::atomic<size_t> next{0};
  {
    std::vector<std::jthread> workers;
    for (size_t w = 0; w < jobs; ++w) {
      workers.emplace_back([&] {
        for (size_t i = next++; i < items.size(); i = next++) {
          const Clock::time_point start = Clock::now();
          const Status status = process_one(items[i], options, batch.limits);
          reporter.finished(items[i], status, seconds_since(start));
        }
      });
    }
  }
  reporter.summary();
  return reporter.failed() == 0 ? 0 : 1;
}

}  // namespace dither::cli
