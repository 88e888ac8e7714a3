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
#include <memory>
#include <optional>
#include <span>
#include <thread>
#include <vector>

namespace dither::imaging::internal {

// Pieces of at least this many bytes; smaller inputs are one piece. The pieces depend only on the
// input's size, never on the machine, so the same input always gives the same bytes. 1 MiB: with
// the data compressed as it comes (ZlibStream), what is left at the end is one small piece; the
// photo's PNG is 0.08 % larger than in 4 MiB pieces.
inline constexpr size_t kZlibPiece = size_t{1} << 20;

// Appends to `out` a zlib stream (RFC 1950) of `data` compressed at libdeflate's `level`, its
// pieces on up to `threads` threads (the calling one among them; fewer if no more can be started).
// False if memory could not be had; `out` is then as it was.
// (`piece`: another piece size, for tests.)
bool zlib_compress(std::span<const uint8_t> data, int level, int threads, std::vector<uint8_t>& out,
                   size_t piece = kZlibPiece);

// zlib_compress() of data made from the front: a thread of the stream's own compresses each
// piece as soon as its bytes are all final (ready()), while the caller makes the rest; finish()
// compresses what is left (on the calling thread too) and appends zlib_compress()'s very bytes.
// Destroyed without finish(), it stops its thread.
//
//   ZlibStream stream(size, level);
//   fill stream.data() from the front, calling stream.ready(bytes_done) as it goes;
//   stream.finish(out, threads);
class ZlibStream {
 public:
  ZlibStream(size_t size, int level, size_t piece_size = kZlibPiece);
  ~ZlibStream();
  ZlibStream(const ZlibStream&) = delete;
  ZlibStream& operator=(const ZlibStream&) = delete;
  std::span<uint8_t> data();                            // `size` bytes
  void ready(size_t bytes);                             // the first `bytes` are final (only grows)
  bool finish(std::vector<uint8_t>& out, int threads);  // false: out of memory, `out` unchanged

 private:
  struct Shared;
  std::unique_ptr<Shared> shared_;
  std::jthread worker_;  // last: joined first
};

// Where a raw deflate stream's (RFC 1951) last block starts and where the stream ends, in bits
// from the start of `bytes`; nothing if `bytes` does not hold a whole valid stream.
struct DeflateEnds {
  uint64_t last_block = 0;
  uint64_t end = 0;
};
std::optional<DeflateEnds> deflate_ends(std::span<const uint8_t> bytes);

}  // namespace dither::imaging::internal
