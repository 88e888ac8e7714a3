// Progressive JPEG on several threads (jpeg_scans.h). Why it works: a progressive file sends each
// coefficient's bits in scans, and a scan only ever refines the coefficients that earlier scans of
// the same component and frequency band started, block by block. So each scan can be decoded by
// its own decompressor, given a stream holding the file's tables and only that scan, writing into
// one shared set of coefficient arrays, as long as it stays behind the scan before it of its
// component: the Huffman data, most of the decoding time and strictly serial within a scan, is
// then decoded by as many threads as there are scans, pipelined row by row.
#include "imaging/jpeg_scans.h"

// clang-format off
#include <cstdio>  // jpeglib.h needs FILE and size_t first
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <csetjmp>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <string_view>
#include <system_error>
#include <thread>

#include "imaging/jpeg_ac.h"  // with jpegint.h (no include guard): the coefficient arrays

namespace dither::imaging::internal {
namespace {

constexpr uint8_t kSoi = 0xD8, kEoi = 0xD9, kSos = 0xDA, kSofProgressive = 0xC2;
constexpr int kMaxComponents = 3;
// Splitting pays when the decompressors' loads are not too lopsided; beyond this share of the data
// in one of them the second thread would save too little to be worth its memory.
constexpr double kMaxLargestShare = 0.9;

struct Scan {
  size_t begin = 0, end = 0;  // the SOS segment and its entropy-coded data
  uint32_t components = 0;    // bit per component index
  int ss = 0, se = 0;         // spectral band
  int ah = 0, al = 0;         // successive approximation: bit position before and after
  uint32_t dc_tables = 0;     // bit t: a component of this scan reads DC Huffman table t
};

struct Segment {
  size_t begin = 0, end = 0;
  int scan = -1;  // index into the scans, or -1 for a marker segment that every stream carries
};

struct Layout {
  std::vector<Segment> segments;  // after SOI, before EOI
  std::vector<Scan> scans;
  size_t eoi = 0;
  int width = 0, height = 0;  // from the frame header
};

constexpr uint8_t kDht = 0xC4, kDqt = 0xDB, kDri = 0xDD;
constexpr int kTableSlots = 4;

// What a DC scan is read with besides its own bytes: the DC Huffman tables and the restart
// interval in force where it stands.
struct DcState {
  std::array<std::span<const uint8_t>, kTableSlots> tables;  // a table's bytes, from its class
  std::span<const uint8_t> restart;                          // the DRI segment; empty: none
};

bool same(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  return a.data() == b.data() && a.size() == b.size();
}

// `state` after the marker segment [at, end) (a DHT segment may hold several tables; one that
// does not parse is left for libjpeg to refuse).
void update(DcState& state, std::span<const uint8_t> b, size_t at, size_t end) {
  const uint8_t marker = b[at + 1];
  if (marker == kDri) state.restart = b.subspan(at, end - at);
  if (marker != kDht) return;
  for (size_t t = at + 4; t + 17 <= end;) {
    size_t symbols = 0;
    for (size_t i = 1; i <= 16; ++i) symbols += b[t + i];
    const size_t next = t + 17 + symbols;
    if (next > end) return;
    if ((b[t] >> 4) == 0 && (b[t] & 0x0F) < kTableSlots) {
      state.tables[b[t] & 0x0F] = b.subspan(t, next - t);
    }
    t = next;
  }
}

int read16(std::span<const uint8_t> b, size_t at) { return (b[at] << 8) | b[at + 1]; }

// Where the entropy-coded data starting at `from` ends: the first marker that is not a restart
// (0xFF followed by a byte other than 0x00 and RST0-7; 0xFF 0xFF is fill before a marker).
size_t end_of_data(std::span<const uint8_t> b, size_t from) {
  size_t at = from;
  while (at + 1 < b.size()) {
    const void* ff = std::memchr(b.data() + at, 0xFF, b.size() - 1 - at);
    if (ff == nullptr) return b.size();
    at = static_cast<size_t>(static_cast<const uint8_t*>(ff) - b.data());
    const uint8_t next = b[at + 1];
    if (next != 0x00 && (next < 0xD0 || next > 0xD7)) return at;
    at += 2;
  }
  return b.size();
}

// The frame's component ids, in order, from its SOF segment; false if it is not 8-bit 3-component.
bool read_frame(std::span<const uint8_t> b, size_t at, size_t end, std::vector<int>& ids) {
  if (end - at < 8 + 3 * kMaxComponents || b[at + 4] != 8 || b[at + 9] != kMaxComponents) {
    return false;
  }
  for (int c = 0; c < kMaxComponents; ++c) ids.push_back(b[at + 10 + 3 * c]);
  return true;
}

bool read_scan(std::span<const uint8_t> b, size_t at, size_t end, const std::vector<int>& ids,
               Scan& scan) {
  const size_t count = at + 4 < end ? b[at + 4] : 0;
  if (count == 0 || count > ids.size() || end - at != 4 + 1 + 2 * count + 3) return false;
  for (size_t i = 0; i < count; ++i) {
    const auto id = std::find(ids.begin(), ids.end(), b[at + 5 + 2 * i]);
    const int dc_table = b[at + 6 + 2 * i] >> 4;
    if (id == ids.end() || dc_table >= kTableSlots) return false;
    scan.components |= 1U << (id - ids.begin());
    scan.dc_tables |= 1U << dc_table;
  }
  scan.ss = b[at + 5 + 2 * count];
  scan.se = b[at + 6 + 2 * count];
  scan.ah = b[at + 7 + 2 * count] >> 4;
  scan.al = b[at + 7 + 2 * count] & 0x0F;
  // The first scan of a DC band may interleave components; AC scans hold one (libjpeg checks
  // the rest when it decodes).
  return scan.ss <= scan.se && scan.se <= 63 && (scan.ss == 0 ? scan.se == 0 : count == 1);
}

// The file's marker segments and scans, or nothing for a file this does not split.
std::optional<Layout> read_layout(std::span<const uint8_t> b) {
  if (b.size() < 4 || b[0] != 0xFF || b[1] != kSoi) return std::nullopt;
  Layout layout;
  std::vector<int> ids;
  size_t at = 2;
  while (true) {
    while (at + 1 < b.size() && b[at] == 0xFF && b[at + 1] == 0xFF) ++at;  // fill bytes
    if (at + 1 >= b.size() || b[at] != 0xFF) return std::nullopt;
    const uint8_t marker = b[at + 1];
    if (marker == kEoi) {
      layout.eoi = at;
      break;
    }
    // Standalone markers have no length; none belongs here (RSTn only inside scans).
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8) || at + 4 > b.size()) {
      return std::nullopt;
    }
    const size_t end = at + 2 + static_cast<size_t>(read16(b, at + 2));
    if (end > b.size() || read16(b, at + 2) < 2) return std::nullopt;
    const bool frame =
        marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (frame) {
      // One progressive Huffman frame only: baseline files have one scan, and arithmetic or
      // lossless ones are rare and left to the ordinary decoder.
      if (marker != kSofProgressive || !ids.empty() || !read_frame(b, at, end, ids)) {
        return std::nullopt;
      }
      layout.height = read16(b, at + 5);
      layout.width = read16(b, at + 7);
    } else if (marker == 0xDC) {
      return std::nullopt;  // DNL: the height comes after the first scan
    }
    if (marker != kSos) {
      // A component's quantisation table is the one in force at its first scan; first_part()
      // moves DC scans forward, so none may change after the first scan (encoders never do).
      if (!layout.scans.empty() && marker == kDqt) return std::nullopt;
      layout.segments.push_back({at, end, -1});
      at = end;
      continue;
    }
    Scan scan{at, 0};
    if (ids.empty() || !read_scan(b, at, end, ids, scan)) return std::nullopt;
    scan.end = end_of_data(b, end);
    layout.segments.push_back({at, scan.end, static_cast<int>(layout.scans.size())});
    layout.scans.push_back(scan);
    at = scan.end;
  }
  if (layout.scans.size() < 2) return std::nullopt;
  return layout;
}

