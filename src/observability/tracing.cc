#include "observability/tracing.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <cstring>
#include <limits>

#include "common/crypto.h"
#include "common/utf8.h"

namespace dither::observability {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxAttributeBytes = 1024;
constexpr std::string_view kHexDigits = "0123456789abcdef";

bool is_lower_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool all_zeros(std::string_view text) { return text.find_first_not_of('0') == std::string::npos; }

// `bytes` random bytes as hex into `out` (2 * bytes characters), never all zeros (an invalid id).
// From the CSPRNG, a few hundred bytes at a time per thread: one getrandom() per ~10 spans.
void random_id(char* out, size_t bytes) {
  thread_local std::string pool;
  thread_local size_t used = 0;
  for (;;) {
    if (used + bytes > pool.size()) {
      pool = random_bytes(240);
      used = 0;
    }
    bool zero = true;
    for (size_t i = 0; i < bytes; ++i) {
      const auto b = static_cast<unsigned char>(pool[used + i]);
      out[2 * i] = kHexDigits[b >> 4];
      out[2 * i + 1] = kHexDigits[b & 15];
      zero = zero && b == 0;
    }
    used += bytes;
    if (!zero) return;
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Percent-decoding of a Baggage value; nullopt for a broken escape.
std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int high = hex_value(text[i + 1]);
    const int low = hex_value(text[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return out;
}

bool has_control(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// At most kMaxAttributeBytes of valid UTF-8 (a cut never splits a character).
std::string bounded_utf8(std::string_view text) {
  std::string out = to_valid_utf8(text.substr(0, kMaxAttributeBytes + 4));
  if (out.size() > kMaxAttributeBytes) {
    size_t cut = kMaxAttributeBytes;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
  }
  return out;
}

json::object attribute_json(std::string_view key, const AttributeValue& value) {
  json::object v;
  if (const auto* s = std::get_if<std::string>(&value)) {
    v["stringValue"] = *s;
  } else if (const auto* i = std::get_if<int64_t>(&value)) {
    v["intValue"] = std::to_string(*i);  // int64 is a string in protobuf's JSON mapping
  } else {
    v["boolValue"] = std::get<bool>(value);
  }
  json::object out;
  out["key"] = key;
  out["value"] = std::move(v);
  return out;
}

json::object span_json(const SpanData& span) {
  json::object out;
  out["traceId"] = span.context.trace_id_hex();
  out["spanId"] = span.context.span_id_hex();
  if (!span.parent_span_id.empty()) out["parentSpanId"] = span.parent_span_id;
  out["name"] = span.name;
  out["kind"] = static_cast<int>(span.kind);
  out["startTimeUnixNano"] = std::to_string(span.start_unix_nano);
  out["endTimeUnixNano"] = std::to_string(span.end_unix_nano);
  json::array attributes;
  for (const auto& [key, value] : span.attributes) attributes.push_back(attribute_json(key, value));
  out["attributes"] = std::move(attributes);
  if (span.error) {
    json::object status;
    status["code"] = 2;  // STATUS_CODE_ERROR
    status["message"] = span.status_message;
    out["status"] = std::move(status);
  }
  return out;
}

struct OtlpResult {
  int status = 0;  // 0: no answer
  std::string body;
};

size_t keep_some(char* data, size_t size, size_t count, void* user) {
  auto* body = static_cast<std::string*>(user);
  body->append(data, std::min(size * count, size_t{2048} - std::min(body->size(), size_t{2048})));
  return size * count;
}

struct CurlHandleDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};

// POST over one libcurl handle, kept for the next export (its connection stays open). Used by the
// exporter thread only.
// libcurl's progress callback: a non-zero answer aborts the transfer. `user` is the Tracer's
// abort time (steady clock, ns; 0: none), so that a shutdown is not held up by a slow collector.
int abort_when_due(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const int64_t at = static_cast<const std::atomic<int64_t>*>(user)->load();
  return at != 0 && Clock::now().time_since_epoch().count() >= at ? 1 : 0;
}

OtlpTransport curl_transport(const std::atomic<int64_t>* abort_at) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  auto handle = std::shared_ptr<CURL>(curl_easy_init(), CurlHandleDeleter{});
  return [handle, abort_at](const std::string& url, const std::string& body,
                            const std::vector<std::pair<std::string, std::string>>& headers,
                            std::chrono::milliseconds timeout) -> int {
    CURL* curl = handle.get();
    if (curl == nullptr) return 0;
    curl_slist* list = curl_slist_append(nullptr, "Content-Type: application/json");
    for (const auto& [name, value] : headers) {
      std::string line = name;
      line.append(": ").append(value);
      list = curl_slist_append(list, line.c_str());
    }
    std::string answer;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(std::max<int64_t>(1, timeout.count())));
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::clamp<int64_t>(timeout.count(), 1, 3000)));
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, keep_some);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, abort_when_due);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, const_cast<std::atomic<int64_t>*>(abort_at));
    const CURLcode code = curl_easy_perform(curl);
    long status = 0;
    if (code == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
    curl_slist_free_all(list);
    if (code != CURLE_OK) {
      spdlog::debug("traces: no answer from the collector: {}", curl_easy_strerror(code));
      return 0;
    }
    if (status >= 300) {
      spdlog::debug("traces: the collector answered {}: {}", status, to_valid_utf8(answer));
    }
    return static_cast<int>(status);
  };
}

