// AC scans' Huffman decoding for the split progressive decoder (jpeg_ac.h). The coefficients are
// those of libjpeg's jdphuff.c, which follows ITU T.81 G.1.2: a first scan of a band sends each
// block's nonzero coefficients as (zero run, size) symbols and runs of empty blocks (EOBRUN); a
// refinement sends one more bit of every coefficient: for those already nonzero a correction bit
// each, in zigzag order, and for the new ones (which can only be +-1 at the bit) a symbol with
// the run of still-zero coefficients before it, then its sign, then the correction bits of the
// nonzero ones passed over on the way.
#include "imaging/jpeg_ac.h"

#include <atomic>

#include "engine/isa.h"
#include "engine/isa_config.h"
#include "imaging/jpeg_ac_scans.h"  // decode_first and decode_refine, for the build's instructions

namespace dither::imaging::internal {
namespace {

std::atomic<uint64_t> decoded_scans{0};

// This unit's instantiation of jpeg_ac_scans.h.
struct BuildCopy {
  static constexpr bool kPdep = false;
};

}  // namespace

uint64_t AcDecoder::scans_decoded() { return decoded_scans.load(std::memory_order_relaxed); }

AcDecoder::Scans AcDecoder::chosen_scans() {
  // The x86-64-v3 copy where the engine's hot loops use theirs (the same switch, so the tests run
  // both with DITHER_TEST_ISA) and pdep is fast: its gain is nth_bit()'s pdep, and where pdep is
  // microcoded the build's copy is faster.
  if (engine::active_isa() == engine::Isa::kX86_64V3 && engine::fast_bit_deposit()) {
    if (const Scans v3 = scans_x86_64_v3(); v3.first != nullptr) return v3;
  }
  return {&decode_first<BuildCopy>, &decode_refine<BuildCopy>};
}

#if !DITHER_ENGINE_X86_64_V3
AcDecoder::Scans AcDecoder::scans_x86_64_v3() { return {nullptr, nullptr}; }
#endif

bool AcDecoder::uses_x86_64_v3() {
  return scans_x86_64_v3().first != nullptr && chosen_scans().first == scans_x86_64_v3().first;
}

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
  const Scans scans = chosen_scans();
  hook_.pub.decode_mcu = cinfo->Ah == 0 ? scans.first : scans.refine;
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

}  // namespace dither::imaging::internal
