#include "imaging/color_index.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <memory>

namespace dither::imaging::internal {
namespace {

// Colours packed as r | g << 8 | b << 16 | a << 24.
constexpr uint32_t pack(uint8_t r, uint8_t g, uint8_t b, uint8_t a) {
  return uint32_t{r} | (uint32_t{g} << 8) | (uint32_t{b} << 16) | (uint32_t{a} << 24);
}

constexpr Rgba unpack(uint32_t key) {
  return Rgba{static_cast<uint8_t>(key), static_cast<uint8_t>(key >> 8),
              static_cast<uint8_t>(key >> 16), static_cast<uint8_t>(key >> 24)};
}

template <int kChannels, AlphaMode kMode>
uint32_t key_of(const uint8_t* p) {
  const uint8_t alpha = kChannels == 4 ? p[3] : 255;
  if constexpr (kMode == AlphaMode::kBinary) {
    if (alpha < 128) return 0;
    return pack(p[0], p[1], p[2], 255);
  } else if constexpr (kMode == AlphaMode::kOneTransparent) {
    if (alpha == 0) return 0;
    return pack(p[0], p[1], p[2], alpha);
  } else {
    return pack(p[0], p[1], p[2], alpha);
  }
}

// At most 256 colours in a table of 1024 slots: probes stay short.
class ColorTable {
 public:
  ColorTable() { slots_.fill(kEmpty); }

  // The index of `key` when it sits in its own slot, else -1 (then find_or_insert()). With at
  // most 256 colours in 1024 slots it nearly always does: one probe and a branch that is
  // predicted, where a dither's runs of one or two pixels made a cache of the last colour miss
  // half the time (17.9 MP of an 8-colour dither: 90 ms -> 22 ms).
  int find(uint32_t key) const {
    const int16_t index = slots_[slot_of(key)];
    return index >= 0 && keys_[static_cast<size_t>(index)] == key ? index : -1;
  }

  // The index of `key`, added if new; -1 when it is new and the table is full.
  int find_or_insert(uint32_t key) {
    uint32_t slot = slot_of(key);
    while (true) {
      const int16_t index = slots_[slot];
      if (index == kEmpty) {
        if (count_ == kMaxIndexedColors) return -1;
        slots_[slot] = static_cast<int16_t>(count_);
        keys_[static_cast<size_t>(count_)] = key;
        return count_++;
      }
      if (keys_[static_cast<size_t>(index)] == key) return index;
      slot = (slot + 1) & (kSlots - 1);
    }
  }

  static uint32_t slot_of(uint32_t key) { return (key * 0x9E3779B1u) >> (32 - kBits); }
  int size() const { return count_; }
  uint32_t key(int index) const { return keys_[static_cast<size_t>(index)]; }

 private:
  static constexpr uint32_t kBits = 10;
  static constexpr uint32_t kSlots = 1u << kBits;
  static constexpr int16_t kEmpty = -1;
  std::array<int16_t, kSlots> slots_;
  std::array<uint32_t, kMaxIndexedColors> keys_{};
  int count_ = 0;
};

// Pixels [first, last) of `img`; false as soon as a 257th colour appears.
template <int kChannels, AlphaMode kMode>
bool index_pixels(const engine::Image& img, size_t first, size_t last, ColorTable& table,
                  uint8_t* out) {
  if (first >= last) return true;
  const uint8_t* p = img.pixels.data() + first * kChannels;
  for (size_t i = first; i < last; ++i, p += kChannels) {
    const uint32_t key = key_of<kChannels, kMode>(p);
    int index = table.find(key);
    if (index < 0) {
      index = table.find_or_insert(key);
      if (index < 0) return false;
    }
    out[i] = static_cast<uint8_t>(index);
  }
  return true;
}

}  // namespace

struct ColorIndexer::State {
  AlphaMode mode = AlphaMode::kExact;
  int channels = 3;
  size_t row_pixels = 0;
  int done = 0;
  bool fits = true;
  ColorTable table;
  IndexedImage result;
};

ColorIndexer::ColorIndexer(const engine::Image& shape, AlphaMode mode)
    : state_(std::make_unique<State>()) {
  state_->mode = mode;
  state_->channels = shape.channels;
  state_->row_pixels = static_cast<size_t>(shape.width);
  state_->result.indices.resize(shape.pixel_count());
}

ColorIndexer::~ColorIndexer() = default;

void ColorIndexer::add_rows(const engine::Image& img, int rows) {
  State& st = *state_;
  rows = std::min(rows, img.height);
  if (!st.fits || rows <= st.done) return;
  const size_t first = static_cast<size_t>(st.done) * st.row_pixels;
  const size_t last = static_cast<size_t>(rows) * st.row_pixels;
  uint8_t* out = st.result.indices.data();
  if (st.channels == 4) {
    switch (st.mode) {
      case AlphaMode::kExact:
        st.fits = index_pixels<4, AlphaMode::kExact>(img, first, last, st.table, out);
        break;
      case AlphaMode::kOneTransparent:
        st.fits = index_pixels<4, AlphaMode::kOneTransparent>(img, first, last, st.table, out);
        break;
      case AlphaMode::kBinary:
        st.fits = index_pixels<4, AlphaMode::kBinary>(img, first, last, st.table, out);
        break;
    }
  } else {
    // Every pixel is opaque: the modes agree.
    st.fits = index_pixels<3, AlphaMode::kExact>(img, first, last, st.table, out);
  }
  st.done = rows;
}

ColorIndexer::Progress ColorIndexer::progress() const {
  const State& st = *state_;
  return {st.done, st.table.size(), st.fits, st.result.indices.data()};
}

std::optional<IndexedImage> ColorIndexer::finish(const engine::Image& img) {
  add_rows(img, img.height);
  State& st = *state_;
  if (!st.fits) return std::nullopt;
  IndexedImage result = std::move(st.result);
  // Translucent entries first, each group in order of first appearance.
  std::array<uint8_t, kMaxIndexedColors> new_index{};
  bool reordered = false;
  for (int pass = 0; pass < 2; ++pass) {
    for (int i = 0; i < st.table.size(); ++i) {
      const Rgba c = unpack(st.table.key(i));
      if ((c.a != 255) != (pass == 0)) continue;
      new_index[static_cast<size_t>(i)] = static_cast<uint8_t>(result.palette.size());
      reordered |= static_cast<size_t>(i) != result.palette.size();
      result.palette.push_back(c);
    }
  }
  if (reordered) {
    for (uint8_t& index : result.indices) index = new_index[index];
  }
  return result;
}

std::optional<IndexedImage> index_colors(const engine::Image& img, AlphaMode mode) {
  return ColorIndexer(img, mode).finish(img);
}

}  // namespace dither::imaging::internal
