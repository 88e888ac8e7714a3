// probe() and decode(): sniff, header, limits, then pixels through libvips.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "imaging/codec.h"
#include "imaging/jpeg_scans.h"
#include "imaging/vips_support.h"

namespace dither::imaging {
namespace {

using internal::vips_failure;
using internal::VipsImagePtr;

std::string display_name(InputFormat format) {
  switch (format) {
    case InputFormat::kJpeg:
      return "JPEG";
    case InputFormat::kPng:
      return "PNG";
    case InputFormat::kWebp:
      return "WebP";
    case InputFormat::kGif:
      return "GIF";
    case InputFormat::kTiff:
      return "TIFF";
  }
  return "image";
}

bool is_animation(const ImageInfo& info) {
  return (info.format == InputFormat::kGif || info.format == InputFormat::kWebp) && info.frames > 1;
}

// Opens `bytes` with the loader for `format`. libvips reads only the header here; pixels are
// decoded later, on demand, sequentially. fail_on=error turns truncation and corrupt data into
// errors instead of grey or black filler. A GIF or WebP gives its first frame, or with
// `all_frames` every frame as shown (disposal and blending applied), stacked top to bottom in
// one image of frames * height rows.
int open_loader(InputFormat format, std::span<const uint8_t> bytes, VipsImage** out,
                bool all_frames = false) {
  using Loader = int (*)(void*, size_t, VipsImage**, ...);
  Loader load = nullptr;
  switch (format) {
    case InputFormat::kJpeg:
      load = vips_jpegload_buffer;
      break;
    case InputFormat::kPng:
      load = vips_pngload_buffer;
      break;
    case InputFormat::kWebp:
      load = vips_webpload_buffer;
      break;
    case InputFormat::kGif:
      load = vips_gifload_buffer;
      break;
    case InputFormat::kTiff:
      load = vips_tiffload_buffer;
      break;
  }
  if (load == nullptr) {
    vips_error("dither", "unknown input format");
    return -1;
  }
  // The loaders take a non-const pointer but never write to the buffer.
  auto* data = const_cast<uint8_t*>(bytes.data());
  if (format == InputFormat::kGif || format == InputFormat::kWebp) {
    return load(data, bytes.size(), out, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                VIPS_FAIL_ON_ERROR, "n", all_frames ? -1 : 1, nullptr);
  }
  return load(data, bytes.size(), out, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
              VIPS_FAIL_ON_ERROR, nullptr);
}

// What the header says of an image's samples.
struct Samples {
  int bands = 3;
  bool cmyk = false;
  int bits = 8;
  bool integer = true;
  int pages = 1;
};

Samples samples_of(VipsImage* raw) {
  const VipsBandFormat sample = vips_image_get_format(raw);
  return Samples{
      vips_image_get_bands(raw), vips_image_get_interpretation(raw) == VIPS_INTERPRETATION_CMYK,
      static_cast<int>(vips_format_sizeof(sample)) * 8,
      sample == VIPS_FORMAT_UCHAR || sample == VIPS_FORMAT_CHAR || sample == VIPS_FORMAT_USHORT ||
          sample == VIPS_FORMAT_SHORT || sample == VIPS_FORMAT_UINT || sample == VIPS_FORMAT_INT,
      vips_image_get_n_pages(raw)};
}

// Bands, bits per sample and pages from the header, against `limits`.
Status check_layout(const Samples& samples, InputFormat format, const Limits& limits) {
  const int bands = samples.bands;
  const bool cmyk = samples.cmyk;
  if (bands > limits.max_bands + (cmyk ? 1 : 0)) {
    return make_error(ErrorKind::kUnsupported,
                      "the " + display_name(format) + " has " + std::to_string(bands) +
                          " channels per pixel; at most " + std::to_string(limits.max_bands) +
                          " are accepted");
  }
  const bool integer = samples.integer;
  const int bits = samples.bits;
  if (!integer || bits > limits.max_bits_per_sample) {
    return make_error(ErrorKind::kUnsupported,
                      "the " + display_name(format) + " has " + std::to_string(bits) + "-bit " +
                          (integer ? "integer" : "floating-point") + " samples; at most " +
                          std::to_string(limits.max_bits_per_sample) +
                          "-bit integer samples are accepted");
  }
  // A GIF's or WebP's frames are checked against the animation limits (check_frames).
  const int pages = samples.pages;
  if (format == InputFormat::kTiff && pages > limits.max_pages) {
    return make_error(ErrorKind::kUnsupported, "the TIFF has " + std::to_string(pages) +
                                                   " pages; at most " +
                                                   std::to_string(limits.max_pages) +
                                                   " are accepted (only the first is used)");
  }
  return Status();
}

// An animation's frame count and its pixels over all frames, against `limits`: what
// decode_animation() would hold. libvips counts the frames without decoding any: libnsgif walks
// the GIF's blocks, skipping each frame's LZW data by its sub-block lengths; libwebp's demuxer
// reads the WebP's ANMF chunk headers.
Status check_frames(const ImageInfo& info, const Limits& limits) {
  if (!is_animation(info)) return Status();
  const std::string format = display_name(info.format);
  if (info.frames > limits.max_animation_frames) {
    return make_error(ErrorKind::kTooManyPixels,
                      "the " + format + " has " + std::to_string(info.frames) +
                          " frames; at most " + std::to_string(limits.max_animation_frames) +
                          " are accepted");
  }
  const uint64_t pixels = static_cast<uint64_t>(info.width) * static_cast<uint64_t>(info.height) *
                          static_cast<uint64_t>(info.frames);
  if (pixels > limits.max_animation_pixels) {
    return make_error(ErrorKind::kTooManyPixels,
                      "the " + format + " has " + std::to_string(pixels) + " pixels over " +
                          std::to_string(info.frames) + " frames of " + std::to_string(info.width) +
                          "x" + std::to_string(info.height) + "; at most " +
                          std::to_string(limits.max_animation_pixels) + " are accepted");
  }
  return Status();
}

struct Opened {
  ImageInfo info;
  VipsImagePtr image;  // header read, pixels not yet decoded; null when only a plan read it
};

// The checks made before any header is read; the format sniffed.
Result<InputFormat> check_bytes(std::span<const uint8_t> bytes, const Limits& limits) {
  if (bytes.empty()) {
    return make_error(ErrorKind::kUnsupported,
                      "empty input: expected a JPEG, PNG, WebP, GIF or TIFF image");
  }
  if (bytes.size() > limits.max_bytes) {
    return make_error(ErrorKind::kTooLarge, "input is " + std::to_string(bytes.size()) +
                                                " bytes; the limit is " +
                                                std::to_string(limits.max_bytes) + " bytes");
  }
  std::optional<InputFormat> format = sniff(bytes);
  if (!format) {
    return make_error(ErrorKind::kUnsupported,
                      "not an allowed image format: expected JPEG, PNG, WebP, GIF or TIFF");
  }
  return *format;
}

// The header's size and samples against `limits`.
Status check_header(const ImageInfo& info, const Samples& samples, const Limits& limits) {
  const uint64_t pixels = static_cast<uint64_t>(info.width) * static_cast<uint64_t>(info.height);
  if (info.width <= 0 || info.height <= 0) {
    return make_error(ErrorKind::kUndecodable, "the " + display_name(info.format) +
                                                   " header says " + std::to_string(info.width) +
                                                   "x" + std::to_string(info.height) + " pixels");
  }
  if (pixels > limits.max_pixels) {
    return make_error(ErrorKind::kTooManyPixels,
                      "image is " + std::to_string(info.width) + "x" + std::to_string(info.height) +
                          " (" + std::to_string(pixels) + " pixels); the limit is " +
                          std::to_string(limits.max_pixels) + " pixels");
  }
  if (Status s = check_layout(samples, info.format, limits); !s) return s;
  return check_frames(info, limits);
}

// Reads and checks the header of `bytes`, through libvips. With `plan` (for decode() and
// verify()), a progressive JPEG whose pixels libvips would give exactly as libjpeg makes them
// (three 8-bit components, no ICC profile to apply, no rotation) gets a plan to be decoded on
// several threads (jpeg_scans.h), and its header is the plan's: libvips is not needed, nor
// loaded. Anything else, or anything that goes wrong there before a row is out, goes through
// libvips.
Result<Opened> open_checked(std::span<const uint8_t> bytes, const Limits& limits,
                            std::optional<internal::ScanPlan>* plan = nullptr) {
  Result<InputFormat> format = check_bytes(bytes, limits);
  if (!format) return format.error();
  if (plan != nullptr && *format == InputFormat::kJpeg) {
    *plan = internal::plan_scans(bytes, static_cast<int>(std::thread::hardware_concurrency()));
  }
  if (plan != nullptr && *plan) {
    const ImageInfo info{InputFormat::kJpeg, (*plan)->width, (*plan)->height};
    if (Status s = check_header(info, Samples{}, limits); !s) return s.error();
    return Opened{info, nullptr};
  }
  if (Status s = init(); !s) return s.error();
  VipsImage* raw = nullptr;
  if (open_loader(*format, bytes, &raw)) {
    return vips_failure(ErrorKind::kUndecodable, "cannot read the " + display_name(*format) +
                                                     " header (truncated or corrupt data)");
  }
  VipsImagePtr image(raw);
  ImageInfo info{*format, vips_image_get_width(raw), vips_image_get_height(raw)};
  if (*format == InputFormat::kGif || *format == InputFormat::kWebp) {
    info.frames = std::max(1, vips_image_get_n_pages(raw));
  }
  if (Status s = check_header(info, samples_of(raw), limits); !s) return s.error();
  if (vips_image_get_orientation_swap(raw)) std::swap(info.width, info.height);
  return Opened{info, std::move(image)};
}

// Applies `op` (a libvips call writing to its VipsImage** argument) to `image` in place.
template <class Op>
Status step(VipsImagePtr& image, ErrorKind kind, std::string_view what, Op op) {
  VipsImage* out = nullptr;
  if (op(image.get(), &out)) return vips_failure(kind, what);
  image.reset(out);
  return Status();
}

// Any loaded image -> 8-bit sRGB with 3 or 4 bands (alpha last).
Status convert_to_srgb8(VipsImagePtr& image) {
  const bool deep = vips_image_get_format(image.get()) != VIPS_FORMAT_UCHAR;
  if (vips_image_get_typeof(image.get(), VIPS_META_ICC_NAME) != 0) {
    VipsImage* out = nullptr;
    if (vips_icc_transform(image.get(), &out, "srgb", "embedded", TRUE, "depth", deep ? 16 : 8,
                           nullptr) == 0) {
      image.reset(out);
    } else {
      // A broken or mismatched profile: decode the pixels as they are rather than refuse.
      g_free(vips_error_buffer_copy());
    }
  }
  // Greyscale, CMYK (built-in profile), 16-bit RGB, Lab, ... to sRGB; alpha is carried along.
  if (Status s = step(image, ErrorKind::kUndecodable, "cannot convert the image to sRGB",
                      [](VipsImage* in, VipsImage** out) {
                        return vips_colourspace(in, out, VIPS_INTERPRETATION_sRGB, nullptr);
                      });
      !s) {
    return s;
  }
  if (vips_image_get_format(image.get()) != VIPS_FORMAT_UCHAR) {
    if (Status s = step(image, ErrorKind::kUndecodable, "cannot convert the image to 8 bits",
                        [](VipsImage* in, VipsImage** out) {
                          return vips_cast(in, out, VIPS_FORMAT_UCHAR, nullptr);
                        });
        !s) {
      return s;
    }
  }
  if (vips_image_get_bands(image.get()) > 4) {
    if (Status s = step(image, ErrorKind::kUndecodable, "cannot drop extra channels",
                        [](VipsImage* in, VipsImage** out) {
                          return vips_extract_band(in, out, 0, "n", 4, nullptr);
                        });
        !s) {
      return s;
    }
  }
  const int bands = vips_image_get_bands(image.get());
  if (bands != 3 && bands != 4) {
    return make_error(ErrorKind::kUndecodable,
                      "unsupported channel layout: " + std::to_string(bands) + " channels");
  }
  return Status();
}

std::chrono::steady_clock::time_point deadline_of(const Limits& limits) {
  return limits.max_decode_time.count() > 0
             ? std::chrono::steady_clock::now() + limits.max_decode_time
             : std::chrono::steady_clock::time_point::max();
}

Error too_slow(const std::string& format, std::chrono::milliseconds limit) {
  const auto ms = limit.count();
  return make_error(
      ErrorKind::kUndecodable,
      "decoding the " + format + " took longer than the limit of " +
          (ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms"));
}

// How an animation is shown, from the header libvips read (before any conversion).
struct Timing {
  std::vector<int> delays_ms;
  int loop = 0;
};

Timing timing_of(VipsImage* image, int frames) {
  Timing timing;
  // libvips: a GIF's delays are its centiseconds times 10; a WebP's are its milliseconds. "loop"
  // is the times the animation plays (0: for ever): a GIF's NETSCAPE2.0 count plus one (the
  // count is the repeats after the first play), 1 without that extension; a WebP's loop count.
  int* delays = nullptr;
  int count = 0;
  if (vips_image_get_typeof(image, "delay") != 0 &&
      vips_image_get_array_int(image, "delay", &delays, &count) == 0 && count == frames) {
    timing.delays_ms.assign(delays, delays + count);
  } else {
    timing.delays_ms.assign(static_cast<size_t>(frames), 0);
  }
  for (int& delay : timing.delays_ms) delay = std::max(delay, 0);
  if (vips_image_get_typeof(image, "loop") != 0 &&
      vips_image_get_int(image, "loop", &timing.loop)) {
    timing.loop = 0;
  }
  timing.loop = std::max(timing.loop, 0);
  return timing;
}

// Whether a GIF's last image is whole. libnsgif (libvips' GIF decoder) counts a frame cut short
// at the end of the data as a frame and decodes what there is of it without an error, even
// under fail_on=error, as long as an earlier frame is whole (so decode(), which reads the first
// frame only, never sees such a cut). An animation's frames are all shown, so the GIF's blocks
// are walked here as libnsgif walks them: the data may end after any block (also without the
// trailer, as browsers allow), but not inside an image.
bool gif_last_image_is_whole(std::span<const uint8_t> bytes) {
  constexpr size_t kHeader = 13;  // signature, version, logical screen descriptor
  if (bytes.size() < kHeader) return false;
  const auto table_size = [](uint8_t flags) {
    return (flags & 0x80) != 0 ? size_t{3} << ((flags & 7) + 1) : size_t{0};
  };
  size_t pos = kHeader + table_size(bytes[10]);
  // Skips a chain of sub-blocks from `pos`, up to and including its zero-length terminator.
  const auto skip_sub_blocks = [&bytes, &pos] {
    while (pos < bytes.size()) {
      const size_t length = bytes[pos++];
      if (length == 0) return true;
      pos += length;
    }
    return false;
  };
  while (pos < bytes.size()) {
    const uint8_t block = bytes[pos++];
    if (block == 0x21) {                                            // extension: label, sub-blocks
      if (++pos > bytes.size() || !skip_sub_blocks()) return true;  // no image lost
    } else if (block == 0x2C) {  // image: descriptor, local table, LZW code size, sub-blocks
      if (pos + 9 > bytes.size()) return false;
      pos += 9 + table_size(bytes[pos + 8]) + 1;
      if (pos > bytes.size() || !skip_sub_blocks()) return false;
    } else {
      return true;  // the trailer, or bytes libnsgif stops at as well
    }
  }
  return true;
}

// The animation `opened` came from, opened again with every frame (stacked top to bottom) and
// converted as decode() converts. `timing` gets the delays and the loop count.
Result<VipsImagePtr> open_frames(std::span<const uint8_t> bytes, const Opened& opened,
                                 Timing* timing, int* orientation) {
  const std::string format = display_name(opened.info.format);
  if (opened.info.format == InputFormat::kGif && !gif_last_image_is_whole(bytes)) {
    return make_error(ErrorKind::kUndecodable,
                      "cannot decode the GIF data (truncated or corrupt): the last frame is cut "
                      "short");
  }
  VipsImage* raw = nullptr;
  if (open_loader(opened.info.format, bytes, &raw, /*all_frames=*/true)) {
    return vips_failure(ErrorKind::kUndecodable,
                        "cannot read the " + format + " header (truncated or corrupt data)");
  }
  VipsImagePtr image(raw);
  // The same bytes, read again: anything else would be a libvips bug, but the frame buffers
  // are sized from these numbers, so they are checked.
  const int width = vips_image_get_width(opened.image.get());
  const int height = vips_image_get_height(opened.image.get());
  if (vips_image_get_width(raw) != width ||
      vips_image_get_height(raw) != static_cast<int64_t>(height) * opened.info.frames) {
    return make_error(ErrorKind::kUndecodable, "the " + format + "'s frames do not add up");
  }
  if (timing != nullptr) *timing = timing_of(raw, opened.info.frames);
  if (orientation != nullptr) *orientation = vips_image_get_orientation(raw);
  if (Status s = convert_to_srgb8(image); !s) return s.error();
  return image;
}

// read_rows_to() with decode()'s error for a decoding past its time limit.
Status read_frames(VipsImage* frames, const std::function<uint8_t*(int y)>& row,
                   const std::string& format, std::chrono::steady_clock::time_point deadline,
                   std::chrono::milliseconds max_time) {
  bool timed_out = false;
  Status read = internal::read_rows_to(
      frames, row, ErrorKind::kUndecodable,
      "cannot decode the " + format + " data (truncated or corrupt)", deadline, &timed_out);
  if (!read && timed_out) return too_slow(format, max_time);
  return read;
}

// RGBA frames whose alpha is 255 everywhere become RGB, in place. libvips decides from the
// header: RGBA for a GIF with a transparent index in any frame (optimised GIFs mark the pixels a
// frame leaves alone with it, encode_animation() too), for a WebP with any frame smaller than
// the canvas. What the frames show decides here, so an opaque animation is RGB.
void drop_opaque_alpha(std::vector<engine::Image>& frames) {
  for (const engine::Image& frame : frames) {
    if (frame.channels != 4) return;
    for (size_t i = 3; i < frame.pixels.size(); i += 4) {
      if (frame.pixels[i] != 255) return;
    }
  }
  for (engine::Image& frame : frames) {
    uint8_t* p = frame.pixels.data();
    const size_t count = frame.pixel_count();
    for (size_t i = 0; i < count; ++i) {  // forwards: each write lands on bytes already read
      p[3 * i] = p[4 * i];
      p[3 * i + 1] = p[4 * i + 1];
      p[3 * i + 2] = p[4 * i + 2];
    }
    frame.pixels.resize(3 * count);
    frame.pixels.shrink_to_fit();  // one frame at a time: the peak stays the RGBA frames
    frame.channels = 3;
  }
}

// `frame` turned upright for the EXIF `orientation` (2 to 8).
Result<engine::Image> upright(const engine::Image& frame, int orientation) {
  Result<VipsImagePtr> wrapped = internal::wrap(frame);
  if (!wrapped) return wrapped.error();
  VipsImagePtr image = std::move(*wrapped);
  vips_image_set_int(image.get(), VIPS_META_ORIENTATION, orientation);
  if (Status s =
          step(image, ErrorKind::kInternal, "cannot apply the EXIF orientation",
               [](VipsImage* in, VipsImage** out) { return vips_autorot(in, out, nullptr); });
      !s) {
    return s.error();
  }
  return internal::to_image(image.get(), ErrorKind::kInternal, "cannot apply the EXIF orientation");
}

}  // namespace

Result<ImageInfo> probe(std::span<const uint8_t> bytes, const Limits& limits) {
  Result<Opened> opened = open_checked(bytes, limits);
  if (!opened) return opened.error();
  return opened->info;
}

namespace {

// What decode_scans()'s outcome means for decode() and verify(); nothing when the ordinary
// decoder is to read the file.
std::optional<Status> scan_status(internal::ScanOutcome outcome, const std::string& format,
                                  std::chrono::milliseconds max_time) {
  switch (outcome) {
    case internal::ScanOutcome::kDecoded:
      return Status();
    case internal::ScanOutcome::kTimedOut:
      return too_slow(format, max_time);
    case internal::ScanOutcome::kFailed:
      return make_error(ErrorKind::kUndecodable,
                        "cannot decode the " + format + " data (truncated or corrupt)");
    case internal::ScanOutcome::kFallBack:
      break;  // libvips reads it, and says what is wrong if anything is
  }
  return std::nullopt;
}

}  // namespace

struct DecodeJob::State {
  std::span<const uint8_t> bytes;
  Limits limits;
  Opened opened;
  std::optional<internal::ScanPlan> scans;
  std::chrono::milliseconds max_time{0};
  std::chrono::steady_clock::time_point deadline;
  engine::Image image;
  mutable std::mutex mutex;
  mutable std::condition_variable rows_changed;
  int rows = 0;  // final rows from the top
  // Back-pressure (keep_within): 0 = none.
  mutable std::condition_variable consumer_moved;
  int window = 0;
  int consumed = 0;

  void publish(int n) {
    {
      const std::lock_guard lock(mutex);
      rows = n;
    }
    rows_changed.notify_all();
  }

  // The decoder, after publishing `n` rows: waits while it is `window` rows ahead of the consumer.
  void wait_for_consumer(int n) const {
    std::unique_lock lock(mutex);
    consumer_moved.wait(lock, [&] { return window == 0 || n < consumed + window; });
  }
};

DecodeJob::DecodeJob(std::unique_ptr<State> state) : state_(std::move(state)) {}
DecodeJob::~DecodeJob() = default;

Result<std::unique_ptr<DecodeJob>> DecodeJob::open(std::span<const uint8_t> bytes,
                                                   const Limits& limits) {
  auto state = std::make_unique<State>();
  // The time limit counts from here and is checked between strips of rows (read_rows).
  state->max_time = limits.max_decode_time;
  state->deadline = deadline_of(limits);
  state->bytes = bytes;
  state->limits = limits;
  Result<Opened> opened = open_checked(bytes, limits, &state->scans);
  if (!opened) return opened.error();
  state->opened = std::move(*opened);
  int bands = 3;  // a plan's
  if (state->opened.image) {
    if (Status s = convert_to_srgb8(state->opened.image); !s) return s.error();
    bands = vips_image_get_bands(state->opened.image.get());
  }
  state->image = engine::Image(state->opened.info.width, state->opened.info.height, bands);
  return std::unique_ptr<DecodeJob>(new DecodeJob(std::move(state)));
}

const ImageInfo& DecodeJob::info() const { return state_->opened.info; }
engine::Image& DecodeJob::image() { return state_->image; }

void DecodeJob::wait_rows(int n) const {
  std::unique_lock lock(state_->mutex);
  state_->rows_changed.wait(lock, [&] { return state_->rows >= n; });
}

int DecodeJob::rows() const {
  const std::lock_guard lock(state_->mutex);
  return state_->rows;
}

void DecodeJob::keep_within(int window) {
  {
    const std::lock_guard lock(state_->mutex);
    state_->window = std::max(window, 1);
  }
  state_->consumer_moved.notify_all();
}

void DecodeJob::consumed(int rows) {
  {
    const std::lock_guard lock(state_->mutex);
    state_->consumed = std::max(state_->consumed, rows);
    if (rows >= state_->image.height) state_->window = 0;
  }
  state_->consumer_moved.notify_all();
}

Status DecodeJob::run() {
  State& st = *state_;
  const std::string format = display_name(st.opened.info.format);
  const std::string what = "cannot decode the " + format + " data (truncated or corrupt)";
  // Whatever happens, waiters are released at the end.
  struct Release {
    State& st;
    ~Release() { st.publish(st.image.height); }
  } release{st};
  if (st.scans) {
    const internal::ScanOutcome outcome =
        internal::decode_scans(*st.scans, st.image, st.deadline, [&st](int rows) {
          st.publish(rows);
          st.wait_for_consumer(rows);
        });
    st.scans.reset();
    if (std::optional<Status> s = scan_status(outcome, format, st.max_time)) return *s;
  }
  if (!st.opened.image) {
    // The plan gave the file back: libvips reads it after all, and says what is wrong if anything
    // is. Its size is the plan's (read_rows() checks).
    Result<Opened> opened = open_checked(st.bytes, st.limits);
    if (!opened) return opened.error();
    st.opened.image = std::move(opened->image);
    if (Status s = convert_to_srgb8(st.opened.image); !s) return s;
  }
  VipsImagePtr image = std::move(st.opened.image);
  const int orientation = vips_image_get_orientation(image.get());
  const bool rotate = orientation > 1 && orientation <= 8;
  bool timed_out = false;
  Status read;
  if (!rotate) {
    read = internal::read_rows(image.get(), st.image, ErrorKind::kUndecodable, what, st.deadline,
                               &timed_out, [&st](int rows) {
                                 st.publish(rows);
                                 st.wait_for_consumer(rows);
                               });
  } else {
    // Rotating needs random access, which a sequential loader cannot give: decode, then rotate
    // the decoded pixels.
    Result<engine::Image> upright =
        internal::to_image(image.get(), ErrorKind::kUndecodable, what, st.deadline, &timed_out);
    image.reset();
    if (!upright) {
      read = upright.error();
    } else {
      Result<VipsImagePtr> wrapped = internal::wrap(*upright);
      if (!wrapped) return wrapped.error();
      VipsImagePtr rotated = std::move(*wrapped);
      vips_image_set_int(rotated.get(), VIPS_META_ORIENTATION, orientation);
      if (Status s = step(rotated, ErrorKind::kInternal, "cannot apply the EXIF orientation",
                          [](VipsImage* in, VipsImage** rotated_out) {
                            return vips_autorot(in, rotated_out, nullptr);
                          });
          !s) {
        return s;
      }
      read = internal::read_rows(rotated.get(), st.image, ErrorKind::kInternal,
                                 "cannot apply the EXIF orientation",
                                 std::chrono::steady_clock::time_point::max(), nullptr);
    }
  }
  if (!read && timed_out) return too_slow(format, st.max_time);
  return read;
}

Result<ImageInfo> verify(std::span<const uint8_t> bytes, const Limits& limits) {
  const auto deadline = deadline_of(limits);  // as in DecodeJob::open
  std::optional<internal::ScanPlan> plan;
  Result<Opened> opened = open_checked(bytes, limits, &plan);
  if (!opened) return opened.error();
  const ImageInfo info = opened->info;
  const std::string format = display_name(info.format);
  if (is_animation(info)) {
    // Every frame, as decode_animation() reads them, through one scratch row.
    Result<VipsImagePtr> frames = open_frames(bytes, *opened, nullptr, nullptr);
    if (!frames) return frames.error();
    opened->image.reset();
    std::vector<uint8_t> scratch(static_cast<size_t>(vips_image_get_width(frames->get())) *
                                 static_cast<size_t>(vips_image_get_bands(frames->get())));
    if (Status s = read_frames(
            frames->get(), [&scratch](int) { return scratch.data(); }, format, deadline,
            limits.max_decode_time);
        !s) {
      return s.error();
    }
    return info;
  }
  if (plan) {
    // A progressive JPEG on two threads, at 1/8 scale like libvips below; anything libjpeg
    // warns about goes to libvips, which says what decode() would.
    constexpr int kShrink = 8;
    engine::Image scratch((info.width + kShrink - 1) / kShrink,
                          (info.height + kShrink - 1) / kShrink, 3);
    if (std::optional<Status> s =
            scan_status(internal::decode_scans(*plan, scratch, deadline, {}, kShrink), format,
                        limits.max_decode_time)) {
      if (!*s) return s->error();
      return info;
    }
    opened = open_checked(bytes, limits);
    if (!opened) return opened.error();
  }
  VipsImagePtr image = std::move(opened->image);
  // libvips sizes a shrunk JPEG as the size divided by the shrink, rounded down: a side shorter
  // than the shrink would be 0 pixels (and libvips aborts). The largest shrink both sides allow.
  const int shortest = std::min(info.width, info.height);
  const int shrink = shortest >= 8 ? 8 : shortest >= 4 ? 4 : shortest >= 2 ? 2 : 1;
  if (info.format == InputFormat::kJpeg && shrink > 1) {
    // The same loader and options as open_loader, at 1/shrink scale.
    VipsImage* raw = nullptr;
    if (vips_jpegload_buffer(const_cast<uint8_t*>(bytes.data()), bytes.size(), &raw, "access",
                             VIPS_ACCESS_SEQUENTIAL, "fail_on", VIPS_FAIL_ON_ERROR, "shrink",
                             shrink, nullptr)) {
      return vips_failure(ErrorKind::kUndecodable,
                          "cannot read the " + format + " header (truncated or corrupt data)");
    }
    image.reset(raw);
  }
  if (Status s = convert_to_srgb8(image); !s) return s.error();
  // The EXIF orientation is not applied: rotating decoded pixels cannot fail on bad input.
  engine::Image pixels(vips_image_get_width(image.get()), vips_image_get_height(image.get()),
                       vips_image_get_bands(image.get()));
  bool timed_out = false;
  Status read = internal::read_rows(image.get(), pixels, ErrorKind::kUndecodable,
                                    "cannot decode the " + format + " data (truncated or corrupt)",
                                    deadline, &timed_out);
  if (!read && timed_out) return too_slow(format, limits.max_decode_time);
  if (!read) return read.error();
  return info;
}

Result<engine::Image> decode(std::span<const uint8_t> bytes, const Limits& limits) {
  Result<std::unique_ptr<DecodeJob>> job = DecodeJob::open(bytes, limits);
  if (!job) return job.error();
  if (Status s = (*job)->run(); !s) return s.error();
  return std::move((*job)->image());
}

Result<Animation> decode_animation(std::span<const uint8_t> bytes, const Limits& limits) {
  const auto deadline = deadline_of(limits);  // as in DecodeJob::open
  Result<Opened> opened = open_checked(bytes, limits);
  if (!opened) return opened.error();
  Animation animation;
  if (!is_animation(opened->info)) {
    // decode() reads the header again (cheap next to the pixels) and keeps its own clock.
    opened->image.reset();
    Result<engine::Image> still = decode(bytes, limits);
    if (!still) return still.error();
    animation.frames.push_back(std::move(*still));
    animation.delays_ms.push_back(0);
    return animation;
  }
  const std::string format = display_name(opened->info.format);
  Timing timing;
  int orientation = 1;
  Result<VipsImagePtr> all = open_frames(bytes, *opened, &timing, &orientation);
  if (!all) return all.error();
  opened->image.reset();
  VipsImagePtr frames = std::move(*all);
  const int count = opened->info.frames;
  const int width = vips_image_get_width(frames.get());
  const int height = vips_image_get_height(frames.get()) / count;
  const int bands = vips_image_get_bands(frames.get());
  // Bounded by probe(): count * width * height <= limits.max_animation_pixels.
  animation.frames.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) animation.frames.emplace_back(width, height, bands);
  if (Status s = read_frames(
          frames.get(),
          [&animation, height](int y) {
            return animation.frames[static_cast<size_t>(y / height)].row(y % height);
          },
          format, deadline, limits.max_decode_time);
      !s) {
    return s.error();
  }
  frames.reset();
  if (orientation > 1 && orientation <= 8) {
    for (engine::Image& frame : animation.frames) {
      Result<engine::Image> turned = upright(frame, orientation);
      if (!turned) return turned.error();
      frame = std::move(*turned);
    }
  }
  drop_opaque_alpha(animation.frames);
  animation.delays_ms = std::move(timing.delays_ms);
  animation.loop = timing.loop;
  return animation;
}

}  // namespace dither::imaging
