// api-gateway: the API gateway alone, in front of upload, dithering and notification services
// that run elsewhere (UPLOAD_SERVICE_HOST/PORT, DITHER_SERVICE_HOST/PORT,
// NOTIFY_SERVICE_HOST/PORT). Configuration: README.md.
#include "app/main_support.h"

int main() {
  return dither::run_main(
      dither::Roles{.gateway = true, .upload = false, .dither = false, .notify = false});
}
