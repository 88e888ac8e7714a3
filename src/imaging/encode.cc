// encode(): picks the layout for each output format and hands over to its writer.
#include <memory>
#include <optional>
#include <string>

#include "imaging/codec.h"
#include "imaging/color_index.h"
#include "imaging/parallel_zlib.h"
#include "imaging/writers.h"

namespace dither::imaging {

namespace {

Status check_encodable(const engine::Image& img) {
  if (img.width <= 0 || img.height <= 0) {
    return make_error(ErrorKind::kInvalidArgument, "cannot encode an empty image");
  }
  if ((img.channels != 3 && img.channels != 4) ||
      img.pixels.size() != img.pixel_count() * static_cast<size_t>(img.channels)) {
    return make_error(ErrorKind::kInvalidArgument,
                      "cannot encode: not a valid RGB or RGBA image (" + std::to_string(img.width) +
                          "x" + std::to_string(img.height) + "x" + std::to_string(img.channels) +
                          ", " + std::to_string(img.pixels.size()) + " bytes)");
  }
  return Status();
}

}  // namespace

struct RowEncoder::State {
  OutputFormat format;
  PngEffort effort = PngEffort::kPatterned;
  int width = 0, height = 0, channels = 0;
  bool valid = false;
  std::optional<internal::ColorIndexer> indexer;  // PNG and GIF
  // An RGB PNG: its image data packed and compressed as rows are indexed (internal::ZlibStream),
  // at the bit depth the colours so far need. finish() uses it if that is the final depth;
  // otherwise (or with more than 256 colours) it is dropped and finish() starts afresh.
  std::unique_ptr<internal::ZlibStream> stream;
  int stream_depth = 0;
  int packed = 0;          // rows packed into the stream
  bool streaming = false;  // an RGB PNG, and not given up

  void advance_stream();
};

void RowEncoder::State::advance_stream() {
  const internal::ColorIndexer::Progress progress = indexer->progress();
  const int depth = internal::png_bit_depth(static_cast<size_t>(progress.colours));
  if (!progress.fits) {
    streaming = false;
    stream.reset();
    return;
  }
  const size_t row_bytes = internal::png_row_bytes(width, depth);
  if (stream && depth != stream_depth) {
    // More colours than the depth holds: packed afresh, unless a piece may be compressed already.
    if (static_cast<size_t>(packed) * internal::png_row_bytes(width, stream_depth) >=
        internal::kZlibPiece) {
      streaming = false;
      stream.reset();
      return;
    }
    stream.reset();
  }
  if (!stream) {
    const size_t size = row_bytes * static_cast<size_t>(height);
    // One piece (at this depth, so far): compressed at finish(), as nothing could go before.
    if (size < 2 * internal::kZlibPiece) return;
    stream = std::make_unique<internal::ZlibStream>(size, internal::png_deflate_level(effort));
    stream_depth = depth;
    packed = 0;
  }
  internal::pack_png_rows(progress.indices, width, depth, packed, progress.rows,
                          stream->data().data());
  packed = progress.rows;
  stream->ready(static_cast<size_t>(packed) * row_bytes);
}

RowEncoder::RowEncoder(const engine::Image& shape, OutputFormat format, PngEffort effort)
    : state_(std::make_unique<State>()) {
  state_->format = format;
  state_->effort = effort;
  state_->width = shape.width;
  state_->height = shape.height;
  state_->channels = shape.channels;
  state_->valid = check_encodable(shape).ok();
  if (!state_->valid) return;
  if (format == OutputFormat::kPng) {
    state_->indexer.emplace(shape, internal::AlphaMode::kOneTransparent);
    state_->streaming = shape.channels == 3;
  }
  if (format == OutputFormat::kGif) state_->indexer.emplace(shape, internal::AlphaMode::kBinary);
}

RowEncoder::~RowEncoder() = default;

void RowEncoder::add_rows(const engine::Image& img, int rows) {
  if (!state_->valid || !state_->indexer) return;
  state_->indexer->add_rows(img, rows);
  if (state_->streaming) state_->advance_stream();
}

Result<std::vector<uint8_t>> RowEncoder::finish(const engine::Image& img) {
  if (Status s = check_encodable(img); !s) return s.error();
  if (!state_->valid || img.width != state_->width || img.height != state_->height ||
      img.channels != state_->channels) {
    return make_error(ErrorKind::kInternal, "the encoder was made for another image's size");
  }
  switch (state_->format) {
    case OutputFormat::kPng: {
      std::optional<internal::IndexedImage> ix = state_->indexer->finish(img);
      const int level = internal::png_deflate_level(state_->effort);
      State& st = *state_;
      if (ix && st.stream && internal::png_bit_depth(ix->palette.size()) == st.stream_depth) {
        internal::pack_png_rows(ix->indices.data(), img.width, st.stream_depth, st.packed,
                                img.height, st.stream->data().data());
        return internal::write_png_indexed(img.width, img.height, ix->palette, *st.stream);
      }
      if (ix) return internal::write_png_indexed(img.width, img.height, *ix, level);
      return internal::write_png_truecolor(img, level);
    }
    case OutputFormat::kGif: {
      std::optional<internal::IndexedImage> ix = state_->indexer->finish(img);
      if (!ix) {
        return make_error(ErrorKind::kInvalidArgument,
                          "GIF holds at most 256 colours; use PNG or WebP");
      }
      return internal::write_gif(img.width, img.height, *ix);
    }
    case OutputFormat::kWebp:
      return internal::write_webp(img);
  }
  return make_error(ErrorKind::kInvalidArgument, "unknown output format");
}

Result<std::vector<uint8_t>> encode(const engine::Image& img, OutputFormat format,
                                    PngEffort effort) {
  return RowEncoder(img, format, effort).finish(img);  // finish() checks the image
}

}  // namespace dither::imaging
