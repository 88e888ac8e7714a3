// The AC scans' decoding of jpeg_ac.h: the two functions libjpeg calls per block (decode_first and
// decode_refine) and what they use. Two units include it: jpeg_ac.cc, for the build's instruction
// set, and jpeg_ac_v3.cc, for x86-64-v3 (engine/isa.h) with DITHER_AC_TARGET, GCC's target
// attribute, on every function here; each instantiates the member templates with a `Copy` of its
// own (a type in an anonymous namespace), so everything here has internal linkage and neither
// unit's code can stand in for the other's. The x86-64-v3 copy differs in its instructions only
// (BMI2's variable shifts and pdep, three-operand VEX forms), never in what it decodes: the tests
// run both. Include it nowhere else.
//
// A Copy has `static constexpr bool kPdep`: whether nth_bit() may use pdep.
#pragma once

#include <jerror.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

#include "imaging/jpeg_ac.h"

#if defined(__x86_64__)
#include <immintrin.h>  // _pdep_u64 (for the x86-64-v3 copy only)
#endif

#ifndef DITHER_AC_TARGET
#define DITHER_AC_TARGET
#endif

namespace dither::imaging::internal {

// Definitions in a header on purpose: these have internal linkage, and each of the two units gets
// its own copy. (The AcDecoder member templates below are instantiated only with each unit's own
// Copy type, so every instantiation is a distinct symbol of internal linkage too.)
// NOLINTBEGIN(misc-definitions-in-headers)
namespace {

// Zigzag position -> position in the block (natural order).
constexpr std::array<uint8_t, 64> kNatural = {
    0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,  12, 19, 26, 33, 40, 48,
    41, 34, 27, 20, 13, 6,  7,  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23,
    30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

// Bits `from`..63 (none for 64).
DITHER_AC_TARGET constexpr uint64_t bits_from(int from) {
  return from >= 64 ? 0 : ~uint64_t{0} << from;
}

// kSelect[r][byte]: the position of the byte's set bit that has r set bits below it (8: none).
constexpr auto kSelect = [] {
  std::array<std::array<uint8_t, 256>, 8> select{};
  for (int r = 0; r < 8; ++r) {
    for (int byte = 0; byte < 256; ++byte) {
      int seen = 0, at = 8;
      for (int bit = 0; bit < 8 && at == 8; ++bit) {
        if ((byte >> bit & 1) != 0 && seen++ == r) at = bit;
      }
      select[static_cast<size_t>(r)][static_cast<size_t>(byte)] = static_cast<uint8_t>(at);
    }
  }
  return select;
}();

// The position of the set bit of `x` with `r` (0 to 15) set bits below it, or 64 if there is
// none; without a branch on the data (the zero runs of a refinement are unpredictable). With
// kPdep (the x86-64-v3 copy, on a CPU where BMI2's pdep is fast: engine::fast_bit_deposit()),
// pdep moves bit r of a one-bit mask to that position in three cycles; otherwise bytes' set bits
// are counted by SWAR and a table finds the bit within its byte.
template <bool kPdep>
DITHER_AC_TARGET int nth_bit(uint64_t x, int r) {
#if defined(__x86_64__)
  if constexpr (kPdep) return std::countr_zero(_pdep_u64(uint64_t{1} << r, x));
#endif
  constexpr uint64_t kOnes = 0x0101010101010101, kHigh = 0x8080808080808080;
  uint64_t count = x - ((x >> 1) & 0x5555555555555555);  // set bits per byte, by SWAR
  count = (count & 0x3333333333333333) + ((count >> 2) & 0x3333333333333333);
  count = (count + (count >> 4)) & 0x0F0F0F0F0F0F0F0F;
  const uint64_t through = count * kOnes;  // byte i: the set bits of bytes 0..i (at most 64)
  // The bytes whose running count exceeds r; the first of them holds the bit.
  const uint64_t past = ((through | kHigh) - kOnes * static_cast<uint64_t>(r + 1)) & kHigh;
  if (past == 0) return 64;
  const int byte = std::countr_zero(past) >> 3;
  const int below = static_cast<int>(((through << 8) >> (8 * byte)) & 0xFF);
  return 8 * byte + kSelect[static_cast<size_t>(r - below)][(x >> (8 * byte)) & 0xFF];
}

// T.81 F.12: a value's `size` bits, the low half of the sizes' range negative.
DITHER_AC_TARGET constexpr int extend(int raw, int size) {
  return raw < (1 << (size - 1)) ? raw - (1 << size) + 1 : raw;
}

}  // namespace
// NOLINTEND(misc-definitions-in-headers)

// The bits' buffer as locals for the length of a block (so they stay in registers), written back
// to `bits` to refill and at the end.
template <class Copy>
struct AcDecoder::Reader {
  Bits& bits;
  uint64_t buffer;
  int count;

