// EventBus adapter: Apache Kafka through librdkafka (the distributed mode).
//
// Publishing: one idempotent producer (acks=all) shared by every thread. publish() returns OK
// once the broker acknowledged the message (its delivery report), kUnavailable when the broker
// did not within `message_timeout` (reported at most about 2.5 s later); publishers wait each for
// their own message, never behind one flush. The message's key, headers (in order, duplicates and
// arbitrary bytes kept) and body are the Kafka record's.
//
// Consuming: one consumer per group (group.id = Subscription::group) subscribed to all of that
// group's topics, one handler call at a time (so each partition's order is kept). Offsets are
// committed by hand, only after the handler returned OK or the message was dead-lettered; what is
// not committed when a consumer stops or dies is delivered again to whoever takes the partition.
// Handler results follow the port (event_bus.h): kUnavailable is retried with a capped back-off
// (`retry_backoff_min` doubling up to `retry_backoff_max`) for as long as it takes; permanent
// errors are dead-lettered at once, others after `max_attempts` calls. A dead letter also carries
// "dead_letter_partition" and "dead_letter_offset" headers. While it backs off, the consumer keeps
// polling (its partitions paused), so it stays in the group.
//
//   KafkaOptions options;
//   options.bootstrap_servers = "127.0.0.1:9092";
//   auto bus = KafkaBus::open(options);         // the producer; fails on a bad option
//   (*bus)->subscribe({"images", "dither-service", handler});
//   (*bus)->start();                            // creates the topics and their .dlq, consumes
//
// librdkafka's logs go to spdlog. Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ports/event_bus.h"

namespace dither {

struct KafkaOptions {
  std::string bootstrap_servers;  // "host:port,host:port"
  std::string client_id = "dither";
  int partitions = 2;          // of the topics start() creates
  int replication_factor = 1;  // of the topics start() creates
  // How long publish() waits for the broker's acknowledgement before kUnavailable.
  std::chrono::milliseconds message_timeout{10000};
  // A consumer that stops heartbeating (a killed process) loses its partitions after this.
  std::chrono::milliseconds session_timeout{10000};
  // Back-off between calls of a failing handler.
  std::chrono::milliseconds retry_backoff_min{100};
  std::chrono::milliseconds retry_backoff_max{5000};
  // How often consumers learn their lag (librdkafka's statistics), when a BusObserver is set.
  std::chrono::milliseconds stats_interval{5000};
  // Any other librdkafka property, for producer and consumers alike (security.protocol, sasl.*,
  // ssl.* for a managed cluster); applied last, so it may override the settings above.
  std::vector<std::pair<std::string, std::string>> extra;
};

class KafkaBus final : public EventBus {
 public:
  // Creates the producer (which connects in the background). kInvalidArgument names a bad option.
  static Result<std::unique_ptr<KafkaBus>> open(KafkaOptions options);
  ~KafkaBus() override;
  KafkaBus(const KafkaBus&) = delete;
  KafkaBus& operator=(const KafkaBus&) = delete;

  Status publish(const Message& message) override;
  // One subscription per (topic, group); subscribe before start().
  void subscribe(Subscription subscription) override;
  // Creates the subscribed topics and their dead-letter topics when missing, then starts one
  // consumer per group. kUnavailable when the broker cannot be reached.
  Status start() override;
  // Closes the consumers (their groups rebalance at once), after their running handlers returned
  // and their commits were sent; then flushes the producer. Idempotent.
  void stop() override;
  std::string_view name() const override { return "kafka"; }

  // Creates the topics that do not exist yet (existing ones are left as they are).
  Status create_topics(const std::vector<std::string>& names, int partitions, int replication);
  // Whether a broker answers a metadata request within `timeout` and the producer has not failed
  // for good (a fatal error of the idempotent producer: only a restart mends it).
  Status ping(std::chrono::milliseconds timeout = std::chrono::seconds{2});
  Status ready() override { return ping(); }
  // Consumers report consumed and dead-lettered messages and, from librdkafka's statistics
  // (every `stats_interval`), each assigned partition's lag.
  void set_observer(BusObserver* observer) override;
  // Partitions currently assigned to this bus's consumer of `group` (0 before it joined).
  int assigned_partitions(std::string_view group) const;

  struct Impl;

 private:
  explicit KafkaBus(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dither
