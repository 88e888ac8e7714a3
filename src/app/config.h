// The program's configuration: environment variables read once at start-up, validated, and
// logged (secrets hidden). An unset variable means its embedded default; a malformed one is a
// start-up error that names it. The README lists every variable with its default.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "imaging/codec.h"
#include "ports/message.h"
#include "services/dither/dither_service.h"

namespace dither {

// Which parts this process runs. `ditherd` runs all three; the per-part programs one each.
struct Roles {
  bool gateway = true;
  bool upload = true;
  bool dither = true;
};

struct Config {
  Roles roles;
  std::string host = "127.0.0.1";           // DITHER_HOST: the gateway's address
  uint16_t port = 8080;                     // DITHER_PORT
  std::filesystem::path data_dir = "data";  // DITHER_DATA_DIR
  uint16_t upload_port = 8081;              // UPLOAD_SERVICE_PORT (loopback only)
  uint16_t dither_port = 8082;              // DITHER_SERVICE_PORT (loopback only)
  std::string upload_host = "127.0.0.1";    // UPLOAD_SERVICE_HOST: where the gateway finds it
  std::string dither_host = "127.0.0.1";    // DITHER_SERVICE_HOST
  std::string public_base_url;              // PUBLIC_BASE_URL; default http://<host>:<port>
  imaging::Limits limits;                   // MAX_UPLOAD_BYTES, MAX_PIXELS
  AutoDither auto_dither;                   // AUTO_DITHER (on/off), AUTO_DITHER_OPTIONS
  int dither_workers = 1;                   // DITHER_WORKERS
  std::string event_log;                    // DITHER_EVENT_LOG: append every message to this file
  std::string log_level = "info";           // LOG_LEVEL: trace, debug, info, warn, error
  Topics topics;                            // KAFKA_IMAGE_TOPIC, KAFKA_DITHER_TOPIC
  int max_in_flight = 1024;                 // GATEWAY_MAX_IN_FLIGHT: past it, 503
  // GATEWAY_UPSTREAM: how the gateway reaches services in the same process: "local" (straight
  // into their routers) or "http" (over loopback, as across machines).
  std::string gateway_upstream = "local";
  int io_threads = 0;        // IO_THREADS: 0 = half the cores (at least one)
  int blocking_threads = 4;  // BLOCKING_THREADS: uploads, deletes, dither requests
};

using GetEnv = std::function<const char*(const char*)>;

// Reads the configuration; kInvalidArgument naming the variable when a value is malformed.
Result<Config> load_config(const GetEnv& getenv);

// (name, value) of every setting, for the start-up log.
std::vector<std::pair<std::string, std::string>> describe(const Config& config);

}  // namespace dither
