#include "messaging/messaging_metrics.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "ports/records.h"

namespace dither {

MessagingMetrics::MessagingMetrics(observability::Metrics& metrics)
    : metrics_(metrics),
      published_(metrics.counter("messages_published_total",
                                 "Messages the bus accepted from an outbox relay, by topic.",
                                 {"topic"})),
      publish_failures_(metrics.counter(
          "message_publish_failures_total",
          "Publishes the bus refused or could not take (the entry stays in the outbox).",
          {"topic"})),
      consumed_(metrics.counter("messages_consumed_total",
                                "Messages a consumer group handled (its handler returned OK).",
                                {"topic", "group"})),
      dead_lettered_(
          metrics.counter("messages_dead_lettered_total",
                          "Messages a consumer group gave up on and sent to the dead-letter topic.",
                          {"topic", "group"})),
      lag_(metrics.gauge("consumer_lag_messages",
                         "Messages of a partition this process's consumer has yet to read.",
                         {"topic", "partition", "group"})),
      outbox_messages_(metrics.gauge("outbox_messages",
                                     "Outbox entries waiting to be published, or parked.",
                                     {"outbox", "state"})),
      outbox_oldest_(metrics.gauge(
          "outbox_oldest_age_seconds",
          "Age of the oldest outbox entry waiting to be published (0 when none).", {"outbox"})) {}

void MessagingMetrics::watch_outbox(Outbox& outbox, std::string name) {
  prometheus::Gauge& pending = outbox_messages_.with({name, "pending"});
  prometheus::Gauge& parked = outbox_messages_.with({name, "parked"});
  prometheus::Gauge& oldest = outbox_oldest_.with({name});
  metrics_.on_scrape([&outbox, &pending, &parked, &oldest, name] {
    Result<OutboxStats> stats = outbox.outbox_stats();
    if (!stats) {
      spdlog::warn("metrics: cannot read outbox {}: {}", name, stats.error().message);
      return;
    }
    pending.Set(static_cast<double>(stats->pending));
    parked.Set(static_cast<double>(stats->parked));
    const int64_t age_ms = stats->oldest_pending_at > 0
                               ? std::max<int64_t>(0, now_millis() - stats->oldest_pending_at)
                               : 0;
    oldest.Set(static_cast<double>(age_ms) / 1000.0);
  });
}

void MessagingMetrics::published(std::string_view topic) { published_.with({topic}).Increment(); }

void MessagingMetrics::publish_failed(std::string_view topic) {
  publish_failures_.with({topic}).Increment();
}

void MessagingMetrics::consumed(std::string_view topic, std::string_view group) {
  consumed_.with({topic, group}).Increment();
}

void MessagingMetrics::dead_lettered(std::string_view topic, std::string_view group) {
  dead_lettered_.with({topic, group}).Increment();
}

void MessagingMetrics::lag(std::string_view group, const std::vector<PartitionLag>& partitions) {
  std::lock_guard lock(mutex_);
  auto& held = lags_[std::string(group)];
  std::map<std::tuple<std::string, int32_t>, prometheus::Gauge*> now;
  for (const PartitionLag& p : partitions) {
    prometheus::Gauge& gauge = lag_.with({p.topic, std::to_string(p.partition), group});
    gauge.Set(static_cast<double>(p.messages));
    now.emplace(std::make_tuple(p.topic, p.partition), &gauge);
  }
  // A partition given up (a rebalance moved it to another process) must not keep its last value.
  for (const auto& [key, gauge] : held) {
    if (!now.contains(key)) lag_.remove(*gauge);
  }
  held = std::move(now);
}

}  // namespace dither
