// GIF output with giflib, into memory: one global colour table, exact colours; one frame, or an
// animation's frames as animation.cc plans them.
#include <gif_lib.h>

#include <functional>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "imaging/writers.h"

namespace dither::imaging::internal {
namespace {

constexpr int kMaxGifSide = 65535;

int on_write(GifFileType* gif, const GifByteType* data, int length) {
  auto* out = static_cast<std::vector<uint8_t>*>(gif->UserData);
  try {
    out->insert(out->end(), data, data + length);
  } catch (const std::bad_alloc&) {
    return 0;  // giflib reports E_GIF_ERR_WRITE_FAILED
  }
  return length;
}

struct MapFree {
  void operator()(ColorMapObject* map) const { GifFreeMapObject(map); }
};

// Owns the GifFileType until close() hands back the final status.
class GifWriter {
 public:
  explicit GifWriter(std::vector<uint8_t>* out) {
    int error = 0;
    gif_ = EGifOpen(out, on_write, &error);
    if (gif_ == nullptr) error_ = error;
  }
  GifWriter(const GifWriter&) = delete;
  GifWriter& operator=(const GifWriter&) = delete;
  ~GifWriter() {
    if (gif_ != nullptr) EGifCloseFile(gif_, nullptr);
  }

  GifFileType* get() { return gif_; }
  // The error of the last failed call, from giflib's own field when the file is open.
  int error() const { return gif_ != nullptr ? gif_->Error : error_; }

  // Writes the trailer and frees the file. False on failure (then error() is set).
  bool close() {
    int error = 0;
    const int status = EGifCloseFile(gif_, &error);
    gif_ = nullptr;
    error_ = error;
    return status == GIF_OK;
  }

 private:
  GifFileType* gif_ = nullptr;
  int error_ = 0;
};

Error gif_failure(int code) {
  const char* text = GifErrorString(code);
  return make_error(ErrorKind::kInternal, std::string("cannot write the GIF: ") +
                                              (text != nullptr ? text : "unknown error"));
}

// The colour table for `palette`: the next power of two >= its size, at least 2 entries (`bits`
// gets the exponent), the entries past the palette black.
std::unique_ptr<ColorMapObject, MapFree> color_map(const std::vector<Rgba>& palette, int* bits) {
  *bits = 1;
  while ((size_t{1} << *bits) < palette.size()) ++*bits;
  GifColorType colors[kMaxIndexedColors] = {};
  for (size_t i = 0; i < palette.size(); ++i) {
    colors[i] = GifColorType{palette[i].r, palette[i].g, palette[i].b};
  }
  return std::unique_ptr<ColorMapObject, MapFree>(GifMakeMapObject(1 << *bits, colors));
}

// A Graphic Control Extension.
int put_control(GifFileType* gif, int disposal, int delay_cs, int transparent) {
  GraphicsControlBlock gcb{};
  gcb.DisposalMode = disposal;
  gcb.UserInputFlag = false;
  gcb.DelayTime = delay_cs;
  gcb.TransparentColor = transparent;
  GifByteType extension[4];
  EGifGCBToExtension(&gcb, extension);
  return EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, sizeof(extension), extension);
}

// The NETSCAPE2.0 application extension: the animation plays 1 + `repeats` times (0: for ever).
int put_loop(GifFileType* gif, int repeats) {
  static constexpr char kId[] = "NETSCAPE2.0";
  const GifByteType count[3] = {1, static_cast<GifByteType>(repeats & 0xFF),
                                static_cast<GifByteType>((repeats >> 8) & 0xFF)};
  if (EGifPutExtensionLeader(gif, APPLICATION_EXT_FUNC_CODE) != GIF_OK ||
      EGifPutExtensionBlock(gif, sizeof(kId) - 1, kId) != GIF_OK ||
      EGifPutExtensionBlock(gif, sizeof(count), count) != GIF_OK) {
    return GIF_ERROR;
  }
  return EGifPutExtensionTrailer(gif);
}

// An image descriptor and its rows of indices (width * height, row-major).
int put_image(GifFileType* gif, int left, int top, int width, int height, const uint8_t* indices) {
  if (EGifPutImageDesc(gif, left, top, width, height, false, nullptr) != GIF_OK) return GIF_ERROR;
  // EGifPutLine masks the line in place: hand it a copy.
  std::vector<GifPixelType> line(static_cast<size_t>(width));
  for (int y = 0; y < height; ++y) {
    const uint8_t* row = indices + static_cast<size_t>(y) * static_cast<size_t>(width);
    line.assign(row, row + width);
    if (EGifPutLine(gif, line.data(), width) != GIF_OK) return GIF_ERROR;
  }
  return GIF_OK;
}

}  // namespace

