// Moves messages from a service's outbox to the event bus, in commit order.
//
// One thread per outbox. It publishes the oldest pending message and removes it from the outbox
// only after publish() returned OK; when publishing fails it waits (back-off up to 2 s) and tries
// the same message again, so order is kept and nothing is skipped. A crash between publish and
// remove publishes that message again after the restart: consumers de-duplicate by message_id.
// notify() after a commit wakes the relay at once; otherwise it polls every `poll_interval`.
//
//   OutboxRelay relay(repository, bus, "upload");
//   relay.start();  ...  repository.insert_image(...); relay.notify();  ...  relay.stop();
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "ports/event_bus.h"
#include "ports/outbox.h"

namespace dither {

class OutboxRelay {
 public:
  OutboxRelay(Outbox& outbox, EventBus& bus, std::string name,
              std::chrono::milliseconds poll_interval = std::chrono::milliseconds{500});
  ~OutboxRelay();
  OutboxRelay(const OutboxRelay&) = delete;
  OutboxRelay& operator=(const OutboxRelay&) = delete;

  void start();
  void notify();
  // Returns after the message being published (if any) is done; the rest stays in the outbox.
  void stop();
  // Blocks until the outbox was seen empty after this call (tests, graceful shutdown).
  void drain();

 private:
  void run();

  Outbox& outbox_;
  EventBus& bus_;
  std::string name_;
  std::chrono::milliseconds poll_interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable drained_;
  bool stopping_ = false;
  bool pending_notify_ = false;
  uint64_t empty_rounds_ = 0;
  std::thread thread_;
};

}  // namespace dither
