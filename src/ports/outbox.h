// Port: the transactional outbox. A store writes a row and the messages it implies in one
// transaction; a relay (messaging/outbox_relay.h) publishes the messages in order and removes
// each only after the bus accepted it. So there is never an event about a rolled-back row, nor a
// committed row without its event, and a crash at any point only delays (or repeats) a message.
//
// A message the bus refuses for good (too large, an invalid topic: see OutboxRelay) is counted
// (`record_publish_failure`) and, after the relay's limit, parked: kept with its reason, out of
// the queue, so the ones after it go on. An admin lists parked entries and puts one back in the
// queue (`republish`), where it goes first again (it keeps its seq).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "ports/message.h"

namespace dither {

struct OutboxEntry {
  int64_t seq = 0;  // increasing in commit order
  Message message;
  int attempts = 0;        // failed publishes counted by record_publish_failure
  std::string last_error;  // the reason of the last one ("" when none)
  int64_t parked_at = 0;   // Unix ms when parked; 0: in the queue
};

// How full the outbox is (metrics: dither_outbox_messages, dither_outbox_oldest_age_seconds).
struct OutboxStats {
  int64_t pending = 0;            // in the queue
  int64_t parked = 0;             // parked (see above)
  int64_t oldest_pending_at = 0;  // Unix ms the oldest queued entry was written; 0 when none
};

class Outbox {
 public:
  virtual ~Outbox() = default;
  // The oldest entries not yet removed nor parked, oldest first, at most `limit`.
  virtual Result<std::vector<OutboxEntry>> pending_messages(int limit) = 0;
  virtual Status remove_message(int64_t seq) = 0;

  // Counts one failed publish of entry `seq` (attempts + 1, last_error = `error`); with `park`
  // the entry is also parked (parked_at = now): pending_messages skips it from now on. An entry
  // that is gone is not an error.
  virtual Status record_publish_failure(int64_t seq, std::string_view error, bool park) = 0;
  // Parked entries, oldest first, at most `limit`.
  virtual Result<std::vector<OutboxEntry>> parked_messages(int limit) = 0;
  // Puts parked entry `seq` back in the queue with its attempts reset (last_error kept until
  // it is published); kNotFound when there is no parked entry `seq`.
  virtual Status republish(int64_t seq) = 0;
  // Counts of queued and parked entries and the oldest queued one's time; one query.
  virtual Result<OutboxStats> outbox_stats() = 0;
};

}  // namespace dither