bool retryable(int status) {
  return status == 0 || status == 429 || status == 502 || status == 503 || status == 504;
}

}  // namespace

std::string SpanContext::traceparent() const {
  if (!valid()) return {};
  std::string out;
  out.reserve(55);
  out.append("00-").append(trace_id.data(), 32).push_back('-');
  out.append(span_id.data(), 16).append(sampled ? "-01" : "-00");
  return out;
}

std::optional<SpanContext> parse_traceparent(std::string_view text) {
  // version "-" trace-id "-" parent-id "-" flags; a later version may append "-" and more.
  if (text.size() < 55 || text[2] != '-' || text[35] != '-' || text[52] != '-') return std::nullopt;
  const std::string_view version = text.substr(0, 2);
  if (!is_lower_hex(version) || version == "ff") return std::nullopt;
  if (version == "00" ? text.size() != 55 : (text.size() > 55 && text[55] != '-')) {
    return std::nullopt;
  }
  const std::string_view trace = text.substr(3, 32);
  const std::string_view span = text.substr(36, 16);
  const std::string_view flags = text.substr(53, 2);
  if (!is_lower_hex(trace) || !is_lower_hex(span) || !is_lower_hex(flags) || all_zeros(trace) ||
      all_zeros(span)) {
    return std::nullopt;
  }
  SpanContext context;
  std::memcpy(context.trace_id.data(), trace.data(), 32);
  std::memcpy(context.span_id.data(), span.data(), 16);
  context.sampled = (hex_value(flags[1]) & 1) != 0;
  return context;
}

constexpr std::pair<std::string_view, Sampler> kSamplerNames[] = {
    {"always_on", Sampler::kAlwaysOn},
    {"always_off", Sampler::kAlwaysOff},
    {"traceidratio", Sampler::kTraceIdRatio},
    {"parentbased_always_on", Sampler::kParentBasedAlwaysOn},
    {"parentbased_always_off", Sampler::kParentBasedAlwaysOff},
    {"parentbased_traceidratio", Sampler::kParentBasedTraceIdRatio},
};

std::string_view sampler_name(Sampler sampler) {
  for (const auto& [name, known] : kSamplerNames) {
    if (sampler == known) return name;
  }
  return "";
}

Result<Sampler> parse_sampler(std::string_view name) {
  for (const auto& [known, sampler] : kSamplerNames) {
    if (name == known) return sampler;
  }
  return make_error(ErrorKind::kInvalidArgument,
                    "always_on, always_off, traceidratio, parentbased_always_on, "
                    "parentbased_always_off or parentbased_traceidratio");
}

