#include "adapters/kafka/kafka_client.h"

#include <spdlog/spdlog.h>

#include <array>

namespace dither::kafka {
namespace {

// librdkafka uses syslog levels (0 emergency .. 7 debug). A broker that cannot be reached is
// logged at 3 and reconnected to by itself, so nothing below "fatal" is an error for us; its
// informational lines are mostly connection chatter.
spdlog::level::level_enum spdlog_level(int syslog_level) {
  if (syslog_level <= 4) return spdlog::level::warn;
  if (syslog_level == 5) return spdlog::level::info;
  return spdlog::level::debug;
}

void log_to_spdlog(const rd_kafka_t* rk, int level, const char* facility, const char* text) {
  spdlog::log(spdlog_level(level), "kafka {} {}: {}", rk != nullptr ? rd_kafka_name(rk) : "-",
              facility, text);
}

// Client-level errors. Most repeat a line the log callback already wrote (a failed connection);
// the ones it does not are worth a warning, and a fatal one an error.
void error_to_spdlog(rd_kafka_t* rk, int err, const char* reason, void* /*opaque*/) {
  const auto code = static_cast<rd_kafka_resp_err_t>(err);
  spdlog::level::level_enum level = spdlog::level::warn;
  if (code == RD_KAFKA_RESP_ERR__FATAL) {
    level = spdlog::level::err;
  } else if (code == RD_KAFKA_RESP_ERR__TRANSPORT || code == RD_KAFKA_RESP_ERR__RESOLVE) {
    level = spdlog::level::debug;
  }
  spdlog::log(level, "kafka {}: {} ({})", rd_kafka_name(rk), reason, rd_kafka_err2name(code));
}

}  // namespace

Result<Conf> make_conf(const KafkaOptions& options, const Settings& settings) {
  Conf conf(rd_kafka_conf_new());
  std::array<char, 512> errstr{};
  auto set = [&](const std::string& name, const std::string& value) -> Status {
    if (rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), errstr.data(), errstr.size()) !=
        RD_KAFKA_CONF_OK) {
      // Values may be credentials (sasl.password, sasl.jaas.config): never in the message.
      std::string why = errstr.data();
      if (!value.empty() && why.find(value) != std::string::npos) why = "invalid value";
      return make_error(ErrorKind::kInvalidArgument, "kafka property " + name + ": " + why);
    }
    return {};
  };
  if (Status s = set("bootstrap.servers", options.bootstrap_servers); !s) return s.error();
  if (Status s = set("client.id", options.client_id); !s) return s.error();
  // A client thread waiting to reconnect to a broker that is down also does not time messages
  // out (librdkafka 2.0): its default back-off of up to 10 s would hold publishers that long past
  // message.timeout.ms, and delay reconnecting once the broker is back.
  if (Status s = set("reconnect.backoff.max.ms", "1000"); !s) return s.error();
  for (const auto& [name, value] : settings) {
    if (Status s = set(name, value); !s) return s.error();
  }
  for (const auto& [name, value] : options.extra) {
    if (Status s = set(name, value); !s) return s.error();
  }
  rd_kafka_conf_set_log_cb(conf.get(), log_to_spdlog);
  rd_kafka_conf_set_error_cb(conf.get(), error_to_spdlog);
  return conf;
}

Result<Handle> make_handle(rd_kafka_type_t type, Conf conf) {
  std::array<char, 512> errstr{};
  // rd_kafka_new takes the configuration only when it succeeds.
  Handle rk(rd_kafka_new(type, conf.get(), errstr.data(), errstr.size()));
  if (!rk) return make_error(ErrorKind::kInvalidArgument, std::string("kafka: ") + errstr.data());
  (void)conf.release();
  return rk;
}

Error to_error(rd_kafka_resp_err_t err, std::string_view context) {
  ErrorKind kind = ErrorKind::kUnavailable;
  switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
      kind = ErrorKind::kTooLarge;
      break;
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
      kind = ErrorKind::kInvalidArgument;
      break;
    case RD_KAFKA_RESP_ERR__FATAL:
      kind = ErrorKind::kInternal;
      break;
    default:
      break;
  }
  return make_error(kind, std::string(context) + ": " + rd_kafka_err2str(err));
}

Error to_error(const rd_kafka_error_t* error, std::string_view context) {
  Error e = to_error(rd_kafka_error_code(error), context);
  e.message = std::string(context) + ": " + rd_kafka_error_string(error);
  return e;
}

Message to_message(const rd_kafka_message_t& record) {
  Message m;
  m.topic = rd_kafka_topic_name(record.rkt);
  if (record.key != nullptr) m.key.assign(static_cast<const char*>(record.key), record.key_len);
  if (record.payload != nullptr) {
    m.body.assign(static_cast<const char*>(record.payload), record.len);
  }
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(&record, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    for (size_t i = 0;
         rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      m.headers.emplace_back(
          name, value != nullptr ? std::string(static_cast<const char*>(value), size) : "");
    }
  }
  return m;
}

Partitions one_partition(const char* topic, int32_t partition, int64_t offset) {
  Partitions list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), topic, partition)->offset = offset;
  return list;
}

}  // namespace dither::kafka