// The Orientation of the first IFD of an APP1 segment's data (after its length) that starts
// "Exif", which is where libvips reads it (1 when there is none), or 0 when the data does not read
// cleanly as "Exif\0\0" and a TIFF header and IFD with at most one Orientation, a SHORT.
int exif_orientation(std::span<const uint8_t> data) {
  constexpr size_t kPrefix = 6, kTiffHeader = 8, kEntry = 12;
  constexpr int kOrientation = 0x0112, kShort = 3;
  if (data.size() < kPrefix + kTiffHeader || std::memcmp(data.data(), "Exif\0\0", kPrefix) != 0) {
    return 0;
  }
  const std::span<const uint8_t> tiff = data.subspan(kPrefix);
  const bool little = tiff[0] == 'I' && tiff[1] == 'I';
  if (!little && !(tiff[0] == 'M' && tiff[1] == 'M')) return 0;
  const auto u16 = [&tiff, little](size_t at) {
    return little ? tiff[at] | (tiff[at + 1] << 8) : (tiff[at] << 8) | tiff[at + 1];
  };
  const auto u32 = [&u16, little](size_t at) {
    const auto low = static_cast<uint32_t>(u16(little ? at : at + 2));
    const auto high = static_cast<uint32_t>(u16(little ? at + 2 : at));
    return (high << 16) | low;
  };
  if (u16(2) != 42) return 0;
  const size_t ifd = u32(4);
  if (ifd < kTiffHeader || ifd > tiff.size() - 2) return 0;
  const size_t entries = static_cast<size_t>(u16(ifd));
  if (entries > (tiff.size() - ifd - 2) / kEntry) return 0;
  int orientation = -1;
  for (size_t i = 0; i < entries; ++i) {
    const size_t entry = ifd + 2 + i * kEntry;
    if (u16(entry) != kOrientation) continue;
    if (orientation >= 0 || u16(entry + 2) != kShort || u32(entry + 4) != 1) return 0;
    orientation = u16(entry + 8);
  }
  return orientation < 0 ? 1 : orientation;
}

// Whether libvips would give the file's pixels exactly as libjpeg makes them, told from its
// marker segments: no ICC profile for it to apply (an APP2 segment starting "ICC_PROFILE"), and
// no EXIF orientation for it to turn the image by (at most one APP1 segment starting "Exif",
// whose Orientation reads cleanly as 1 or is absent). A file this is unsure of is not plain: the
// ordinary decoder then reads it, as libvips would.
bool plain(std::span<const uint8_t> b, const Layout& layout) {
  constexpr uint8_t kApp1 = 0xE1, kApp2 = 0xE2;
  int exif = 0;
  for (const Segment& segment : layout.segments) {
    if (segment.scan >= 0) continue;
    const uint8_t marker = b[segment.begin + 1];
    const std::span<const uint8_t> data =
        b.subspan(segment.begin + 4, segment.end - segment.begin - 4);
    const auto starts = [&data](std::string_view prefix) {
      return data.size() >= prefix.size() &&
             std::memcmp(data.data(), prefix.data(), prefix.size()) == 0;
    };
    if (marker == kApp2 && starts("ICC_PROFILE")) return false;
    if (marker == kApp1 && starts("Exif") && (++exif > 1 || exif_orientation(data) != 1)) {
      return false;
    }
  }
  return true;
}

