// Pieces compressed on several threads and joined into one zlib stream (parallel_zlib.h).
#include "imaging/parallel_zlib.h"

#include <libdeflate.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <system_error>
#include <thread>

namespace dither::imaging::internal {
namespace {

// Deflate's Huffman codes are at most 15 bits: a table indexed by the next 15 bits of the stream
// gives any symbol at once. An entry is symbol << 4 | code length; 0 is no code.
constexpr int kMaxBits = 15;
using Table = std::vector<uint16_t>;

constexpr std::array<uint8_t, 29> kLengthExtra = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                                  2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
constexpr std::array<uint8_t, 30> kDistanceExtra = {0, 0, 0,  0,  1,  1,  2,  2,  3,  3,
                                                    4, 4, 5,  5,  6,  6,  7,  7,  8,  8,
                                                    9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
constexpr std::array<uint8_t, 19> kCodeLengthOrder = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                                      11, 4,  12, 3, 13, 2, 14, 1, 15};

// Bits of the stream, least significant first, as deflate packs them, through a 64-bit buffer
// refilled a word at a time.
class Bits {
 public:
  explicit Bits(std::span<const uint8_t> bytes) : bytes_(bytes) {}
  // The next n (<= 32) bits; past the end they read as zeros (and overrun() tells).
  uint32_t peek(int n) {
    refill();
    return static_cast<uint32_t>(buffer_ & ((uint64_t{1} << n) - 1));
  }
  void skip(int n) {  // n <= the bits the last peek() or symbol() left (at least 17)
    buffer_ >>= n;
    have_ -= n;
  }
  uint32_t take(int n) {
    const uint32_t v = peek(n);
    skip(n);
    return v;
  }
  // The next symbol of `table`, or -1 for none.
  int symbol(const Table& table) {
    refill();
    const uint16_t entry = table[buffer_ & ((1U << kMaxBits) - 1)];
    if (entry == 0) return -1;
    skip(entry & 15);
    return entry >> 4;
  }
  void align() { skip(have_ & 7); }
  void skip_bytes(uint32_t n) {  // when aligned
    next_ = static_cast<size_t>(pos() >> 3) + n;
    buffer_ = 0;
    have_ = 0;
  }
  uint64_t pos() const { return uint64_t{next_} * 8 - static_cast<uint64_t>(have_); }
  bool overrun() const { return pos() > uint64_t{bytes_.size()} * 8; }

 private:
  void refill() {
    if (have_ > 32) return;
    if (next_ + 8 <= bytes_.size()) {
      uint64_t word = 0;
      std::memcpy(&word, bytes_.data() + next_, 8);  // little-endian, as x86 and ARM run
      buffer_ |= word << have_;
      const int whole = (63 - have_) >> 3;
      next_ += static_cast<size_t>(whole);
      have_ += whole * 8;
      return;
    }
    for (; have_ <= 56; have_ += 8, ++next_) {
      buffer_ |= uint64_t{next_ < bytes_.size() ? bytes_[next_] : uint8_t{0}} << have_;
    }
  }

