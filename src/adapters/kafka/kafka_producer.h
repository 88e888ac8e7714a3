// Internal to the Kafka adapter: the idempotent producer every publisher shares, and the admin
// requests made through it (topic creation, metadata ping).
//
// A poll thread serves delivery reports; each publish() waits for its own message's report, so
// concurrent publishers never wait behind one another's flush. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "adapters/kafka/kafka_client.h"

namespace dither::kafka {

class Producer {
 public:
  static Result<std::unique_ptr<Producer>> open(const KafkaOptions& options);
  // Stops the poll thread; messages still queued are purged (their publishers get kUnavailable).
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // OK once the broker acknowledged the message.
  Status publish(const Message& message);
  // Waits until every queued message got its report, at most `timeout`.
  void flush(std::chrono::milliseconds timeout);
  Status create_topics(const std::vector<std::string>& names, int partitions, int replication,
                       std::chrono::milliseconds timeout);
  Status ping(std::chrono::milliseconds timeout);

 private:
  Producer(Handle rk, std::chrono::milliseconds message_timeout);
  void poll_loop();

  Handle rk_;
  std::chrono::milliseconds message_timeout_;
  std::atomic<bool> stopping_{false};
  std::thread poller_;
};

}  // namespace dither::kafka
