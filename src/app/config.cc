#include "app/config.h"

#include <charconv>

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

}  // namespace

Result<Config> load_config(const GetEnv& getenv) {
  Config c;
  read_string(getenv, "DITHER_HOST", c.host);
  if (Status s = read_integer(getenv, "DITHER_PORT", c.port, 1, 65535); !s) return s.error();
  if (const char* d = getenv("DITHER_DATA_DIR"); d != nullptr && *d != '\0') c.data_dir = d;
  if (Status s = read_integer(getenv, "UPLOAD_SERVICE_PORT", c.upload_port, 0, 65535); !s) {
    return s.error();
  }
  if (Status s = read_integer(getenv, "DITHER_SERVICE_PORT", c.dither_port, 0, 65535); !s) {
    return s.error();
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
  if (Status s = read_integer(getenv, "MAX_UPLOAD_BYTES", c.limits.max_bytes, 1, int64_t{1} << 32);
      !s) {
    return s.error();
  }
  if (Status s = read_integer(getenv, "MAX_PIXELS", c.limits.max_pixels, 1, int64_t{1} << 34); !s) {
    return s.error();
  }
  if (const char* a = getenv("AUTO_DITHER"); a != nullptr && *a != '\0') {
    const std::string_view v(a);
    if (v == "on" || v == "true" || v == "1") {
      c.auto_dither.enabled = true;
    } else if (v == "off" || v == "false" || v == "0") {
      c.auto_dither.enabled = false;
    } else {
      return bad("AUTO_DITHER", v, "on or off");
    }
  }
  if (const char* o = getenv("AUTO_DITHER_OPTIONS"); o != nullptr && *o != '\0') {
    Result<OptionPairs> pairs = parse_option_query(o);
    if (!pairs) return bad("AUTO_DITHER_OPTIONS", o, pairs.error().message);
    c.auto_dither.options = std::move(*pairs);
  }
  // The preset must be valid now, not at the first upload.
  if (Result<ProcessOptions> preset = parse_dither_options(c.auto_dither.options); !preset) {
    const char* raw = getenv("AUTO_DITHER_OPTIONS");
    return bad("AUTO_DITHER_OPTIONS", raw != nullptr ? raw : "", preset.error().message);
  }
  if (Status s = read_integer(getenv, "DITHER_WORKERS", c.dither_workers, 1, 64); !s) {
    return s.error();
  }
  read_string(getenv, "DITHER_EVENT_LOG", c.event_log);
  read_string(getenv, "LOG_LEVEL", c.log_level);
  if (c.log_level != "trace" && c.log_level != "debug" && c.log_level != "info" &&
      c.log_level != "warn" && c.log_level != "error" && c.log_level != "off") {
    return bad("LOG_LEVEL", c.log_level, "trace, debug, info, warn, error or off");
  }
  read_string(getenv, "KAFKA_IMAGE_TOPIC", c.topics.image);
  read_string(getenv, "KAFKA_DITHER_TOPIC", c.topics.dither);
  if (c.topics.image == c.topics.dither) {
    return bad("KAFKA_DITHER_TOPIC", c.topics.dither, "a topic other than KAFKA_IMAGE_TOPIC");
  }
  if (Status s = read_integer(getenv, "GATEWAY_MAX_IN_FLIGHT", c.max_in_flight, 1, 1000000); !s) {
    return s.error();
  }
  read_string(getenv, "GATEWAY_UPSTREAM", c.gateway_upstream);
  if (c.gateway_upstream != "local" && c.gateway_upstream != "http") {
    return bad("GATEWAY_UPSTREAM", c.gateway_upstream, "local or http");
  }
  if (Status s = read_integer(getenv, "IO_THREADS", c.io_threads, 0, 256); !s) return s.error();
  if (Status s = read_integer(getenv, "BLOCKING_THREADS", c.blocking_threads, 1, 256); !s) {
    return s.error();
  }
  if (c.upload_port != 0 && c.upload_port == c.dither_port) {
    return bad("DITHER_SERVICE_PORT", std::to_string(c.dither_port),
               "a port other than UPLOAD_SERVICE_PORT");
  }
  return c;
}

std::vector<std::pair<std::string, std::string>> describe(const Config& c) {
  std::string preset;
  for (const auto& [k, v] : c.auto_dither.options) {
    if (!preset.empty()) preset += '&';
    preset.append(k).append("=").append(v);
  }
  return {
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
      {"AUTO_DITHER", c.auto_dither.enabled ? "on" : "off"},
      {"AUTO_DITHER_OPTIONS", preset},
      {"DITHER_WORKERS", std::to_string(c.dither_workers)},
      {"DITHER_EVENT_LOG", c.event_log},
      {"LOG_LEVEL", c.log_level},
      {"KAFKA_IMAGE_TOPIC", c.topics.image},
      {"KAFKA_DITHER_TOPIC", c.topics.dither},
      {"GATEWAY_MAX_IN_FLIGHT", std::to_string(c.max_in_flight)},
      {"GATEWAY_UPSTREAM", c.gateway_upstream},
      {"IO_THREADS", std::to_string(c.io_threads)},
      {"BLOCKING_THREADS", std::to_string(c.blocking_threads)},
  };
}

}  // namespace dither
