#include "imaging/vips_support.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "imaging/codec.h"

namespace dither::imaging {
namespace {

// The only loaders libvips may run, all from memory buffers. libvips picks no loader by itself
// here (decode calls these by name after sniffing), but the block list also stops anything that
// asks libvips to guess, and keeps ImageMagick, PDF, SVG and friends out for good.
constexpr const char* kAllowedLoaders[] = {
    "VipsForeignLoadJpegBuffer",  "VipsForeignLoadPngBuffer",  "VipsForeignLoadWebpBuffer",
    "VipsForeignLoadNsgifBuffer", "VipsForeignLoadTiffBuffer",
};

// Threads libvips may use inside one pipeline. Its default is one per core, per pipeline; callers
// run several images at once (one per worker), so on a big machine that oversubscribes badly.
// Measured on 2 cores, 12 MP: JPEG decode 180 -> 137 ms and resize 165 -> 67 ms from 1 to 2
// threads; beyond a few threads the workers, not libvips, should use the cores.
int vips_concurrency() {
  const unsigned cores = std::thread::hardware_concurrency();
  return static_cast<int>(std::clamp(cores, 1u, 4u));
}

Status start_vips() {
  std::string why;
  if (internal::try_load_vips_functions(&why) == nullptr) {
    return make_error(ErrorKind::kInternal, "cannot load libvips: " + why);
  }
  if (VIPS_INIT("dither")) return internal::vips_failure(ErrorKind::kInternal, "starting libvips");
  vips_block_untrusted_set(TRUE);
  vips_operation_block_set("VipsForeignLoad", TRUE);
  for (const char* loader : kAllowedLoaders) vips_operation_block_set(loader, FALSE);
  // The operation cache would keep decoded images alive between requests and keys buffer loads
  // by address: off.
  vips_cache_set_max(0);
  vips_cache_set_max_mem(0);
  vips_cache_set_max_files(0);
  vips_concurrency_set(vips_concurrency());
  return Status();
}

}  // namespace

void leave_out_vips_modules() {
  // libvips reads its modules from $VIPSHOME/lib/vips-modules-X.Y; nothing can be under a file.
  setenv("VIPSHOME", "/dev/null", 0);
}

Status init() {
  static std::once_flag once;
  static Status status;
  std::call_once(once, [] { status = start_vips(); });
  return status;
}

namespace internal {

Error vips_failure(ErrorKind kind, std::string_view what) {
  std::string message(what);
  char* detail = vips_error_buffer_copy();  // copies and clears under libvips' lock
  if (detail != nullptr) {
    std::string_view text(detail);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
    if (!text.empty()) {
      message += ": ";
      // Several lines may have piled up; keep them on one line for logs and JSON.
      for (char c : text) message += c == '\n' ? ';' : c;
    }
    g_free(detail);
  }
  return make_error(kind, std::move(message));
}

Status read_rows(VipsImage* in, engine::Image& out, ErrorKind kind, std::string_view what,
                 std::chrono::steady_clock::time_point deadline, bool* timed_out,
                 const std::function<void(int rows)>& on_rows) {
  if (out.width != vips_image_get_width(in) || out.height != vips_image_get_height(in) ||
      out.channels != vips_image_get_bands(in)) {
    if (timed_out != nullptr) *timed_out = false;
    return make_error(ErrorKind::kInternal, std::string(what) + ": unexpected image size");
  }
  return read_rows_to(
      in, [&out](int y) { return out.row(y); }, kind, what, deadline, timed_out, on_rows);
}

Status read_rows_to(VipsImage* in, const std::function<uint8_t*(int y)>& row, ErrorKind kind,
                    std::string_view what, std::chrono::steady_clock::time_point deadline,
                    bool* timed_out, const std::function<void(int rows)>& on_rows) {
  if (timed_out != nullptr) *timed_out = false;
  const int bands = vips_image_get_bands(in);
  if (vips_image_get_format(in) != VIPS_FORMAT_UCHAR || (bands != 3 && bands != 4)) {
    return make_error(ErrorKind::kInternal, std::string(what) + ": expected 8-bit RGB or RGBA");
  }
  const int width = vips_image_get_width(in);
  const int height = vips_image_get_height(in);
  const size_t row_bytes = static_cast<size_t>(width) * static_cast<size_t>(bands);
  // One region, computed strip by strip from the top on this thread: libvips' worker threads are
  // shared by every caller and keep the priority of whichever thread started them (a dithering
  // worker runs niced), so a request evaluated on them could wait behind dithering. Sequential
  // loaders need exactly this top-to-bottom order; the strips go straight into `out`.
  using RegionPtr = std::unique_ptr<VipsRegion, decltype(&g_object_unref)>;
  RegionPtr region(vips_region_new(in), &g_object_unref);
  if (!region) return vips_failure(ErrorKind::kInternal, what);
  constexpr int kStripRows = 16;
  for (int top = 0; top < height; top += kStripRows) {
    if (std::chrono::steady_clock::now() >= deadline) {
      if (timed_out != nullptr) *timed_out = true;
      return make_error(kind, std::string(what) + ": stopped at its time limit");
    }
    const VipsRect strip{0, top, width, std::min(kStripRows, height - top)};
    if (vips_region_prepare(region.get(), &strip) != 0) return vips_failure(kind, what);
    const size_t skip = VIPS_REGION_LSKIP(region.get());
    const auto* from = reinterpret_cast<const uint8_t*>(VIPS_REGION_ADDR(region.get(), 0, top));
    for (int y = 0; y < strip.height; ++y, from += skip) {
      std::memcpy(row(top + y), from, row_bytes);
    }
    if (on_rows) {
      // The time on_rows takes (a consumer holding the decoder back) is not decoding time.
      const auto called = std::chrono::steady_clock::now();
      on_rows(top + strip.height);
      if (deadline != std::chrono::steady_clock::time_point::max()) {
        deadline += std::chrono::steady_clock::now() - called;
      }
    }
  }
  return Status();
}

Result<engine::Image> to_image(VipsImage* in, ErrorKind kind, std::string_view what,
                               std::chrono::steady_clock::time_point deadline, bool* timed_out) {
  const int bands = vips_image_get_bands(in);
  if (vips_image_get_format(in) != VIPS_FORMAT_UCHAR || (bands != 3 && bands != 4)) {
    return make_error(ErrorKind::kInternal, std::string(what) + ": expected 8-bit RGB or RGBA");
  }
  engine::Image out(vips_image_get_width(in), vips_image_get_height(in), bands);
  if (Status s = read_rows(in, out, kind, what, deadline, timed_out); !s) return s.error();
  return out;
}

Result<VipsImagePtr> wrap(const engine::Image& img) {
  VipsImage* raw = vips_image_new_from_memory(img.pixels.data(), img.pixels.size(), img.width,
                                              img.height, img.channels, VIPS_FORMAT_UCHAR);
  if (raw == nullptr) return vips_failure(ErrorKind::kInternal, "wrapping pixels");
  VipsImagePtr memory(raw);
  VipsImage* tagged = nullptr;
  if (vips_copy(memory.get(), &tagged, "interpretation", VIPS_INTERPRETATION_sRGB, nullptr)) {
    return vips_failure(ErrorKind::kInternal, "wrapping pixels");
  }
  return VipsImagePtr(tagged);
}

}  // namespace internal
}  // namespace dither::imaging