  std::span<const uint8_t> bytes_;
  size_t next_ = 0;      // the next byte to load
  uint64_t buffer_ = 0;  // loaded bits not yet read, the next one lowest
  int have_ = 0;
};

// The canonical Huffman code of `lengths` as a table; false if the lengths over-subscribe it.
// Incomplete codes are allowed (deflate allows one distance code); their gaps stay 0.
bool build(std::span<const uint8_t> lengths, Table& table) {
  std::array<int, kMaxBits + 1> count{};
  for (uint8_t l : lengths) ++count[l];
  count[0] = 0;
  int left = 1;
  for (int l = 1; l <= kMaxBits; ++l) {
    left = (left << 1) - count[static_cast<size_t>(l)];
    if (left < 0) return false;
  }
  std::array<uint32_t, kMaxBits + 2> next{};
  uint32_t code = 0;
  for (int l = 1; l <= kMaxBits; ++l) {
    code = (code + static_cast<uint32_t>(count[static_cast<size_t>(l) - 1])) << 1;
    next[static_cast<size_t>(l)] = code;
  }
  table.assign(size_t{1} << kMaxBits, 0);
  for (size_t symbol = 0; symbol < lengths.size(); ++symbol) {
    const int l = lengths[symbol];
    if (l == 0) continue;
    const uint32_t c = next[static_cast<size_t>(l)]++;
    uint32_t reversed = 0;  // codes are sent most significant bit first
    for (int b = 0; b < l; ++b) reversed |= ((c >> b) & 1U) << (l - 1 - b);
    const auto entry = static_cast<uint16_t>(symbol << 4 | static_cast<size_t>(l));
    for (size_t k = reversed; k < table.size(); k += size_t{1} << l) table[k] = entry;
  }
  return true;
}

// A dynamic block's two codes, from its header.
bool read_codes(Bits& bits, Table& literals, Table& distances) {
  const int hlit = static_cast<int>(bits.take(5)) + 257;
  const int hdist = static_cast<int>(bits.take(5)) + 1;
  const int hclen = static_cast<int>(bits.take(4)) + 4;
  if (hlit > 286 || hdist > 30) return false;
  std::array<uint8_t, 19> code_lengths{};
  for (int i = 0; i < hclen; ++i) {
    code_lengths[kCodeLengthOrder[static_cast<size_t>(i)]] = static_cast<uint8_t>(bits.take(3));
  }
  Table lengths_code;
  if (!build(code_lengths, lengths_code)) return false;
  std::array<uint8_t, 286 + 30> lengths{};
  const int total = hlit + hdist;
  for (int i = 0; i < total;) {
    const int symbol = bits.symbol(lengths_code);
    if (symbol < 0 || bits.overrun()) return false;
    if (symbol < 16) {
      lengths[static_cast<size_t>(i++)] = static_cast<uint8_t>(symbol);
      continue;
    }
    uint8_t value = 0;
    int repeat = 0;
    if (symbol == 16) {
      if (i == 0) return false;
      value = lengths[static_cast<size_t>(i) - 1];
      repeat = 3 + static_cast<int>(bits.take(2));
    } else if (symbol == 17) {
      repeat = 3 + static_cast<int>(bits.take(3));
    } else {
      repeat = 11 + static_cast<int>(bits.take(7));
    }
    if (i + repeat > total) return false;
    std::fill_n(lengths.begin() + i, repeat, value);
    i += repeat;
  }
  if (lengths[256] == 0) return false;  // no end-of-block code
  const std::span<const uint8_t> all(lengths.data(), static_cast<size_t>(total));
  return build(all.first(static_cast<size_t>(hlit)), literals) &&
         build(all.subspan(static_cast<size_t>(hlit)), distances);
}

// Walks one Huffman-coded block's symbols to its end-of-block code.
bool skip_symbols(Bits& bits, const Table& literals, const Table& distances) {
  while (true) {
    const int symbol = bits.symbol(literals);
    if (symbol < 0 || bits.overrun()) return false;
    if (symbol < 256) continue;
    if (symbol == 256) return true;
    if (symbol > 285) return false;
    bits.skip(kLengthExtra[static_cast<size_t>(symbol) - 257]);
    const int distance = bits.symbol(distances);
    if (distance < 0 || distance > 29) return false;
    bits.skip(kDistanceExtra[static_cast<size_t>(distance)]);
  }
}

const std::pair<Table, Table>& fixed_codes() {
  static const std::pair<Table, Table> codes = [] {
    std::array<uint8_t, 288> literal{};
    std::fill(literal.begin(), literal.begin() + 144, 8);
    std::fill(literal.begin() + 144, literal.begin() + 256, 9);
    std::fill(literal.begin() + 256, literal.begin() + 280, 7);
    std::fill(literal.begin() + 280, literal.end(), 8);
    std::array<uint8_t, 32> distance{};
    distance.fill(5);
    std::pair<Table, Table> built;
    build(literal, built.first);
    build(distance, built.second);
    return built;
  }();
  return codes;
}

struct CompressorFree {
  void operator()(libdeflate_compressor* c) const { libdeflate_free_compressor(c); }
};

struct Piece {
  std::span<const uint8_t> in;
  std::vector<uint8_t> bytes;  // its raw deflate stream
  std::optional<DeflateEnds> ends;
  bool ok = false;
};

// Compresses one piece, and finds its ends unless it is the last.
void compress_piece(Piece& piece, libdeflate_compressor* compressor, bool last) {
  if (compressor == nullptr) return;  // not ok: the caller gives up
  try {
    piece.bytes.resize(libdeflate_deflate_compress_bound(compressor, piece.in.size()));
  } catch (const std::bad_alloc&) {
    return;
  }
  const size_t size = libdeflate_deflate_compress(compressor, piece.in.data(), piece.in.size(),
                                                  piece.bytes.data(), piece.bytes.size());
  piece.bytes.resize(size);
  if (!last) piece.ends = deflate_ends(piece.bytes);
  piece.ok = size > 0 && (last || piece.ends.has_value());
}

// Compresses the pieces handed out by `next`.
void compress_pieces(std::vector<Piece>& pieces, std::atomic<size_t>& next, int level) {
  std::unique_ptr<libdeflate_compressor, CompressorFree> compressor(
      libdeflate_alloc_compressor(level));
  for (size_t i = next++; i < pieces.size(); i = next++) {
    compress_piece(pieces[i], compressor.get(), i + 1 == pieces.size());
  }
}

// `data` cut into pieces of at least `piece` bytes (one if it is smaller), by its size alone.
std::vector<Piece> cut(std::span<const uint8_t> data, size_t piece) {
  const size_t count = std::max<size_t>(1, data.size() / piece);
  std::vector<Piece> pieces(count);
  for (size_t i = 0; i < count; ++i) {
    const size_t begin = data.size() * i / count, end = data.size() * (i + 1) / count;
    pieces[i].in = data.subspan(begin, end - begin);
  }
  return pieces;
}

// Compresses the pieces not yet handed out on up to `threads` threads (the calling one among
// them, and `busy` already at work elsewhere).
void compress_rest(std::vector<Piece>& pieces, std::atomic<size_t>& next, int level, int threads,
                   int busy) {
  std::vector<std::jthread> helpers;
  for (int t = 1 + busy; t < std::min(threads, static_cast<int>(pieces.size())); ++t) {
    try {
      helpers.emplace_back([&pieces, &next, level] { compress_pieces(pieces, next, level); });
    } catch (const std::system_error&) {
      break;  // fewer threads: this one takes what is left
    }
  }
  compress_pieces(pieces, next, level);
}  // joined

// One piece: libdeflate's own zlib stream, straight into `out`.
bool zlib_compress_whole(std::span<const uint8_t> data, int level, std::vector<uint8_t>& out) {
  std::unique_ptr<libdeflate_compressor, CompressorFree> compressor(
      libdeflate_alloc_compressor(level));
  if (!compressor) return false;
  const size_t start = out.size();
  try {
    out.resize(start + libdeflate_zlib_compress_bound(compressor.get(), data.size()));
  } catch (const std::bad_alloc&) {
    return false;
  }
  const size_t size = libdeflate_zlib_compress(compressor.get(), data.data(), data.size(),
                                               out.data() + start, out.size() - start);
  out.resize(start + size);
  return size > 0;
}

void put_be32(std::vector<uint8_t>& out, uint32_t v) {
  out.insert(out.end(), {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
                         static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)});
}

}  // namespace

