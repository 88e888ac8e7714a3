// Format names, content types and magic-byte sniffing.
#include <algorithm>
#include <array>
#include <cctype>
#include <string>

#include "imaging/codec.h"

namespace dither::imaging {
namespace {

bool starts_with(std::span<const uint8_t> bytes, std::string_view magic, size_t offset = 0) {
  if (bytes.size() < offset + magic.size()) return false;
  return std::equal(magic.begin(), magic.end(), bytes.begin() + static_cast<ptrdiff_t>(offset),
                    [](char m, uint8_t b) { return static_cast<uint8_t>(m) == b; });
}

}  // namespace

std::string_view to_string(InputFormat format) {
  switch (format) {
    case InputFormat::kJpeg:
      return "jpeg";
    case InputFormat::kPng:
      return "png";
    case InputFormat::kWebp:
      return "webp";
    case InputFormat::kGif:
      return "gif";
    case InputFormat::kTiff:
      return "tiff";
  }
  return "unknown";
}

std::string_view to_string(OutputFormat format) {
  switch (format) {
    case OutputFormat::kPng:
      return "png";
    case OutputFormat::kGif:
      return "gif";
    case OutputFormat::kWebp:
      return "webp";
  }
  return "unknown";
}

std::string_view content_type(InputFormat format) {
  switch (format) {
    case InputFormat::kJpeg:
      return "image/jpeg";
    case InputFormat::kPng:
      return "image/png";
    case InputFormat::kWebp:
      return "image/webp";
    case InputFormat::kGif:
      return "image/gif";
    case InputFormat::kTiff:
      return "image/tiff";
  }
  return "application/octet-stream";
}

std::string_view content_type(OutputFormat format) {
  switch (format) {
    case OutputFormat::kPng:
      return "image/png";
    case OutputFormat::kGif:
      return "image/gif";
    case OutputFormat::kWebp:
      return "image/webp";
  }
  return "application/octet-stream";
}

Result<OutputFormat> parse_output_format(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (OutputFormat f : {OutputFormat::kPng, OutputFormat::kGif, OutputFormat::kWebp}) {
    if (lower == to_string(f)) return f;
  }
  return make_error(ErrorKind::kInvalidArgument,
                    "unknown output format '" + std::string(text) + "'; expected png, gif or webp");
}

std::optional<InputFormat> sniff(std::span<const uint8_t> bytes) {
  using namespace std::string_view_literals;
  if (starts_with(bytes, "\xFF\xD8\xFF"sv)) return InputFormat::kJpeg;
  if (starts_with(bytes, "\x89PNG\r\n\x1A\n"sv)) return InputFormat::kPng;
  if (starts_with(bytes, "GIF87a"sv) || starts_with(bytes, "GIF89a"sv)) return InputFormat::kGif;
  if (starts_with(bytes, "RIFF"sv) && starts_with(bytes, "WEBP"sv, 8)) return InputFormat::kWebp;
  if (starts_with(bytes, "II*\0"sv) || starts_with(bytes, "MM\0*"sv)) return InputFormat::kTiff;
  return std::nullopt;
}

}  // namespace dither::imaging
