// The dithering service's HTTP routes (SPEC section 3), mapped onto DitherService:
//   GET /images, GET /images/{uuid}, POST /images/{uuid}/{channels}, DELETE /images/{uuid},
//   DELETE /images/{uuid}/{dither_id}, GET /health, and the admins' GET /outbox/parked and
//   POST /outbox/parked/{seq} (services/common/outbox_api.h).
#pragma once

#include <string>

#include "http/router.h"
#include "services/common/caller.h"
#include "services/dither/dither_service.h"

namespace dither {

// Every route but /health needs a caller (services/common/caller.h); answers' file links are
// signed by `links`.
http::Router dither_routes(DitherService& service, LinkPolicy links = {});

// JSON of a dither record, as the API returns it.
std::string dither_json(const DitherRecord& dither, const LinkPolicy& links = {});

// The options of a POST: query parameters first, then the JSON body's members (an object whose
// values are strings, numbers or booleans). kInvalidArgument for any other body.
Result<pipeline::OptionPairs> request_options(const http::RequestContext& c);

}  // namespace dither