// Whether the scans refine each coefficient in order, as libjpeg checks (it warns otherwise): a
// component's AC scans after its first DC scan, and each scan of a coefficient starting at the bit
// where the one before it stopped. Split into parts, the scans of a part other than the first
// lack their DC scans, which libjpeg warns about; that warning is then ignored, so a file that
// deserves it must not be split.
//
// And whether every coefficient libjpeg's block smoothing looks at (the first ten of each
// component, in zigzag order) ends fully refined (its last scan's Al is 0): libvips leaves
// smoothing on, and libjpeg smooths the output when one of them is missing or short of its last
// bits, which the split decoder (smoothing off) would not do.
bool in_order(const std::vector<Scan>& scans) {
  constexpr int kSmoothed = 10;
  int bits[kMaxComponents][64];
  for (auto& component : bits) std::fill(std::begin(component), std::end(component), -1);
  for (const Scan& scan : scans) {
    for (int c = 0; c < kMaxComponents; ++c) {
      if ((scan.components & (1U << c)) == 0) continue;
      if (scan.ss > 0 && bits[c][0] < 0) return false;
      for (int k = scan.ss; k <= scan.se; ++k) {
        if (scan.ah != std::max(bits[c][k], 0) || (bits[c][k] >= 0 && scan.al != scan.ah - 1)) {
          return false;
        }
        bits[c][k] = scan.al;
      }
    }
  }
  for (const auto& component : bits) {
    if (std::any_of(component, component + kSmoothed, [](int al) { return al != 0; })) {
      return false;
    }
  }
  return true;
}

[[noreturn]] void jump_out(j_common_ptr cinfo) {
  std::longjmp(*static_cast<std::jmp_buf*>(cinfo->client_data), 1);
}

void say_nothing(j_common_ptr, int) {}

// Whether libjpeg reads the file's header without an error, as libvips' loader does first: every
// marker segment up to the first scan (its tables), the frame's size within libjpeg's largest
// (65,500 pixels a side) and its sampling factors. A file it refuses is not planned, so that
// libvips refuses it at the start, as any other. Microseconds: no pixel is read.
bool header_reads(std::span<const uint8_t> bytes) {
  jpeg_decompress_struct cinfo{};
  jpeg_error_mgr errors{};
  std::jmp_buf jump;
  cinfo.err = jpeg_std_error(&errors);
  errors.error_exit = jump_out;
  errors.emit_message = say_nothing;  // warnings: libvips (fail_on=error) reads on as well
  cinfo.client_data = &jump;
  // Nothing with a destructor is made between here and the calls that may jump.
  if (setjmp(jump) != 0) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);  // keeps err and client_data
  jpeg_mem_src(&cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  const bool read = jpeg_read_header(&cinfo, TRUE) == JPEG_HEADER_OK;
  jpeg_destroy_decompress(&cinfo);
  return read;
}

// The first part's stream: every DC scan where the first one was, with every other marker segment
// in place. A DC scan moved forward gets the DC Huffman tables and restart
// interval it had where it was (copies of the file's segments go before it when those differ),
// and the restart interval in force before the move is restored after it. Nothing later reads DC
// tables: every DC scan is already read.
std::optional<ScanPlan::Part> first_part(std::span<const uint8_t> bytes, const Layout& layout,
                                         const std::vector<int>& plan_index,
                                         std::vector<std::vector<uint8_t>>& made) {
  static const uint8_t kNoRestart[6] = {0xFF, kDri, 0x00, 0x04, 0x00, 0x00};
  std::vector<DcState> at_scan(layout.scans.size());
  DcState state;
  for (const Segment& segment : layout.segments) {
    if (segment.scan < 0) {
      update(state, bytes, segment.begin, segment.end);
    } else {
      at_scan[static_cast<size_t>(segment.scan)] = state;
    }
  }
  ScanPlan::Part part;
  auto restart = [&part](std::span<const uint8_t> dri) {
    part.bytes.push_back(dri.empty() ? std::span<const uint8_t>(kNoRestart) : dri);
  };
  part.bytes.push_back(bytes.subspan(0, 2));  // SOI
  DcState emitted;                            // as the first part's stream stands
  bool dc_done = false;
  for (const Segment& segment : layout.segments) {
    if (segment.scan < 0) {
      part.bytes.push_back(bytes.subspan(segment.begin, segment.end - segment.begin));
      update(emitted, bytes, segment.begin, segment.end);
      continue;
    }
    const Scan& scan = layout.scans[static_cast<size_t>(segment.scan)];
    if (scan.ss == 0) {
      if (dc_done) continue;
      dc_done = true;
      const std::span<const uint8_t> resume = emitted.restart;
      for (size_t i = 0; i < layout.scans.size(); ++i) {
        const Scan& dc = layout.scans[i];
        if (dc.ss != 0) continue;
        const DcState& need = at_scan[i];
        for (int t = 0; t < kTableSlots && dc.ah == 0; ++t) {
          if ((dc.dc_tables & (1U << t)) == 0 || same(emitted.tables[t], need.tables[t])) continue;
          if (need.tables[t].empty()) return std::nullopt;  // undefined there: libjpeg's to refuse
          const size_t length = 2 + need.tables[t].size();
          std::vector<uint8_t>& dht = made.emplace_back(std::vector<uint8_t>{
              0xFF, kDht, static_cast<uint8_t>(length >> 8), static_cast<uint8_t>(length)});
          dht.insert(dht.end(), need.tables[t].begin(), need.tables[t].end());
          part.bytes.emplace_back(dht);
          emitted.tables[t] = need.tables[t];
        }
        if (!same(emitted.restart, need.restart)) restart(need.restart);
        emitted.restart = need.restart;
        part.bytes.push_back(bytes.subspan(dc.begin, dc.end - dc.begin));
        part.scans.push_back(plan_index[i]);
      }
      if (!same(emitted.restart, resume)) restart(resume);
      emitted.restart = resume;
    }
  }
  part.bytes.push_back(bytes.subspan(layout.eoi, 2));
  return part;
}

