// Void-and-cluster, as Ulichney described it:
//  1. a random binary pattern with about a tenth of the cells set;
//  2. relaxed by moving the tightest cluster (the set cell with the most filtered energy) to the
//     largest void (the empty cell with the least) until the move would put it back;
//  3. ranks below the initial count: remove tightest clusters one by one from a copy, the last
//     removed getting rank 0;
//  4. ranks from the initial count up: fill largest voids one by one. Ulichney's third phase
//     (past half, fill the tightest cluster of empty cells) picks exactly the same cells, because
//     the energy of the empty cells is the filter's total minus the energy of the set ones.
// Energy is the sum of a toroidal Gaussian over set cells, kept up to date incrementally in
// integers (weights scaled by 2^20 and rounded), so ties and results never depend on rounding;
// ties go to the lowest cell index.
#include "engine/blue_noise.h"

#include <cmath>
#include <limits>
#include <vector>

namespace dither::engine::detail {

namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

class Energy {
 public:
  Energy(int size, double sigma) : size_(size), mask_(size - 1) {
    const size_t n = static_cast<size_t>(size) * static_cast<size_t>(size);
    kernel_.resize(n);
    energy_.assign(n, 0);
    set_.assign(n, 0);
    for (int dy = 0; dy < size; ++dy) {
      for (int dx = 0; dx < size; ++dx) {
        const int tx = std::min(dx, size - dx);
        const int ty = std::min(dy, size - dy);
        const double g = std::exp(-(tx * tx + ty * ty) / (2.0 * sigma * sigma));
        kernel_[static_cast<size_t>(dy * size + dx)] =
            static_cast<int32_t>(std::lround(g * 1048576.0));
      }
    }
  }

  bool is_set(int i) const { return set_[static_cast<size_t>(i)] != 0; }
  void set(int i) { update(i, 1); }
  void clear(int i) { update(i, -1); }

  // The set cell with the highest energy.
  int tightest_cluster() const { return extreme(1, true); }
  // The empty cell with the lowest energy.
  int largest_void() const { return extreme(0, false); }

 private:
  void update(int i, int sign) {
    set_[static_cast<size_t>(i)] = sign > 0 ? 1 : 0;
    const int px = i & mask_;
    const int py = i / size_;
    for (int y = 0; y < size_; ++y) {
      const int32_t* k = kernel_.data() + static_cast<size_t>(((y - py) & mask_) * size_);
      int32_t* e = energy_.data() + static_cast<size_t>(y * size_);
      for (int x = 0; x < size_; ++x) e[x] += sign * k[(x - px) & mask_];
    }
  }

  // Callers only ask when such a cell exists.
  int extreme(uint8_t want, bool highest) const {
    int best = 0;
    int32_t best_e =
        highest ? std::numeric_limits<int32_t>::min() : std::numeric_limits<int32_t>::max();
    for (size_t i = 0; i < energy_.size(); ++i) {
      if (set_[i] != want) continue;
      const int32_t e = energy_[i];
      if (highest ? e > best_e : e < best_e) {
        best_e = e;
        best = static_cast<int>(i);
      }
    }
    return best;
  }

  int size_;
  int mask_;
  std::vector<int32_t> kernel_;
  std::vector<int32_t> energy_;
  std::vector<uint8_t> set_;
};

}  // namespace

ThresholdMap void_and_cluster(int size, double sigma, uint64_t seed) {
  const int n = size * size;
  Energy proto(size, sigma);
  const int ones = n / 10;
  uint64_t state = seed;
  for (int placed = 0; placed < ones;) {
    const int i = static_cast<int>(splitmix64(state) % static_cast<uint64_t>(n));
    if (proto.is_set(i)) continue;
    proto.set(i);
    ++placed;
  }
  // Relaxation; the cap only guards against a cycle, which Ulichney's rule does not produce here.
  for (int step = 0; step < 4 * n; ++step) {
    const int cluster = proto.tightest_cluster();
    proto.clear(cluster);
    const int hole = proto.largest_void();
    proto.set(hole);
    if (hole == cluster) break;
  }

  ThresholdMap m;
  m.width = size;
  m.height = size;
  m.levels = n;
  m.ranks.assign(static_cast<size_t>(n), 0);
  Energy shrinking = proto;
  for (int r = ones - 1; r >= 0; --r) {
    const int cluster = shrinking.tightest_cluster();
    shrinking.clear(cluster);
    m.ranks[static_cast<size_t>(cluster)] = static_cast<uint16_t>(r);
  }
  Energy growing = std::move(proto);
  for (int r = ones; r < n; ++r) {
    const int hole = growing.largest_void();
    growing.set(hole);
    m.ranks[static_cast<size_t>(hole)] = static_cast<uint16_t>(r);
  }
  return m;
}

const ThresholdMap& blue_noise_map() {
  static const ThresholdMap map = void_and_cluster(64, 1.5, kBlueNoiseSeed);
  return map;
}

}  // namespace dither::engine::detail
