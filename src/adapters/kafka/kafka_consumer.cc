#include "adapters/kafka/kafka_consumer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdlib>
#include <cstring>
#include <exception>

namespace dither::kafka {
namespace {

constexpr int kPollMs = 100;  // also how soon a stop request is noticed
// How long the last commits may take to reach the broker when stopping or giving partitions up.
constexpr std::chrono::seconds kCommitGrace{5};

bool cooperative(rd_kafka_t* rk) {
  return std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
}

}  // namespace

GroupConsumer::GroupConsumer(std::string group, std::vector<Subscription> subscriptions,
                             const KafkaOptions& options, Producer& dead_letters,
                             BusObserver* observer)
    : group_(std::move(group)),
      options_(options),
      dead_letters_(dead_letters),
      observer_(observer) {
  for (Subscription& s : subscriptions) {
    std::string topic = s.topic;
    by_topic_.insert_or_assign(std::move(topic), std::move(s));
  }
}

GroupConsumer::~GroupConsumer() { stop(); }

Status GroupConsumer::start() {
  const Settings settings = {
      {"group.id", group_},
      {"enable.auto.commit", "false"},
      {"auto.offset.reset", "earliest"},
      {"session.timeout.ms", std::to_string(options_.session_timeout.count())},
      {"heartbeat.interval.ms",
       std::to_string(std::max<int64_t>(100, options_.session_timeout.count() / 3))},
  };
  Result<Conf> conf = make_conf(options_, settings);
  if (!conf) return conf.error();
  if (observer_ != nullptr) {
    // The lag comes with librdkafka's statistics, served by the consumer's own poll.
    char reason[256];
    if (rd_kafka_conf_set(conf->get(), "statistics.interval.ms",
                          std::to_string(options_.stats_interval.count()).c_str(), reason,
                          sizeof reason) != RD_KAFKA_CONF_OK) {
      return make_error(ErrorKind::kInvalidArgument,
                        std::string("kafka: statistics.interval.ms: ") + reason);
    }
    rd_kafka_conf_set_stats_cb(conf->get(), on_statistics);
  }
  rd_kafka_conf_set_rebalance_cb(conf->get(), on_rebalance);
  rd_kafka_conf_set_opaque(conf->get(), this);
  Result<Handle> rk = make_handle(RD_KAFKA_CONSUMER, std::move(*conf));
  if (!rk) return rk.error();
  rk_ = std::move(*rk);
  // Logs, errors and rebalances are all served by the consumer's poll.
  rd_kafka_poll_set_consumer(rk_.get());
  commits_.reset(rd_kafka_queue_new(rk_.get()));

  Partitions topics(rd_kafka_topic_partition_list_new(static_cast<int>(by_topic_.size())));
  for (const auto& [topic, subscription] : by_topic_) {
    rd_kafka_topic_partition_list_add(topics.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
  }
  if (rd_kafka_resp_err_t err = rd_kafka_subscribe(rk_.get(), topics.get()); err) {
    commits_.reset();
    rk_.reset();
    return to_error(err, "kafka: group " + group_ + " cannot subscribe");
  }
  thread_ = std::thread([this] { run(); });
  return {};
}

void GroupConsumer::stop() {
  request_stop();
  if (thread_.joinable()) thread_.join();
}

void GroupConsumer::run() {
  while (!stopping_) {
    serve_commits(std::chrono::milliseconds{0});
    Record record(rd_kafka_consumer_poll(rk_.get(), kPollMs));
    if (!record) continue;
    if (record->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::warn("kafka: group {}: {}", group_, rd_kafka_message_errstr(record.get()));
      continue;
    }
    handle(*record);
  }
  // The last commits first, so that the partitions' next owner starts after them.
  serve_commits(kCommitGrace);
  if (rd_kafka_resp_err_t err = rd_kafka_consumer_close(rk_.get()); err) {
    spdlog::warn("kafka: group {}: closing the consumer: {}", group_, rd_kafka_err2str(err));
  }
  assigned_ = 0;
  commits_.reset();
  rk_.reset();
}

void GroupConsumer::handle(const rd_kafka_message_t& record) {
  const Message message = to_message(record);
  auto it = by_topic_.find(message.topic);
  if (it == by_topic_.end()) {  // librdkafka only returns subscribed topics
    spdlog::error("kafka: group {} got a record of unsubscribed topic {}: skipped", group_,
                  message.topic);
    commit(record);
    return;
  }
  const Subscription& subscription = it->second;
  current_topic_ = message.topic;
  current_partition_ = record.partition;
  current_lost_ = false;

  const int max_attempts = std::max(1, subscription.max_attempts);
  int failures = 0;
  std::chrono::milliseconds backoff{0};
  for (;;) {
    Status result = call_handler(subscription.handler, message);
    if (result) {
      commit(record);
      if (observer_ != nullptr) observer_->consumed(message.topic, group_);
      return;
    }
    const Error& error = result.error();
    const bool transient = error.kind == ErrorKind::kUnavailable;
    if (is_permanent_failure(error.kind) || (!transient && ++failures >= max_attempts)) {
      dead_letter(record, message, error);
      return;
    }
    backoff = next_backoff(backoff);
    spdlog::log(transient ? spdlog::level::info : spdlog::level::warn,
                "kafka: group {}: {} {} at {}[{}]@{} failed ({}), retrying in {} ms: {}", group_,
                message.message_type(), message.message_id(), message.topic, record.partition,
                record.offset, to_string(error.kind), backoff.count(), error.message);
    if (!back_off(backoff)) return;
  }
}

void GroupConsumer::dead_letter(const rd_kafka_message_t& record, const Message& message,
                                const Error& error) {
  Message dead = message;
  dead.topic = Topics::dead_letter(message.topic);
  dead.headers.emplace_back(kHeaderDeadLetterReason, error.message);
  dead.headers.emplace_back(kHeaderDeadLetterGroup, group_);
  dead.headers.emplace_back(kHeaderDeadLetterTopic, message.topic);
  dead.headers.emplace_back("dead_letter_partition", std::to_string(record.partition));
  dead.headers.emplace_back("dead_letter_offset", std::to_string(record.offset));
  spdlog::error("kafka: group {}: dead letter {} {} from {}[{}]@{} to {}: {}", group_,
                message.message_type(), message.message_id(), message.topic, record.partition,
                record.offset, dead.topic, error.message);
  std::chrono::milliseconds backoff{0};
  for (;;) {
    Status published = dead_letters_.publish(dead);
    if (published) {
      commit(record);
      if (observer_ != nullptr) observer_->dead_lettered(message.topic, group_);
      return;
    }
    backoff = next_backoff(backoff);
    spdlog::warn("kafka: group {}: cannot publish the dead letter, retrying in {} ms: {}", group_,
                 backoff.count(), published.error().message);
    if (!back_off(backoff)) return;
  }
}

int GroupConsumer::on_statistics(rd_kafka_t*, char* json, size_t length, void* opaque) {
  try {
    static_cast<const GroupConsumer*>(opaque)->report_lag(std::string_view(json, length));
  } catch (const std::exception& e) {
    spdlog::warn("kafka: unreadable statistics: {}", e.what());
  }
  return 0;  // librdkafka frees the text
}

namespace {

int64_t int_field(const boost::json::object& o, std::string_view name) {
  const boost::json::value* v = o.if_contains(name);
  return v != nullptr && v->is_int64() ? v->as_int64() : -1;
}

// A partition's lag from its statistics: consumer_lag (the end less the committed offset) when
// known; before the group committed anything on it, all that the partition holds (the group
// starts at the earliest offset); -1 when neither is known.
int64_t lag_of(const boost::json::object& partition) {
  if (const int64_t lag = int_field(partition, "consumer_lag"); lag >= 0) return lag;
  const int64_t high = int_field(partition, "hi_offset");
  const int64_t low = int_field(partition, "lo_offset");
  return high >= 0 && low >= 0 && high >= low ? high - low : -1;
}

}  // namespace

// The statistics' topics.<topic>.partitions.<n>: every partition assigned here ("desired"; -1 is
// librdkafka's internal "unassigned" one) with its lag.
void GroupConsumer::report_lag(std::string_view json) const {
  boost::system::error_code ec;
  const boost::json::value stats = boost::json::parse(json, ec);
  if (ec || !stats.is_object()) return;
  const boost::json::value* topics = stats.as_object().if_contains("topics");
  if (topics == nullptr || !topics->is_object()) return;
  std::vector<BusObserver::PartitionLag> lags;
  for (const auto& [topic, entry] : topics->as_object()) {
    if (!by_topic_.contains(std::string(topic))) continue;
    const boost::json::value* partitions =
        entry.is_object() ? entry.as_object().if_contains("partitions") : nullptr;
    if (partitions == nullptr || !partitions->is_object()) continue;
    for (const auto& [id, value] : partitions->as_object()) {
      if (!value.is_object()) continue;
      const boost::json::object& partition = value.as_object();
      const boost::json::value* desired = partition.if_contains("desired");
      const int32_t number = std::atoi(std::string(id).c_str());
      const int64_t lag = lag_of(partition);
      if (number < 0 || desired == nullptr || !desired->is_bool() || !desired->as_bool() ||
          lag < 0) {
        continue;
      }
      lags.push_back({std::string(topic), number, lag});
    }
  }
  observer_->lag(group_, lags);
}

std::chrono::milliseconds GroupConsumer::next_backoff(std::chrono::milliseconds previous) const {
  return std::clamp(previous * 2, options_.retry_backoff_min, options_.retry_backoff_max);
}

bool GroupConsumer::back_off(std::chrono::milliseconds delay) {
  const auto deadline = std::chrono::steady_clock::now() + delay;
  backing_off_ = true;
  set_paused(true);
  bool keep = true;
  for (;;) {
    if (stopping_ || current_lost_) {
      keep = false;
      break;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    serve_commits(std::chrono::milliseconds{0});
    Record record(rd_kafka_consumer_poll(
        rk_.get(), static_cast<int>(std::min<int64_t>(left.count(), kPollMs))));
    if (!record || record->err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    // Paused partitions return nothing; a record fetched just before a pause is put back.
    Partitions back =
        one_partition(rd_kafka_topic_name(record->rkt), record->partition, record->offset);
    ErrorHandle error(rd_kafka_seek_partitions(rk_.get(), back.get(), 0));
    if (error) {
      spdlog::warn("kafka: group {}: cannot rewind {}[{}] to {}: {}", group_,
                   rd_kafka_topic_name(record->rkt), record->partition, record->offset,
                   rd_kafka_error_string(error.get()));
    }
  }
  set_paused(false);
  backing_off_ = false;
  return keep;
}

void GroupConsumer::set_paused(bool paused) {
  rd_kafka_topic_partition_list_t* raw = nullptr;
  if (rd_kafka_assignment(rk_.get(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  Partitions assignment(raw);
  if (assignment->cnt == 0) return;
  if (paused) {
    rd_kafka_pause_partitions(rk_.get(), assignment.get());
  } else {
    rd_kafka_resume_partitions(rk_.get(), assignment.get());
  }
}

void GroupConsumer::commit(const rd_kafka_message_t& record) {
  Partitions offsets =
      one_partition(rd_kafka_topic_name(record.rkt), record.partition, record.offset + 1);
  const rd_kafka_resp_err_t err =
      rd_kafka_commit_queue(rk_.get(), offsets.get(), commits_.get(), nullptr, nullptr);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    // The record will be delivered again (at least once); handlers are idempotent.
    spdlog::warn("kafka: group {}: cannot commit {}[{}]@{}: {}", group_,
                 rd_kafka_topic_name(record.rkt), record.partition, record.offset,
                 rd_kafka_err2str(err));
    return;
  }
  ++outstanding_commits_;
}

void GroupConsumer::serve_commits(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (outstanding_commits_ > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    Event event(rd_kafka_queue_poll(commits_.get(), static_cast<int>(std::max<int64_t>(
                                                        0, std::min<int64_t>(left.count(), 100)))));
    if (!event) {
      if (left.count() <= 0) return;
      continue;
    }
    if (rd_kafka_event_type(event.get()) != RD_KAFKA_EVENT_OFFSET_COMMIT) continue;
    --outstanding_commits_;
    if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::warn("kafka: group {}: a commit failed (the records will be delivered again): {}",
                   group_, rd_kafka_event_error_string(event.get()));
    }
  }
}

void GroupConsumer::on_rebalance(rd_kafka_t* /*rk*/, rd_kafka_resp_err_t err,
                                 rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  static_cast<GroupConsumer*>(opaque)->rebalance(err, partitions);
}

void GroupConsumer::rebalance(rd_kafka_resp_err_t err,
                              rd_kafka_topic_partition_list_t* partitions) {
  rd_kafka_t* rk = rk_.get();
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    if (cooperative(rk)) {
      ErrorHandle error(rd_kafka_incremental_assign(rk, partitions));
    } else {
      rd_kafka_assign(rk, partitions);
    }
    // A consumer that is backing off takes new partitions paused too.
    if (backing_off_) rd_kafka_pause_partitions(rk, partitions);
  } else {
    if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
      spdlog::warn("kafka: group {}: rebalance error: {}", group_, rd_kafka_err2str(err));
    }
    // The next owner starts from the committed offsets: send ours first.
    if (!rd_kafka_assignment_lost(rk)) serve_commits(kCommitGrace);
    for (int i = 0; i < partitions->cnt; ++i) {
      if (partitions->elems[i].partition == current_partition_ &&
          current_topic_ == partitions->elems[i].topic) {
        current_lost_ = true;
      }
    }
    if (cooperative(rk)) {
      ErrorHandle error(rd_kafka_incremental_unassign(rk, partitions));
    } else {
      rd_kafka_assign(rk, nullptr);
    }
  }
  count_assignment();
  spdlog::info("kafka: group {}: {} partitions assigned", group_, assigned_.load());
}

void GroupConsumer::count_assignment() {
  rd_kafka_topic_partition_list_t* raw = nullptr;
  if (rd_kafka_assignment(rk_.get(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  Partitions assignment(raw);
  assigned_ = assignment->cnt;
}

}  // namespace dither::kafka
