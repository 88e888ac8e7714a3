// A progressive JPEG decoded on several threads: each scan's Huffman data decoded by its own
// libjpeg decompressor, all of them at the same time into one set of coefficient arrays, each
// scan a few rows of blocks behind the one it refines, and the pixels made by libjpeg from the
// result (its inverse DCT, upsampling and colour conversion, so they are
// exactly those of one decompressor reading the whole file). docs/IMAGING.md explains why and
// what it gains.
//
// Internal to dither_imaging: only decode.cc uses it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "common/result.h"
#include "engine/image.h"

namespace dither::imaging::internal {

// Which bytes of the file each decompressor reads, and which rows of whose each scan waits for.
// The first part reads every DC scan, then makes the pixels; each other part reads some AC scans
// (one each, up to kMaxParts). Every part also reads every marker segment that is not a scan
// (tables, frame header), in the file's order, so each scan is read with the tables it had.
// Scans run at the same time row by row: a scan decodes a row of blocks once the scan before it
// of the same component (`after`) has finished that row. The first part makes the pixels once
// every scan is read.
struct ScanPlan {
  struct Part {
    std::vector<std::span<const uint8_t>> bytes;  // in order; a stream of its own
    std::vector<int> scans;  // the scans its stream holds, in order (indices into `scans`)
  };
  struct Scan {
    uint32_t components = 0;  // bit per component index
    int after = -1;           // the scan (index) this one trails, or -1: none, or in its part
  };
  std::vector<Part> parts;
  // The file's scans in the order they are read: every DC scan first, then the AC scans, each in
  // the file's order.
  std::vector<Scan> scans;
  // Marker segments made for the first part (see first_part() in jpeg_scans.cc); spans in
  // `parts` point into them.
  std::vector<std::vector<uint8_t>> made;
  int width = 0, height = 0;  // the frame header's (never 0: a plan is for a known size)
};

// At most this many decompressors (and threads) for one file; more AC scans than parts share
// parts, in the file's order.
inline constexpr int kMaxParts = 16;

// A plan for `bytes` when at least two threads (`threads`, the cores to use) can run, or nothing
// when splitting cannot help or is not for this file: not a progressive Huffman JPEG, not three
// 8-bit components, a marker this does not know, or one part holding nearly all the data; or
// when libvips would change what libjpeg makes: an ICC profile to apply, an EXIF orientation
// other than 1, or EXIF this does not read cleanly. Reads markers only, without libvips: a
// planned file is decoded without ever loading it (vips_lazy.h).
std::optional<ScanPlan> plan_scans(std::span<const uint8_t> bytes, int threads);

// What decode_scans() did.
enum class ScanOutcome {
  kDecoded,   // `out` holds the image
  kFallBack,  // nothing written: libjpeg warned or failed, or the image is not as planned; let the
              // ordinary decoder read the file (it gives the error, or its own pixels)
  kTimedOut,  // `deadline` passed
  kFailed,    // failed after rows were given out
};

// Decodes `plan` into `out` (width x height x 3, already sized as the file's header says),
// calling on_rows(n) as the top n rows become final. With `shrink` (1, 2, 4 or 8) the pixels are
// libjpeg's scaled inverse DCT's, and `out` is the size divided by it, rounded up: every
// entropy-coded byte is still decoded (verify() uses it so).
ScanOutcome decode_scans(const ScanPlan& plan, engine::Image& out,
                         std::chrono::steady_clock::time_point deadline,
                         const std::function<void(int rows)>& on_rows, int shrink = 1);

// How many decode_scans() calls in this process gave their image (kDecoded): for tests that a
// caller took this path rather than the ordinary decoder, whose pixels are the same.
uint64_t scan_decodes();

// How many pages of coefficients this process has moved into rows of images still to be written
// instead of giving them back (jpeg_scans.cc, PageRecycler): for tests that it happens.
uint64_t pages_recycled();

}  // namespace dither::imaging::internal