Result<double> parse_sampler_ratio(std::string_view text) {
  double ratio = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ratio);
  if (ec != std::errc() || end != text.data() + text.size() || !(ratio >= 0 && ratio <= 1)) {
    return make_error(ErrorKind::kInvalidArgument, "a number from 0 to 1");
  }
  return ratio;
}

Result<std::vector<std::pair<std::string, std::string>>> parse_key_values(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t index = 0;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    ++index;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    const std::string_view key = eq == std::string_view::npos ? "" : trim(item.substr(0, eq));
    std::optional<std::string> value =
        eq == std::string_view::npos ? std::nullopt : percent_decode(trim(item.substr(eq + 1)));
    if (key.empty() || !value || has_control(key) || has_control(*value)) {
      return make_error(ErrorKind::kInvalidArgument, "key=value pairs separated by commas (item " +
                                                         std::to_string(index) + " is not one)");
    }
    out.emplace_back(std::string(key), std::move(*value));
  }
  return out;
}

bool is_http_url(std::string_view url) {
  std::string_view rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else if (url.starts_with("https://")) {
    rest = url.substr(8);
  } else {
    return false;
  }
  if (std::any_of(url.begin(), url.end(), [](char c) {
        return static_cast<unsigned char>(c) <= ' ' || c == 0x7f || c == '\\';
      })) {
    return false;
  }
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  std::string_view port;
  if (authority.starts_with('[')) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    port = authority.substr(close + 1);
    if (!port.empty() && port.front() != ':') return false;
  } else {
    const size_t colon = authority.find(':');
    if (colon == 0 || authority.empty()) return false;
    if (colon != std::string_view::npos) port = authority.substr(colon);
  }
  if (port.empty()) return true;
  port.remove_prefix(1);
  int number = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  return ec == std::errc() && end == port.data() + port.size() && number >= 1 && number <= 65535;
}

int64_t unix_nano_now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string otlp_json(std::span<const std::unique_ptr<SpanData>> spans,
                      const TracerOptions& options) {
  json::array resource_attributes;
  for (const auto& [key, value] : options.resource) {
    if (key != "service.name") resource_attributes.push_back(attribute_json(key, value));
  }
  resource_attributes.push_back(attribute_json("service.name", options.service_name));
  resource_attributes.push_back(attribute_json("telemetry.sdk.language", std::string("cpp")));
  resource_attributes.push_back(attribute_json("telemetry.sdk.name", std::string("dither")));
  resource_attributes.push_back(attribute_json("telemetry.sdk.version", options.scope_version));
  json::array span_list;
  for (const std::unique_ptr<SpanData>& span : spans) span_list.push_back(span_json(*span));
  json::object scope;
  scope["name"] = "dither";
  scope["version"] = options.scope_version;
  json::object scope_spans;
  scope_spans["scope"] = std::move(scope);
  scope_spans["spans"] = std::move(span_list);
  json::object resource;
  resource["attributes"] = std::move(resource_attributes);
  json::object resource_spans;
  resource_spans["resource"] = std::move(resource);
  resource_spans["scopeSpans"] = json::array{std::move(scope_spans)};
  json::object body;
  body["resourceSpans"] = json::array{std::move(resource_spans)};
  return json::serialize(body);
}

// ---- Span ---------------------------------------------------------------------------------

Span& Span::operator=(Span&& other) noexcept {
  if (this != &other) {
    end();
    tracer_ = std::exchange(other.tracer_, nullptr);
    data_ = std::move(other.data_);
    context_ = other.context_;
  }
  return *this;
}

void Span::add(std::string_view key, AttributeValue value) {
  if (auto* s = std::get_if<std::string>(&value)) *s = bounded_utf8(*s);
  for (auto& [k, v] : data_->attributes) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  data_->attributes.emplace_back(std::string(key), std::move(value));
}

Span& Span::set_name(std::string_view name) {
  if (data_ != nullptr) data_->name = std::string(name);
  return *this;
}

