// GIF output with giflib, into memory: one frame, one global colour table, exact colours.
#include <gif_lib.h>

#include <memory>
#include <new>
#include <string>

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

}  // namespace

Result<std::vector<uint8_t>> write_gif(int width, int height, const IndexedImage& ix) {
  if (width > kMaxGifSide || height > kMaxGifSide) {
    return make_error(ErrorKind::kInvalidArgument,
                      "GIF is limited to 65535x65535 pixels; use PNG or WebP");
  }
  int bits = 1;
  while ((size_t{1} << bits) < ix.palette.size()) ++bits;
  const int map_size = 1 << bits;
  GifColorType colors[kMaxIndexedColors] = {};
  for (size_t i = 0; i < ix.palette.size(); ++i) {
    colors[i] = GifColorType{ix.palette[i].r, ix.palette[i].g, ix.palette[i].b};
  }
  std::unique_ptr<ColorMapObject, MapFree> map(GifMakeMapObject(map_size, colors));
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
  if (!ix.palette.empty() && ix.palette[0].a == 0) {
    GraphicsControlBlock gcb{};
    gcb.DisposalMode = DISPOSAL_UNSPECIFIED;
    gcb.UserInputFlag = false;
    gcb.DelayTime = 0;
    gcb.TransparentColor = 0;
    GifByteType extension[4];
    EGifGCBToExtension(&gcb, extension);
    if (EGifPutExtension(writer.get(), GRAPHICS_EXT_FUNC_CODE, sizeof(extension), extension) !=
        GIF_OK) {
      return gif_failure(writer.error());
    }
  }
  if (EGifPutImageDesc(writer.get(), 0, 0, width, height, false, nullptr) != GIF_OK) {
    return gif_failure(writer.error());
  }
  // EGifPutLine masks the line in place: hand it a copy.
  std::vector<GifPixelType> line(static_cast<size_t>(width));
  for (int y = 0; y < height; ++y) {
    const uint8_t* row = ix.indices.data() + static_cast<size_t>(y) * static_cast<size_t>(width);
    line.assign(row, row + width);
    if (EGifPutLine(writer.get(), line.data(), width) != GIF_OK) return gif_failure(writer.error());
  }
  if (!writer.close()) return gif_failure(writer.error());
  return out;
}

}  // namespace dither::imaging::internal