// Another part's stream: its AC scans, with every other marker segment in place.
ScanPlan::Part other_part(std::span<const uint8_t> bytes, const Layout& layout,
                          const std::vector<int>& plan_index, const std::vector<int>& part_of,
                          int p) {
  ScanPlan::Part part;
  part.bytes.push_back(bytes.subspan(0, 2));  // SOI
  for (const Segment& segment : layout.segments) {
    if (segment.scan >= 0) {
      if (part_of[static_cast<size_t>(segment.scan)] != p) continue;
      part.scans.push_back(plan_index[static_cast<size_t>(segment.scan)]);
    }
    part.bytes.push_back(bytes.subspan(segment.begin, segment.end - segment.begin));
  }
  part.bytes.push_back(bytes.subspan(layout.eoi, 2));
  return part;
}

}  // namespace

std::optional<ScanPlan> plan_scans(std::span<const uint8_t> bytes, int threads) {
  if (threads < 2) return std::nullopt;
  std::optional<Layout> layout = read_layout(bytes);
  if (!layout || layout->width == 0 || layout->height == 0 || !plain(bytes, *layout)) {
    return std::nullopt;
  }
  const std::vector<Scan>& scans = layout->scans;
  uint32_t with_dc = 0;
  std::vector<size_t> dc, ac;  // file indices, in the file's order
  for (size_t i = 0; i < scans.size(); ++i) {
    if (scans[i].ss == 0) with_dc |= scans[i].components;
    (scans[i].ss == 0 ? dc : ac).push_back(i);
  }
  if (with_dc != (1U << kMaxComponents) - 1 || ac.empty() || !in_order(scans)) {
    return std::nullopt;
  }
  // The order of reading, what each scan trails, and which part reads it: the DC scans in the
  // first part, the AC scans in the others, in runs of the file's order when there are more of
  // them than parts.
  ScanPlan plan;
  plan.width = layout->width;
  plan.height = layout->height;
  std::vector<int> plan_index(scans.size(), -1), part_of(scans.size(), 0);
  const size_t ac_parts = std::min(ac.size(), static_cast<size_t>(kMaxParts - 1));
  std::vector<size_t> load(1 + ac_parts, 0);
  std::array<int, kMaxComponents> last{-1, -1, -1};
  for (size_t k = 0; k < dc.size() + ac.size(); ++k) {
    const bool is_dc = k < dc.size();
    const size_t i = is_dc ? dc[k] : ac[k - dc.size()];
    const Scan& scan = scans[i];
    ScanPlan::Scan& step = plan.scans.emplace_back();
    step.components = scan.components;
    if (!is_dc) {
      step.after = last[static_cast<size_t>(std::countr_zero(scan.components))];
      part_of[i] = 1 + static_cast<int>((k - dc.size()) * ac_parts / ac.size());
    }
    for (int c = 0; c < kMaxComponents; ++c) {
      if ((scan.components & (1U << c)) != 0) last[static_cast<size_t>(c)] = static_cast<int>(k);
    }
    plan_index[i] = static_cast<int>(k);
    load[static_cast<size_t>(part_of[i])] += scan.end - scan.begin;
  }
  const size_t total = std::accumulate(load.begin(), load.end(), size_t{0});
  const size_t largest = *std::max_element(load.begin(), load.end());
  // libjpeg's own look at the header last: the file is otherwise one to split.
  if (total == 0 || static_cast<double>(largest) > kMaxLargestShare * static_cast<double>(total) ||
      !header_reads(bytes)) {
    return std::nullopt;
  }
  std::optional<ScanPlan::Part> first = first_part(bytes, *layout, plan_index, plan.made);
  if (!first) return std::nullopt;
  plan.parts.push_back(std::move(*first));
  for (size_t p = 1; p <= ac_parts; ++p) {
    plan.parts.push_back(other_part(bytes, *layout, plan_index, part_of, static_cast<int>(p)));
  }
  return plan;
}

