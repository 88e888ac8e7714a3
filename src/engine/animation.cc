// Animations: one palette, and kStable's pinned pixels (docs/ANIMATION.md).
//
// kStable works in one of two ways:
//  - the kernel error diffusions (the named kernels and custom-kernel) run a plain pinned
//    diffusion below: a pixel whose source did not change takes its previous output, and the
//    error that this makes (its value plus incoming error, less that colour) is diffused like any
//    other, so the changed pixels after it make up for it. With no pinned pixel it is exactly the
//    engine's error diffusion (docs/ENGINE.md), which the tests check byte for byte; it is
//    single-threaded and leaves the engine's optimised loops as they are.
//  - every other algorithm: the frame is dithered with dither_image() and the unchanged pixels
//    copied from the previous output. For the positional methods that copy changes nothing.
#include "engine/animation.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>

#include "engine/algorithms.h"
#include "engine/kernels.h"
#include "engine/quantizer.h"

namespace dither::engine {

namespace {

// The combined image an animation's adaptive palette is computed from has at most this many
// pixels: adaptive_palette() itself samples larger images down to 2^20.
constexpr size_t kMaxPaletteSample = size_t{1} << 20;

bool well_formed(const Image& a) {
  return (a.channels == 3 || a.channels == 4) &&
         a.pixels.size() == a.pixel_count() * size_t(a.channels);
}

bool same_shape(const Image& a, const Image& b) {
  return a.width == b.width && a.height == b.height && a.channels == b.channels &&
         a.pixels.size() == b.pixels.size();
}

Status check_frames(const std::vector<Image>& frames) {
  if (frames.empty()) return make_error(ErrorKind::kInvalidArgument, "an animation needs frames");
  for (size_t i = 1; i < frames.size(); ++i) {
    if (!same_shape(frames[i], frames.front())) {
      return make_error(ErrorKind::kInvalidArgument,
                        "every frame must have the first one's size and channel count; frame " +
                            std::to_string(i) + " is " + std::to_string(frames[i].width) + "x" +
                            std::to_string(frames[i].height) + "x" +
                            std::to_string(frames[i].channels) + ", frame 0 is " +
                            std::to_string(frames.front().width) + "x" +
                            std::to_string(frames.front().height) + "x" +
                            std::to_string(frames.front().channels));
    }
  }
  return {};
}

// Where a frame's pixels stay as the previous output shows them: those whose source (all
// channels) equals the previous frame's. `prev` is the previous output, read as 3 samples a pixel
// `step` bytes apart, each `channel_step` apart (0: the alpha plane as grey).
struct Pins {
  const Image* source;
  const Image* prev_source;
  const uint8_t* prev;
  size_t step;
  size_t channel_step;

