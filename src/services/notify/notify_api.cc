#include "services/notify/notify_api.h"

#include <boost/json.hpp>

#include "messaging/events.h"
#include "services/common/caller.h"
#include "services/common/paging.h"
#include "services/notify/mail_composer.h"

namespace dither {

namespace json = boost::json;
using http::RequestContext;
using http::Response;

namespace {

json::object notification_object(const Notification& n) {
  json::object o;
  o["id"] = n.id;
  o["uuid"] = n.uuid.value;
  o["dither_id"] = n.dither_id;
  o["kind"] = n.kind;
  o["to"] = mask_email(n.mail.to);  // the address itself is never shown
  o["subject"] = n.mail.subject;
  o["status"] = n.status;
  o["attempts"] = n.attempts;
  o["last_error"] = text_or_null(n.last_error);
  o["created_at"] = iso_time(n.created_at);
  o["updated_at"] = iso_time(n.updated_at);
  o["sent_at"] = time_or_null(n.sent_at);
  o["next_attempt_at"] =
      n.status == kNotificationPending ? time_or_null(n.next_attempt_at) : json::value(nullptr);
  return o;
}

}  // namespace

http::Router notify_routes(NotificationService& service) {
  http::Router router;
  router.add(http::Verb::get, "/notifications", owned_list_route(service, notification_object));
  router.add(http::Verb::get, "/health", [&service](const RequestContext&) -> Response {
    return health_response("notify", service.health());
  });
  return router;
}

}  // namespace dither
