// Knoll's pattern dithering for arbitrary palettes (Thomas Knoll's method, patented by Adobe, the
// patent now expired; as described by Joel Yliluoma in "Joel Yliluoma's arbitrary-palette
// positional dithering algorithm", the "Knoll" section).
//
// For each input colour T a list of 64 candidates is built by running error diffusion "in time"
// on one pixel: candidate k is the palette colour nearest to T + (E * f) >> 12, E the error
// accumulated so far (sum of T minus the earlier candidates), f = lround(4096 * strength). The
// mean of the candidates approaches T, so each appears about as often as the mix needs it. The
// candidates are sorted by luma (299 R + 587 G + 114 B of the sRGB colour, ties by palette index)
// and pixel (x, y) takes candidate rank(x, y) of the 8x8 Bayer matrix: a mix of 64 entries, one
// per cell of the matrix, laid out so that dark and bright alternate finely. strength 0 gives 64
// copies of the nearest colour: plain nearest-colour quantisation.
//
// Levels palettes are separable, so each channel runs the process alone and its 64 levels are
// sorted by level: pixel (x, y) takes the rank(x, y)-th level of each channel. (Sorting whole
// colours by luma would scatter each channel's levels over unrelated ranks, and a set of ranks
// that is not a run 0..k of the Bayer matrix clumps.) In sRGB this nearly always gives the bytes
// of Bayer 8x8 ordered dithering.
//
// The candidates depend only on the input colour; each thread keeps a direct-mapped cache of the
// sorted lists and works on its own band of rows, so the output never depends on the thread count.
// docs/ENGINE-ORDERED.md, "Pattern dithering (Knoll)", has the exact arithmetic.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/algorithms.h"
#include "engine/threshold_maps.h"

namespace dither::engine::detail {

namespace {

constexpr int kCandidates = 64;  // one per cell of the 8x8 Bayer matrix
constexpr int kCacheBits = 13;   // 8192 lists of 192 bytes: 1.5 MB a thread

using Candidates = std::array<Color, kCandidates>;
using Ids = std::array<uint8_t, kCandidates>;  // palette indices or levels

// Sorts the 64 ids of a candidate list (each below 256; `less` a strict total order) in runs: a
// mix uses few distinct ids, so it counts them, orders the distinct ones by insertion and writes
// each out as often as it came. Several times faster than a general sort of 64 entries.
class RunSorter {
 public:
  template <class Less>
  void sort(Ids& ids, Less less) {
    size_t distinct = 0;
    for (uint8_t id : ids) {
      if (count_[id]++ == 0) seen_[distinct++] = id;
    }
    for (size_t i = 1; i < distinct; ++i) {
      const uint8_t id = seen_[i];
      size_t j = i;
      for (; j > 0 && less(id, seen_[j - 1]); --j) seen_[j] = seen_[j - 1];
      seen_[j] = id;
    }
    size_t k = 0;
    for (size_t i = 0; i < distinct; ++i) {
      const uint8_t id = seen_[i];
      for (; count_[id] > 0; --count_[id]) ids[k++] = id;
    }
  }

 private:
  std::array<uint8_t, 256> count_{};  // all zero between calls
  Ids seen_{};
};

// Builds the sorted candidate list of one colour. kLevels: `q` is a levels palette.
template <bool kLevels>
class CandidateMaker {
 public:
  CandidateMaker(const Quantizer& q, double strength)
      : q_(q), factor_(std::lround(4096.0 * strength)) {
    if constexpr (!kLevels) {
      for (int i = 0; i < q.size(); ++i) {
        const Color c = q.color(i);
        luma_.push_back(299u * c.r + 587u * c.g + 114u * c.b);
      }
    }
  }

