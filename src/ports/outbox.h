// Port: the transactional outbox. A store writes a row and the messages it implies in one
// transaction; a relay (messaging/outbox_relay.h) publishes the messages in order and removes
// each only after the bus accepted it. So there is never an event about a rolled-back row, nor a
// committed row without its event, and a crash at any point only delays (or repeats) a message.
#pragma once

#include <cstdint>
#include <vector>

#include "common/result.h"
#include "ports/message.h"

namespace dither {

struct OutboxEntry {
  int64_t seq = 0;  // increasing in commit order
  Message message;
};

class Outbox {
 public:
  virtual ~Outbox() = default;
  // The oldest entries not yet removed, oldest first, at most `limit`.
  virtual Result<std::vector<OutboxEntry>> pending_messages(int limit) = 0;
  virtual Status remove_message(int64_t seq) = 0;
};

}  // namespace dither
