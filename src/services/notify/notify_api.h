// The notification service's HTTP routes:
//   GET /notifications   the caller's notifications (those about its images; an admin gets
//                        every one), newest first, paged (limit, cursor): id, uuid, dither_id,
//                        kind, to (masked), subject, status, attempts, last_error, timestamps;
//                        a FAILED one says why
//   GET /health
#pragma once

#include "http/router.h"
#include "services/notify/notification_service.h"

namespace dither {

http::Router notify_routes(NotificationService& service);

}  // namespace dither