  bool pinned(size_t i) const {
    const size_t n = static_cast<size_t>(source->channels);
    return std::memcmp(&source->pixels[i * n], &prev_source->pixels[i * n], n) == 0;
  }
  const uint8_t* colour(size_t i) const { return prev + i * step; }
};

// The colour error diffusion picks for working values `v` (docs/ENGINE.md: levels by nearest
// level, lists by sample cell), written into `d`; returns `v` less its working values.
std::array<int32_t, 3> diffusion_pick(const Quantizer& q, const std::array<int32_t, 3>& v,
                                      uint8_t* d) {
  if (q.is_levels()) return detail::put_nearest<true>(q, v, d);
  const int idx = q.cell_nearest(v[0], v[1], v[2]);
  const Color col = q.color(idx);
  d[0] = col.r;
  d[1] = col.g;
  d[2] = col.b;
  const auto& w = q.working(idx);
  return {v[0] - w[0], v[1] - w[1], v[2] - w[2]};
}

// Error diffusion of `in` (alpha already final) with `o`'s kernel, pinned pixels taking their
// previous colour. The arithmetic is docs/ENGINE.md's, with whole rows of error in a ring.
void pinned_diffusion(const Image& in, const Pins& pins, const Quantizer& q, const DitherOptions& o,
                      Image& out) {
  const Kernel k = o.algorithm == Algorithm::kCustomKernel ? custom_kernel_taps(*o.kernel)
                                                           : *kernel_for(o.algorithm);
  const auto factors = fixed_point_weights(k, o.strength);
  const auto& to_working = q.to_working();
  constexpr int kPad = kMaxKernelReach;
  constexpr int kRows = kMaxKernelDepth + 1;
  const size_t padded = static_cast<size_t>(in.width + 2 * kPad);
  std::vector<std::array<int32_t, 3>> err(padded * kRows);
  auto cell = [&](int x, int y) -> std::array<int32_t, 3>& {
    return err[static_cast<size_t>(y % kRows) * padded + static_cast<size_t>(x + kPad)];
  };
  out = Image(in.width, in.height, in.channels);
  const size_t ch = static_cast<size_t>(in.channels);
  for (int y = 0; y < in.height; ++y) {
    const bool reverse = o.serpentine && y % 2 == 1;
    for (int i = 0; i < in.width; ++i) {
      const int x = reverse ? in.width - 1 - i : i;
      const size_t at = static_cast<size_t>(y) * static_cast<size_t>(in.width) + size_t(x);
      const uint8_t* s = &in.pixels[at * ch];
      uint8_t* d = &out.pixels[at * ch];
      std::array<int32_t, 3> v{};
      for (size_t c = 0; c < 3; ++c) v[c] = std::clamp(to_working[s[c]] + cell(x, y)[c], 0, 65535);
      std::array<int32_t, 3> e{};
      if (pins.pinned(at)) {
        const uint8_t* p = pins.colour(at);
        for (size_t c = 0; c < 3; ++c) {
          d[c] = p[c * pins.channel_step];
          e[c] = v[c] - to_working[d[c]];
        }
      } else {
        e = diffusion_pick(q, v, d);
      }
      if (ch == 4) d[3] = s[3];
      if (ch == 4 && s[3] == 0) continue;  // transparent: its error is dropped
      for (int t = 0; t < k.tap_count; ++t) {
        const KernelTap& tap = k.taps[static_cast<size_t>(t)];
        auto& target = cell(x + (reverse ? -tap.dx : tap.dx), y + tap.dy);
        for (size_t c = 0; c < 3; ++c) {
          target[c] += (e[c] * factors[static_cast<size_t>(t)]) >> kWeightShift;
        }
      }
    }
    // Row y is read: its ring row becomes row y + kRows (margins too, or they would overflow).
    std::fill_n(&cell(-kPad, y), padded, std::array<int32_t, 3>{});
  }
}

// AlphaMode::kDither's alpha under pins: the alpha plane as a grey image, dithered black and
// white in sRGB like dither_alpha() in dither.cc, pinned to the previous output's alpha. Alpha 0
// and 255 stay as they are.
void pinned_alpha(Image& work, const Pins& frame_pins, const DitherOptions& options) {
  Image grey(work.width, work.height, 3);
  const size_t n = work.pixel_count();
  for (size_t i = 0; i < n; ++i) std::fill_n(&grey.pixels[i * 3], 3, work.pixels[i * 4 + 3]);
  DitherOptions o = options;
  o.alpha = AlphaMode::kKeep;
  o.color_space = ColorSpace::kSrgb;
  o.metric = Metric::kEuclidean;
  const Quantizer q(Palette::uniform_levels(2), o.color_space, o.metric);
  Pins pins = frame_pins;
  pins.prev += 3;  // the previous output's alpha, as grey
  pins.channel_step = 0;
  Image bw;
  pinned_diffusion(grey, pins, q, o, bw);
  for (size_t i = 0; i < n; ++i) {
    uint8_t& a = work.pixels[i * 4 + 3];
    if (a != 0 && a != 255) a = bw.pixels[i * 3];
  }
}

// kStable for the kernel error diffusions: `frame` prepared as dither_into() prepares it for its
// alpha mode, then the pinned diffusion with `q` (the palette's, for the options' space and
// metric).
Image pinned_frame(const Image& frame, const Image& prev_frame, const Image& prev_out,
                   const Quantizer& q, const DitherOptions& options) {
  const Pins pins{&frame, &prev_frame, prev_out.pixels.data(),
                  static_cast<size_t>(prev_out.channels), 1};
  DitherOptions o = options;
  o.alpha = AlphaMode::kKeep;
  Image out;
  if (!frame.has_alpha() || options.alpha == AlphaMode::kKeep) {
    pinned_diffusion(frame, pins, q, o, out);
  } else if (options.alpha == AlphaMode::kFlatten) {
    pinned_diffusion(flatten_alpha(frame, options.background), pins, q, o, out);
  } else {
    Image work = frame;
    if (options.alpha == AlphaMode::kThreshold) {
      for (size_t i = 0; i < work.pixel_count(); ++i) {
        uint8_t& a = work.pixels[i * 4 + 3];
        a = a >= 128 ? 255 : 0;
      }
    } else {
      pinned_alpha(work, pins, options);
    }
    pinned_diffusion(work, pins, q, o, out);
  }
  return out;
}

// kStable for the other algorithms: the unchanged pixels of `out` (a fresh dither of `frame`)
// copied from the previous output.
void copy_unchanged(const Image& frame, const Image& prev_frame, const Image& prev_out,
                    Image& out) {
  const size_t in_ch = static_cast<size_t>(frame.channels);
  const size_t out_ch = static_cast<size_t>(out.channels);
  for (size_t i = 0; i < frame.pixel_count(); ++i) {
    if (std::memcmp(&frame.pixels[i * in_ch], &prev_frame.pixels[i * in_ch], in_ch) == 0) {
      std::memcpy(&out.pixels[i * out_ch], &prev_out.pixels[i * out_ch], out_ch);
    }
  }
}

// Row y of `frame`, columns 0, step, 2 step... of a frame `full_width` wide (nearest neighbour when
// the frame has another width), into `out`'s row `row` (alpha 255 if the frame has none).
void sample_row(const Image& frame, int y, size_t step, size_t full_width, Image& out, int row) {
  const size_t width = static_cast<size_t>(frame.width);
  const size_t channels = static_cast<size_t>(out.channels);
  for (size_t x = 0; x < size_t(out.width); ++x) {
    const size_t column = std::min(x * step * width / full_width, width - 1);
    const uint8_t* p = frame.at(static_cast<int>(column), y);
    uint8_t* d = out.row(row) + x * channels;
    std::copy_n(p, 3, d);
    if (channels == 4) d[3] = frame.has_alpha() ? p[3] : uint8_t{255};
  }
}

// Frame `index` gives rows first_row, first_row + stride... (first_row = index mod stride, so
// that the frames of a still scene give different rows).
int first_row(const Image& frame, size_t index, int stride) {
  return static_cast<int>(index % static_cast<size_t>(stride)) % frame.height;
}

// One image of at most kMaxPaletteSample pixels (unless there are more frames than that) holding
// sampled rows of every frame, stacked: the first frame's channel count, every `column_step`-th
// column of its width, every `stride`-th row. `frames` are not empty.
Image palette_sample(const std::vector<const Image*>& frames) {
  const Image& first = *frames.front();
  const size_t count = frames.size();
  const size_t full_width = static_cast<size_t>(first.width);
  size_t column_step = 1;
  auto width_at = [&](size_t step) { return (full_width + step - 1) / step; };
  while (column_step < full_width && width_at(column_step) * count > kMaxPaletteSample) {
    ++column_step;
  }
  const size_t width = width_at(column_step);
  auto rows_at = [&](int stride) {
    size_t rows = 0;
    for (size_t f = 0; f < count; ++f) {
      const int h = frames[f]->height;
      rows += static_cast<size_t>((h - first_row(*frames[f], f, stride) + stride - 1) / stride);
    }
    return rows;
  };
  int stride = 1;
  while (rows_at(stride) > count && rows_at(stride) * width > kMaxPaletteSample) ++stride;
  Image out(static_cast<int>(width), static_cast<int>(rows_at(stride)), first.channels);
  int row = 0;
  for (size_t f = 0; f < count; ++f) {
    const Image& frame = *frames[f];
    for (int y = first_row(frame, f, stride); y < frame.height; y += stride) {
      sample_row(frame, y, column_step, full_width, out, row++);
    }
  }
  return out;
}

}  // namespace

Result<std::vector<Image>> dither_frames(const std::vector<Image>& frames, const Palette& palette,
                                         const DitherOptions& options, Temporal temporal) {
  if (Status s = check_frames(frames); !s) return s.error();
  const bool pinned = is_error_diffusion(options.algorithm);
  // Built once for all frames: for a list palette it costs as much as dithering a small frame.
  std::optional<Quantizer> q;
  std::vector<Image> out;
  out.reserve(frames.size());
  for (size_t i = 0; i < frames.size(); ++i) {
    if (temporal == Temporal::kStable && i > 0 && pinned) {
      if (!q) q.emplace(palette, options.color_space, options.metric);
      out.push_back(pinned_frame(frames[i], frames[i - 1], out.back(), *q, options));
      continue;
    }
    Result<Image> frame = dither_image(frames[i], palette, options);
    if (!frame.ok()) return frame.error();
    if (temporal == Temporal::kStable && i > 0) {
      copy_unchanged(frames[i], frames[i - 1], out.back(), *frame);
    }
    out.push_back(std::move(*frame));
  }
  return out;
}

double flicker(const std::vector<Image>& source, const std::vector<Image>& output) {
  if (source.size() != output.size()) {
    throw std::invalid_argument("flicker: as many output frames as source frames");
  }
  size_t still = 0;
  size_t changed = 0;
  for (size_t f = 1; f < source.size(); ++f) {
    const Image& a = source[f - 1];
    const Image& b = source[f];
    const Image& p = output[f - 1];
    const Image& q = output[f];
    if (!well_formed(a) || !well_formed(p) || !same_shape(a, b) || !same_shape(p, q) ||
        a.width != p.width || a.height != p.height) {
      throw std::invalid_argument("flicker: frames of one size, sources and outputs alike");
    }
    const size_t in_ch = static_cast<size_t>(a.channels);
    const size_t out_ch = static_cast<size_t>(p.channels);
    for (size_t i = 0; i < a.pixel_count(); ++i) {
      if (std::memcmp(&a.pixels[i * in_ch], &b.pixels[i * in_ch], in_ch) != 0) continue;
      ++still;
      if (std::memcmp(&p.pixels[i * out_ch], &q.pixels[i * out_ch], out_ch) != 0) ++changed;
    }
  }
  return still == 0 ? 0.0 : static_cast<double>(changed) / static_cast<double>(still);
}

Palette resolve_palette(const PaletteSpec& spec, const std::vector<Image>& frames,
                        ColorSpace space) {
  if (spec.kind != PaletteSpec::Kind::kAdaptive || frames.size() <= 1) {
    return resolve_palette(spec, frames.empty() ? Image() : frames.front(), space);
  }
  std::vector<const Image*> sampled;
  for (const Image& frame : frames) {
    if (well_formed(frame) && frame.pixel_count() > 0) sampled.push_back(&frame);
  }
  if (sampled.empty()) return resolve_palette(spec, Image(), space);
  return resolve_palette(spec, palette_sample(sampled), space);
}

}  // namespace dither::engine
