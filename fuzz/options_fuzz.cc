// Dither options from every way they arrive, all ending in pipeline's set_option():
//  - first byte even: the rest is an option query ("algorithm=bayer&bayer_size=4", the
//    AUTO_DITHER_OPTIONS form): parse_option_query() then pipeline::parse_request_options();
//  - first byte odd: the rest is "<query>\n<JSON body>" of POST /images/{uuid}/{channels}: the
//    query parsed as the server does (http::parse_query), the body through dither_api's
//    request_options() (as application/json) then parse_request_options(); the body is also read
//    as stored options JSON (DitherService::options_of).
//
// Invariants: a name in a parsed query is never empty; accepted options always have threads = 0;
// their canonical form (describe(), canonical_json()) is accepted again and describes the same
// options (what a stored dither's options_json relies on); every accepted `channels` is a plain
// integer 2..256 (DitherService::make_record turns it with std::stoi).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_support.h"
#include "http/url_decode.h"
#include "pipeline/process_options.h"
#include "services/dither/dither_api.h"
#include "services/dither/dither_service.h"

namespace {

using namespace dither;

void check_accepted(const pipeline::OptionPairs& pairs) {
  const Result<pipeline::ProcessOptions> options = pipeline::parse_request_options(pairs);
  if (!options) {
    FUZZ_CHECK(options.error().kind == ErrorKind::kInvalidArgument);
    return;
  }
  FUZZ_CHECK(options->dither.threads == 0);
  for (const auto& [name, value] : pairs) {
    if (name != "channels") continue;
    // Decimal digits (leading zeros are allowed: "008" is 8) naming 2..256.
    FUZZ_CHECK(!value.empty());
    int channels = 0;
    for (const char c : value) {
      FUZZ_CHECK(c >= '0' && c <= '9');
      channels = channels * 10 + (c - '0');
      FUZZ_CHECK(channels <= 256);
    }
    FUZZ_CHECK(channels >= 2);
    FUZZ_CHECK(std::stoi(value) == channels);
  }
  const pipeline::OptionPairs canonical = describe(*options);
  const Result<pipeline::ProcessOptions> again = pipeline::parse_request_options(canonical);
  if (!again) {
    std::fprintf(stderr, "canonical options refused: %s\n", again.error().message.c_str());
  }
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(describe(*again) == canonical);
  // What a record stores reads back as the same options (DitherService::options_of).
  const std::string stored = pipeline::canonical_json(*options);
  const Result<pipeline::ProcessOptions> read = pipeline::options_from_json(stored);
  FUZZ_CHECK(read.ok());
  FUZZ_CHECK(pipeline::canonical_json(*read) == stored);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool http_form = (data[0] & 1) != 0;
  std::string_view rest = fuzz::as_text(data + 1, size - 1);

  if (!http_form) {
    const Result<pipeline::OptionPairs> pairs = parse_option_query(rest);
    if (!pairs) return 0;
    for (const auto& [name, value] : *pairs) FUZZ_CHECK(!name.empty());
    check_accepted(*pairs);
    return 0;
  }

  const std::string_view query_text = fuzz::next_field(rest, '\n');
  const std::string_view body = rest;
  Result<http::QueryPairs> query = http::parse_query(query_text);
  if (!query) return 0;
  http::Request request{http::Verb::post, "/images/x/2", 11};
  request.set("Content-Type", "application/json");
  request.body() = std::string(body);
  const http::RequestContext context{request, "/images/x/2", {}, std::move(*query), "fuzz"};
  const Result<pipeline::OptionPairs> pairs = request_options(context);
  if (pairs) {
    // Query parameters first, in order, then the body's members.
    FUZZ_CHECK(pairs->size() >= context.query.size());
    for (size_t i = 0; i < context.query.size(); ++i) FUZZ_CHECK((*pairs)[i] == context.query[i]);
    check_accepted(*pairs);
  } else {
    FUZZ_CHECK(pairs.error().kind == ErrorKind::kInvalidArgument);
  }

  DitherRecord stored;
  stored.options_json = std::string(body);
  const Result<pipeline::ProcessOptions> from_store = DitherService::options_of(stored);
  if (from_store) FUZZ_CHECK(from_store->dither.threads == 0);
  return 0;
}