namespace {

std::atomic<uint64_t> decoded{0};   // decode_scans() calls that gave the image
std::atomic<uint64_t> recycled{0};  // pages moved by recycle()

// What the parts share: the clock, a stop for all, each scan's progress, and where the first
// part's coefficient arrays are, which every part writes into.
struct Pipeline {
  const ScanPlan* plan = nullptr;
  std::chrono::steady_clock::time_point deadline;
  std::atomic<bool> stop{false};
  std::atomic<bool> timed_out{false};
  // Per scan: how many iMCU rows (rows of MCUs of an interleaved scan; every scan has as many)
  // it has finished; -1 after a stop, to wake the waiters.
  std::unique_ptr<std::atomic<int>[]> progress;
  int imcu_rows = 0;
  std::array<jvirt_barray_ptr, kMaxComponents> arrays{};  // the first part's
  std::array<JBLOCKARRAY, kMaxComponents> base{};         // their rows, all in memory
  std::array<int, kMaxComponents> block_rows{};           // rows of blocks in each array
  std::array<int, kMaxComponents> v_samp{};               // rows of blocks per iMCU row
  std::array<size_t, kMaxComponents> row_blocks{};        // blocks in a row of each array
  std::array<int, kMaxComponents> released{};  // rows given back (release_coefficients())
  // Per component, which AC coefficients of each block are nonzero (jpeg_ac.h).
  std::array<std::vector<uint64_t>, kMaxComponents> nonzero;

  void publish(int scan, int rows) {
    progress[static_cast<size_t>(scan)].store(rows, std::memory_order_release);
    progress[static_cast<size_t>(scan)].notify_all();
  }
  void abort() {
    stop = true;
    for (size_t s = 0; s < plan->scans.size(); ++s) publish(static_cast<int>(s), -1);
  }
  // Until `scan` has finished `rows` iMCU rows; false if everything stops first.
  bool wait(int scan, int rows) {
    std::atomic<int>& done = progress[static_cast<size_t>(scan)];
    while (true) {
      if (stop.load(std::memory_order_acquire)) return false;
      const int now = done.load(std::memory_order_acquire);
      // -1: stopped. abort() may have set it after the check of `stop` above, and then nothing
      // changes the value again, so waiting for a change would never end.
      if (now < 0) return false;
      if (now >= rows) return true;
      done.wait(now, std::memory_order_acquire);
    }
  }
};

using AccessFn = JBLOCKARRAY (*)(j_common_ptr, jvirt_barray_ptr, JDIMENSION, JDIMENSION, boolean);

// One libjpeg decompressor reading one part's stream. Its error handler jumps back to the
// setjmp of whichever function below called libjpeg; those functions hold no object with a
// destructor between the setjmp and the calls, so the jump skips nothing.
struct Decompressor {
  struct Errors {
    jpeg_error_mgr pub;
    std::jmp_buf jump;
    bool warned = false;
    bool without_dc = false;  // a part other than the first: its AC scans come without DC scans
  };
  struct Progress {
    jpeg_progress_mgr pub;
    Pipeline* pipeline;
  };
  struct Source {
    jpeg_source_mgr pub;
    const std::vector<std::span<const uint8_t>>* bytes;
    size_t next;
  };

  jpeg_decompress_struct cinfo{};
  Errors errors{};
  Progress progress{};
  Source source{};
  Pipeline* pipeline = nullptr;
  bool first = false;
  int scan = -1;              // the scan being read (index into the plan's scans)
  AccessFn access = nullptr;  // libjpeg's own
  AcDecoder ac;               // the AC scans' decoder, in every part but the first

