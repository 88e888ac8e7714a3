// The routes an admin uses to see and release a service's parked outbox messages
// (messaging/outbox_relay.h): messages the bus refused for good, kept with their reason.
//
//   GET  /outbox/parked         200 {"items": [{"seq", "topic", "key", "message_type",
//                               "message_id", "attempts", "last_error", "parked_at"}, ...]}
//                               (oldest first, `limit` 1..1000, default 100)
//   POST /outbox/parked/{seq}   202 {"seq", "status": "PENDING"}: back in the queue, published
//                               next by the relay; 404 when no parked message has that seq
//
// Admins only (X-Dither-Admin from the gateway, services/common/caller.h): 401 without a caller,
// 403 for a caller who is no admin. Bodies are not shown (they may hold addresses).
#pragma once

#include "http/router.h"
#include "ports/outbox.h"

namespace dither {

void add_outbox_routes(http::Router& router, Outbox& outbox);

}  // namespace dither
