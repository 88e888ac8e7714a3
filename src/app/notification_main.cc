// notification-service: the notification service alone (distributed mode: KAFKA_SERVER and
// usually POSTGRES_* and SMTP_* set). Listens on SERVICE_BIND_HOST:NOTIFY_SERVICE_PORT.
// Configuration: README.md.
#include "app/main_support.h"

int main() {
  return dither::run_main(
      dither::Roles{.gateway = false, .upload = false, .dither = false, .notify = true});
}