std::optional<DeflateEnds> deflate_ends(std::span<const uint8_t> bytes) {
  Bits bits(bytes);
  Table literals, distances;
  while (true) {
    const uint64_t header = bits.pos();
    const bool final = bits.take(1) != 0;
    const uint32_t type = bits.take(2);
    if (type == 0) {  // stored: byte-aligned length, its complement, the bytes
      bits.align();
      const uint32_t length = bits.take(16);
      if (bits.take(16) != (~length & 0xFFFF)) return std::nullopt;
      bits.skip_bytes(length);
    } else if (type == 1) {
      const auto& [fixed_literals, fixed_distances] = fixed_codes();
      if (!skip_symbols(bits, fixed_literals, fixed_distances)) return std::nullopt;
    } else if (type == 2) {
      if (!read_codes(bits, literals, distances) || !skip_symbols(bits, literals, distances)) {
        return std::nullopt;
      }
    } else {
      return std::nullopt;
    }
    if (bits.overrun()) return std::nullopt;
    if (final) return DeflateEnds{header, bits.pos()};
  }
}

namespace {

// The zlib stream of `data` from its compressed pieces, appended to `out`.
bool join(std::vector<Piece>& pieces, std::span<const uint8_t> data, int level,
          std::vector<uint8_t>& out) {
  const size_t start = out.size();
  size_t total = 2 + 4;
  for (const Piece& piece : pieces) {
    if (!piece.ok) return false;
    total += piece.bytes.size() + 6;
  }
  try {
    out.reserve(start + total);
  } catch (const std::bad_alloc&) {
    return false;
  }
  // zlib's header: deflate with a 32 KiB window, the level class libdeflate itself writes, and
  // the check bits that make the pair a multiple of 31.
  constexpr unsigned kCmf = 0x78;
  const unsigned level_class = level < 2 ? 0 : level < 6 ? 1 : level == 6 ? 2 : 3;
  unsigned flg = level_class << 6;
  flg += 31 - (kCmf * 256 + flg) % 31;
  out.push_back(static_cast<uint8_t>(kCmf));
  out.push_back(static_cast<uint8_t>(flg));
  for (size_t i = 0; i < pieces.size(); ++i) {
    std::vector<uint8_t>& bytes = pieces[i].bytes;
    if (i + 1 == pieces.size()) {
      out.insert(out.end(), bytes.begin(), bytes.end());
      break;
    }
    const DeflateEnds ends = *pieces[i].ends;
    bytes[ends.last_block >> 3] &= static_cast<uint8_t>(~(1U << (ends.last_block & 7)));
    const size_t whole = (ends.end + 7) / 8;
    out.insert(out.end(), bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(whole));
    if ((ends.end & 7) != 0) out.back() &= static_cast<uint8_t>((1U << (ends.end & 7)) - 1);
    // An empty stored block, not final: three zero bits, zeros to the byte's end, then its
    // length 0 and that length's complement.
    const size_t through = (ends.end + 3 + 7) / 8;
    out.insert(out.end(), through - whole, 0);
    out.insert(out.end(), {0x00, 0x00, 0xFF, 0xFF});
  }
  put_be32(out, static_cast<uint32_t>(libdeflate_adler32(1, data.data(), data.size())));
  return true;
}

}  // namespace

