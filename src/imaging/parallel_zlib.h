// One zlib stream (what PNG's image data is) compressed by libdeflate in pieces on several threads.
//
// libdeflate compresses a whole buffer at once and always ends its stream: the last block carries
// the final-block bit, and where that block starts is not told. So each piece but the last is
// compressed on its own, then read back block by block (Huffman codes only, nothing copied) to
// find its last block's header and its end; that header's final bit is cleared, and an empty
// stored block after the end brings the next piece to a byte boundary (what zlib's sync flush
// writes). A piece's matches cannot reach into the piece before it, which costs a few bytes a
// piece. Internal to dither_imaging: png_writer.cc uses it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace dither::imaging::internal {

// Pieces of at least this many bytes; smaller inputs are one piece. The pieces depend only on the
// input's size, never on the machine, so the same input always gives the same bytes.
inline constexpr size_t kZlibPiece = size_t{4} << 20;

// Appends to `out` a zlib stream (RFC 1950) of `data` compressed at libdeflate's `level`, its
// pieces on up to `threads` threads (the calling one among them; fewer if no more can be started).
// False if memory could not be had; `out` is then as it was.
bool zlib_compress(std::span<const uint8_t> data, int level, int threads,
                   std::vector<uint8_t>& out);

// Where a raw deflate stream's (RFC 1951) last block starts and where the stream ends, in bits
// from the start of `bytes`; nothing if `bytes` does not hold a whole valid stream.
struct DeflateEnds {
  uint64_t last_block = 0;
  uint64_t end = 0;
};
std::optional<DeflateEnds> deflate_ends(std::span<const uint8_t> bytes);

}  // namespace dither::imaging::internal
