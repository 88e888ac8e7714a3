#include "common/utf8.h"

namespace dither {

size_t code_points(std::string_view text) {
  size_t n = 0;
  for (const char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

std::string to_valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const auto u = static_cast<unsigned char>(text[i]);
    if (u < 0x80) {
      out.push_back(text[i++]);
      continue;
    }
    const size_t length = u >= 0xF0 && u <= 0xF4   ? 4
                          : u >= 0xE0 && u <= 0xEF ? 3
                          : u >= 0xC2 && u <= 0xDF ? 2
                                                   : 0;
    bool valid = length != 0 && i + length <= text.size();
    for (size_t k = 1; valid && k < length; ++k) {
      valid = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    }
    if (valid && length >= 3) {
      const auto b1 = static_cast<unsigned char>(text[i + 1]);
      valid = !(u == 0xE0 && b1 < 0xA0) && !(u == 0xED && b1 >= 0xA0) &&  // overlong, surrogate
              !(u == 0xF0 && b1 < 0x90) && !(u == 0xF4 && b1 >= 0x90);    // overlong, > U+10FFFF
    }
    if (valid) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      out.append("\xEF\xBF\xBD");
      ++i;
    }
  }
  return out;
}

}  // namespace dither
