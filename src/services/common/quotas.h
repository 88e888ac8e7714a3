// Quotas per owner and the bound of the dither queue (docs/SECURITY.md "Limits"), and how a
// request they refuse is answered.
//
// The upload service checks an owner's images and stored bytes (and, when its uploads are
// dithered automatically, the queue's bound) before it decodes anything; the dithering service
// checks the queue's bound, the owner's pending dithers and the image's dithers before it creates
// one. Admins are exempt from the quotas, not from the queue's bound. The counts are read before
// the write, so requests racing each other may pass a limit by a few: a quota is a bound on what
// one owner may cost, not an exact count.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "http/errors.h"
#include "http/router.h"

namespace dither {

// Each limit: 0 means none.
struct Quotas {
  int64_t images = 1000;                 // QUOTA_IMAGES: images one owner stores
  int64_t bytes = int64_t{1} << 30;      // QUOTA_BYTES: bytes of originals one owner stores
  int64_t pending_dithers = 20;          // QUOTA_PENDING_DITHERS: one owner's PENDING dithers
  int64_t dithers_per_image = 100;       // QUOTA_DITHERS_PER_IMAGE: dithers kept of one image
  int64_t max_pending_dithers = 10'000;  // MAX_PENDING_DITHERS: PENDING dithers of everyone
  int64_t presets = 100;                 // QUOTA_PRESETS: presets one owner saves
};

// A request a quota or the queue's bound refused: what the API answers.
struct Refusal {
  unsigned status = 403;
  std::string code;             // "quota_exceeded", "too_many_pending", "queue_full"
  std::string message;          // names the limit and the usage
  int retry_after_seconds = 0;  // 0: no Retry-After

  // 403: the owner must delete something first; waiting does not help.
  static Refusal quota_exceeded(std::string message) {
    return {403, "quota_exceeded", std::move(message), 0};
  }
  // 429: the owner's own dithers must be made first.
  static Refusal too_many_pending(std::string message) {
    return {429, "too_many_pending", std::move(message), 5};
  }
  // 503: everyone's dithers must be made first.
  static Refusal queue_full(std::string message) {
    return {503, "queue_full", std::move(message), 10};
  }

  // What a service method returns along with filling in its Refusal (for callers that do not
  // ask for it): kUnavailable when waiting helps, kInvalidArgument otherwise.
  Error error() const {
    return make_error(
        retry_after_seconds > 0 ? ErrorKind::kUnavailable : ErrorKind::kInvalidArgument, message);
  }
};

inline http::Response refusal_response(const Refusal& refusal) {
  http::Response r = http::error_response(refusal.status, refusal.code, refusal.message);
  if (refusal.retry_after_seconds > 0) {
    r.headers.emplace_back("Retry-After", std::to_string(refusal.retry_after_seconds));
  }
  return r;
}

// The answer to a failed call that may have filled `refusal`: the refusal when it did (its code
// is set), the error's otherwise.
inline http::Response refused_or_error_response(const Error& error, const Refusal& refusal) {
  return refusal.code.empty() ? http::error_response(error) : refusal_response(refusal);
}

}  // namespace dither
