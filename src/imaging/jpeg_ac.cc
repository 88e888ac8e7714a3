// AC scans' Huffman decoding for the split progressive decoder (jpeg_ac.h). The coefficients are
// those of libjpeg's jdphuff.c, which follows ITU T.81 G.1.2: a first scan of a band sends each
// block's nonzero coefficients as (zero run, size) symbols and runs of empty blocks (EOBRUN); a
// refinement sends one more bit of every coefficient: for those already nonzero a correction bit
// each, in zigzag order, and for the new ones (which can only be +-1 at the bit) a symbol with
// the run of still-zero coefficients before it, then its sign, then the correction bits of the
// nonzero ones passed over on the way.
#include "imaging/jpeg_ac.h"

#include <jerror.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>

namespace dither::imaging::internal {
namespace {

std::atomic<uint64_t> decoded_scans{0};

// Zigzag position -> position in the block (natural order).
constexpr std::array<uint8_t, 64> kNatural = {
    0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,  12, 19, 26, 33, 40, 48,
    41, 34, 27, 20, 13, 6,  7,  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23,
    30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

// Bits `from`..63 (none for 64).
constexpr uint64_t bits_from(int from) { return from >= 64 ? 0 : ~uint64_t{0} << from; }

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
// none; without a branch on the data (the zero runs of a refinement are unpredictable).
int nth_bit(uint64_t x, int r) {
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
constexpr int extend(int raw, int size) {
  return raw < (1 << (size - 1)) ? raw - (1 << size) + 1 : raw;
}

}  // namespace

uint64_t AcDecoder::scans_decoded() { return decoded_scans.load(std::memory_order_relaxed); }

AcDecoder& AcDecoder::of(j_decompress_ptr cinfo) {
  return *reinterpret_cast<Hook*>(cinfo->entropy)->self;
}

void AcDecoder::install(j_decompress_ptr cinfo, const std::array<uint64_t*, 3>& masks) {
  cinfo_ = cinfo;
  masks_ = masks;
  libjpeg_ = cinfo->entropy;
  hook_.pub.start_pass = start_pass;
  hook_.pub.decode_mcu = decode_by_libjpeg;
  hook_.pub.insufficient_data = FALSE;
  hook_.self = this;
  cinfo->entropy = &hook_.pub;
  begin();  // libjpeg started the first scan when the decompressor started
}

void AcDecoder::start_pass(j_decompress_ptr cinfo) {
  AcDecoder& self = of(cinfo);
  cinfo->entropy = self.libjpeg_;  // its start_pass checks the scan and keeps its own state
  (*self.libjpeg_->start_pass)(cinfo);
  cinfo->entropy = &self.hook_.pub;
  self.begin();
}

boolean AcDecoder::decode_by_libjpeg(j_decompress_ptr cinfo, JBLOCKROW* blocks) {
  AcDecoder& self = of(cinfo);
  cinfo->entropy = self.libjpeg_;
  const boolean done = (*self.libjpeg_->decode_mcu)(cinfo, blocks);
  self.hook_.pub.insufficient_data = self.libjpeg_->insufficient_data;
  cinfo->entropy = &self.hook_.pub;
  return done;
}

void AcDecoder::begin() {
  j_decompress_ptr cinfo = cinfo_;
  hook_.pub.decode_mcu = decode_by_libjpeg;
  hook_.pub.insufficient_data = FALSE;
  if (cinfo->Ss == 0 || cinfo->comps_in_scan != 1) return;  // a DC scan: libjpeg's to read
  const jpeg_component_info& component = *cinfo->cur_comp_info[0];
  const JHUFF_TBL* huffman = cinfo->ac_huff_tbl_ptrs[component.ac_tbl_no];
  failed_ = false;
  bits_.reset(cinfo->src->next_input_byte,
              cinfo->src->next_input_byte + cinfo->src->bytes_in_buffer);
  mask_ = masks_[static_cast<size_t>(component.component_index)];
  band_ = bits_from(cinfo->Ss) & ~bits_from(cinfo->Se + 1);
  block_ = 0;
  blocks_ = static_cast<size_t>(component.width_in_blocks) * component.height_in_blocks;
  eob_run_ = 0;
  restarts_to_go_ = cinfo->restart_interval;
  next_restart_ = 0;
  hook_.pub.decode_mcu = cinfo->Ah == 0 ? decode_first : decode_refine;
  // The canonical code (T.81 C.2), as libjpeg's jpeg_make_d_derived_tbl() makes it (it has
  // already refused a table that does not make one).
  table_.fast.fill(0);
  table_.max_code.fill(-1);
  int code = 0, index = 0;
  for (int length = 1; huffman != nullptr && length <= 16; ++length) {
    const int count = huffman->bits[length];
    if (index + count > 256) break;
    table_.offset[static_cast<size_t>(length)] = index - code;
    for (int i = 0; i < count; ++i, ++code, ++index) {
      const uint8_t symbol = huffman->huffval[index];
      table_.symbols[static_cast<size_t>(index)] = symbol;
      if (length <= Table::kFastBits) {
        const int shift = Table::kFastBits - length;
        for (int low = 0; low < (1 << shift); ++low) {
          table_.fast[static_cast<size_t>((code << shift) | low)] =
              static_cast<uint16_t>((length << 8) | symbol);
        }
      }
    }
    if (count > 0) table_.max_code[static_cast<size_t>(length)] = code - 1;
    code <<= 1;
  }
  table_.max_code[17] = 0x7FFFFFFF;  // ends the search for a code longer than 16 bits
  table_.coefficient.fill(0);
  for (size_t i = 0; i < table_.fast.size(); ++i) {
    const int length = table_.fast[i] >> 8, run = (table_.fast[i] >> 4) & 15;
    const int size = table_.fast[i] & 15;
    // A refinement's new coefficients are +-1: size 1, its sign.
    if (size == 0 || length + size > Table::kFastBits || (cinfo->Ah != 0 && size != 1)) continue;
    const int raw = static_cast<int>(i >> (Table::kFastBits - length - size)) & ((1 << size) - 1);
    table_.coefficient[i] = static_cast<int32_t>(static_cast<uint32_t>(extend(raw, size)) << 16) |
                            (run << 8) | (length + size);
  }
  if (huffman == nullptr || mask_ == nullptr) fail();
}

void AcDecoder::fail() {
  if (!failed_) WARNMS(cinfo_, JWRN_HIT_MARKER);
  failed_ = true;
}

void AcDecoder::Bits::refill() {
  if (count > 56) return;  // full: no whole byte fits
  // Eight bytes without a 0xFF (nearly always) go in at once.
  if (!at_marker && end - pos >= 8) {
    uint64_t word;
    std::memcpy(&word, pos, sizeof word);
    word = __builtin_bswap64(word);
    const uint64_t ff = (~word - 0x0101010101010101) & word & 0x8080808080808080;
    if (ff == 0) {
      const int bytes = (64 - count) >> 3;
      buffer |= (word >> (64 - 8 * bytes)) << (64 - 8 * bytes - count);
      count += 8 * bytes;
      pos += bytes;
      return;
    }
  }
  while (count <= 56) {
    uint64_t byte = 0;
    if (at_marker || pos >= end) {
      padded += 8;
    } else if (*pos != 0xFF) {
      byte = *pos++;
    } else if (end - pos >= 2 && pos[1] == 0x00) {  // a stuffed 0xFF
      byte = 0xFF;
      pos += 2;
    } else {
      at_marker = true;
      padded += 8;
    }
    buffer |= byte << (56 - count);
    count += 8;
  }
}

// The bits' buffer as locals for the length of a block (so they stay in registers), written back
// to `bits` to refill and at the end.
struct AcDecoder::Reader {
  Bits& bits;
  uint64_t buffer;
  int count;

  explicit Reader(Bits& from) : bits(from), buffer(from.buffer), count(from.count) {}
  void save() {
    bits.buffer = buffer;
    bits.count = count;
  }
  // At least `n` (up to 57) bits in the buffer.
  void need(int n) {
    if (count >= n) return;
    save();
    bits.refill();
    buffer = bits.buffer;
    count = bits.count;
  }
  // The next `n` bits (1 to 16), as an unsigned number.
  unsigned take(int n) { return static_cast<unsigned>(take_bits(n)); }
  // The next `n` bits (1 to 57).
  uint64_t take_bits(int n) {
    need(n);
    const uint64_t value = buffer >> (64 - n);
    buffer <<= n;
    count -= n;
    return value;
  }
  // The next Huffman symbol, or -1 for a code that is not in the table.
  int symbol(const Table& table) {
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

bool AcDecoder::restart() {
  // Only the pad bits of the last byte may be left before the marker, which must be the next
  // RSTn in turn.
  bits_.refill();
  const int left = bits_.count - bits_.padded;
  if (left < 0 || left >= 8 || !bits_.at_marker || bits_.end - bits_.pos < 2 ||
      bits_.pos[1] != 0xD0 + next_restart_) {
    return false;
  }
  bits_.reset(bits_.pos + 2, bits_.end);
  next_restart_ = (next_restart_ + 1) & 7;
  eob_run_ = 0;
  restarts_to_go_ = cinfo_->restart_interval;
  return true;
}

bool AcDecoder::next_block() {
  if (failed_) {
    end_block();
    return false;
  }
  if (cinfo_->restart_interval != 0) {
    if (restarts_to_go_ == 0 && !restart()) {
      fail();
      end_block();
      return false;
    }
    --restarts_to_go_;
  }
  return true;
}

void AcDecoder::end_block() {
  if (++block_ != blocks_) return;
  // The scan's last block: only the pad bits of the data's last byte may be left, and libjpeg
  // reads on from the scan's end (the next marker).
  bits_.refill();
  const int left = bits_.count - bits_.padded;
  if (left < 0 || left >= 8 || bits_.at_marker || bits_.pos != bits_.end) fail();
  if (!failed_) decoded_scans.fetch_add(1, std::memory_order_relaxed);
  cinfo_->src->next_input_byte = bits_.end;
  cinfo_->src->bytes_in_buffer = 0;
}

// A first scan of a band (T.81 G.1.2.2): the block's coefficients in Ss..Se, or a run of blocks
// with none.
boolean AcDecoder::decode_first(j_decompress_ptr cinfo, JBLOCKROW* blocks) {
  AcDecoder& self = of(cinfo);
  if (!self.next_block()) return TRUE;
  if (self.eob_run_ > 0) {
    --self.eob_run_;
    self.end_block();
    return TRUE;
  }
  Reader bits(self.bits_);
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
boolean AcDecoder::decode_refine(j_decompress_ptr cinfo, JBLOCKROW* blocks) {
  AcDecoder& self = of(cinfo);
  if (!self.next_block()) return TRUE;
  Reader bits(self.bits_);
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
  auto gather = [&](int n) {  // n: 0 to 63; no branch on it below 33
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
      const int at = run == 0 ? std::countr_zero(zeros) : nth_bit(zeros, run);  // often 0
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
