#include "adapters/kafka/kafka_bus.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include "adapters/kafka/kafka_consumer.h"
#include "adapters/kafka/kafka_producer.h"

namespace dither {

struct KafkaBus::Impl {
  KafkaOptions options;
  std::unique_ptr<kafka::Producer> producer;
  mutable std::mutex mutex;  // guards what follows
  std::vector<Subscription> subscriptions;
  std::vector<std::unique_ptr<kafka::GroupConsumer>> consumers;
  bool started = false;
  bool stopped = false;
  BusObserver* observer = nullptr;
};

KafkaBus::KafkaBus(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

KafkaBus::~KafkaBus() { stop(); }

Result<std::unique_ptr<KafkaBus>> KafkaBus::open(KafkaOptions options) {
  if (options.bootstrap_servers.empty()) {
    return make_error(ErrorKind::kInvalidArgument, "kafka: no bootstrap servers");
  }
  if (options.partitions < 1 || options.replication_factor < 1) {
    return make_error(ErrorKind::kInvalidArgument,
                      "kafka: partitions and replication factor must be at least 1");
  }
  if (options.message_timeout.count() < 1 || options.retry_backoff_min.count() < 1 ||
      options.retry_backoff_max < options.retry_backoff_min) {
    return make_error(ErrorKind::kInvalidArgument, "kafka: bad timeouts");
  }
  Result<std::unique_ptr<kafka::Producer>> producer = kafka::Producer::open(options);
  if (!producer) return producer.error();
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->producer = std::move(*producer);
  return std::unique_ptr<KafkaBus>(new KafkaBus(std::move(impl)));
}

Status KafkaBus::publish(const Message& message) {
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopped) return make_error(ErrorKind::kUnavailable, "the event bus is stopped");
  }
  return impl_->producer->publish(message);
}

void KafkaBus::subscribe(Subscription subscription) {
  std::lock_guard lock(impl_->mutex);
  if (impl_->started) {
    spdlog::error("kafka: subscription of group {} to {} after start(): ignored",
                  subscription.group, subscription.topic);
    return;
  }
  auto same = [&](const Subscription& s) {
    return s.topic == subscription.topic && s.group == subscription.group;
  };
  if (std::erase_if(impl_->subscriptions, same) > 0) {
    spdlog::warn("kafka: group {} subscribed to {} twice: the last subscription wins",
                 subscription.group, subscription.topic);
  }
  impl_->subscriptions.push_back(std::move(subscription));
}

Status KafkaBus::start() {
  std::lock_guard lock(impl_->mutex);
  if (impl_->stopped) return make_error(ErrorKind::kUnavailable, "the event bus is stopped");
  if (impl_->started) return {};
  std::set<std::string> topics;
  std::map<std::string, std::vector<Subscription>> by_group;
  for (const Subscription& s : impl_->subscriptions) {
    topics.insert(s.topic);
    topics.insert(Topics::dead_letter(s.topic));
    by_group[s.group].push_back(s);
  }
  if (Status created = create_topics({topics.begin(), topics.end()}, impl_->options.partitions,
                                     impl_->options.replication_factor);
      !created) {
    return created;
  }
  std::vector<std::unique_ptr<kafka::GroupConsumer>> consumers;
  for (auto& [group, subscriptions] : by_group) {
    auto consumer = std::make_unique<kafka::GroupConsumer>(
        group, std::move(subscriptions), impl_->options, *impl_->producer, impl_->observer);
    if (Status s = consumer->start(); !s) return s;  // the ones started stop as they go
    consumers.push_back(std::move(consumer));
  }
  impl_->consumers = std::move(consumers);
  impl_->started = true;
  return {};
}

void KafkaBus::stop() {
  std::vector<std::unique_ptr<kafka::GroupConsumer>> consumers;
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopped) return;
    impl_->stopped = true;
    consumers = std::move(impl_->consumers);
  }
  // All at once: each may wait for a handler, its commits and leaving its group.
  for (auto& consumer : consumers) consumer->request_stop();
  consumers.clear();
  impl_->producer->flush(impl_->options.message_timeout);
}

Status KafkaBus::create_topics(const std::vector<std::string>& names, int partitions,
                               int replication) {
  return impl_->producer->create_topics(
      names, partitions, replication,
      std::max<std::chrono::milliseconds>(impl_->options.message_timeout, std::chrono::seconds{5}));
}

Status KafkaBus::ping(std::chrono::milliseconds timeout) { return impl_->producer->ping(timeout); }

void KafkaBus::set_observer(BusObserver* observer) {
  std::lock_guard lock(impl_->mutex);
  impl_->observer = observer;
}

int KafkaBus::assigned_partitions(std::string_view group) const {
  std::lock_guard lock(impl_->mutex);
  for (const auto& consumer : impl_->consumers) {
    if (consumer->group() == group) return consumer->assigned();
  }
  return 0;
}

}  // namespace dither