  Decompressor() = default;
  ~Decompressor() { jpeg_destroy_decompress(&cinfo); }
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;
};

[[noreturn]] void on_error(j_common_ptr cinfo) {
  std::longjmp(reinterpret_cast<Decompressor::Errors*>(cinfo->err)->jump, 1);
}

// Warnings (corrupt data that libjpeg papers over) make the whole attempt fall back to the
// ordinary decoder, which has its own policy for them. An AC scan without the scans before it is
// what every part but the first is made of: expected there, and plan_scans() has checked that
// the file itself is in order.
void on_message(j_common_ptr cinfo, int level) {
  auto& errors = *reinterpret_cast<Decompressor::Errors*>(cinfo->err);
  if (level < 0 && !(errors.without_dc && cinfo->err->msg_code == JWRN_BOGUS_PROGRESSION)) {
    errors.warned = true;
  }
}

void on_progress(j_common_ptr cinfo) {
  Pipeline& pipeline = *reinterpret_cast<Decompressor::Progress*>(cinfo->progress)->pipeline;
  if (!pipeline.stop.load(std::memory_order_relaxed) &&
      std::chrono::steady_clock::now() >= pipeline.deadline) {
    pipeline.timed_out = true;
    pipeline.abort();
  }
  if (pipeline.stop.load(std::memory_order_relaxed)) on_error(cinfo);
}

// libjpeg's access to a coefficient array, for every part: first waits until the scan this one
// trails has finished the rows asked for. The first part then goes on to libjpeg's own access,
// which keeps the array's bookkeeping; the others only get the rows' address, so that
// bookkeeping is only ever touched by one thread.
JBLOCKARRAY access_rows(j_common_ptr common, jvirt_barray_ptr array, JDIMENSION start_row,
                        JDIMENSION num_rows, boolean writable) {
  Decompressor& d = *static_cast<Decompressor*>(common->client_data);
  Pipeline& pipeline = *d.pipeline;
  size_t c = 0;
  while (c < kMaxComponents && pipeline.arrays[c] != array) ++c;
  if (c == kMaxComponents || num_rows == 0 ||
      start_row + num_rows > static_cast<JDIMENSION>(pipeline.block_rows[c])) {
    ERREXIT(common, JERR_BAD_VIRTUAL_ACCESS);
  }
  const int rows = static_cast<int>((start_row + num_rows - 1) / pipeline.v_samp[c]) + 1;
  const int after = d.scan >= 0 ? pipeline.plan->scans[static_cast<size_t>(d.scan)].after : -1;
  if (after >= 0 && !pipeline.wait(after, rows)) on_error(common);
  if (d.first) return d.access(common, array, start_row, num_rows, writable);
  return pipeline.base[c] + start_row;
}

// A part other than the first never allocates coefficient arrays: it writes into the first's.
void keep_arrays_virtual(j_common_ptr) {}

void source_init(j_decompress_ptr) {}
void source_term(j_decompress_ptr) {}

boolean source_fill(j_decompress_ptr cinfo) {
  static const uint8_t kEnd[2] = {0xFF, kEoi};
  auto& src = *reinterpret_cast<Decompressor::Source*>(cinfo->src);
  if (src.next < src.bytes->size()) {
    const std::span<const uint8_t> next = (*src.bytes)[src.next++];
    src.pub.next_input_byte = next.data();
    src.pub.bytes_in_buffer = next.size();
  } else {
    WARNMS(cinfo, JWRN_JPEG_EOF);  // libjpeg read past the stream's EOI: give it another
    src.pub.next_input_byte = kEnd;
    src.pub.bytes_in_buffer = sizeof kEnd;
  }
  return TRUE;
}

void source_skip(j_decompress_ptr cinfo, long count) {
  auto& pub = *cinfo->src;
  while (count > static_cast<long>(pub.bytes_in_buffer)) {
    count -= static_cast<long>(pub.bytes_in_buffer);
    source_fill(cinfo);
  }
  if (count > 0) {
    pub.next_input_byte += count;
    pub.bytes_in_buffer -= static_cast<size_t>(count);
  }
}

// Reads the part's header and sets up buffered-image decoding: the first part's coefficient
// arrays are made (untouched, so they take no memory until written), the others' not at all, and
// no scan is read yet. Block smoothing is off: it only guesses coefficients that have not
// arrived, and once every part has decoded all have (a whole file decodes without it too).
bool open(Decompressor& d, const ScanPlan::Part& part, Pipeline& pipeline, bool first, int shrink) {
  auto& [cinfo, errors, progress, source, pipeline_of, first_of, scan, access, ac] = d;
  cinfo.err = jpeg_std_error(&errors.pub);
  errors.pub.error_exit = on_error;
  errors.pub.emit_message = on_message;
  errors.without_dc = !first;
  pipeline_of = &pipeline;
  first_of = first;
  if (setjmp(errors.jump) != 0) return false;
  jpeg_create_decompress(&cinfo);
  cinfo.client_data = &d;
  access = cinfo.mem->access_virt_barray;
  cinfo.mem->access_virt_barray = access_rows;
  if (!first) cinfo.mem->realize_virt_arrays = keep_arrays_virtual;
  progress.pub.progress_monitor = on_progress;
  progress.pipeline = &pipeline;
  cinfo.progress = &progress.pub;
  source.pub.init_source = source_init;
  source.pub.fill_input_buffer = source_fill;
  source.pub.skip_input_data = source_skip;
  source.pub.resync_to_restart = jpeg_resync_to_restart;
  source.pub.term_source = source_term;
  source.bytes = &part.bytes;
  source.next = 0;
  cinfo.src = &source.pub;
  jpeg_read_header(&cinfo, TRUE);
  cinfo.buffered_image = TRUE;
  cinfo.do_block_smoothing = FALSE;
  cinfo.out_color_space = JCS_RGB;
  cinfo.scale_num = 1;
  cinfo.scale_denom = static_cast<unsigned>(shrink);
  jpeg_start_decompress(&cinfo);
  return cinfo.coef->coef_arrays != nullptr && cinfo.num_components == kMaxComponents &&
         !errors.warned;
}

// Where the first part's coefficient arrays are, for the other parts, which are pointed at them.
// libjpeg keeps every row of an array in memory (it has no backing store here); the first and last
// rows' addresses check that, before anything is decoded.
bool share_arrays(Decompressor& first, std::vector<std::unique_ptr<Decompressor>>& parts,
                  Pipeline& pipeline) {
  if (setjmp(first.errors.jump) != 0) return false;
  j_decompress_ptr cinfo = &first.cinfo;
  auto* common = reinterpret_cast<j_common_ptr>(cinfo);
  pipeline.imcu_rows = static_cast<int>(cinfo->total_iMCU_rows);
  for (int c = 0; c < kMaxComponents; ++c) {
    const jpeg_component_info& component = cinfo->comp_info[c];
    const int v = component.v_samp_factor;
    const int rows = (static_cast<int>(component.height_in_blocks) + v - 1) / v * v;
    jvirt_barray_ptr array = cinfo->coef->coef_arrays[c];
    pipeline.arrays[static_cast<size_t>(c)] = array;
    pipeline.v_samp[static_cast<size_t>(c)] = v;
    pipeline.block_rows[static_cast<size_t>(c)] = rows;
    // As libjpeg makes them: whole MCUs wide.
    const auto h = static_cast<size_t>(component.h_samp_factor);
    pipeline.row_blocks[static_cast<size_t>(c)] = (component.width_in_blocks + h - 1) / h * h;
    // Reading rows that are not yet defined zeroes them and changes nothing else.
    JBLOCKARRAY top = first.access(common, array, 0, 1, FALSE);
    JBLOCKARRAY bottom = first.access(common, array, static_cast<JDIMENSION>(rows - 1), 1, FALSE);
    if (bottom != top + rows - 1) return false;
    pipeline.base[static_cast<size_t>(c)] = top;
    pipeline.nonzero[static_cast<size_t>(c)].assign(
        static_cast<size_t>(component.width_in_blocks) * component.height_in_blocks, 0);
  }
  const std::array<uint64_t*, kMaxComponents> nonzero{
      pipeline.nonzero[0].data(), pipeline.nonzero[1].data(), pipeline.nonzero[2].data()};
  for (size_t i = 1; i < parts.size(); ++i) {
    j_decompress_ptr other = &parts[i]->cinfo;
    if (other->total_iMCU_rows != cinfo->total_iMCU_rows) return false;
    for (int c = 0; c < kMaxComponents; ++c) {
      if (other->comp_info[c].v_samp_factor != cinfo->comp_info[c].v_samp_factor) return false;
      other->coef->coef_arrays[c] = cinfo->coef->coef_arrays[c];
    }
    parts[i]->ac.install(other, nonzero);
  }
  return true;
}

// Reads the part's scans, telling the others how far each has got, row by row. False (and
// everything stopped) on a failure or a warning.
bool read_part(Decompressor& d, const ScanPlan::Part& part) {
  Pipeline& pipeline = *d.pipeline;
  if (setjmp(d.errors.jump) != 0) {
    pipeline.abort();
    return false;
  }
  size_t next = 0;  // in part.scans
  while (!d.errors.warned) {
    on_progress(reinterpret_cast<j_common_ptr>(&d.cinfo));  // jpeg_consume_input() does not
    d.scan = next < part.scans.size() ? part.scans[next] : -1;
    const int result = jpeg_consume_input(&d.cinfo);
    if (result == JPEG_REACHED_EOI) break;
    if (result == JPEG_ROW_COMPLETED && d.scan >= 0) {
      pipeline.publish(d.scan, static_cast<int>(d.cinfo.input_iMCU_row));
    } else if (result == JPEG_SCAN_COMPLETED) {
      if (d.scan < 0) break;  // a scan the plan does not know: cannot be, but never wait on it
      pipeline.publish(d.scan, pipeline.imcu_rows);
      ++next;
    }
  }
  d.scan = -1;
  if (d.errors.warned || next != part.scans.size()) {
    pipeline.abort();
    return false;
  }
  return true;
}

// Where the coefficients' pages go when they are given back: into the rows of the image not
// written yet, from the front, instead of to the system. The rows need as many fresh pages as
// they take (50 MB for a 17.9 MP photo), and a fresh page costs a fault, the kernel zeroing it
// and, on a virtual machine, a trip through the hypervisor: about 3 us each on the project's AMD
// EPYC, 12,000 of them on the thread that makes the pixels. mremap() moves a page instead, for
// a fraction of that. The page's old contents (coefficients of this image) are overwritten by the
// rows before anyone reads them: only pages wholly inside rows still to come are filled, and the
// image has no padding.
struct PageRecycler {
  uint8_t* next = nullptr;  // the first page of the image that no page was moved to
  uint8_t* end = nullptr;   // the end of the image's last whole page; nullptr: give pages back
};

// Only an image in a mapping of its own (engine/image.h): moving pages into memory that malloc
// manages would split its heap's mapping, and a later move from there could then fail.
constexpr size_t kRecycleBytes = engine::kMappedPixelBytes;

// `p` moved up to the next page boundary (itself if it is one).
uint8_t* page_up(uint8_t* p) {
  static const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  return p + (page - reinterpret_cast<uintptr_t>(p) % page) % page;
}

PageRecycler recycler_for(engine::Image& out) {
  static const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  if (out.pixels.size() < kRecycleBytes) return {};
  uint8_t* end = out.pixels.data() + out.pixels.size();
  return {page_up(out.pixels.data()), end - reinterpret_cast<uintptr_t>(end) % page};
}

// Moves what fits of the whole pages [bytes, bytes + size) to the recycler's next pages at or
// after `unwritten` (the first byte of the rows still to come); returns how many bytes it moved.
// The pages stay mapped where they were (MREMAP_DONTUNMAP), reading as zeros, as after
// MADV_DONTNEED. If the kernel refuses (before Linux 5.7, or out of mappings), it stops trying.
size_t recycle(PageRecycler& to, uint8_t* bytes, size_t size, uint8_t* unwritten) {
  static const auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (to.end == nullptr) return 0;
  uint8_t* target = std::max(to.next, page_up(unwritten));
  if (target >= to.end) return 0;
  const size_t moved = std::min(size, static_cast<size_t>(to.end - target));
  if (mremap(bytes, moved, moved, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, target) ==
      MAP_FAILED) {
    to.end = nullptr;
    // Some kernels unmap the target before they find that the move cannot be made (Linux 6.1,
    // for one, checks the source after): fresh pages there again, or the rows would fault. Only
    // out of memory can refuse that, and then there is no image to make.
    if (mmap(target, moved, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
             0) == MAP_FAILED) {
      std::abort();
    }
    return 0;
  }
  to.next = target + moved;
  recycled.fetch_add(moved / page, std::memory_order_relaxed);
  return moved;
}

// Gives back the memory of the coefficient rows that the pixels are made from once they are
// made: the output pass reads each row of blocks once, for its iMCU row (block smoothing, which
// would read the rows around it, is off). On a large photo the coefficients are most of the
// memory, while the dither and the PNG's compression take theirs. Only whole pages inside runs of
// rows that lie end to end; a row read again would read zeros, which none is. The pages go to
// `recycler` first (rows of the image from `unwritten` on), the rest to the system.
void release_coefficients(Pipeline& pipeline, int imcu_rows_done, PageRecycler& recycler,
                          uint8_t* unwritten) {
  static const auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  for (size_t c = 0; c < kMaxComponents; ++c) {
    const int end = std::min(imcu_rows_done * pipeline.v_samp[c], pipeline.block_rows[c]);
    const size_t blocks = pipeline.row_blocks[c];
    for (int r = pipeline.released[c]; r < end;) {
      const JBLOCKROW first = pipeline.base[c][r];
      int last = r;
      while (last + 1 < end && pipeline.base[c][last + 1] == pipeline.base[c][last] + blocks) {
        ++last;
      }
      auto* bytes = reinterpret_cast<uint8_t*>(first);
      const auto size =
          static_cast<size_t>(reinterpret_cast<uint8_t*>(pipeline.base[c][last] + blocks) - bytes);
      // The whole pages from the first page boundary on.
      const size_t head = (page - reinterpret_cast<uintptr_t>(bytes) % page) % page;
      if (size >= head + page) {
        uint8_t* whole = bytes + head;
        const size_t left = (size - head) / page * page;
        const size_t moved = recycle(recycler, whole, left, unwritten);
        // Advice only: if it fails the pages stay, nothing else changes.
        if (left > moved) madvise(whole + moved, left - moved, MADV_DONTNEED);
      }
      r = last + 1;
    }
    pipeline.released[c] = std::max(pipeline.released[c], end);
  }
}

// Pixels from the coefficients, strip by strip. False if libjpeg fails; *rows says how many rows
// were given out before that.
bool write_rows(Decompressor& d, engine::Image& out, const std::function<void(int rows)>& on_rows,
                int* rows) {
  if (setjmp(d.errors.jump) != 0) return false;
  if (static_cast<int>(d.cinfo.output_width) != out.width ||
      static_cast<int>(d.cinfo.output_height) != out.height || d.cinfo.output_components != 3 ||
      out.channels != 3) {
    return false;
  }
  jpeg_start_output(&d.cinfo, d.cinfo.input_scan_number);
  constexpr int kStripRows = 16;
  JSAMPROW strip[kStripRows];
  PageRecycler recycler = recycler_for(out);
  while (static_cast<int>(d.cinfo.output_scanline) < out.height) {
    const int top = static_cast<int>(d.cinfo.output_scanline);
    const int n = std::min(kStripRows, out.height - top);
    for (int i = 0; i < n; ++i) strip[i] = out.row(top + i);
    int done = 0;
    while (done < n) {
      done += static_cast<int>(
          jpeg_read_scanlines(&d.cinfo, strip + done, static_cast<JDIMENSION>(n - done)));
    }
    *rows = top + n;
    // The iMCU row being made may still be read: the ones before it are done.
    release_coefficients(*d.pipeline, static_cast<int>(d.cinfo.output_iMCU_row) - 1, recycler,
                         out.row(*rows));
    if (on_rows) on_rows(*rows);
  }
  jpeg_finish_output(&d.cinfo);
  jpeg_finish_decompress(&d.cinfo);
  return !d.errors.warned;
}

}  // namespace

