#include "services/common/caller.h"

#include "http/errors.h"

namespace dither {

std::optional<Caller> caller_of(const http::RequestContext& c) {
  const std::string_view owner = c.header(kOwnerHeader);
  if (owner.empty()) return std::nullopt;
  Caller caller;
  caller.owner = std::string(owner);
  caller.admin = c.header(kAdminHeader) == "1";
  return caller;
}

http::Response no_caller_response() {
  return http::error_response(401, "unauthorized", "this request names no caller");
}

std::string LinkPolicy::sign(std::string_view url) const {
  if (signer == nullptr || url.empty()) return std::string(url);
  return signer->sign(url, answer_expiry(now_seconds(), ttl_seconds));
}

}  // namespace dither
