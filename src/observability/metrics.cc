#include "observability/metrics.h"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "observability/process_metrics.h"

namespace dither::observability {

namespace {

constexpr std::string_view kPrefix = "dither_";

// Unit words that are not base units: Prometheus wants seconds and bytes, so that sums and
// rates across services need no conversion.
constexpr std::string_view kNonBaseUnits[] = {
    "milliseconds", "microseconds", "nanoseconds", "ms",  "us",        "ns",
    "minutes",      "hours",        "days",        "kb",  "kilobytes", "mb",
    "megabytes",    "gb",           "gigabytes",   "kib", "mib",       "percent"};

bool has_word(std::string_view name, std::string_view word) {
  for (size_t at = name.find(word); at != std::string_view::npos; at = name.find(word, at + 1)) {
    const bool starts = at == 0 || name[at - 1] == '_';
    const bool ends = at + word.size() == name.size() || name[at + word.size()] == '_';
    if (starts && ends) return true;
  }
  return false;
}

void require(bool condition, std::string_view name, std::string_view why) {
  if (!condition)
    throw std::invalid_argument("metric " + std::string(name) + ": " + std::string(why));
}

}  // namespace

Buckets exponential_buckets(double start, double factor, int count) {
  if (start <= 0 || factor <= 1 || count < 1) {
    throw std::invalid_argument("exponential_buckets: start > 0, factor > 1, count >= 1");
  }
  Buckets buckets;
  for (double bound = start; count-- > 0; bound *= factor) buckets.push_back(bound);
  return buckets;
}

template <class T>
prometheus::Labels Family<T>::label_set(const std::vector<std::string_view>& values) const {
  if (values.size() != label_names_.size()) {
    throw std::invalid_argument("metric " + family_->GetName() + ": " +
                                std::to_string(label_names_.size()) + " label values expected, " +
                                std::to_string(values.size()) + " given");
  }
  prometheus::Labels labels;
  for (size_t i = 0; i < values.size(); ++i) labels.emplace(label_names_[i], values[i]);
  return labels;
}

template class Family<prometheus::Counter>;
template class Family<prometheus::Gauge>;
template class Family<prometheus::Histogram>;

Metrics::Metrics(std::string_view version) : process_(make_process_collector()) {
  gauge("build_info", "The build: always 1, the version as a label.", {"version"})
      .with({version})
      .Set(1);
}

Metrics::~Metrics() = default;

std::string Metrics::checked_name(std::string_view name, Type type,
                                  const std::vector<std::string>& label_names) {
  require(!name.empty() && !name.starts_with(kPrefix), name, "give the name without dither_");
  for (char c : name) {
    require((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_', name,
            "only a-z, 0-9 and _");
  }
  require((type == Type::kCounter) == name.ends_with("_total"), name,
          "counters, and only counters, end in _total");
  for (std::string_view unit : kNonBaseUnits) {
    require(!has_word(name, unit), name, "use base units (seconds, bytes, ratios)");
  }
  for (const std::string& label : label_names) {
    require(type != Type::kHistogram || label != "le", name, "le is the histogram's own label");
  }
  std::string full = std::string(kPrefix) + std::string(name);
  std::lock_guard lock(names_mutex_);
  const auto [it, inserted] = label_names_.try_emplace(full, label_names);
  require(inserted || it->second == label_names, name, "made before with other label names");
  return full;
}

CounterFamily Metrics::counter(std::string_view name, std::string_view help,
                               std::vector<std::string> label_names) {
  std::string full = checked_name(name, Type::kCounter, label_names);
  auto& family = prometheus::BuildCounter().Name(full).Help(std::string(help)).Register(registry_);
  return CounterFamily(family, std::move(label_names));
}

GaugeFamily Metrics::gauge(std::string_view name, std::string_view help,
                           std::vector<std::string> label_names) {
  std::string full = checked_name(name, Type::kGauge, label_names);
  auto& family = prometheus::BuildGauge().Name(full).Help(std::string(help)).Register(registry_);
  return GaugeFamily(family, std::move(label_names));
}

HistogramFamily Metrics::histogram(std::string_view name, std::string_view help,
                                   std::vector<std::string> label_names, const Buckets& buckets) {
  require(!buckets.empty() && std::is_sorted(buckets.begin(), buckets.end()) &&
              std::adjacent_find(buckets.begin(), buckets.end()) == buckets.end(),
          name, "buckets must be strictly increasing");
  std::string full = checked_name(name, Type::kHistogram, label_names);
  auto& family =
      prometheus::BuildHistogram().Name(full).Help(std::string(help)).Register(registry_);
  return HistogramFamily(family, std::move(label_names), buckets);
}

void Metrics::on_scrape(std::function<void()> update) {
  std::lock_guard lock(scrape_mutex_);
  scrape_callbacks_.push_back(std::move(update));
}

std::string Metrics::render() const {
  std::vector<prometheus::MetricFamily> families;
  {
    std::lock_guard lock(scrape_mutex_);
    for (const std::function<void()>& update : scrape_callbacks_) update();
    families = registry_.Collect();
  }
  for (prometheus::MetricFamily& family : process_->Collect())
    families.push_back(std::move(family));
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return std::move(out).str();
}

}  // namespace dither::observability
