// dithering-service: the dithering service alone, any number of them in one consumer group
// (distributed mode: KAFKA_SERVER and usually POSTGRES_* and S3_* or CLOUDINARY_* set). Listens on
// SERVICE_BIND_HOST:DITHER_SERVICE_PORT. Configuration: README.md.
#include "app/main_support.h"

int main() {
  return dither::run_main(
      dither::Roles{.gateway = false, .upload = false, .dither = true, .notify = false});
}
