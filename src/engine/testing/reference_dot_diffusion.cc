// Reference dot diffusion, straight from the definition in docs/ENGINE-ORDERED.md: for each class
// 0..63 in turn, scan the whole image for the pixels of that class, quantise each by brute force
// and push its error to the neighbours of a higher class inside the image.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/testing/reference.h"

namespace dither::engine::reference {

namespace {

// Knuth, "Digital halftones by dot diffusion", ACM TOG 6(4), 1987: the 8x8 class matrix,
// indexed [y mod 8][x mod 8].
const int kClassMatrix[8][8] = {
    {34, 48, 40, 32, 29, 15, 23, 31}, {42, 58, 56, 53, 21, 5, 7, 10},
    {50, 62, 61, 45, 13, 1, 2, 18},   {38, 46, 54, 37, 25, 17, 9, 26},
    {28, 14, 22, 30, 35, 49, 41, 33}, {20, 4, 6, 11, 43, 59, 57, 52},
    {12, 0, 3, 19, 51, 63, 60, 44},   {24, 16, 8, 27, 39, 47, 55, 36},
};

int class_of(int x, int y) { return kClassMatrix[y % 8][x % 8]; }

}  // namespace

Image dot_diffusion(const Image& in, const RefPalette& p, const DitherOptions& o) {
  Image out(in.width, in.height, in.channels);
  // err[y][x][c]: the error given to pixel (x, y) so far.
  std::vector<std::vector<std::array<int32_t, 3>>> err(
      static_cast<size_t>(in.height),
      std::vector<std::array<int32_t, 3>>(static_cast<size_t>(in.width), {0, 0, 0}));
  for (int k = 0; k < 64; ++k) {
    for (int y = 0; y < in.height; ++y) {
      for (int x = 0; x < in.width; ++x) {
        if (class_of(x, y) != k) continue;
        const uint8_t* s = in.at(x, y);
        std::array<int32_t, 3> v{};
        for (int c = 0; c < 3; ++c) {
          v[c] = std::clamp(to_working(s[c], p.space) + err[y][x][c], 0, kWorkingMax);
        }
        std::array<int32_t, 3> chosen{};
        put(out, x, y, nearest(p, v, &chosen));
        if (in.has_alpha() && s[3] == 0) continue;  // transparent: its error is dropped

        // The neighbours inside the image with a higher class, weight 2 orthogonal, 1 diagonal.
        struct Target {
          int x, y, weight;
        };
        std::vector<Target> targets;
        int total = 0;
        for (int dy = -1; dy <= 1; ++dy) {
          for (int dx = -1; dx <= 1; ++dx) {
            const int nx = x + dx;
            const int ny = y + dy;
            if ((dx == 0 && dy == 0) || nx < 0 || ny < 0 || nx >= in.width || ny >= in.height) {
              continue;
            }
            if (class_of(nx, ny) <= k) continue;
            const int weight = (dx == 0 || dy == 0) ? 2 : 1;
            targets.push_back({nx, ny, weight});
            total += weight;
          }
        }
        for (const Target& t : targets) {
          const auto f = static_cast<int32_t>(std::lround(4096.0 * o.strength * t.weight / total));
          for (int c = 0; c < 3; ++c) err[t.y][t.x][c] += ((v[c] - chosen[c]) * f) >> 12;
        }
      }
    }
  }
  return out;
}

}  // namespace dither::engine::reference
