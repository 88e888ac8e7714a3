// Internal: one function per algorithm family, called by dither_image() after validation.
//
// Each writes every pixel of `out` (already sized like `in`; alpha copied by the caller) using
// `q` for nearest-colour search. All are deterministic and give the same bytes for any thread
// count. Not part of the public API.
#pragma once

#include <array>
#include <cstdint>
#include <functional>

#include "engine/image.h"
#include "engine/options.h"
#include "engine/quantizer.h"

namespace dither::engine::detail {

// `wait` and `done` (may be empty): see SourceRows in dither.h. `wait` is called before each band
// of rows is read; `done` after each band is written, when one thread runs them all.
void error_diffusion(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o,
                     const std::function<void(int rows)>& wait = {},
                     const std::function<void(int rows)>& done = {});
void ordered_dither(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o);
void riemersma_dither(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o);
void yliluoma_dither(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o);
void dot_diffusion(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o);
// Ostromoukhov and Zhou-Fang (variable_diffusion.cc).
void variable_diffusion(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o);
void pattern_dither(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o);
void dbs_dither(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o);

// Writes palette colour (or per-channel levels) for working values r, g, b into `dst`.
inline void write_nearest(const Quantizer& q, int r, int g, int b, uint8_t* dst) {
  if (q.is_levels()) {
    dst[0] = q.level_output(q.level_of(r));
    dst[1] = q.level_output(q.level_of(g));
    dst[2] = q.level_output(q.level_of(b));
  } else {
    const Color c = q.color(q.nearest(r, g, b));
    dst[0] = c.r;
    dst[1] = c.g;
    dst[2] = c.b;
  }
}

// The colour nearest to working values `v`, written into `dst`; returns the error, `v` minus the
// colour's working values (Riemersma, dot diffusion). kLevels: `q` is per-channel levels.
template <bool kLevels>
inline std::array<int32_t, 3> put_nearest(const Quantizer& q, const std::array<int32_t, 3>& v,
                                          uint8_t* dst) {
  std::array<int32_t, 3> e{};
  if constexpr (kLevels) {
    for (size_t c = 0; c < 3; ++c) {
      const int level = q.level_of(v[c]);
      dst[c] = q.level_output(level);
      e[c] = v[c] - q.level_working(level);
    }
  } else {
    const int idx = q.nearest(v[0], v[1], v[2]);
    const Color col = q.color(idx);
    dst[0] = col.r;
    dst[1] = col.g;
    dst[2] = col.b;
    for (size_t c = 0; c < 3; ++c) e[c] = v[c] - q.working(idx)[c];
  }
  return e;
}

// Mean over a list palette's colours of the Chebyshev distance (working values) to the nearest
// other colour; 0 for one colour. The amplitude of ordered dithering and of Zhou-Fang's
// modulation for list palettes.
double list_spread(const Quantizer& q);

// Number of worker threads to use for `requested` (0 = all hardware threads).
int resolve_threads(int requested);

}  // namespace dither::engine::detail
