#include "app/adapters.h"

#include <spdlog/spdlog.h>

#include <map>
#include <stdexcept>

#include "adapters/cloudinary/cloudinary_blob_store.h"
#include "adapters/fs/fs_blob_store.h"
#include "adapters/inproc/in_process_bus.h"
#include "adapters/kafka/kafka_bus.h"
#include "adapters/mailbox/mailbox_sender.h"
#include "adapters/postgres/postgres.h"
#include "adapters/s3/s3_blob_store.h"
#include "adapters/smtp/curl_smtp_sender.h"
#include "adapters/sqlite/sqlite_dither_repository.h"
#include "adapters/sqlite/sqlite_identity_store.h"
#include "adapters/sqlite/sqlite_image_repository.h"
#include "adapters/sqlite/sqlite_notification_repository.h"
#include "auth/secrets.h"

namespace dither {
namespace {

PostgresOptions postgres_options(const Config& config, std::string schema) {
  PostgresOptions options;
  const PostgresConfig& pg = config.postgres;
  options.connection = postgres_conninfo(pg.host, pg.port, pg.user, pg.password, pg.db);
  options.schema = std::move(schema);
  options.pool_size = pg.pool_size;
  return options;
}

template <class T, class U>
Result<std::unique_ptr<T>> upcast(Result<std::unique_ptr<U>> r) {
  if (!r) return r.error();
  return std::unique_ptr<T>(std::move(*r));
}

}  // namespace

Result<std::unique_ptr<ImageRepository>> open_image_repository(const Config& config) {
  if (config.postgres.enabled()) {
    return open_postgres_image_repository(postgres_options(config, "upload"));
  }
  std::filesystem::create_directories(config.data_dir);
  return open_sqlite_image_repository((config.data_dir / "upload.db").string());
}

Result<std::unique_ptr<DitherRepository>> open_dither_repository(const Config& config) {
  if (config.postgres.enabled()) {
    return open_postgres_dither_repository(postgres_options(config, "dither"));
  }
  std::filesystem::create_directories(config.data_dir);
  return open_sqlite_dither_repository((config.data_dir / "dither.db").string());
}

Result<std::unique_ptr<NotificationRepository>> open_notification_repository(const Config& config) {
  if (config.postgres.enabled()) {
    return open_postgres_notification_repository(postgres_options(config, "notify"));
  }
  std::filesystem::create_directories(config.data_dir);
  return open_sqlite_notification_repository((config.data_dir / "notify.db").string());
}

Result<std::unique_ptr<IdentityStore>> open_identity_store(const Config& config) {
  if (config.postgres.enabled()) {
    return open_postgres_identity_store(postgres_options(config, "auth"));
  }
  std::filesystem::create_directories(config.data_dir);
  return open_sqlite_identity_store((config.data_dir / "auth.db").string());
}

Status load_secrets(Config& config) {
  SecurityConfig& s = config.security;
  const std::filesystem::path dir = config.data_dir / "secrets";
  Result<Secret> pepper = load_secret(s.api_key_pepper, dir / "api-key-pepper");
  if (!pepper) return pepper.error();
  s.api_key_pepper = pepper->value;
  if (s.link_keys.empty()) {
    Result<Secret> link = load_secret("", dir / "link-signing-key");
    if (!link) return link.error();
    s.link_keys.push_back(link->value);
  }
  Result<Secret> token = load_secret(s.service_token, dir / "service-token");
  if (!token) return token.error();
  s.service_token = token->value;
  return {};
}

Result<std::unique_ptr<MailSender>> open_mail_sender(const Config& config) {
  if (config.smtp.enabled()) {
    SmtpOptions options;
    options.host = config.smtp.host;
    options.port = config.smtp.port;
    Result<SmtpSecurity> security = parse_smtp_security(config.smtp.security);
    if (!security) return security.error();
    options.security = *security;
    options.user = config.smtp.user;
    options.password = config.smtp.password;
    options.verify_tls = config.smtp.verify_tls;
    options.ca_file = config.smtp.ca_file;
    return upcast<MailSender>(
        Result<std::unique_ptr<CurlSmtpSender>>(std::make_unique<CurlSmtpSender>(options)));
  }
  return upcast<MailSender>(Result<std::unique_ptr<MailboxSender>>(
      std::make_unique<MailboxSender>(config.data_dir / "mail")));
}

Result<std::unique_ptr<BlobStore>> open_blob_store(const Config& config) {
  if (config.s3.enabled()) {
    S3Options options;
    options.endpoint = config.s3.endpoint;
    options.region = config.s3.region;
    options.bucket = config.s3.bucket;
    options.access_key = config.s3.access_key;
    options.secret_key = config.s3.secret_key;
    options.public_base_url = config.s3.public_base_url;
    std::unique_ptr<S3BlobStore> store;
    try {
      store = std::make_unique<S3BlobStore>(options);
    } catch (const std::invalid_argument& e) {
      return make_error(ErrorKind::kInvalidArgument, std::string("S3: ") + e.what());
    }
    if (Status s = store->ensure_bucket(); !s) return s.error();
    return upcast<BlobStore>(Result<std::unique_ptr<S3BlobStore>>(std::move(store)));
  }
  if (config.cloudinary.enabled()) {
    CloudinaryOptions options;
    options.cloud_name = config.cloudinary.cloud_name;
    options.api_key = config.cloudinary.api_key;
    options.api_secret = config.cloudinary.api_secret;
    options.api_base = config.cloudinary.api_base;
    options.delivery_base = config.cloudinary.delivery_base;
    return upcast<BlobStore>(Result<std::unique_ptr<CloudinaryBlobStore>>(
        std::make_unique<CloudinaryBlobStore>(options)));
  }
  auto store =
      std::make_unique<FsBlobStore>(config.data_dir / "files", config.public_base_url + "/files/");
  if (const int n = store->remove_temporaries(); n > 0) {
    spdlog::info("removed {} partial files left by a crash", n);
  }
  return upcast<BlobStore>(Result<std::unique_ptr<FsBlobStore>>(std::move(store)));
}

Result<std::unique_ptr<EventBus>> open_event_bus(const Config& config) {
  if (config.kafka.enabled()) {
    KafkaOptions options;
    options.bootstrap_servers = config.kafka.servers;
    options.client_id = "dither";
    options.partitions = config.kafka.partitions;
    options.replication_factor = config.kafka.replication;
    options.extra = config.kafka.properties;
    Result<std::unique_ptr<KafkaBus>> bus = KafkaBus::open(options);
    if (!bus) return bus.error();
    const Topics& t = config.topics;
    if (Status s = (*bus)->create_topics(
            {t.image, t.dither, Topics::dead_letter(t.image), Topics::dead_letter(t.dither)},
            config.kafka.partitions, config.kafka.replication);
        !s) {
      return s.error();
    }
    return upcast<EventBus>(Result<std::unique_ptr<KafkaBus>>(std::move(bus)));
  }
  return upcast<EventBus>(
      Result<std::unique_ptr<InProcessBus>>(std::make_unique<InProcessBus>([](const Message& m) {
        spdlog::error("dead letter on {}: {} {} ({})", m.topic, m.message_type(), m.message_id(),
                      m.header("dead_letter_reason").value_or(""));
      })));
}

void watch_database_pools(observability::Metrics& metrics) {
  const auto connections =
      metrics.gauge("db_pool_connections", "PostgreSQL connections of a pool, in use or idle.",
                    {"pool", "state"});
  const auto max = metrics.gauge("db_pool_max_connections",
                                 "Connections a pool may open (POSTGRES_POOL_SIZE).", {"pool"});
  const auto waits =
      metrics.counter("db_pool_waits_total",
                      "Calls that found every connection of a pool busy and waited.", {"pool"});
  const auto timeouts = metrics.counter(
      "db_pool_timeouts_total",
      "Calls that waited POSTGRES_ACQUIRE_TIMEOUT in vain for a connection (they failed).",
      {"pool"});
  const auto waited = metrics.counter("db_pool_wait_seconds_total",
                                      "Time calls spent waiting for a free connection.", {"pool"});
  struct Seen {
    uint64_t waits = 0, timeouts = 0;
    double seconds = 0;
  };
  // Pools with one schema (the upload service's and its queue probe...) add up under one name.
  metrics.on_scrape([=, seen = std::make_shared<std::map<std::string, Seen>>()] {
    std::map<std::string, PostgresPoolStats> now;
    for (const PostgresPoolStats& s : postgres_pool_stats()) {
      PostgresPoolStats& sum = now[s.schema];
      sum.max_connections += s.max_connections;
      sum.in_use += s.in_use;
      sum.idle += s.idle;
      sum.waits += s.waits;
      sum.timeouts += s.timeouts;
      sum.wait_seconds += s.wait_seconds;
    }
    for (const auto& [pool, s] : now) {
      connections.with({pool, "in_use"}).Set(s.in_use);
      connections.with({pool, "idle"}).Set(s.idle);
      max.with({pool}).Set(s.max_connections);
      // Counters only grow: add what grew since the last scrape.
      Seen& last = (*seen)[pool];
      if (s.waits > last.waits)
        waits.with({pool}).Increment(static_cast<double>(s.waits - last.waits));
      if (s.timeouts > last.timeouts) {
        timeouts.with({pool}).Increment(static_cast<double>(s.timeouts - last.timeouts));
      }
      if (s.wait_seconds > last.seconds)
        waited.with({pool}).Increment(s.wait_seconds - last.seconds);
      last = Seen{s.waits, s.timeouts, s.wait_seconds};
    }
  });
}

std::string describe_adapters(const Config& config) {
  std::string out = config.postgres.enabled() ? "metadata=postgres" : "metadata=sqlite";
  out += config.s3.enabled()           ? " blobs=s3"
         : config.cloudinary.enabled() ? " blobs=cloudinary"
                                       : " blobs=filesystem";
  out += config.kafka.enabled() ? " events=kafka" : " events=in-process";
  out += config.smtp.enabled() ? " mail=smtp" : " mail=mailbox";
  return out;
}

}  // namespace dither