uint64_t scan_decodes() { return decoded.load(std::memory_order_relaxed); }

uint64_t pages_recycled() { return recycled.load(std::memory_order_relaxed); }

ScanOutcome decode_scans(const ScanPlan& plan, engine::Image& out,
                         std::chrono::steady_clock::time_point deadline,
                         const std::function<void(int rows)>& on_rows, int shrink) {
  Pipeline pipeline;
  pipeline.plan = &plan;
  pipeline.deadline = deadline;
  pipeline.progress = std::make_unique<std::atomic<int>[]>(plan.scans.size());
  std::vector<std::unique_ptr<Decompressor>> parts;
  for (const ScanPlan::Part& part : plan.parts) {
    parts.push_back(std::make_unique<Decompressor>());
    if (!open(*parts.back(), part, pipeline, parts.size() == 1, shrink)) {
      return ScanOutcome::kFallBack;
    }
  }
  if (!share_arrays(*parts[0], parts, pipeline)) return ScanOutcome::kFallBack;
  // The pixels are made once every scan is read (making them behind the last scans would save
  // little and hold the whole image at once beside the coefficients, before any row could go).
  std::vector<char> ok(parts.size(), 0);
  {
    std::vector<std::jthread> threads;
    try {
      for (size_t i = 1; i < parts.size(); ++i) {
        threads.emplace_back([&ok, i, &part = *parts[i], &scans = plan.parts[i]] {
          ok[i] = read_part(part, scans) ? 1 : 0;
        });
      }
    } catch (const std::system_error&) {
      pipeline.abort();  // no thread to be had: those started stop, and are joined
      return ScanOutcome::kFallBack;
    }
    ok[0] = read_part(*parts[0], plan.parts[0]) ? 1 : 0;
  }  // joined
  if (pipeline.timed_out) return ScanOutcome::kTimedOut;
  if (std::find(ok.begin(), ok.end(), 0) != ok.end()) return ScanOutcome::kFallBack;
  parts.resize(1);
  for (std::vector<uint64_t>& masks : pipeline.nonzero) masks = {};  // only the scans used them
  int rows = 0;
  if (write_rows(*parts[0], out, on_rows, &rows)) {
    decoded.fetch_add(1, std::memory_order_relaxed);
    return ScanOutcome::kDecoded;
  }
  if (pipeline.timed_out) return ScanOutcome::kTimedOut;
  return rows == 0 ? ScanOutcome::kFallBack : ScanOutcome::kFailed;
}

}  // namespace dither::imaging::internal
