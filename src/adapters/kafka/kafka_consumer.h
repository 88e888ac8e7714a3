// Internal to the Kafka adapter: the consumer of one group, on its own thread.
//
// It handles one record at a time and commits its offset (asynchronously, on a queue of its own)
// only when the handler returned OK or the record was dead-lettered. While a failing handler
// backs off, the consumer's partitions are paused and it keeps polling, so it stays in the group;
// a record whose partition is taken away meanwhile is left to the partition's new owner.
//
// start() and stop() are for the owner's thread; assigned() may be read from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "adapters/kafka/kafka_client.h"
#include "adapters/kafka/kafka_producer.h"

namespace dither::kafka {

class GroupConsumer {
 public:
  // `subscriptions` all have this group; `dead_letters` publishes dead letters; `observer` (may
  // be null) is told what is consumed and dead-lettered, and the lag from librdkafka's statistics.
  GroupConsumer(std::string group, std::vector<Subscription> subscriptions,
                const KafkaOptions& options, Producer& dead_letters, BusObserver* observer);
  ~GroupConsumer();
  GroupConsumer(const GroupConsumer&) = delete;
  GroupConsumer& operator=(const GroupConsumer&) = delete;

  Status start();
  // Asks the thread to finish: the running handler returns, a retry stops (uncommitted).
  void request_stop() { stopping_ = true; }
  // request_stop(), then waits until the last commits are sent and the consumer left its group.
  void stop();
  const std::string& group() const { return group_; }
  int assigned() const { return assigned_.load(); }

 private:
  void run();
  void handle(const rd_kafka_message_t& record);
  void dead_letter(const rd_kafka_message_t& record, const Message& message, const Error& error);
  // Sleeps `delay` with the assignment paused, polling the whole time. False when the consumer is
  // stopping or the record being handled lost its partition: give the record up.
  bool back_off(std::chrono::milliseconds delay);
  std::chrono::milliseconds next_backoff(std::chrono::milliseconds previous) const;
  void commit(const rd_kafka_message_t& record);
  // Serves commit results until none is outstanding or `timeout` passed.
  void serve_commits(std::chrono::milliseconds timeout);
  void set_paused(bool paused);
  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* partitions, void* opaque);
  void rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions);
  void count_assignment();
  static int on_statistics(rd_kafka_t* rk, char* json, size_t length, void* opaque);
  void report_lag(std::string_view json) const;

  std::string group_;
  std::map<std::string, Subscription> by_topic_;
  KafkaOptions options_;
  Producer& dead_letters_;
  BusObserver* observer_;
  Handle rk_;
  Queue commits_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> assigned_{0};
  // The consumer thread's own state (the rebalance callback runs on it, inside a poll).
  int outstanding_commits_ = 0;
  bool backing_off_ = false;
  std::string current_topic_;
  int32_t current_partition_ = -1;
  bool current_lost_ = false;
};

}  // namespace dither::kafka