Result<std::vector<uint8_t>> write_gif(int width, int height, const IndexedImage& ix) {
  if (width > kMaxGifSide || height > kMaxGifSide) {
    return make_error(ErrorKind::kInvalidArgument,
                      "GIF is limited to 65535x65535 pixels; use PNG or WebP");
  }
  int bits = 1;
  std::unique_ptr<ColorMapObject, MapFree> map = color_map(ix.palette, &bits);
  if (!map) return make_error(ErrorKind::kInternal, "cannot write the GIF: out of memory");

  std::vector<uint8_t> out;
  out.reserve(static_cast<size_t>(width) * static_cast<size_t>(height) / 2 + 1024);
  GifWriter writer(&out);
  if (writer.get() == nullptr) return gif_failure(writer.error());
  // The Graphic Control Extension (transparency) needs GIF89a.
  EGifSetGifVersion(writer.get(), true);
  if (EGifPutScreenDesc(writer.get(), width, height, bits, 0, map.get()) != GIF_OK) {
    return gif_failure(writer.error());
  }
  // index_colors(kBinary) puts the one transparent colour, if any, first.
  if (!ix.palette.empty() && ix.palette[0].a == 0 &&
      put_control(writer.get(), DISPOSAL_UNSPECIFIED, 0, 0) != GIF_OK) {
    return gif_failure(writer.error());
  }
  if (put_image(writer.get(), 0, 0, width, height, ix.indices.data()) != GIF_OK) {
    return gif_failure(writer.error());
  }
  if (!writer.close()) return gif_failure(writer.error());
  return out;
}

Result<std::vector<uint8_t>> write_gif_animation(
    int width, int height, const std::vector<Rgba>& palette, int repeats, int frame_count,
    const std::function<Status(int index, GifFrame& frame)>& next_frame) {
  if (width > kMaxGifSide || height > kMaxGifSide) {
    return make_error(ErrorKind::kInvalidArgument,
                      "GIF is limited to 65535x65535 pixels; use PNG or WebP");
  }
  int bits = 1;
  std::unique_ptr<ColorMapObject, MapFree> map = color_map(palette, &bits);
  if (!map) return make_error(ErrorKind::kInternal, "cannot write the GIF: out of memory");
  const bool transparent = !palette.empty() && palette[0].a == 0;

  std::vector<uint8_t> out;
  GifWriter writer(&out);
  if (writer.get() == nullptr) return gif_failure(writer.error());
  EGifSetGifVersion(writer.get(), true);
  if (EGifPutScreenDesc(writer.get(), width, height, bits, 0, map.get()) != GIF_OK) {
    return gif_failure(writer.error());
  }
  // Browsers and libnsgif read the loop extension only before the first image.
  if (repeats >= 0 && put_loop(writer.get(), repeats) != GIF_OK) {
    return gif_failure(writer.error());
  }
  GifFrame frame;
  for (int i = 0; i < frame_count; ++i) {
    if (Status s = next_frame(i, frame); !s) return s.error();
    if (put_control(writer.get(), frame.disposal, frame.delay_cs,
                    transparent ? 0 : NO_TRANSPARENT_COLOR) != GIF_OK ||
        put_image(writer.get(), frame.left, frame.top, frame.width, frame.height,
                  frame.indices.data()) != GIF_OK) {
      return gif_failure(writer.error());
    }
  }
  if (!writer.close()) return gif_failure(writer.error());
  return out;
}

}  // namespace dither::imaging::internal
