// The pieces joined into one zlib stream (parallel_zlib.h), read back by libdeflate and by zlib,
// and the block walker against streams whose ends libdeflate knows.
#include "imaging/parallel_zlib.h"

#include <gtest/gtest.h>
#include <libdeflate.h>
#include <zlib.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

namespace dither::imaging::internal {
namespace {

using Bytes = std::vector<uint8_t>;

enum class Kind { kNoise, kDither, kZeros, kText };

// Inputs deflate treats differently: incompressible (stored blocks), a 4-bit dither's packed
// indices (short matches, dynamic codes), runs (long matches), words (literals and matches).
Bytes input(Kind kind, size_t size, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  Bytes b(size);
  switch (kind) {
    case Kind::kNoise:
      for (auto& v : b) v = static_cast<uint8_t>(rng());
      break;
    case Kind::kDither:
      for (auto& v : b) v = static_cast<uint8_t>(((rng() % 3 == 0) ? 0x70 : 0x07) ^ (rng() & 0x11));
      break;
    case Kind::kZeros:
      break;
    case Kind::kText: {
      const std::string words[] = {"dither ", "error ", "diffusion ", "palette ", "row\n"};
      for (size_t i = 0; i < size;) {
        for (char c : words[rng() % 5]) {
          if (i < size) b[i++] = static_cast<uint8_t>(c);
        }
      }
      break;
    }
  }
  return b;
}

struct Free {
  void operator()(libdeflate_compressor* c) const { libdeflate_free_compressor(c); }
  void operator()(libdeflate_decompressor* d) const { libdeflate_free_decompressor(d); }
};

Bytes raw_deflate(const Bytes& data, int level) {
  std::unique_ptr<libdeflate_compressor, Free> c(libdeflate_alloc_compressor(level));
  Bytes out(libdeflate_deflate_compress_bound(c.get(), data.size()));
  out.resize(
      libdeflate_deflate_compress(c.get(), data.data(), data.size(), out.data(), out.size()));
  return out;
}

// What libdeflate and zlib each read from `stream`; both must read all of it.
void expect_inflates_to(const Bytes& stream, const Bytes& data, const std::string& what) {
  std::unique_ptr<libdeflate_decompressor, Free> d(libdeflate_alloc_decompressor());
  Bytes back(data.size() + 1);
  size_t in = 0, n = 0;
  ASSERT_EQ(libdeflate_zlib_decompress_ex(d.get(), stream.data(), stream.size(), back.data(),
                                          back.size(), &in, &n),
            LIBDEFLATE_SUCCESS)
      << what;
  EXPECT_EQ(in, stream.size()) << what;
  back.resize(n);
  EXPECT_TRUE(back == data) << what;
  Bytes by_zlib(data.size() + 1);
  uLongf length = by_zlib.size();
  ASSERT_EQ(uncompress(by_zlib.data(), &length, stream.data(), stream.size()), Z_OK) << what;
  by_zlib.resize(length);
  EXPECT_TRUE(by_zlib == data) << what;
}

TEST(ParallelZlib, FindsTheLastBlockAndTheEndOfLibdeflateStreams) {
  for (Kind kind : {Kind::kNoise, Kind::kDither, Kind::kZeros, Kind::kText}) {
    for (size_t size : {size_t{0}, size_t{1}, size_t{300}, size_t{70000}, size_t{1} << 20}) {
      for (int level = 0; level <= 12; level += (size > 100000 ? 3 : 1)) {
        const std::string what = "kind " + std::to_string(static_cast<int>(kind)) + " size " +
                                 std::to_string(size) + " level " + std::to_string(level);
        const Bytes stream = raw_deflate(input(kind, size), level);
        const std::optional<DeflateEnds> ends = deflate_ends(stream);
        ASSERT_TRUE(ends.has_value()) << what;
        // libdeflate's stream is its bits up to the end, padded to a byte.
        EXPECT_EQ((ends->end + 7) / 8, stream.size()) << what;
        EXPECT_LT(ends->last_block, ends->end) << what;
        EXPECT_NE(stream[ends->last_block >> 3] & (1U << (ends->last_block & 7)), 0U) << what;
      }
    }
  }
}

TEST(ParallelZlib, RefusesWhatIsNotAWholeStream) {
  const Bytes stream = raw_deflate(input(Kind::kText, 100000), 6);
  EXPECT_FALSE(deflate_ends(Bytes(stream.begin(), stream.begin() + stream.size() / 2)));
  EXPECT_FALSE(deflate_ends(Bytes{}));
  EXPECT_FALSE(deflate_ends(Bytes{0x07}));                    // block type 3
  EXPECT_FALSE(deflate_ends(Bytes{0x01, 0x05, 0x00, 0x00}));  // stored, bad complement
  // Random bytes and damaged streams: an answer or none, never a read out of bounds (ASan).
  std::mt19937 rng(3);
  for (int i = 0; i < 2000; ++i) {
    Bytes b = i % 2 == 0 ? input(Kind::kNoise, 1 + rng() % 64, static_cast<uint32_t>(i)) : stream;
    if (i % 2 == 1) {
      for (int k = 0; k < 4; ++k) b[rng() % b.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
      b.resize(1 + rng() % b.size());
    }
    const std::optional<DeflateEnds> ends = deflate_ends(b);
    if (ends) {
      EXPECT_LE(ends->end, b.size() * 8);
    }
  }
}

TEST(ParallelZlib, PiecesJoinIntoOneStreamThatZlibReads) {
  const size_t sizes[] = {0, 1, 5000, kZlibPiece - 1, kZlibPiece * 2 + 123};
  for (Kind kind : {Kind::kNoise, Kind::kDither, Kind::kZeros, Kind::kText}) {
    for (size_t size : sizes) {
      const Bytes data = input(kind, size, static_cast<uint32_t>(size));
      for (int level : kind == Kind::kDither ? std::vector<int>{0, 1, 3, 6} : std::vector<int>{3}) {
        const std::string what = "kind " + std::to_string(static_cast<int>(kind)) + " size " +
                                 std::to_string(size) + " level " + std::to_string(level);
        Bytes one = {0xAA};  // appended to, not replaced
        ASSERT_TRUE(zlib_compress(data, level, 1, one)) << what;
        ASSERT_EQ(one[0], 0xAA);
        one.erase(one.begin());
        expect_inflates_to(one, data, what);
        // The same bytes on any number of threads.
        for (int threads : {2, 5}) {
          Bytes many;
          ASSERT_TRUE(zlib_compress(data, level, threads, many)) << what;
          EXPECT_TRUE(many == one) << what << " threads " << threads;
        }
      }
    }
  }
}

TEST(ParallelZlib, ThreePiecesOnTwoThreads) {
  const Bytes data = input(Kind::kDither, kZlibPiece * 3 + 7);
  Bytes one, two;
  ASSERT_TRUE(zlib_compress(data, 3, 1, one));
  ASSERT_TRUE(zlib_compress(data, 3, 2, two));
  EXPECT_TRUE(one == two);
  expect_inflates_to(two, data, "three pieces");
}

TEST(ParallelZlib, OnePieceIsLibdeflatesOwnStream) {
  const Bytes data = input(Kind::kDither, kZlibPiece / 2);
  for (int level : {1, 3, 6, 9}) {
    std::unique_ptr<libdeflate_compressor, Free> c(libdeflate_alloc_compressor(level));
    Bytes own(libdeflate_zlib_compress_bound(c.get(), data.size()));
    own.resize(libdeflate_zlib_compress(c.get(), data.data(), data.size(), own.data(), own.size()));
    Bytes ours;
    ASSERT_TRUE(zlib_compress(data, level, 2, ours));
    EXPECT_TRUE(ours == own) << "level " << level;
  }
}

TEST(ParallelZlib, PiecesCostFewBytes) {
  const Bytes data = input(Kind::kDither, kZlibPiece * 4);
  Bytes pieces;
  ASSERT_TRUE(zlib_compress(data, 3, 2, pieces));
  std::unique_ptr<libdeflate_compressor, Free> c(libdeflate_alloc_compressor(3));
  Bytes whole(libdeflate_zlib_compress_bound(c.get(), data.size()));
  whole.resize(
      libdeflate_zlib_compress(c.get(), data.data(), data.size(), whole.data(), whole.size()));
  EXPECT_LT(pieces.size(), whole.size() + whole.size() / 500);  // within 0.2 %
}

// A stream filled from the front in uneven steps gives zlib_compress()'s bytes, whether its own
// thread compressed a piece early or finish() did all of them; one piece too.
TEST(ZlibStream, GivesZlibCompressBytes) {
  constexpr size_t kPiece = 64 << 10;  // small pieces: many, with little data
  for (const size_t size : {size_t{5000}, kPiece * 7 + 321}) {
    const Bytes data = input(Kind::kDither, size, 3);
    Bytes expected = {0xAA};
    ASSERT_TRUE(zlib_compress(data, 3, 2, expected, kPiece));
    for (const size_t step : {size_t{1000}, kPiece + 7, size}) {
      ZlibStream stream(size, 3, kPiece);
      ASSERT_EQ(stream.data().size(), size);
      for (size_t done = 0; done < size;) {
        const size_t next = std::min(size, done + step);
        std::copy(data.begin() + static_cast<ptrdiff_t>(done),
                  data.begin() + static_cast<ptrdiff_t>(next), stream.data().begin() + done);
        stream.ready(next);
        done = next;
      }
      Bytes got = {0xAA};  // appended to
      ASSERT_TRUE(stream.finish(got, 2));
      EXPECT_TRUE(got == expected) << "size " << size << " step " << step;
    }
  }
}

// Dropped half filled, its thread (waiting for a piece, or compressing one) stops.
TEST(ZlibStream, StopsWhenDroppedUnfinished) {
  constexpr size_t kPiece = 64 << 10;
  const Bytes data = input(Kind::kNoise, kPiece * 4, 5);
  for (const size_t filled : {size_t{0}, kPiece * 2 + 5}) {
    ZlibStream stream(data.size(), 6, kPiece);
    std::copy(data.begin(), data.begin() + static_cast<ptrdiff_t>(filled), stream.data().begin());
    stream.ready(filled);
  }  // joined, or the test hangs
  SUCCEED();
}

}  // namespace
}  // namespace dither::imaging::internal
