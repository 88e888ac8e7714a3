#include "app/config.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <tuple>

#include "mail/rfc5322.h"
#include "observability/listener.h"
#include "observability/logging.h"

namespace dither {
namespace {

Error bad(const char* name, std::string_view value, std::string_view expected) {
  return make_error(ErrorKind::kInvalidArgument, std::string(name) + "='" +
                                                     std::string(value.substr(0, 100)) +
                                                     "': expected " + std::string(expected));
}

template <class T>
Status read_integer(const GetEnv& getenv, const char* name, T& out, int64_t min, int64_t max) {
  const char* raw = getenv(name);
  if (raw == nullptr || *raw == '\0') return {};
  const std::string_view text(raw);
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    return bad(name, text, "an integer from " + std::to_string(min) + " to " + std::to_string(max));
  }
  out = static_cast<T>(value);
  return {};
}

void read_string(const GetEnv& getenv, const char* name, std::string& out) {
  const char* raw = getenv(name);
  if (raw != nullptr && *raw != '\0') out = raw;
}

// KAFKA_PROPERTIES: "name=value;name=value".
Status read_properties(const GetEnv& getenv, const char* name,
                       std::vector<std::pair<std::string, std::string>>& out) {
  const char* raw = getenv(name);
  if (raw == nullptr || *raw == '\0') return {};
  std::string_view rest(raw);
  while (!rest.empty()) {
    const size_t end = rest.find(';');
    const std::string_view item = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return bad(name, "...", "name=value pairs separated by ';'");
    }
    out.emplace_back(std::string(item.substr(0, eq)), std::string(item.substr(eq + 1)));
  }
  return {};
}

// An on/off variable: on, true or 1; off, false or 0; unset or empty keeps `out`.
Status read_switch(const GetEnv& getenv, const char* name, bool& out) {
  const char* v = getenv(name);
  if (v == nullptr || *v == '\0') return {};
  const std::string_view text(v);
  if (text == "on" || text == "true" || text == "1") {
    out = true;
  } else if (text == "off" || text == "false" || text == "0") {
    out = false;
  } else {
    return bad(name, text, "on or off");
  }
  return {};
}

Status load_distributed(const GetEnv& getenv, Config& c) {
  read_string(getenv, "KAFKA_SERVER", c.kafka.servers);
  if (Status s = read_integer(getenv, "KAFKA_PARTITIONS", c.kafka.partitions, 1, 10000); !s) {
    return s;
  }
  if (Status s = read_integer(getenv, "KAFKA_REPLICATION_FACTOR", c.kafka.replication, 1, 100);
      !s) {
    return s;
  }
  read_string(getenv, "KAFKA_GROUP_PREFIX", c.kafka.group_prefix);
  if (Status s = read_properties(getenv, "KAFKA_PROPERTIES", c.kafka.properties); !s) return s;

  read_string(getenv, "POSTGRES_HOST", c.postgres.host);
  if (Status s = read_integer(getenv, "POSTGRES_PORT", c.postgres.port, 1, 65535); !s) return s;
  read_string(getenv, "POSTGRES_USER", c.postgres.user);
  read_string(getenv, "POSTGRES_PASSWORD", c.postgres.password);
  read_string(getenv, "POSTGRES_DB", c.postgres.db);
  if (Status s = read_integer(getenv, "POSTGRES_POOL_SIZE", c.postgres.pool_size, 1, 1000); !s) {
    return s;
  }

  read_string(getenv, "S3_ENDPOINT", c.s3.endpoint);
  read_string(getenv, "S3_REGION", c.s3.region);
  read_string(getenv, "S3_BUCKET", c.s3.bucket);
  read_string(getenv, "S3_ACCESS_KEY", c.s3.access_key);
  read_string(getenv, "S3_SECRET_KEY", c.s3.secret_key);
  read_string(getenv, "S3_PUBLIC_URL", c.s3.public_base_url);
  if (c.s3.enabled()) {
    while (c.s3.endpoint.ends_with('/')) c.s3.endpoint.pop_back();
    if (!c.s3.endpoint.starts_with("http://") && !c.s3.endpoint.starts_with("https://")) {
      return bad("S3_ENDPOINT", c.s3.endpoint, "an http:// or https:// URL");
    }
    if (c.s3.access_key.empty() || c.s3.secret_key.empty()) {
      return bad("S3_ACCESS_KEY", c.s3.access_key,
                 "S3_ACCESS_KEY and S3_SECRET_KEY with S3_ENDPOINT");
    }
    if (c.s3.bucket.size() < 3)
      return bad("S3_BUCKET", c.s3.bucket, "a bucket name (3+ characters)");
    if (c.s3.public_base_url.empty()) c.s3.public_base_url = c.public_base_url + "/files/";
    if (!c.s3.public_base_url.ends_with('/')) c.s3.public_base_url += '/';
  }

  read_string(getenv, "CLOUDINARY_CLOUD_NAME", c.cloudinary.cloud_name);
  read_string(getenv, "CLOUDINARY_API_KEY", c.cloudinary.api_key);
  read_string(getenv, "CLOUDINARY_API_SECRET", c.cloudinary.api_secret);
  read_string(getenv, "CLOUDINARY_API_BASE", c.cloudinary.api_base);
  read_string(getenv, "CLOUDINARY_DELIVERY_BASE", c.cloudinary.delivery_base);
  if (c.cloudinary.enabled()) {
    if (c.cloudinary.api_key.empty() || c.cloudinary.api_secret.empty()) {
      return bad("CLOUDINARY_API_KEY", c.cloudinary.api_key,
                 "CLOUDINARY_API_KEY and CLOUDINARY_API_SECRET with CLOUDINARY_CLOUD_NAME");
    }
    if (c.s3.enabled()) {
      return bad("CLOUDINARY_CLOUD_NAME", c.cloudinary.cloud_name,
                 "either S3_ENDPOINT or CLOUDINARY_CLOUD_NAME, not both");
    }
  }
  return {};
}