Span& Span::set_error(std::string_view message) {
  if (data_ != nullptr) {
    data_->error = true;
    data_->status_message = bounded_utf8(message);
  }
  return *this;
}

Span Span::child(std::string_view name, SpanKind kind, int64_t start_unix_nano) const {
  if (tracer_ == nullptr) return untraced(context_);
  return tracer_->start(name, kind, context_, start_unix_nano);
}

void Span::end(int64_t end_unix_nano) {
  if (data_ == nullptr) return;
  SpanData& d = *data_;
  if (end_unix_nano != 0) {
    d.end_unix_nano = end_unix_nano;
  } else if (d.started != Clock::time_point{}) {
    // Measured on the monotonic clock: a step of the wall clock does not stretch a span.
    d.end_unix_nano =
        d.start_unix_nano +
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - d.started).count();
  } else {
    d.end_unix_nano = unix_nano_now();
  }
  d.end_unix_nano = std::max(d.end_unix_nano, d.start_unix_nano);
  tracer_->finish(std::move(data_));
}

Span start_span(Tracer* tracer, std::string_view name, SpanKind kind,
                std::string_view parent_traceparent, int64_t start_unix_nano) {
  const SpanContext parent = parse_traceparent(parent_traceparent).value_or(SpanContext{});
  if (tracer == nullptr) return Span::untraced(parent);
  return tracer->start(name, kind, parent, start_unix_nano);
}

void inject_traceparent(std::vector<std::pair<std::string, std::string>>& headers,
                        const Span& span) {
  if (!span.traced() || !span.context().valid()) return;
  std::string value = span.traceparent();
  for (auto& [name, v] : headers) {
    if (name == "traceparent") {
      v = std::move(value);
      return;
    }
  }
  headers.emplace_back("traceparent", std::move(value));
}

// ---- Tracer -------------------------------------------------------------------------------

Tracer::Tracer(TracerOptions options)
    : options_(std::move(options)),
      transport_(options_.transport ? options_.transport : curl_transport(&abort_at_)) {
  exporter_ = std::thread([this] { run(); });
}

Tracer::~Tracer() { shutdown(std::chrono::seconds{3}); }

bool Tracer::should_sample(const SpanContext& parent, std::string_view trace_id) const {
  const auto by_ratio = [&] {
    if (options_.ratio >= 1) return true;
    if (options_.ratio <= 0 || trace_id.size() != 32) return false;
    uint64_t low = 0;
    std::from_chars(trace_id.data() + 16, trace_id.data() + 32, low, 16);
    const auto bound = static_cast<uint64_t>(options_.ratio * 9223372036854775808.0);  // 2^63
    return (low >> 1) < bound;
  };
  switch (options_.sampler) {
    case Sampler::kAlwaysOn:
      return true;
    case Sampler::kAlwaysOff:
      return false;
    case Sampler::kTraceIdRatio:
      return by_ratio();
    case Sampler::kParentBasedAlwaysOn:
      return parent.valid() ? parent.sampled : true;
    case Sampler::kParentBasedAlwaysOff:
      return parent.valid() ? parent.sampled : false;
    case Sampler::kParentBasedTraceIdRatio:
      return parent.valid() ? parent.sampled : by_ratio();
  }
  return false;
}

Span Tracer::start(std::string_view name, SpanKind kind, const SpanContext& parent,
                   int64_t start_unix_nano) {
  Span span;
  span.tracer_ = this;
  SpanContext& context = span.context_;
  if (parent.valid()) {
    context.trace_id = parent.trace_id;
  } else {
    random_id(context.trace_id.data(), 16);
  }
  random_id(context.span_id.data(), 8);
  context.sampled = should_sample(parent, {context.trace_id.data(), 32});
  if (!context.sampled) return span;
  auto data = std::make_unique<SpanData>();
  data->name = std::string(name);
  data->kind = kind;
  data->context = context;
  if (parent.valid()) data->parent_span_id = std::string(parent.span_id_hex());
  if (start_unix_nano != 0) {
    data->start_unix_nano = start_unix_nano;
  } else {
    data->started = Clock::now();
    data->start_unix_nano = unix_nano_now();
  }
  span.data_ = std::move(data);
  return span;
}

