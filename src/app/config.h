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
#include "observability/tracing.h"
#include "ports/message.h"
#include "services/dither/dither_service.h"

namespace dither {

// Which parts this process runs. `ditherd` runs all of them; the per-part programs one each.
struct Roles {
  bool gateway = true;
  bool upload = true;
  bool dither = true;
  bool notify = true;
};

// The program these roles are, for the logs: "ditherd" (all of them), "api-gateway",
// "upload-service", "dithering-service", "notification-service".
std::string program_name(const Roles& roles);

// Distributed mode's adapters. Each is chosen by setting its first variable; unset = the embedded
// default (SQLite, in-process bus, files under DITHER_DATA_DIR).
struct KafkaConfig {
  std::string servers;       // KAFKA_SERVER: host:port[,host:port...]; set = Kafka
  int partitions = 2;        // KAFKA_PARTITIONS: for the topics the services create
  int replication = 1;       // KAFKA_REPLICATION_FACTOR
  std::string group_prefix;  // KAFKA_GROUP_PREFIX: prepended to the consumer group names
  // KAFKA_PROPERTIES: extra librdkafka properties, "name=value" separated by ';' (e.g.
  // security.protocol=SASL_SSL;sasl.mechanisms=PLAIN;sasl.username=...;sasl.password=...).
  std::vector<std::pair<std::string, std::string>> properties;
  bool enabled() const { return !servers.empty(); }
};

struct PostgresConfig {
  std::string host;               // POSTGRES_HOST; set = PostgreSQL
  uint16_t port = 5432;           // POSTGRES_PORT
  std::string user = "postgres";  // POSTGRES_USER
  std::string password;           // POSTGRES_PASSWORD
  std::string db = "postgres";    // POSTGRES_DB
  int pool_size = 4;              // POSTGRES_POOL_SIZE: connections per service process
  bool enabled() const { return !host.empty(); }
};

struct S3Config {
  std::string endpoint;              // S3_ENDPOINT: http(s)://host:port; set = S3
  std::string region = "us-east-1";  // S3_REGION
  std::string bucket = "dither";     // S3_BUCKET
  std::string access_key;            // S3_ACCESS_KEY
  std::string secret_key;            // S3_SECRET_KEY
  // S3_PUBLIC_URL: where clients fetch objects; default <PUBLIC_BASE_URL>/files/ (the gateway
  // reads them from the bucket).
  std::string public_base_url;
  bool enabled() const { return !endpoint.empty(); }
};

struct CloudinaryConfig {
  std::string cloud_name;                               // CLOUDINARY_CLOUD_NAME; set = Cloudinary
  std::string api_key;                                  // CLOUDINARY_API_KEY
  std::string api_secret;                               // CLOUDINARY_API_SECRET
  std::string api_base = "https://api.cloudinary.com";  // CLOUDINARY_API_BASE
  std::string delivery_base = "https://res.cloudinary.com";  // CLOUDINARY_DELIVERY_BASE
  bool enabled() const { return !cloud_name.empty(); }
};

// The notification service's mail (issue 5). Without SMTP_HOST, mails are written as .eml files
// to <DITHER_DATA_DIR>/mail and logged.
struct SmtpConfig {
  std::string host;                   // SMTP_HOST; set = SMTP
  uint16_t port = 587;                // SMTP_PORT
  std::string security = "starttls";  // SMTP_SECURITY: starttls, tls or none
  std::string user;                   // SMTP_USER (no AUTH when empty)
  std::string password;               // SMTP_PASSWORD
  bool verify_tls = true;             // SMTP_VERIFY_TLS (off only for test servers)
  std::string ca_file;  // SMTP_CA_FILE: PEM file to check the server with ("" = the system's)
  bool enabled() const { return !host.empty(); }
};

// Identity and access (docs/SECURITY.md). Secrets left empty are generated once into
// <DITHER_DATA_DIR>/secrets/ (see auth/secrets.h).
struct SecurityConfig {
  std::string api_key_pepper;                 // API_KEY_PEPPER
  std::vector<std::string> link_keys;         // LINK_SIGNING_KEYS: comma-separated, the first signs
  std::string service_token;                  // SERVICE_TOKEN: what the gateway shows the services
  int link_ttl_seconds = 3600;                // LINK_TTL_SECONDS: links in API answers
  int mail_link_ttl_seconds = 7 * 24 * 3600;  // MAIL_LINK_TTL_SECONDS: the e-mail's link
  int mail_max_per_hour = 10;                 // MAIL_MAX_PER_HOUR: per address; 0 = no cap
  int session_lifetime_days = 30;             // SESSION_LIFETIME_DAYS
  int auth_cache_seconds = -1;  // AUTH_CACHE_SECONDS; -1: 60 with SQLite, 5 with PostgreSQL
  // Rate limits per minute, per owner; a client address gets address_factor times as much
  // (0 = no limit). TRUSTED_PROXIES: peers whose X-Forwarded-For names the client.
  int rate_uploads = 120;                      // RATE_LIMIT_UPLOADS
  int rate_dithers = 240;                      // RATE_LIMIT_DITHERS
  int rate_reads = 6000;                       // RATE_LIMIT_READS
  int rate_sessions = 15;                      // RATE_LIMIT_SESSIONS
  int rate_burst_seconds = 10;                 // RATE_LIMIT_BURST_SECONDS
  int rate_tarpit_ms = 1000;                   // RATE_LIMIT_TARPIT_MS
  int rate_address_factor = 4;                 // RATE_LIMIT_ADDRESS_FACTOR
  std::vector<std::string> trusted_proxies{};  // TRUSTED_PROXIES
  int max_connections = 4096;                  // GATEWAY_MAX_CONNECTIONS: open at once (0 = no cap)
  int max_connections_per_address = 256;       // GATEWAY_MAX_CONNECTIONS_PER_ADDRESS (0 = no cap)
  int body_min_rate = 4096;     // BODY_MIN_RATE: bytes/s an upload must average (0: 60 s)
  int body_grace_seconds = 10;  // BODY_GRACE_SECONDS: before the rate counts
  std::vector<std::string> allowed_hosts;  // ALLOWED_HOSTS: more host names the gateway answers
};

struct Config {
  Roles roles;
  std::string host = "127.0.0.1";           // DITHER_HOST: the gateway's address
  uint16_t port = 8080;                     // DITHER_PORT
  std::filesystem::path data_dir = "data";  // DITHER_DATA_DIR
  uint16_t upload_port = 8081;              // UPLOAD_SERVICE_PORT (on SERVICE_BIND_HOST)
  uint16_t dither_port = 8082;              // DITHER_SERVICE_PORT (on SERVICE_BIND_HOST)
  std::string upload_host = "127.0.0.1";    // UPLOAD_SERVICE_HOST: where the gateway finds it
  std::string dither_host = "127.0.0.1";    // DITHER_SERVICE_HOST
  std::string public_base_url;              // PUBLIC_BASE_URL; default http://<host>:<port>
  // MAX_UPLOAD_BYTES, MAX_PIXELS, MAX_ANIMATION_FRAMES, MAX_ANIMATION_PIXELS
  imaging::Limits limits;
  AutoDither auto_dither;     // AUTO_DITHER (on/off), AUTO_DITHER_PRESET, AUTO_DITHER_OPTIONS
  bool presets_only = false;  // PRESETS_ONLY: dither requests name a preset and nothing else
  int dither_workers = 1;     // DITHER_WORKERS
  // DITHER_LEASE_SECONDS: how long a worker holds a claimed dither; a worker that dies loses its
  // claims after this long and another worker (another process) takes them.
  int lease_seconds = 30;
  // DITHER_MAX_ATTEMPTS: claims of one dither without an outcome (crash, kill, transient errors)
  // before it is FAILED "gave up after N attempts".
  int dither_max_attempts = 3;
  // DITHER_NICE: the dithering workers' nice value (0-19): dithering yields the CPU to requests.
  int dither_nice = 10;
  // OUTBOX_MAX_ATTEMPTS: publishes of one outbox message the bus refuses for good (too large, an
  // invalid topic) before it is parked and the messages after it go on.
  int outbox_max_attempts = 10;
  // Quotas per owner (admins exempt) and the dither queue's bound (docs/SECURITY.md "Limits"):
  // QUOTA_IMAGES, QUOTA_BYTES, QUOTA_PENDING_DITHERS, QUOTA_DITHERS_PER_IMAGE,
  // MAX_PENDING_DITHERS; 0 turns one off.
  Quotas quotas;
  // STARTUP_WAIT_SECONDS: how long a service waits at start-up for a database, broker or bucket
  // that does not answer yet, before giving up.
  int startup_wait_seconds = 60;
  std::string event_log;           // DITHER_EVENT_LOG: append every message to this file
  std::string log_level = "info";  // LOG_LEVEL: trace, debug, info, warn, error
  // LOG_FORMAT: "text" (spdlog's lines on standard output, the default) or "json" (one object per
  // line on standard error; docs/LOGGING.md).
  std::string log_format = "text";
  bool access_log = true;  // ACCESS_LOG: a line per HTTP request answered (on/off)
  // METRICS_ADDRESS: "host:port" where GET /metrics answers (Prometheus text); "" (the default):
  // no metrics. A listener of its own, never the gateway's port (docs/METRICS.md).
  std::string metrics_address;
  // Traces over OTLP/HTTP (docs/TRACING.md), from the standard OTEL_* variables:
  // OTEL_EXPORTER_OTLP_ENDPOINT (+ /v1/traces) or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
  // OTEL_SERVICE_NAME (empty: the program's name), OTEL_RESOURCE_ATTRIBUTES,
  // OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_EXPORTER_OTLP_PROTOCOL,
  // OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_MAX_QUEUE_SIZE,
  // OTEL_BSP_MAX_EXPORT_BATCH_SIZE. tracing.endpoint "" (no endpoint, or OTEL_SDK_DISABLED=true):
  // off, the default.
  observability::TracerOptions tracing;
  Topics topics;             // KAFKA_IMAGE_TOPIC, KAFKA_DITHER_TOPIC
  int max_in_flight = 1024;  // GATEWAY_MAX_IN_FLIGHT: past it, 503
  // GATEWAY_UPSTREAM: how the gateway reaches services in the same process: "local" (straight
  // into their routers) or "http" (over loopback, as across machines).
  std::string gateway_upstream = "local";
  int io_threads = 0;        // IO_THREADS: 0 = one per core
  int blocking_threads = 4;  // BLOCKING_THREADS: uploads, deletes, dither requests
  // BLOCKING_QUEUE: tasks that may wait for those threads; past it, 503 `overloaded`.
  int blocking_queue = 64;
  // BLOCKING_PER_CLIENT: of those threads, how many one client (address, or owner behind the
  // gateway) may use at once; its further tasks wait behind its own, and it may hold at most half
  // of the places (threads + queue). 0: half the threads (at least one).
  int blocking_per_client = 0;
  // GATEWAY_COMPRESS_MIN_BYTES: text answers (the page's files, JSON) of at least this many bytes
  // go out gzip-compressed to clients that accept it; 0: never.
  int gateway_compress_min_bytes = 1024;
  // SERVICE_BIND_HOST: the address the upload, dithering and notification services listen on.
  std::string service_bind = "127.0.0.1";
  SmtpConfig smtp;
  std::string mail_from = "Dither <noreply@localhost.localdomain>";  // MAIL_FROM
  uint16_t notify_port = 8084;                                       // NOTIFY_SERVICE_PORT
  std::string notify_host = "127.0.0.1";  // NOTIFY_SERVICE_HOST: where the gateway finds it
  int notify_retry_seconds = 2;           // NOTIFY_RETRY_SECONDS: first back-off, then doubled
  int notify_max_attempts = 8;            // NOTIFY_MAX_ATTEMPTS: then FAILED
  // FETCH_ALLOWED_HOSTS: the hosts (comma-separated names, exact and case-insensitive) that
  // originals announced only by URL (the prototype's IMAGE_UPLOADED) may be fetched from; empty:
  // fetching is off (docs/SECURITY.md "URL fetcher").
  std::vector<std::string> fetch_allowed_hosts;
  bool fetch_allow_loopback = false;  // FETCH_ALLOW_LOOPBACK: also 127.0.0.0/8 and ::1 (tests only)
  KafkaConfig kafka;
  PostgresConfig postgres;
  S3Config s3;
  CloudinaryConfig cloudinary;
  SecurityConfig security;
};

using GetEnv = std::function<const char*(const char*)>;

// Reads the configuration; kInvalidArgument naming the variable when a value is malformed.
Result<Config> load_config(const GetEnv& getenv);

// (name, value) of every setting, for the start-up log.
std::vector<std::pair<std::string, std::string>> describe(const Config& config);

}  // namespace dither