std::string secret(const std::string& value) { return value.empty() ? "" : "(hidden)"; }

std::vector<std::string> comma_list(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
  }
  return out;
}

Status load_security(const GetEnv& getenv, Config& c) {
  SecurityConfig& s = c.security;
  read_string(getenv, "API_KEY_PEPPER", s.api_key_pepper);
  if (!s.api_key_pepper.empty() && s.api_key_pepper.size() < 32) {
    return bad("API_KEY_PEPPER", "(hidden)", "a secret of at least 32 characters");
  }
  if (const char* keys = getenv("LINK_SIGNING_KEYS"); keys != nullptr && *keys != '\0') {
    s.link_keys = comma_list(keys);
    for (const std::string& key : s.link_keys) {
      if (key.size() < 32) {
        return bad("LINK_SIGNING_KEYS", "(hidden)",
                   "comma-separated secrets of at least 32 characters each");
      }
    }
  }
  read_string(getenv, "SERVICE_TOKEN", s.service_token);
  if (!s.service_token.empty() && s.service_token.size() < 32) {
    return bad("SERVICE_TOKEN", "(hidden)", "a secret of at least 32 characters");
  }
  if (Status st = read_integer(getenv, "LINK_TTL_SECONDS", s.link_ttl_seconds, 60, 7 * 86400);
      !st) {
    return st;
  }
  if (Status st =
          read_integer(getenv, "MAIL_LINK_TTL_SECONDS", s.mail_link_ttl_seconds, 1, 365 * 86400);
      !st) {
    return st;
  }
  if (Status st = read_integer(getenv, "MAIL_MAX_PER_HOUR", s.mail_max_per_hour, 0, 100000); !st) {
    return st;
  }
  if (Status st = read_integer(getenv, "SESSION_LIFETIME_DAYS", s.session_lifetime_days, 1, 3650);
      !st) {
    return st;
  }
  if (Status st = read_integer(getenv, "AUTH_CACHE_SECONDS", s.auth_cache_seconds, 0, 3600); !st) {
    return st;
  }
  // SQLite's store moves a revocation stamp that ends the belief at once (identity.h); the
  // seconds bound only what it cannot see (a row changed by hand). PostgreSQL's has none.
  if (s.auth_cache_seconds < 0) s.auth_cache_seconds = c.postgres.enabled() ? 5 : 60;
  if (const char* hosts = getenv("ALLOWED_HOSTS"); hosts != nullptr) {
    s.allowed_hosts = comma_list(hosts);
  }
  for (const auto& [name, out] :
       {std::pair<const char*, int*>{"RATE_LIMIT_UPLOADS", &s.rate_uploads},
        {"RATE_LIMIT_DITHERS", &s.rate_dithers},
        {"RATE_LIMIT_READS", &s.rate_reads},
        {"RATE_LIMIT_SESSIONS", &s.rate_sessions}}) {
    if (Status st = read_integer(getenv, name, *out, 0, 1'000'000); !st) return st;
  }
  if (Status st = read_integer(getenv, "RATE_LIMIT_BURST_SECONDS", s.rate_burst_seconds, 1, 3600);
      !st) {
    return st;
  }
  if (Status st = read_integer(getenv, "RATE_LIMIT_TARPIT_MS", s.rate_tarpit_ms, 0, 10000); !st) {
    return st;
  }
  if (Status st = read_integer(getenv, "RATE_LIMIT_ADDRESS_FACTOR", s.rate_address_factor, 1, 1000);
      !st) {
    return st;
  }
  if (const char* proxies = getenv("TRUSTED_PROXIES"); proxies != nullptr) {
    s.trusted_proxies = comma_list(proxies);
  }
  for (const auto& [name, out, max] :
       {std::tuple<const char*, int*, int>{"GATEWAY_MAX_CONNECTIONS", &s.max_connections, 1000000},
        {"GATEWAY_MAX_CONNECTIONS_PER_ADDRESS", &s.max_connections_per_address, 1000000},
        {"BODY_MIN_RATE", &s.body_min_rate, 1 << 30},
        {"BODY_GRACE_SECONDS", &s.body_grace_seconds, 3600}}) {
    if (Status st = read_integer(getenv, name, *out, 0, max); !st) return st;
  }
  return {};
}

}  // namespace

