// Prometheus metrics for one process: a facade over one prometheus-cpp Registry that names every
// family the project's way and renders the text exposition format (version 0.0.4).
//
//   Metrics metrics(PROJECT_VERSION_STRING);   // also: dither_build_info, process_* metrics
//   const CounterFamily uploads =
//       metrics.counter("uploads_total", "Images uploaded.", {"outcome"});
//   prometheus::Counter& stored = uploads.with({"stored"});   // keep it: no lookup per event
//   stored.Increment();
//   const HistogramFamily dither_seconds = metrics.histogram(
//       "dither_stage_duration_seconds", "Time per dithering stage.", {"stage"}, kStageBuckets);
//   dither_seconds.with({"decode"}).Observe(stopwatch.seconds());
//   metrics.on_scrape([&] { queue_depth.with({}).Set(queue.size()); });
//   std::string text = metrics.render();      // what GET /metrics answers (listener.h)
//
// Conventions, checked when a family is made (a mistake throws std::invalid_argument at
// start-up, not at the first scrape): every name gets the `dither_` prefix; names are
// [a-z0-9_]; counters end in `_total`, nothing else does; durations are in seconds and sizes in
// bytes (`_milliseconds`, `_kilobytes`... are refused); one name always has the same label names.
// Making a family a second time with the same name, type and labels returns the same series.
//
// Thread-safe: families may be made and series updated from any thread, render() too. Metrics
// owns the registry; the families and series it hands out live as long as it does.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <chrono>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace dither::observability {

using Buckets = std::vector<double>;

// `count` upper bounds from `start`, each `factor` times the previous.
Buckets exponential_buckets(double start, double factor, int count);

// Seconds, for a fast API: 0.5 ms .. 10 s (the HTTP request durations).
inline const Buckets kHttpBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                     0.1,    0.25,  0.5,    1,     2.5,  5,     10};
// Seconds, for work on images (decode, dither, encode, store): 1 ms .. 2 min.
inline const Buckets kStageBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                      0.5,   1,      2.5,   5,    10,    30,   60,  120};
// Bytes: 1 KiB .. 256 MiB in steps of 4.
inline const Buckets kByteBuckets = exponential_buckets(1024, 4, 10);

// One family: a metric name with fixed label names; with() finds or makes the series of some
// label values (in the order of the names). with() locks and hashes (about 0.4 us): on a hot
// path, keep the reference it returns (it stays valid as long as the Metrics).
template <class T>
class Family {
 public:
  Family(prometheus::Family<T>& family, std::vector<std::string> label_names, Buckets buckets = {})
      : family_(&family), label_names_(std::move(label_names)), buckets_(std::move(buckets)) {}

  // Throws std::invalid_argument when the number of values is not the number of label names.
  T& with(std::initializer_list<std::string_view> values) const {
    return with(std::vector<std::string_view>(values));
  }
  T& with(const std::vector<std::string_view>& values) const {
    prometheus::Labels labels = label_set(values);
    if constexpr (std::is_same_v<T, prometheus::Histogram>) {
      return family_->Add(labels, buckets_);
    } else {
      return family_->Add(labels);
    }
  }
  const std::string& name() const { return family_->GetName(); }
  // Drops a series (one that no longer describes anything, e.g. a partition given up).
  void remove(T& series) const { family_->Remove(&series); }

 private:
  prometheus::Labels label_set(const std::vector<std::string_view>& values) const;

  prometheus::Family<T>* family_;
  std::vector<std::string> label_names_;
  Buckets buckets_;
};

using CounterFamily = Family<prometheus::Counter>;
using GaugeFamily = Family<prometheus::Gauge>;
using HistogramFamily = Family<prometheus::Histogram>;

class Metrics {
 public:
  // `version` is the build's version: the `dither_build_info{version="..."} 1` series.
  explicit Metrics(std::string_view version);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // `name` without the `dither_` prefix; `help` is one line of text for people.
  CounterFamily counter(std::string_view name, std::string_view help,
                        std::vector<std::string> label_names = {});
  GaugeFamily gauge(std::string_view name, std::string_view help,
                    std::vector<std::string> label_names = {});
  // `buckets`: increasing upper bounds (the +Inf bucket is implicit).
  HistogramFamily histogram(std::string_view name, std::string_view help,
                            std::vector<std::string> label_names, const Buckets& buckets);

  // Runs before each render(), in the order added: for values read when scraped rather than
  // kept up to date (queue depth, oldest pending age, pool in use). Keep it quick: a scrape
  // waits for it. Callbacks run one render at a time.
  void on_scrape(std::function<void()> update);

  // Every family (the process_* ones included) in the text exposition format 0.0.4.
  std::string render() const;

  // The content type of render()'s text.
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  std::string checked_name(std::string_view name, Type type,
                           const std::vector<std::string>& label_names);

  prometheus::Registry registry_;
  std::unique_ptr<prometheus::Collectable> process_;  // process_metrics.h
  std::mutex names_mutex_;
  std::map<std::string, std::vector<std::string>, std::less<>> label_names_;  // full name -> labels
  mutable std::mutex scrape_mutex_;  // guards the callbacks; one render runs them at a time
  std::vector<std::function<void()>> scrape_callbacks_;
};

// Measures a duration for a histogram in seconds (steady clock).
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

}  // namespace dither::observability
