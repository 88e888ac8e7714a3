// Metrics of the messaging (docs/METRICS.md): what the outbox relays publish and how far behind
// the outboxes are, and what the bus's consumers take, give up and have yet to read.
//
//   MessagingMetrics messaging(metrics);
//   bus.set_observer(&messaging);             // consumed, dead-lettered, lag per partition
//   relay.set_metrics(&messaging);            // published, refused publishes
//   messaging.watch_outbox(outbox, "upload"); // backlog and oldest entry's age, when scraped
//
// Thread-safe; it must outlive the bus and relays that report to it.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>

#include "observability/metrics.h"
#include "ports/event_bus.h"
#include "ports/outbox.h"

namespace dither {

class MessagingMetrics final : public BusObserver {
 public:
  explicit MessagingMetrics(observability::Metrics& metrics);

  // The outbox of relay `name`: its queued and parked entries and the oldest queued one's age,
  // read when scraped (one query).
  void watch_outbox(Outbox& outbox, std::string name);
  // A message the bus accepted / refused (OutboxRelay).
  void published(std::string_view topic);
  void publish_failed(std::string_view topic);

  void consumed(std::string_view topic, std::string_view group) override;
  void dead_lettered(std::string_view topic, std::string_view group) override;
  void lag(std::string_view group, const std::vector<PartitionLag>& partitions) override;

 private:
  observability::Metrics& metrics_;
  observability::CounterFamily published_;
  observability::CounterFamily publish_failures_;
  observability::CounterFamily consumed_;
  observability::CounterFamily dead_lettered_;
  observability::GaugeFamily lag_;
  observability::GaugeFamily outbox_messages_;
  observability::GaugeFamily outbox_oldest_;
  std::mutex mutex_;  // guards lags_
  // The lag series each group's consumer reported last, to drop those it no longer holds.
  std::map<std::string, std::map<std::tuple<std::string, int32_t>, prometheus::Gauge*>> lags_;
};

}  // namespace dither
