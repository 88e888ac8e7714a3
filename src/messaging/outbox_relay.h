// Moves messages from a service's outbox to the event bus, in commit order.
//
// One thread per outbox. It publishes the oldest pending message and removes it from the outbox
// only after publish() returned OK; when publishing fails it waits (back-off up to 2 s) and tries
// the same message again, so order is kept and nothing is skipped. A crash between publish and
// remove publishes that message again after the restart: consumers de-duplicate by message_id.
// notify() after a commit wakes the relay at once; otherwise it polls every `poll_interval`.
//
// The outbox never blocks for good: what the bus answers decides (ports/event_bus.h).
//  - A permanent refusal (kTooLarge: the message is over the broker's size; kInvalidArgument or
//    kUnsupported: an invalid topic, a record the broker refuses) is counted on the entry
//    (Outbox::record_publish_failure); at the `max_attempts`-th the entry is parked with its
//    reason, logged as an error, and the messages after it go on at once. An admin lists parked
//    entries and publishes one again (Outbox::parked_messages, republish; the services'
//    GET /outbox/parked and POST /outbox/parked/{seq}).
//  - Anything else (kUnavailable: the broker is down, the bus stopped; kInternal) is transient:
//    never counted, never parked, retried with the back-off for as long as it takes, so a broker
//    that is merely down parks nothing.
// Parking changes the order only for the parked message itself (a later one may overtake it);
// consumers already tolerate redelivery, and a republished message goes first again.
//
//   OutboxRelay relay(repository, bus, "upload");
//   relay.start();  ...  repository.insert_image(...); relay.notify();  ...  relay.stop();
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "messaging/messaging_metrics.h"
#include "ports/event_bus.h"
#include "ports/outbox.h"

namespace dither {

class OutboxRelay {
 public:
  static constexpr int kDefaultMaxAttempts = 10;  // OUTBOX_MAX_ATTEMPTS

  OutboxRelay(Outbox& outbox, EventBus& bus, std::string name,
              std::chrono::milliseconds poll_interval = std::chrono::milliseconds{500},
              int max_attempts = kDefaultMaxAttempts);

  // Whether a publish error counts toward parking (a permanent refusal, see above).
  static bool counts_toward_parking(ErrorKind kind);
  ~OutboxRelay();
  OutboxRelay(const OutboxRelay&) = delete;
  OutboxRelay& operator=(const OutboxRelay&) = delete;

  void start();
  void notify();
  // Returns after the message being published (if any) is done; the rest stays in the outbox.
  void stop();
  // Blocks until the outbox was seen empty after this call (tests, graceful shutdown).
  void drain();
  // Counts publishes (accepted, refused) from now on and watches the outbox's backlog; call
  // before start(). `metrics` must outlive the relay.
  void set_metrics(MessagingMetrics& metrics);

 private:
  void run();

  Outbox& outbox_;
  EventBus& bus_;
  MessagingMetrics* metrics_ = nullptr;
  std::string name_;
  std::chrono::milliseconds poll_interval_;
  int max_attempts_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable drained_;
  bool stopping_ = false;
  bool pending_notify_ = false;
  uint64_t empty_rounds_ = 0;
  std::thread thread_;
};

}  // namespace dither
