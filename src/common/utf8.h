// UTF-8 clean-up for text that came from a client and goes back out (JSON error messages, file
// names): well-formed sequences are kept, anything else becomes U+FFFD, so what we write is
// always valid UTF-8 (and so valid JSON once escaped).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace dither {

std::string to_valid_utf8(std::string_view text);

// Characters as JSON Schema's maxLength counts them: code points (the bytes of `text` that do
// not continue a UTF-8 sequence).
size_t code_points(std::string_view text);

}  // namespace dither