  DITHER_AC_TARGET explicit Reader(Bits& from)
      : bits(from), buffer(from.buffer), count(from.count) {}
  DITHER_AC_TARGET void save() {
    bits.buffer = buffer;
    bits.count = count;
  }
  // At least `n` (up to 57) bits in the buffer.
  DITHER_AC_TARGET void need(int n) {
    if (count >= n) return;
    save();
    bits.refill();
    buffer = bits.buffer;
    count = bits.count;
  }
  // The next `n` bits (1 to 16), as an unsigned number.
  DITHER_AC_TARGET unsigned take(int n) { return static_cast<unsigned>(take_bits(n)); }
  // The next `n` bits (1 to 57).
  DITHER_AC_TARGET uint64_t take_bits(int n) {
    need(n);
    const uint64_t value = buffer >> (64 - n);
    buffer <<= n;
    count -= n;
    return value;
  }
  // The next Huffman symbol, or -1 for a code that is not in the table.
  DITHER_AC_TARGET int symbol(const Table& table) {
    need(16);
    const uint16_t entry = table.fast[buffer >> (64 - Table::kFastBits)];
    if (entry != 0) {
      const int length = entry >> 8;
      buffer <<= length;
      count -= length;
      return entry & 0xFF;
    }
    int length = Table::kFastBits + 1;
    while (static_cast<int32_t>(buffer >> (64 - length)) >
           table.max_code[static_cast<size_t>(length)]) {
      ++length;
    }
    if (length > 16) return -1;
    const auto code = static_cast<int32_t>(buffer >> (64 - length));
    buffer <<= length;
    count -= length;
    return table.symbols[static_cast<size_t>(code + table.offset[static_cast<size_t>(length)])];
  }
};

// A first scan of a band (T.81 G.1.2.2): the block's coefficients in Ss..Se, or a run of blocks
// with none.
template <class Copy>
DITHER_AC_TARGET boolean AcDecoder::decode_first(j_decompress_ptr cinfo, JBLOCKROW* blocks) {
  AcDecoder& self = of(cinfo);
  if (!self.next_block()) return TRUE;
  if (self.eob_run_ > 0) {
    --self.eob_run_;
    self.end_block();
    return TRUE;
  }
  Reader<Copy> bits(self.bits_);
  JCOEF* block = blocks[0][0];
  uint64_t mask = self.mask_[self.block_];
  const int se = cinfo->Se, al = cinfo->Al;
  for (int k = cinfo->Ss; k <= se; ++k) {
    bits.need(16);
    const int32_t both = self.table_.coefficient[bits.buffer >> (64 - Table::kFastBits)];
    if (both != 0) {  // a short code with a short value: one look-up (most of them)
      bits.buffer <<= both & 0xFF;
      bits.count -= both & 0xFF;
      k += (both >> 8) & 0xFF;
      if (k > se) {
        self.fail();
        break;
      }
      const auto coefficient = static_cast<JCOEF>(static_cast<unsigned>(both >> 16) << al);
      block[kNatural[static_cast<size_t>(k)]] = coefficient;
      mask |= static_cast<uint64_t>(coefficient != 0) << k;
      continue;
    }
    const int symbol = bits.symbol(self.table_);
    if (symbol < 0) {
      self.fail();
      break;
    }
    const int run = symbol >> 4, size = symbol & 15;
    if (size != 0) {
      k += run;
      if (k > se) {  // libjpeg would write outside the band
        self.fail();
        break;
      }
      const int value = extend(static_cast<int>(bits.take(size)), size);
      const auto coefficient = static_cast<JCOEF>(static_cast<unsigned>(value) << al);
      block[kNatural[static_cast<size_t>(k)]] = coefficient;
      mask |= static_cast<uint64_t>(coefficient != 0) << k;
    } else if (run == 15) {
      k += 15;  // sixteen zeros
    } else {
      const unsigned eob_run = (1U << run) + (run != 0 ? bits.take(run) : 0U);
      self.eob_run_ = eob_run - 1;  // this block is the first of the run
      break;
    }
  }
  bits.save();
  self.mask_[self.block_] = mask;
  self.end_block();
  return TRUE;
}

// A refinement (T.81 G.1.2.3): a correction bit for each coefficient in Ss..Se already nonzero
// (1: its magnitude gains the bit), and the new ones.
template <class Copy>
DITHER_AC_TARGET boolean AcDecoder::decode_refine(j_decompress_ptr cinfo, JBLOCKROW* blocks) {
  AcDecoder& self = of(cinfo);
  if (!self.next_block()) return TRUE;
  Reader<Copy> bits(self.bits_);
  JCOEF* block = blocks[0][0];
  uint64_t mask = self.mask_[self.block_];
  const int se = cinfo->Se;
  const int p1 = 1 << cinfo->Al;
  // Every coefficient nonzero before this scan gets one correction bit, in zigzag order, spread
  // between the symbols of the new ones: they are gathered here, the symbols read without
  // stopping at each, and the bits applied at the end.
  const uint64_t history = mask & self.band_;
  uint64_t corrections = 0;  // the bits read so far, the last lowest
  int gathered = 0;
  auto gather = [&](int n) DITHER_AC_TARGET {  // n: 0 to 63; no branch on it below 33
    if (n > 32) {
      corrections = (corrections << 32) | bits.take_bits(32);
      gathered += 32;
      n -= 32;
    }
    bits.need(n);
    corrections = (corrections << n) | ((bits.buffer >> 1) >> (63 - n));
    bits.buffer <<= n;
    bits.count -= n;
    gathered += n;
  };
  int k = cinfo->Ss;
  if (self.eob_run_ == 0) {
    while (k <= se) {
      int run = 0, value = 0;
      bits.need(16);
      const int32_t both = self.table_.coefficient[bits.buffer >> (64 - Table::kFastBits)];
      if (both != 0) {  // a new coefficient's code and sign in one look-up (most of them)
        bits.buffer <<= both & 0xFF;
        bits.count -= both & 0xFF;
        run = (both >> 8) & 0xFF;
        value = (both >> 16) * p1;
      } else {
        const int symbol = bits.symbol(self.table_);
        if (symbol < 0) {
          self.fail();
          break;
        }
        run = symbol >> 4;
        const int size = symbol & 15;
        if (size != 0) {
          if (size != 1) {  // a new coefficient is +-1 at the bit (libjpeg warns too)
            self.fail();
            break;
          }
          value = bits.take(1) != 0 ? p1 : -p1;
        } else if (run != 15) {
          self.eob_run_ = (1U << run) + (run != 0 ? bits.take(run) : 0U);
          break;
        }
      }
      // Past the nonzero coefficients and `run` zero ones, to the next zero: where the new
      // coefficient goes, or the last of a ZRL's sixteen.
      const uint64_t zeros = ~mask & self.band_ & bits_from(k);
      const int at =
          run == 0 ? std::countr_zero(zeros) : nth_bit<Copy::kPdep>(zeros, run);  // often 0
      gather(std::popcount(history & bits_from(k) & ~bits_from(at)));
      if (at == 64) {                 // the band ends first
        if (value != 0) self.fail();  // libjpeg would write outside the band
        k = se + 1;
        break;
      }
      if (value != 0) {
        block[kNatural[static_cast<size_t>(at)]] = static_cast<JCOEF>(value);
        mask |= uint64_t{1} << at;
      }
      k = at + 1;
    }
  }
  if (self.eob_run_ > 0) {
    gather(std::popcount(history & bits_from(k)));
    --self.eob_run_;
  }
  bits.save();
  // A correction bit 1 moves its coefficient away from zero by the bit. libjpeg also checks that
  // the bit is not set yet: it never is here, as the scans are in order (plan_scans() checks):
  // every earlier scan of the coefficient stopped at a higher bit, so its value is a multiple of
  // twice the bit. (A scan cut short has failed: whatever it left goes unused.)
  uint64_t grow = gathered == 0 ? 0 : corrections << (64 - gathered);
  for (uint64_t which = history; which != 0; which &= which - 1) {
    JCOEF& c = block[kNatural[static_cast<size_t>(std::countr_zero(which))]];
    const int value = c;
    const int sign = value >> 31;  // 0 or -1
    c = static_cast<JCOEF>(value + (((p1 ^ sign) - sign) & -static_cast<int>(grow >> 63)));
    grow <<= 1;
  }
  self.mask_[self.block_] = mask;
  self.end_block();
  return TRUE;
}

}  // namespace dither::imaging::internal
