// The upload service's HTTP routes (SPEC section 3), mapped onto UploadService:
//   POST /images, GET /images, GET /images/{uuid}, DELETE /images/{uuid}, GET /health, and the
//   admins' GET /outbox/parked and POST /outbox/parked/{seq} (services/common/outbox_api.h).
// Handlers only parse, call and format; errors go through http::error_response.
#pragma once

#include <cstdint>

#include "http/router.h"
#include "services/common/caller.h"
#include "services/upload/upload_service.h"

namespace dither {

// Every route but /health needs a caller (services/common/caller.h); answers' file links are
// signed by `links`.
http::Router upload_routes(UploadService& service, LinkPolicy links = {});

// The request body limit the upload service's server needs: the file limit plus room for the
// multipart envelope and an e-mail field.
uint64_t upload_body_limit(const imaging::Limits& limits);

// JSON of a record, as the API returns it (email never included; links signed by `links`).
std::string image_json(const ImageRecord& image, bool with_dithers, const LinkPolicy& links = {});

}  // namespace dither
