// Internal to the Kafka adapter: RAII holders for librdkafka's C handles, configuration with the
// logs routed to spdlog, translation of librdkafka errors into dither::Error, and conversion of a
// consumed record into a Message. Only the adapter's .cc files include this (and rdkafka.h).
#pragma once

#include <librdkafka/rdkafka.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adapters/kafka/kafka_bus.h"
#include "common/result.h"
#include "ports/message.h"

namespace dither::kafka {

template <class T, void (*Destroy)(T*)>
struct Deleter {
  void operator()(T* p) const {
    if (p != nullptr) Destroy(p);
  }
};
using Handle = std::unique_ptr<rd_kafka_t, Deleter<rd_kafka_t, rd_kafka_destroy>>;
using Conf = std::unique_ptr<rd_kafka_conf_t, Deleter<rd_kafka_conf_t, rd_kafka_conf_destroy>>;
using Queue = std::unique_ptr<rd_kafka_queue_t, Deleter<rd_kafka_queue_t, rd_kafka_queue_destroy>>;
using Event = std::unique_ptr<rd_kafka_event_t, Deleter<rd_kafka_event_t, rd_kafka_event_destroy>>;
using Record =
    std::unique_ptr<rd_kafka_message_t, Deleter<rd_kafka_message_t, rd_kafka_message_destroy>>;
using Partitions = std::unique_ptr<
    rd_kafka_topic_partition_list_t,
    Deleter<rd_kafka_topic_partition_list_t, rd_kafka_topic_partition_list_destroy>>;
using ErrorHandle =
    std::unique_ptr<rd_kafka_error_t, Deleter<rd_kafka_error_t, rd_kafka_error_destroy>>;

using Settings = std::vector<std::pair<std::string, std::string>>;

// bootstrap.servers, client.id, then `settings`, then options.extra; logs and client errors go
// to spdlog. kInvalidArgument names a property librdkafka refuses.
Result<Conf> make_conf(const KafkaOptions& options, const Settings& settings);

// A producer or consumer from `conf` (taken in every case).
Result<Handle> make_handle(rd_kafka_type_t type, Conf conf);

// kUnavailable for what a later attempt may fix (the broker is down, slow, electing a leader), and
// more specific kinds for messages too large, invalid requests and fatal client errors.
Error to_error(rd_kafka_resp_err_t err, std::string_view context);
Error to_error(const rd_kafka_error_t* error, std::string_view context);

// The record as the port's Message: a null key, value or header value becomes "".
Message to_message(const rd_kafka_message_t& record);

// A one-entry partition list naming `partition` of `topic` at `offset`.
Partitions one_partition(const char* topic, int32_t partition, int64_t offset);

}  // namespace dither::kafka
