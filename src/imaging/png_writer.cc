// PNG output, into memory: the container written here, the image data compressed by libdeflate.
//
// libdeflate compresses a whole buffer at once, several times faster than zlib for the same size
// or smaller (docs/BENCHMARKS.md, "PNG compression": the level below is chosen from that table).
// PNG needs one zlib stream for all IDAT data, so the filtered rows are gathered first, then
// compressed into the output, inside one IDAT chunk: a large image in pieces on several threads
// joined into that one stream (parallel_zlib.h).
#include <libdeflate.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "imaging/parallel_zlib.h"
#include "imaging/writers.h"

namespace dither::imaging::internal {
namespace {

// Measured on the 17.9 MP photo's dithers (docs/BENCHMARKS.md, the tables under "Command line,
// whole process"), against zlib's level 6 (what libpng used before): level 6 is smaller for both
// kinds of image (error diffusion 97.5 %, 5.6x faster; Bayer 98.7 %, 3.5x faster); on error
// diffusion level 3 is 98.6 % in 62 % of level 6's time, but on Bayer levels below 6 are larger
// than zlib's (level 4: 102.5 %); levels above 6 cost 2-10x the time.
constexpr int kPatternedLevel = 6;
constexpr int kNoisyLevel = 3;

constexpr std::array<uint8_t, 8> kSignature = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
constexpr uint8_t kColorPalette = 3;
constexpr uint8_t kColorRgb = 2;
constexpr uint8_t kColorRgba = 6;

void put32(std::vector<uint8_t>& out, uint32_t v) {
  const uint8_t bytes[4] = {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
                            static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
  out.insert(out.end(), bytes, bytes + 4);
}

void set32(uint8_t* at, uint32_t v) {
  at[0] = static_cast<uint8_t>(v >> 24);
  at[1] = static_cast<uint8_t>(v >> 16);
  at[2] = static_cast<uint8_t>(v >> 8);
  at[3] = static_cast<uint8_t>(v);
}

// A chunk: length, type, data, CRC-32 of type and data.
void put_chunk(std::vector<uint8_t>& out, const char (&type)[5], const uint8_t* data,
               size_t length) {
  put32(out, static_cast<uint32_t>(length));
  const size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  if (length > 0) out.insert(out.end(), data, data + length);
  put32(out, libdeflate_crc32(0, out.data() + start, 4 + length));
}

// (Not inlined: GCC 12, inlining it where `out` is new, warns wrongly that it writes past the end.)
[[gnu::noinline]] void put_header(std::vector<uint8_t>& out, int width, int height,
                                  uint8_t bit_depth, uint8_t color_type) {
  out.insert(out.end(), kSignature.begin(), kSignature.end());
  std::array<uint8_t, 13> ihdr{};
  set32(ihdr.data(), static_cast<uint32_t>(width));
  set32(ihdr.data() + 4, static_cast<uint32_t>(height));
  ihdr[8] = bit_depth;
  ihdr[9] = color_type;  // compression, filter and interlace methods: 0
  put_chunk(out, "IHDR", ihdr.data(), ihdr.size());
}

// Compresses `filtered` (every row with its filter byte) as the image data, on as many threads as
// there are cores for a large image, then IEND.
// The IDAT chunk (`compress` appends the zlib stream) and IEND after what `out` holds.
template <typename Compress>
Result<std::vector<uint8_t>> finish(std::vector<uint8_t> out, const Compress& compress) {
  const size_t start = out.size();
  out.insert(out.end(), {0, 0, 0, 0, 'I', 'D', 'A', 'T'});
  const int threads = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  if (!compress(out, threads)) {
    return make_error(ErrorKind::kInternal, "cannot write the PNG: out of memory");
  }
  const size_t size = out.size() - start - 8;
  if (size > INT32_MAX) {
    return make_error(ErrorKind::kInternal, "cannot write the PNG: the image data is too large");
  }
  set32(out.data() + start, static_cast<uint32_t>(size));
  put32(out, libdeflate_crc32(0, out.data() + start + 4, 4 + size));
  put_chunk(out, "IEND", nullptr, 0);
  return out;
}

Result<std::vector<uint8_t>> finish(std::vector<uint8_t> out, const std::vector<uint8_t>& filtered,
                                    int level) {
  return finish(std::move(out), [&filtered, level](std::vector<uint8_t>& o, int threads) {
    return zlib_compress(filtered, level, threads, o);
  });
}

// Packs one row of indices (one byte each) MSB-first, kBits (1, 2 or 4) bits per index.
template <int kBits>
void pack_row(const uint8_t* indices, int width, uint8_t* out) {
  constexpr int kPerByte = 8 / kBits;
  const int whole = width / kPerByte;
  for (int i = 0; i < whole; ++i, indices += kPerByte) {
    unsigned byte = 0;
    for (int k = 0; k < kPerByte; ++k) byte = (byte << kBits) | indices[k];
    out[i] = static_cast<uint8_t>(byte);
  }
  const int rest = width - whole * kPerByte;
  if (rest > 0) {
    unsigned byte = 0;
    for (int k = 0; k < kPerByte; ++k) byte = (byte << kBits) | (k < rest ? indices[k] : 0u);
    out[whole] = static_cast<uint8_t>(byte);
  }
}

void pack_row(const uint8_t* indices, int width, int bit_depth, uint8_t* out) {
  switch (bit_depth) {
    case 1:
      return pack_row<1>(indices, width, out);
    case 2:
      return pack_row<2>(indices, width, out);
    case 4:
      return pack_row<4>(indices, width, out);
    default:
      std::memcpy(out, indices, static_cast<size_t>(width));
  }
}

int bit_depth_for(size_t colors) {
  if (colors <= 2) return 1;
  if (colors <= 4) return 2;
  if (colors <= 16) return 4;
  return 8;
}

// The five PNG filters of one row (`bpp` bytes per pixel; `prior` is the row above, zeros for the
// first); the one whose output has the smallest sum of absolute values (as signed bytes) is kept,
// the heuristic the PNG specification suggests and libpng uses. Writes the filter byte and the
// filtered row to `out`.
void filter_row(const uint8_t* row, const uint8_t* prior, size_t length, size_t bpp, uint8_t* out,
                std::array<std::vector<uint8_t>, 5>& scratch) {
  auto paeth = [](int a, int b, int c) {
    const int p = a + b - c;
    const int pa = std::abs(p - a);
    const int pb = std::abs(p - b);
    const int pc = std::abs(p - c);
    if (pa <= pb && pa <= pc) return a;
    return pb <= pc ? b : c;
  };
  for (size_t i = 0; i < length; ++i) {
    const int a = i >= bpp ? row[i - bpp] : 0;
    const int b = prior[i];
    const int c = i >= bpp ? prior[i - bpp] : 0;
    const int x = row[i];
    scratch[0][i] = static_cast<uint8_t>(x);
    scratch[1][i] = static_cast<uint8_t>(x - a);
    scratch[2][i] = static_cast<uint8_t>(x - b);
    scratch[3][i] = static_cast<uint8_t>(x - ((a + b) >> 1));
    scratch[4][i] = static_cast<uint8_t>(x - paeth(a, b, c));
  }
  size_t best = 0;
  uint64_t best_sum = UINT64_MAX;
  for (size_t f = 0; f < scratch.size(); ++f) {
    uint64_t sum = 0;
    for (size_t i = 0; i < length; ++i) {
      const unsigned byte = scratch[f][i];  // as a signed byte, its absolute value:
      sum += byte < 128 ? byte : 256 - byte;
    }
    if (sum < best_sum) {
      best_sum = sum;
      best = f;
    }
  }
  out[0] = static_cast<uint8_t>(best);
  std::memcpy(out + 1, scratch[best].data(), length);
}

}  // namespace

int png_deflate_level(PngEffort effort) {
  return effort == PngEffort::kNoisy ? kNoisyLevel : kPatternedLevel;
}

namespace {

// The signature, IHDR, PLTE and (when an entry is translucent) tRNS of an indexed PNG.
std::vector<uint8_t> indexed_header(int width, int height, const std::vector<Rgba>& palette) {
  std::vector<uint8_t> out;
  put_header(out, width, height, static_cast<uint8_t>(bit_depth_for(palette.size())),
             kColorPalette);
  std::vector<uint8_t> plte, trns;
  for (const Rgba& c : palette) {
    plte.insert(plte.end(), {c.r, c.g, c.b});
    trns.push_back(c.a);
  }
  // Translucent entries come first, so tRNS ends at the last one.
  while (!trns.empty() && trns.back() == 255) trns.pop_back();
  put_chunk(out, "PLTE", plte.data(), plte.size());
  if (!trns.empty()) put_chunk(out, "tRNS", trns.data(), trns.size());
  return out;
}

}  // namespace

int png_bit_depth(size_t colours) { return bit_depth_for(colours); }

size_t png_row_bytes(int width, int bit_depth) {
  return (static_cast<size_t>(width) * static_cast<size_t>(bit_depth) + 7) / 8 + 1;
}

void pack_png_rows(const uint8_t* indices, int width, int bit_depth, int first, int end,
                   uint8_t* data) {
  const size_t row_bytes = png_row_bytes(width, bit_depth);
  for (int y = first; y < end; ++y) {
    uint8_t* row = data + static_cast<size_t>(y) * row_bytes;
    // Filters predict smooth images; on packed palette indices they only cost time: none.
    row[0] = 0;
    pack_row(indices + static_cast<size_t>(y) * static_cast<size_t>(width), width, bit_depth,
             row + 1);
  }
}

Result<std::vector<uint8_t>> write_png_indexed(int width, int height, const IndexedImage& ix,
                                               int level) {
  const int bit_depth = bit_depth_for(ix.palette.size());
  std::vector<uint8_t> filtered(png_row_bytes(width, bit_depth) * static_cast<size_t>(height));
  pack_png_rows(ix.indices.data(), width, bit_depth, 0, height, filtered.data());
  return finish(indexed_header(width, height, ix.palette), filtered, level);
}

Result<std::vector<uint8_t>> write_png_indexed(int width, int height,
                                               const std::vector<Rgba>& palette, ZlibStream& data) {
  return finish(indexed_header(width, height, palette),
                [&data](std::vector<uint8_t>& o, int threads) { return data.finish(o, threads); });
}

Result<std::vector<uint8_t>> write_png_truecolor(const engine::Image& img, int level) {
  std::vector<uint8_t> out;
  put_header(out, img.width, img.height, 8, img.has_alpha() ? kColorRgba : kColorRgb);
  const size_t length = img.stride();
  const size_t bpp = static_cast<size_t>(img.channels);
  std::vector<uint8_t> filtered((length + 1) * static_cast<size_t>(img.height));
  std::array<std::vector<uint8_t>, 5> scratch;
  for (auto& s : scratch) s.resize(length);
  const std::vector<uint8_t> zeros(length, 0);
  for (int y = 0; y < img.height; ++y) {
    filter_row(img.row(y), y > 0 ? img.row(y - 1) : zeros.data(), length, bpp,
               filtered.data() + static_cast<size_t>(y) * (length + 1), scratch);
  }
  return finish(std::move(out), filtered, level);
}

}  // namespace dither::imaging::internal