  void make(const std::array<int32_t, 3>& target, Candidates& out) {
    std::array<int64_t, 3> error{};
    for (size_t k = 0; k < kCandidates; ++k) {
      std::array<int32_t, 3> v{};
      for (size_t c = 0; c < 3; ++c) {
        v[c] = static_cast<int32_t>(
            std::clamp<int64_t>(target[c] + ((error[c] * factor_) >> 12), 0, kWorkingMax));
      }
      pick(k, v, target, error);
    }
    if constexpr (kLevels) {
      // Each channel's levels in increasing order: candidate k is the k-th of each channel.
      for (Ids& channel : levels_)
        sorter_.sort(channel, [](uint8_t a, uint8_t b) { return a < b; });
      for (size_t k = 0; k < kCandidates; ++k) {
        out[k] = Color{q_.level_output(levels_[0][k]), q_.level_output(levels_[1][k]),
                       q_.level_output(levels_[2][k])};
      }
    } else {
      sorter_.sort(ids_, [this](uint8_t a, uint8_t b) {
        return luma_[a] != luma_[b] ? luma_[a] < luma_[b] : a < b;
      });
      for (size_t k = 0; k < kCandidates; ++k) out[k] = q_.color(ids_[k]);
    }
  }

 private:
  // Candidate k: the nearest colour to `v` (levels: per channel); adds target - colour to `error`.
  void pick(size_t k, const std::array<int32_t, 3>& v, const std::array<int32_t, 3>& target,
            std::array<int64_t, 3>& error) {
    if constexpr (kLevels) {
      for (size_t c = 0; c < 3; ++c) {
        const int level = q_.level_of(v[c]);
        levels_[c][k] = static_cast<uint8_t>(level);
        error[c] += target[c] - q_.level_working(level);
      }
    } else {
      const int idx = q_.nearest(v[0], v[1], v[2]);
      for (size_t c = 0; c < 3; ++c) error[c] += target[c] - q_.working(idx)[c];
      ids_[k] = static_cast<uint8_t>(idx);
    }
  }

  const Quantizer& q_;
  int64_t factor_;
  std::vector<uint32_t> luma_;   // list palettes: 299 R + 587 G + 114 B
  Ids ids_{};                    // list palettes: the candidates' indices
  std::array<Ids, 3> levels_{};  // levels palettes: each channel's levels
  RunSorter sorter_;
};

// Sorted candidate lists keyed by the packed sRGB input colour, direct-mapped; one per thread.
template <bool kLevels>
class CandidateCache {
 public:
  CandidateCache() : keys_(size_t{1} << kCacheBits, kEmpty), lists_(size_t{1} << kCacheBits) {}

  const Candidates& get(const uint8_t* rgb, const std::array<uint16_t, 256>& tw,
                        CandidateMaker<kLevels>& maker) {
    const uint32_t key = (uint32_t{rgb[0]} << 16) | (uint32_t{rgb[1]} << 8) | rgb[2];
    const size_t slot = (key * 0x9e3779b1U) >> (32 - kCacheBits);
    if (keys_[slot] != key) {
      keys_[slot] = key;
      maker.make({tw[rgb[0]], tw[rgb[1]], tw[rgb[2]]}, lists_[slot]);
    }
    return lists_[slot];
  }

 private:
  static constexpr uint32_t kEmpty = 0xffffffffU;  // no 24-bit key has it
  std::vector<uint32_t> keys_;
  std::vector<Candidates> lists_;
};

template <bool kLevels>
void run(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o) {
  const ThresholdMap map = bayer_map(8);
  const auto& tw = q.to_working();
  const size_t channels = static_cast<size_t>(in.channels);
  for_row_bands(in.height, resolve_threads(o.threads), [&](int y0, int y1) {
    CandidateMaker<kLevels> maker(q, o.strength);
    CandidateCache<kLevels> cache;
    for (int y = y0; y < y1; ++y) {
      const uint8_t* p = in.row(y);
      uint8_t* d = out.row(y);
      const uint16_t* ranks = map.ranks.data() + static_cast<size_t>(y % 8) * 8;
      for (int x = 0; x < in.width; ++x, p += channels, d += channels) {
        const Color c = cache.get(p, tw, maker)[ranks[x & 7]];
        d[0] = c.r;
        d[1] = c.g;
        d[2] = c.b;
      }
    }
  });
}

}  // namespace

void pattern_dither(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o) {
  if (q.is_levels()) {
    run<true>(in, out, q, o);
  } else {
    run<false>(in, out, q, o);
  }
}

}  // namespace dither::engine::detail