namespace {

// The public listener and the services' addresses.
Status load_server(const GetEnv& getenv, Config& c) {
  read_string(getenv, "DITHER_HOST", c.host);
  if (Status s = read_integer(getenv, "DITHER_PORT", c.port, 1, 65535); !s) return s;
  if (const char* d = getenv("DITHER_DATA_DIR"); d != nullptr && *d != '\0') c.data_dir = d;
  if (Status s = read_integer(getenv, "UPLOAD_SERVICE_PORT", c.upload_port, 0, 65535); !s) {
    return s;
  }
  if (Status s = read_integer(getenv, "DITHER_SERVICE_PORT", c.dither_port, 0, 65535); !s) {
    return s;
  }
  read_string(getenv, "UPLOAD_SERVICE_HOST", c.upload_host);
  read_string(getenv, "DITHER_SERVICE_HOST", c.dither_host);
  read_string(getenv, "PUBLIC_BASE_URL", c.public_base_url);
  if (c.public_base_url.empty()) {
    c.public_base_url = "http://" + c.host + ":" + std::to_string(c.port);
  }
  while (c.public_base_url.ends_with('/')) c.public_base_url.pop_back();
  if (!c.public_base_url.starts_with("http://") && !c.public_base_url.starts_with("https://")) {
    return bad("PUBLIC_BASE_URL", c.public_base_url, "an http:// or https:// URL");
  }
  return {};
}

// Limits, the automatic dither, workers, quotas, logs and topics.
Status load_work(const GetEnv& getenv, Config& c) {
  if (Status s = read_integer(getenv, "MAX_UPLOAD_BYTES", c.limits.max_bytes, 1, int64_t{1} << 32);
      !s) {
    return s;
  }
  if (Status s = read_integer(getenv, "MAX_PIXELS", c.limits.max_pixels, 1, int64_t{1} << 34); !s) {
    return s;
  }
  // Animations (imaging::Limits): frames, and pixels over all frames, both from the header.
  if (Status s =
          read_integer(getenv, "MAX_ANIMATION_FRAMES", c.limits.max_animation_frames, 1, 100'000);
      !s) {
    return s;
  }
  if (Status s = read_integer(getenv, "MAX_ANIMATION_PIXELS", c.limits.max_animation_pixels, 1,
                              int64_t{1} << 36);
      !s) {
    return s;
  }
  if (Status s = read_switch(getenv, "AUTO_DITHER", c.auto_dither.enabled); !s) return s;
  read_string(getenv, "AUTO_DITHER_PRESET", c.auto_dither.preset);
  if (!c.auto_dither.preset.empty()) c.auto_dither.options.clear();  // the preset is complete
  if (const char* o = getenv("AUTO_DITHER_OPTIONS"); o != nullptr && *o != '\0') {
    Result<pipeline::OptionPairs> pairs = parse_option_query(o);
    if (!pairs) return bad("AUTO_DITHER_OPTIONS", o, pairs.error().message);
    c.auto_dither.options = std::move(*pairs);
  }
  // The automatic dither's options must be valid now, not at the first upload.
  if (Result<pipeline::ProcessOptions> options = c.auto_dither.resolve(); !options) {
    const char* raw = getenv("AUTO_DITHER_OPTIONS");
    const bool preset = options.error().message.starts_with("no built-in preset");
    if (preset) {
      return make_error(ErrorKind::kInvalidArgument, "AUTO_DITHER_PRESET='" +
                                                         c.auto_dither.preset.substr(0, 100) +
                                                         "': " + options.error().message);
    }
    return bad("AUTO_DITHER_OPTIONS", raw != nullptr ? raw : "", options.error().message);
  }
  if (Status s = read_switch(getenv, "PRESETS_ONLY", c.presets_only); !s) return s;
  if (Status s = read_integer(getenv, "DITHER_WORKERS", c.dither_workers, 1, 64); !s) {
    return s;
  }
  if (Status s = read_integer(getenv, "DITHER_LEASE_SECONDS", c.lease_seconds, 1, 86400); !s) {
    return s;
  }
  if (Status s = read_integer(getenv, "DITHER_NICE", c.dither_nice, 0, 19); !s) return s;
  if (Status s = read_integer(getenv, "DITHER_MAX_ATTEMPTS", c.dither_max_attempts, 1, 1000); !s) {
    return s;
  }
  if (Status s = read_integer(getenv, "OUTBOX_MAX_ATTEMPTS", c.outbox_max_attempts, 1, 1000000);
      !s) {
    return s;
  }
  for (const auto& [name, out, max] :
       {std::tuple<const char*, int64_t*, int64_t>{"QUOTA_IMAGES", &c.quotas.images, 1'000'000'000},
        {"QUOTA_BYTES", &c.quotas.bytes, int64_t{1} << 50},
        {"QUOTA_PENDING_DITHERS", &c.quotas.pending_dithers, 1'000'000'000},
        {"QUOTA_DITHERS_PER_IMAGE", &c.quotas.dithers_per_image, 1'000'000'000},
        {"MAX_PENDING_DITHERS", &c.quotas.max_pending_dithers, 1'000'000'000},
        {"QUOTA_PRESETS", &c.quotas.presets, 1'000'000}}) {
    if (Status s = read_integer(getenv, name, *out, 0, max); !s) return s;
  }
  if (Status s = read_integer(getenv, "STARTUP_WAIT_SECONDS", c.startup_wait_seconds, 0, 86400);
      !s) {
    return s;
  }
  read_string(getenv, "DITHER_EVENT_LOG", c.event_log);
  read_string(getenv, "METRICS_ADDRESS", c.metrics_address);
  if (!c.metrics_address.empty() && !observability::parse_listen_address(c.metrics_address)) {
    return bad("METRICS_ADDRESS", c.metrics_address, "host:port, e.g. 127.0.0.1:9464");
  }
  read_string(getenv, "LOG_LEVEL", c.log_level);
  if (c.log_level != "trace" && c.log_level != "debug" && c.log_level != "info" &&
      c.log_level != "warn" && c.log_level != "error" && c.log_level != "off") {
    return bad("LOG_LEVEL", c.log_level, "trace, debug, info, warn, error or off");
  }
  read_string(getenv, "LOG_FORMAT", c.log_format);
  if (!observability::parse_log_format(c.log_format)) {
    return bad("LOG_FORMAT", c.log_format, "text or json");
  }
  if (Status s = read_switch(getenv, "ACCESS_LOG", c.access_log); !s) return s;
  read_string(getenv, "KAFKA_IMAGE_TOPIC", c.topics.image);
  read_string(getenv, "KAFKA_DITHER_TOPIC", c.topics.dither);
  if (c.topics.image == c.topics.dither) {
    return bad("KAFKA_DITHER_TOPIC", c.topics.dither, "a topic other than KAFKA_IMAGE_TOPIC");
  }
  return {};
}

// The gateway's and the HTTP servers' threads and bounds.
Status load_threads(const GetEnv& getenv, Config& c) {
  if (Status s = read_integer(getenv, "GATEWAY_MAX_IN_FLIGHT", c.max_in_flight, 1, 1000000); !s) {
    return s;
  }
  read_string(getenv, "GATEWAY_UPSTREAM", c.gateway_upstream);
  if (c.gateway_upstream != "local" && c.gateway_upstream != "http") {
    return bad("GATEWAY_UPSTREAM", c.gateway_upstream, "local or http");
  }
  if (Status s = read_integer(getenv, "IO_THREADS", c.io_threads, 0, 256); !s) return s;
  if (Status s = read_integer(getenv, "BLOCKING_THREADS", c.blocking_threads, 1, 256); !s) {
    return s;
  }
  if (Status s = read_integer(getenv, "BLOCKING_QUEUE", c.blocking_queue, 1, 100000); !s) {
    return s;
  }
  if (Status s = read_integer(getenv, "BLOCKING_PER_CLIENT", c.blocking_per_client, 0, 256); !s) {
    return s;
  }
  if (c.blocking_per_client == 0) c.blocking_per_client = std::max(1, c.blocking_threads / 2);
  if (Status s = read_integer(getenv, "GATEWAY_COMPRESS_MIN_BYTES", c.gateway_compress_min_bytes, 0,
                              1 << 30);
      !s) {
    return s;
  }
  read_string(getenv, "SERVICE_BIND_HOST", c.service_bind);
  return {};
}

// Mail: the SMTP server, the sender's address, the notification service.
Status load_mail(const GetEnv& getenv, Config& c) {
  read_string(getenv, "SMTP_HOST", c.smtp.host);
  if (Status s = read_integer(getenv, "SMTP_PORT", c.smtp.port, 1, 65535); !s) return s;
  read_string(getenv, "SMTP_SECURITY", c.smtp.security);
  if (c.smtp.security != "starttls" && c.smtp.security != "tls" && c.smtp.security != "none") {
    return bad("SMTP_SECURITY", c.smtp.security, "starttls, tls or none");
  }
  read_string(getenv, "SMTP_USER", c.smtp.user);
  read_string(getenv, "SMTP_PASSWORD", c.smtp.password);
  if (Status s = read_switch(getenv, "SMTP_VERIFY_TLS", c.smtp.verify_tls); !s) return s;
  read_string(getenv, "SMTP_CA_FILE", c.smtp.ca_file);
  read_string(getenv, "MAIL_FROM", c.mail_from);
  if (Result<mail_format::Mailbox> from = mail_format::parse_mailbox(c.mail_from); !from) {
    return bad("MAIL_FROM", c.mail_from, "an address, optionally with a name: Name <a@b.example>");
  }
  if (Status s = read_integer(getenv, "NOTIFY_SERVICE_PORT", c.notify_port, 0, 65535); !s) {
    return s;
  }
  read_string(getenv, "NOTIFY_SERVICE_HOST", c.notify_host);
  if (Status s = read_integer(getenv, "NOTIFY_RETRY_SECONDS", c.notify_retry_seconds, 1, 86400);
      !s) {
    return s;
  }
  if (Status s = read_integer(getenv, "NOTIFY_MAX_ATTEMPTS", c.notify_max_attempts, 1, 100); !s) {
    return s;
  }
  return {};
}

// Fetching originals by URL (docs/SECURITY.md, "URL fetcher").
Status load_fetch(const GetEnv& getenv, Config& c) {
  if (const char* hosts = getenv("FETCH_ALLOWED_HOSTS"); hosts != nullptr) {
    c.fetch_allowed_hosts = comma_list(hosts);
  }
  if (Status s = read_switch(getenv, "FETCH_ALLOW_LOOPBACK", c.fetch_allow_loopback); !s) return s;
  return {};
}

// The sampler and the batching of traces.
Status load_sampling(const GetEnv& getenv, observability::TracerOptions& t) {
  if (const char* v = getenv("OTEL_TRACES_SAMPLER"); v != nullptr && *v != '\0') {
    Result<observability::Sampler> sampler = observability::parse_sampler(v);
    if (!sampler) return bad("OTEL_TRACES_SAMPLER", v, sampler.error().message);
    t.sampler = *sampler;
  }
  const bool by_ratio = t.sampler == observability::Sampler::kTraceIdRatio ||
                        t.sampler == observability::Sampler::kParentBasedTraceIdRatio;
  // The argument of another sampler is ignored, as the specification says.
  if (const char* v = getenv("OTEL_TRACES_SAMPLER_ARG"); by_ratio && v != nullptr && *v != '\0') {
    Result<double> ratio = observability::parse_sampler_ratio(v);
    if (!ratio) return bad("OTEL_TRACES_SAMPLER_ARG", v, ratio.error().message);
    t.ratio = *ratio;
  }
  int64_t timeout = t.timeout.count();
  int64_t delay = t.schedule_delay.count();
  int64_t queue = static_cast<int64_t>(t.max_queue);
  int64_t batch = static_cast<int64_t>(t.max_batch);
  for (const auto& [name, out, min, max] :
       {std::tuple<const char*, int64_t*, int64_t, int64_t>{"OTEL_EXPORTER_OTLP_TIMEOUT", &timeout,
                                                            1, 600'000},
        {"OTEL_BSP_SCHEDULE_DELAY", &delay, 1, 3'600'000},
        {"OTEL_BSP_MAX_QUEUE_SIZE", &queue, 1, 1'000'000},
        {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", &batch, 1, 1'000'000}}) {
    if (Status s = read_integer(getenv, name, *out, min, max); !s) return s;
  }
  if (batch > queue) {
    return bad("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", std::to_string(batch),
               "at most OTEL_BSP_MAX_QUEUE_SIZE (" + std::to_string(queue) + ")");
  }
  t.timeout = std::chrono::milliseconds{timeout};
  t.schedule_delay = std::chrono::milliseconds{delay};
  t.max_queue = static_cast<size_t>(queue);
  t.max_batch = static_cast<size_t>(batch);
  return {};
}

// OTLP's base endpoint plus the traces path, as the OpenTelemetry specification joins them.
std::string traces_url(std::string base) {
  while (base.ends_with('/')) base.pop_back();
  return base + "/v1/traces";
}

// The OTEL_* variables of traces (docs/TRACING.md). Header values (tokens) never appear in an
// error or the log.
Status load_tracing(const GetEnv& getenv, Config& c) {
  observability::TracerOptions& t = c.tracing;
  bool disabled = false;
  if (const char* v = getenv("OTEL_SDK_DISABLED"); v != nullptr && *v != '\0') {
    std::string text(v);
    for (char& ch : text) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (text != "true" && text != "false") return bad("OTEL_SDK_DISABLED", v, "true or false");
    disabled = text == "true";
  }
  std::string base;
  read_string(getenv, "OTEL_EXPORTER_OTLP_ENDPOINT", base);
  read_string(getenv, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", t.endpoint);
  for (const auto& [name, url] :
       {std::pair<const char*, const std::string*>{"OTEL_EXPORTER_OTLP_ENDPOINT", &base},
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &t.endpoint}}) {
    if (!url->empty() && !observability::is_http_url(*url)) {
      return bad(name, *url, "an http:// or https:// URL, e.g. http://127.0.0.1:4318");
    }
  }
  if (t.endpoint.empty() && !base.empty()) t.endpoint = traces_url(base);
  if (disabled) t.endpoint.clear();
  read_string(getenv, "OTEL_SERVICE_NAME", t.service_name);
  for (const auto& [name, out] :
       {std::pair<const char*, std::vector<std::pair<std::string, std::string>>*>{
            "OTEL_RESOURCE_ATTRIBUTES", &t.resource},
        {"OTEL_EXPORTER_OTLP_HEADERS", &t.headers}}) {
    if (const char* v = getenv(name); v != nullptr && *v != '\0') {
      auto pairs = observability::parse_key_values(v);
      if (!pairs) return bad(name, "(hidden)", pairs.error().message);
      *out = std::move(*pairs);
    }
  }
  for (const auto& [name, value] : t.headers) {
    const bool token = std::all_of(name.begin(), name.end(), [](char ch) {
      return std::isalnum(static_cast<unsigned char>(ch)) ||
             std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos;
    });
    if (!token) {
      return bad("OTEL_EXPORTER_OTLP_HEADERS", "(hidden)", "header names as HTTP has them");
    }
  }
  // OTEL_SERVICE_NAME wins over a service.name among the resource attributes.
  for (const auto& [key, value] : t.resource) {
    if (key == "service.name" && t.service_name.empty()) t.service_name = value;
  }
  std::string protocol;
  read_string(getenv, "OTEL_EXPORTER_OTLP_PROTOCOL", protocol);
  if (!protocol.empty() && protocol != "http/json" && protocol != "http/protobuf") {
    return bad("OTEL_EXPORTER_OTLP_PROTOCOL", protocol,
               "http/json (http/protobuf is taken too: JSON goes to the same endpoint, which "
               "OTLP/HTTP receivers accept); grpc is not supported");
  }
  return load_sampling(getenv, t);
}

}  // namespace

std::string program_name(const Roles& roles) {
  const int parts = roles.gateway + roles.upload + roles.dither + roles.notify;
  if (parts != 1) return "ditherd";
  if (roles.gateway) return "api-gateway";
  if (roles.upload) return "upload-service";
  if (roles.dither) return "dithering-service";
  return "notification-service";
}

Result<Config> load_config(const GetEnv& getenv) {
  Config c;
  for (Status (*part)(const GetEnv&, Config&) :
       {load_server, load_work, load_threads, load_mail, load_fetch}) {
    if (Status s = part(getenv, c); !s) return s.error();
  }
  if (Status s = load_distributed(getenv, c); !s) return s.error();
  if (Status s = load_security(getenv, c); !s) return s.error();
  if (Status s = load_tracing(getenv, c); !s) return s.error();
  if (c.upload_port != 0 && c.upload_port == c.dither_port) {
    return bad("DITHER_SERVICE_PORT", std::to_string(c.dither_port),
               "a port other than UPLOAD_SERVICE_PORT");
  }
  return c;
}

namespace {
std::string join_hosts(const std::vector<std::string>& hosts) {
  std::string out;
  for (const std::string& h : hosts) out += (out.empty() ? "" : ",") + h;
  return out;
}
// What describe() logs of the security settings: whether secrets are set, never their values.
std::vector<std::pair<std::string, std::string>> describe_security(const SecurityConfig& s) {
  return {
      {"API_KEY_PEPPER", s.api_key_pepper.empty() ? "(generated)" : "(set)"},
      {"LINK_SIGNING_KEYS",
       s.link_keys.empty() ? "(generated)" : "(" + std::to_string(s.link_keys.size()) + " set)"},
      {"SERVICE_TOKEN", s.service_token.empty() ? "(generated)" : "(set)"},
      {"LINK_TTL_SECONDS", std::to_string(s.link_ttl_seconds)},
      {"MAIL_LINK_TTL_SECONDS", std::to_string(s.mail_link_ttl_seconds)},
      {"MAIL_MAX_PER_HOUR", std::to_string(s.mail_max_per_hour)},
      {"SESSION_LIFETIME_DAYS", std::to_string(s.session_lifetime_days)},
      {"AUTH_CACHE_SECONDS", std::to_string(s.auth_cache_seconds)},
      {"ALLOWED_HOSTS", join_hosts(s.allowed_hosts)},
      {"RATE_LIMIT_UPLOADS", std::to_string(s.rate_uploads)},
      {"RATE_LIMIT_DITHERS", std::to_string(s.rate_dithers)},
      {"RATE_LIMIT_READS", std::to_string(s.rate_reads)},
      {"RATE_LIMIT_SESSIONS", std::to_string(s.rate_sessions)},
      {"RATE_LIMIT_BURST_SECONDS", std::to_string(s.rate_burst_seconds)},
      {"RATE_LIMIT_TARPIT_MS", std::to_string(s.rate_tarpit_ms)},
      {"RATE_LIMIT_ADDRESS_FACTOR", std::to_string(s.rate_address_factor)},
      {"TRUSTED_PROXIES", join_hosts(s.trusted_proxies)},
      {"GATEWAY_MAX_CONNECTIONS", std::to_string(s.max_connections)},
      {"GATEWAY_MAX_CONNECTIONS_PER_ADDRESS", std::to_string(s.max_connections_per_address)},
      {"BODY_MIN_RATE", std::to_string(s.body_min_rate)},
      {"BODY_GRACE_SECONDS", std::to_string(s.body_grace_seconds)},
  };
}

// What describe() logs of the servers (Kafka, PostgreSQL, S3, Cloudinary): secrets hidden.
std::vector<std::pair<std::string, std::string>> describe_servers(const Config& c,
                                                                  const std::string& properties) {
  return {
      {"KAFKA_SERVER", c.kafka.servers},
      {"KAFKA_PARTITIONS", std::to_string(c.kafka.partitions)},
      {"KAFKA_REPLICATION_FACTOR", std::to_string(c.kafka.replication)},
      {"KAFKA_GROUP_PREFIX", c.kafka.group_prefix},
      {"KAFKA_PROPERTIES", properties},
      {"POSTGRES_HOST", c.postgres.host},
      {"POSTGRES_PORT", std::to_string(c.postgres.port)},
      {"POSTGRES_USER", c.postgres.user},
      {"POSTGRES_PASSWORD", secret(c.postgres.password)},
      {"POSTGRES_DB", c.postgres.db},
      {"POSTGRES_POOL_SIZE", std::to_string(c.postgres.pool_size)},
      {"S3_ENDPOINT", c.s3.endpoint},
      {"S3_REGION", c.s3.region},
      {"S3_BUCKET", c.s3.bucket},
      {"S3_ACCESS_KEY", c.s3.access_key},
      {"S3_SECRET_KEY", secret(c.s3.secret_key)},
      {"S3_PUBLIC_URL", c.s3.public_base_url},
      {"CLOUDINARY_CLOUD_NAME", c.cloudinary.cloud_name},
      {"CLOUDINARY_API_KEY", c.cloudinary.api_key},
      {"CLOUDINARY_API_SECRET", secret(c.cloudinary.api_secret)},
  };
}

// What describe() logs of traces: the endpoint without any user:password@, the headers' count
// only (they carry tokens).
std::vector<std::pair<std::string, std::string>> describe_tracing(
    const observability::TracerOptions& t) {
  std::string endpoint = t.endpoint.empty() ? "(off)" : t.endpoint;
  if (const size_t scheme = endpoint.find("://"); scheme != std::string::npos) {
    const size_t at = endpoint.find('@', scheme);
    if (at != std::string::npos && at < endpoint.find('/', scheme + 3)) {
      endpoint.replace(scheme + 3, at - scheme - 3, "(hidden)");
    }
  }
  std::string resource;
  for (const auto& [k, v] : t.resource) {
    if (!resource.empty()) resource += ',';
    resource.append(k).append("=").append(v);
  }
  return {
      {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint},
      {"OTEL_SERVICE_NAME", t.service_name.empty() ? "(the program's name)" : t.service_name},
      {"OTEL_RESOURCE_ATTRIBUTES", resource},
      {"OTEL_EXPORTER_OTLP_HEADERS",
       t.headers.empty() ? "" : "(" + std::to_string(t.headers.size()) + " hidden)"},
      {"OTEL_EXPORTER_OTLP_TIMEOUT", std::to_string(t.timeout.count())},
      {"OTEL_TRACES_SAMPLER", std::string(observability::sampler_name(t.sampler))},
      {"OTEL_TRACES_SAMPLER_ARG", std::to_string(t.ratio)},
      {"OTEL_BSP_SCHEDULE_DELAY", std::to_string(t.schedule_delay.count())},
      {"OTEL_BSP_MAX_QUEUE_SIZE", std::to_string(t.max_queue)},
      {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", std::to_string(t.max_batch)},
  };
}

}  // namespace

std::vector<std::pair<std::string, std::string>> describe(const Config& c) {
  // Property values may be credentials (sasl.password): only the names are logged.
  std::string properties;
  for (const auto& [k, v] : c.kafka.properties) {
    if (!properties.empty()) properties += ';';
    properties.append(k).append("=(hidden)");
  }
  std::string preset;
  for (const auto& [k, v] : c.auto_dither.options) {
    if (!preset.empty()) preset += '&';
    preset.append(k).append("=").append(v);
  }
  std::vector<std::pair<std::string, std::string>> out = {
      {"DITHER_HOST", c.host},
      {"DITHER_PORT", std::to_string(c.port)},
      {"DITHER_DATA_DIR", c.data_dir.string()},
      {"UPLOAD_SERVICE_PORT", std::to_string(c.upload_port)},
      {"DITHER_SERVICE_PORT", std::to_string(c.dither_port)},
      {"UPLOAD_SERVICE_HOST", c.upload_host},
      {"DITHER_SERVICE_HOST", c.dither_host},
      {"PUBLIC_BASE_URL", c.public_base_url},
      {"MAX_UPLOAD_BYTES", std::to_string(c.limits.max_bytes)},
      {"MAX_PIXELS", std::to_string(c.limits.max_pixels)},
      {"MAX_ANIMATION_FRAMES", std::to_string(c.limits.max_animation_frames)},
      {"MAX_ANIMATION_PIXELS", std::to_string(c.limits.max_animation_pixels)},
      {"AUTO_DITHER", c.auto_dither.enabled ? "on" : "off"},
      {"AUTO_DITHER_PRESET", c.auto_dither.preset},
      {"AUTO_DITHER_OPTIONS", preset},
      {"PRESETS_ONLY", c.presets_only ? "on" : "off"},
      {"DITHER_WORKERS", std::to_string(c.dither_workers)},
      {"DITHER_LEASE_SECONDS", std::to_string(c.lease_seconds)},
      {"DITHER_MAX_ATTEMPTS", std::to_string(c.dither_max_attempts)},
      {"DITHER_NICE", std::to_string(c.dither_nice)},
      {"OUTBOX_MAX_ATTEMPTS", std::to_string(c.outbox_max_attempts)},
      {"QUOTA_IMAGES", std::to_string(c.quotas.images)},
      {"QUOTA_BYTES", std::to_string(c.quotas.bytes)},
      {"QUOTA_PENDING_DITHERS", std::to_string(c.quotas.pending_dithers)},
      {"QUOTA_DITHERS_PER_IMAGE", std::to_string(c.quotas.dithers_per_image)},
      {"QUOTA_PRESETS", std::to_string(c.quotas.presets)},
      {"MAX_PENDING_DITHERS", std::to_string(c.quotas.max_pending_dithers)},
      {"STARTUP_WAIT_SECONDS", std::to_string(c.startup_wait_seconds)},
      {"DITHER_EVENT_LOG", c.event_log},
      {"METRICS_ADDRESS", c.metrics_address},
      {"LOG_LEVEL", c.log_level},
      {"LOG_FORMAT", c.log_format},
      {"ACCESS_LOG", c.access_log ? "on" : "off"},
      {"KAFKA_IMAGE_TOPIC", c.topics.image},
      {"KAFKA_DITHER_TOPIC", c.topics.dither},
      {"GATEWAY_MAX_IN_FLIGHT", std::to_string(c.max_in_flight)},
      {"GATEWAY_UPSTREAM", c.gateway_upstream},
      {"IO_THREADS", std::to_string(c.io_threads)},
      {"BLOCKING_THREADS", std::to_string(c.blocking_threads)},
      {"BLOCKING_QUEUE", std::to_string(c.blocking_queue)},
      {"BLOCKING_PER_CLIENT", std::to_string(c.blocking_per_client)},
      {"GATEWAY_COMPRESS_MIN_BYTES", std::to_string(c.gateway_compress_min_bytes)},
      {"SERVICE_BIND_HOST", c.service_bind},
      {"SMTP_HOST", c.smtp.host},
      {"SMTP_PORT", std::to_string(c.smtp.port)},
      {"SMTP_SECURITY", c.smtp.security},
      {"SMTP_USER", c.smtp.user},
      {"SMTP_PASSWORD", secret(c.smtp.password)},
      {"SMTP_VERIFY_TLS", c.smtp.verify_tls ? "on" : "off"},
      {"SMTP_CA_FILE", c.smtp.ca_file},
      {"MAIL_FROM", c.mail_from},
      {"NOTIFY_SERVICE_PORT", std::to_string(c.notify_port)},
      {"NOTIFY_SERVICE_HOST", c.notify_host},
      {"NOTIFY_RETRY_SECONDS", std::to_string(c.notify_retry_seconds)},
      {"NOTIFY_MAX_ATTEMPTS", std::to_string(c.notify_max_attempts)},
      {"FETCH_ALLOWED_HOSTS", join_hosts(c.fetch_allowed_hosts)},
      {"FETCH_ALLOW_LOOPBACK", c.fetch_allow_loopback ? "on" : "off"},
  };
  for (auto& pair : describe_security(c.security)) out.push_back(std::move(pair));
  for (auto& pair : describe_servers(c, properties)) out.push_back(std::move(pair));
  for (auto& pair : describe_tracing(c.tracing)) out.push_back(std::move(pair));
  return out;
}

}  // namespace dither