void Tracer::finish(std::unique_ptr<SpanData> span) {
  {
    const std::lock_guard lock(mutex_);
    if (!closed_ && queue_.size() < options_.max_queue) {
      queue_.push_back(std::move(span));
      queued_.fetch_add(1, std::memory_order_relaxed);
      // Wake the exporter once, when a batch is full; otherwise it sends on its schedule.
      if (queue_.size() == options_.max_batch) wake_.notify_one();
      return;
    }
  }
  dropped_.fetch_add(1, std::memory_order_relaxed);
  // The span is freed outside the lock.
}

Tracer::Stats Tracer::stats() const {
  return {queued_.load(), dropped_.load(), exported_.load(), failed_.load()};
}

void Tracer::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    const Clock::time_point due = Clock::now() + options_.schedule_delay;
    wake_.wait_until(lock, due, [&] { return stopping_ || queue_.size() >= options_.max_batch; });
    if (queue_.empty()) {
      if (stopping_) break;
      continue;
    }
    std::vector<std::unique_ptr<SpanData>> batch;
    if (queue_.size() <= options_.max_batch) {
      batch.swap(queue_);
    } else {
      const auto end = queue_.begin() + static_cast<std::ptrdiff_t>(options_.max_batch);
      batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(end));
      queue_.erase(queue_.begin(), end);
    }
    lock.unlock();
    send(batch);
    batch.clear();
    lock.lock();
  }
  closed_ = true;
}

void Tracer::send(const std::vector<std::unique_ptr<SpanData>>& batch) {
  std::string body;  // made at the first attempt (none when the shutdown's budget is spent)
  auto backoff = options_.first_backoff;
  int status = 0;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    std::chrono::milliseconds timeout = options_.timeout;
    {
      const std::lock_guard lock(mutex_);
      if (stopping_) {
        // Flushing at shutdown: what is left of the budget, and no more.
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
        if (left.count() <= 0) break;
        timeout = std::min(timeout, left);
      }
    }
    if (body.empty()) body = otlp_json(batch, options_);
    status = transport_(options_.endpoint, body, options_.headers, timeout);
    if (status >= 200 && status < 300) {
      exported_.fetch_add(batch.size(), std::memory_order_relaxed);
      if (failing_) {
        failing_ = false;
        spdlog::info("traces: the collector takes spans again");
      }
      return;
    }
    if (!retryable(status) || attempt == options_.max_attempts) break;
    std::unique_lock lock(mutex_);
    const Clock::time_point retry_at = Clock::now() + backoff;
    // A shutdown ends the wait: its flush tries once more within its budget.
    wake_.wait_until(lock, retry_at, [&] { return stopping_; });
    backoff *= 2;
  }
  failed_.fetch_add(batch.size(), std::memory_order_relaxed);
  const Clock::time_point now = Clock::now();
  if (!failing_ || now - last_warning_ > std::chrono::minutes{1}) {
    failing_ = true;
    last_warning_ = now;
    spdlog::warn(
        "traces: {} spans lost: the collector {} (failed so far: {}, dropped: {})", batch.size(),
        status == 0 ? std::string("did not answer") : "answered HTTP " + std::to_string(status),
        failed_.load(), dropped_.load());
  }
}

void Tracer::shutdown(std::chrono::milliseconds budget) {
  {
    const std::lock_guard lock(mutex_);
    if (!stopping_) {
      stopping_ = true;
      deadline_ = Clock::now() + budget;
      abort_at_ = deadline_.time_since_epoch().count();
    }
  }
  wake_.notify_all();
  if (exporter_.joinable()) exporter_.join();
  const std::lock_guard lock(mutex_);
  dropped_.fetch_add(queue_.size(), std::memory_order_relaxed);
  queue_.clear();
}

}  // namespace dither::observability