bool zlib_compress(std::span<const uint8_t> data, int level, int threads, std::vector<uint8_t>& out,
                   size_t piece) {
  std::vector<Piece> pieces = cut(data, piece);
  if (pieces.size() == 1) return zlib_compress_whole(data, level, out);
  std::atomic<size_t> next{0};
  compress_rest(pieces, next, level, threads, 0);
  return join(pieces, data, level, out);
}

struct ZlibStream::Shared {
  // Not zeroed: its pages are only touched as the caller fills them (a stream is made while the
  // decoder still holds its memory).
  std::unique_ptr<uint8_t[]> bytes;
  std::span<uint8_t> data;
  std::vector<Piece> pieces;
  std::atomic<size_t> next{0};   // the next piece to hand out
  std::atomic<size_t> ready{0};  // bytes final
  std::atomic<bool> stop{false};
  int level = 0;
};

ZlibStream::ZlibStream(size_t size, int level, size_t piece_size)
    : shared_(std::make_unique<Shared>()) {
  Shared& s = *shared_;
  s.bytes.reset(new uint8_t[size]);  // NOLINT(cppcoreguidelines-owning-memory): left uninitialised
  s.data = {s.bytes.get(), size};
  s.pieces = cut(s.data, piece_size);
  s.level = level;
  if (s.pieces.size() < 2) return;
  try {
    // Takes the pieces in order, each once its bytes are all final.
    worker_ = std::jthread([&s] {
      std::unique_ptr<libdeflate_compressor, CompressorFree> compressor;  // once there is work
      for (size_t i = s.next++; i < s.pieces.size(); i = s.next++) {
        Piece& piece = s.pieces[i];
        const size_t end = static_cast<size_t>(piece.in.data() - s.data.data()) + piece.in.size();
        while (true) {
          if (s.stop.load()) return;
          const size_t now = s.ready.load();
          if (now >= end) break;
          s.ready.wait(now);
        }
        if (!compressor) compressor.reset(libdeflate_alloc_compressor(s.level));
        compress_piece(piece, compressor.get(), i + 1 == s.pieces.size());
      }
    });
  } catch (const std::system_error&) {
    // No thread: finish() compresses every piece.
  }
}

ZlibStream::~ZlibStream() {
  if (!worker_.joinable()) return;
  shared_->stop = true;
  shared_->ready.store(SIZE_MAX);  // a change, so that a waiter wakes (and sees stop)
  shared_->ready.notify_all();
}  // worker_ joined

std::span<uint8_t> ZlibStream::data() { return shared_->data; }

void ZlibStream::ready(size_t bytes) {
  Shared& s = *shared_;
  if (bytes <= s.ready.load()) return;
  s.ready.store(std::min(bytes, s.data.size()));
  s.ready.notify_all();
}

bool ZlibStream::finish(std::vector<uint8_t>& out, int threads) {
  Shared& s = *shared_;
  if (s.pieces.size() == 1) return zlib_compress_whole(s.data, s.level, out);
  ready(s.data.size());
  compress_rest(s.pieces, s.next, s.level, threads, worker_.joinable() ? 1 : 0);
  if (worker_.joinable()) worker_.join();
  return join(s.pieces, s.data, s.level, out);
}

}  // namespace dither::imaging::internal
