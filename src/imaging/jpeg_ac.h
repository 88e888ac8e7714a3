// The Huffman decoding of a progressive JPEG's AC scans, for the parts of a split decode
// (jpeg_scans.h) that read only AC scans: libjpeg reads the markers and runs the scan; this
// decodes its blocks in libjpeg's place. Same coefficients as libjpeg's own decoder (its
// jdphuff.c), faster where libjpeg is slowest: a successive-approximation refinement appends one
// correction bit to every coefficient an earlier scan made nonzero, and libjpeg finds those by
// testing all 63 positions of every block. Here each block has a 64-bit mask of its nonzero AC
// coefficients, kept by every AC scan of its component, so a refinement goes straight to them.
//
// Anything unusual in the data (a code that is not in the table, bits read past the data, bytes
// before a restart marker or after the scan, a restart marker out of turn, a coefficient placed
// outside its band) gives libjpeg a warning, which makes the split decode hand the file to the
// ordinary decoder: so the pixels are libjpeg's whenever this decoder and libjpeg's could differ.
//
// The per-block decoding exists twice, for the build's instruction set and for x86-64-v3 (with
// BMI2's pdep), chosen per scan on engine/isa.h's switch: jpeg_ac_scans.h.
//
// Internal to dither_imaging: only jpeg_scans.cc uses it.
#pragma once

// clang-format off
#include <cstdio>  // jpeglib.h needs FILE and size_t first
#include <jpeglib.h>
#include <jpegint.h>  // struct jpeg_entropy_decoder
// clang-format on

#include <array>
#include <cstdint>

namespace dither::imaging::internal {

// One decompressor's AC decoding. Install it once the decompressor has started (after
// jpeg_start_decompress() in buffered-image mode); it then decodes every AC scan that
// decompressor reads, from the scan it stands at. It must outlive the decompressor's reading.
class AcDecoder {
 public:
  // masks[c]: one word per block of component c, width_in_blocks x height_in_blocks in raster
  // order, zero before the component's first AC scan, shared by every decompressor that reads
  // that component's AC scans (each scan only touches a row after the scan before it is done
  // with it, as it does the coefficients).
  void install(j_decompress_ptr cinfo, const std::array<uint64_t*, 3>& masks);

  // How many AC scans this process has decoded here: for tests that the path was taken.
  static uint64_t scans_decoded();
  // Whether a scan starting now would be decoded by the x86-64-v3 copy: for tests.
  static bool uses_x86_64_v3();

 private:
  struct Hook {
    jpeg_entropy_decoder pub;  // first: libjpeg sees this as the decompressor's entropy decoder
    AcDecoder* self;
  };
  struct Table {
    // Codes of up to kFastBits bits: (length << 8) | symbol, or 0 for a longer code.
    static constexpr int kFastBits = 10;
    std::array<uint16_t, 1 << kFastBits> fast{};
    std::array<int32_t, 18> max_code{};  // per length: the largest code, -1 for none
    std::array<int32_t, 17> offset{};    // per length: symbol index minus code
    std::array<uint8_t, 256> symbols{};
    // Where a coefficient's code and its value's bits together take up to kFastBits bits,
    // (value << 16) | (run << 8) | bits; otherwise 0 (and in a refinement, for any size but 1).
    std::array<int32_t, 1 << kFastBits> coefficient{};
  };
  // The entropy-coded data, MSB first. Past its end, or a marker, zero bits are read, counted in
  // `padded`: consuming them is an error, found when the scan or restart interval ends.
  struct Bits {
    const uint8_t* pos = nullptr;
    const uint8_t* end = nullptr;
    uint64_t buffer = 0;  // the next `count` bits at the top, zeros below
    int count = 0;
    int padded = 0;
    bool at_marker = false;  // `pos` is at a marker's 0xFF

    void refill();
    void reset(const uint8_t* from, const uint8_t* to) { *this = Bits{from, to}; }
  };
  // The blocks' decoding: jpeg_ac_scans.h, compiled twice (the build's instruction set in
  // jpeg_ac.cc, x86-64-v3 in jpeg_ac_v3.cc), each unit instantiating these with a `Copy` type of
  // its own.
  template <class Copy>
  struct Reader;  // a block's reading, with the buffer in registers
  template <class Copy>
  static boolean decode_first(j_decompress_ptr cinfo, JBLOCKROW* blocks);
  template <class Copy>
  static boolean decode_refine(j_decompress_ptr cinfo, JBLOCKROW* blocks);
  struct Scans {
    boolean (*first)(j_decompress_ptr, JBLOCKROW*);
    boolean (*refine)(j_decompress_ptr, JBLOCKROW*);
  };
  // The copy a scan starting now uses: x86-64-v3 where engine::active_isa() says so and pdep
  // is fast (engine::fast_bit_deposit()), else the build's.
  static Scans chosen_scans();
  // jpeg_ac_v3.cc's copy; both null in a build without it.
  static Scans scans_x86_64_v3();

  static void start_pass(j_decompress_ptr cinfo);
  static boolean decode_by_libjpeg(j_decompress_ptr cinfo, JBLOCKROW* blocks);
  static AcDecoder& of(j_decompress_ptr cinfo);

  void begin();       // the scan libjpeg has just started
  bool restart();     // at a restart marker: past it, or false
  void fail();        // warns once; the rest of the scan is skipped
  bool next_block();  // restarts; false to skip the block
  void end_block();   // counts it; at the scan's last, checks and gives back the data

  j_decompress_ptr cinfo_ = nullptr;
  jpeg_entropy_decoder* libjpeg_ = nullptr;  // its own, for start_pass and any other scan
  Hook hook_{};
  std::array<uint64_t*, 3> masks_{};
  Table table_;
  Bits bits_;
  uint64_t* mask_ = nullptr;  // the scan's component's
  uint64_t band_ = 0;         // bits Ss..Se
  size_t block_ = 0, blocks_ = 0;
  unsigned eob_run_ = 0;
  unsigned restarts_to_go_ = 0;
  int next_restart_ = 0;
  bool failed_ = false;
};

}  // namespace dither::imaging::internal
