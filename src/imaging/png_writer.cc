// PNG output with libpng, into memory.
//
// libpng reports errors by longjmp. Everything it needs is in a plain struct (PngJob), and the
// frames a longjmp can cross (write_png_body and the callbacks) hold no object with a destructor;
// the std::vector that receives the bytes lives in the caller's frame, above the setjmp.
#include <png.h>

#include <cstdio>
#include <memory>
#include <new>
#include <string>

#include "imaging/writers.h"

namespace dither::imaging::internal {
namespace {

constexpr int kCompressionLevel = 6;

struct PngJob {
  int width = 0;
  int height = 0;
  int bit_depth = 8;
  int color_type = PNG_COLOR_TYPE_RGB;
  png_color palette[kMaxIndexedColors] = {};
  int palette_size = 0;
  png_byte trans[kMaxIndexedColors] = {};
  int trans_size = 0;
  const uint8_t* source = nullptr;  // truecolour samples, or one palette index per pixel
  size_t source_stride = 0;         // bytes per source row
  uint8_t* packed_row = nullptr;    // scratch for indices packed below 8 bits
  std::vector<uint8_t>* out = nullptr;
  char error[256] = {};
};

[[noreturn]] void on_error(png_structp png, png_const_charp message) {
  auto* job = static_cast<PngJob*>(png_get_error_ptr(png));
  std::snprintf(job->error, sizeof(job->error), "%s", message);
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}

void on_write(png_structp png, png_bytep data, size_t length) {
  auto* job = static_cast<PngJob*>(png_get_io_ptr(png));
  bool out_of_memory = false;
  try {
    job->out->insert(job->out->end(), data, data + length);
  } catch (const std::bad_alloc&) {
    out_of_memory = true;
  }
  if (out_of_memory) png_error(png, "out of memory");
}

void on_flush(png_structp) {}

// Packs one row of indices (one byte each) MSB-first, kBits (1, 2 or 4) bits per index.
template <int kBits>
void pack_row(const uint8_t* indices, int width, uint8_t* out) {
  constexpr int kPerByte = 8 / kBits;
  const int whole = width / kPerByte;
  for (int i = 0; i < whole; ++i, indices += kPerByte) {
    unsigned byte = 0;
    for (int k = 0; k < kPerByte; ++k) byte = (byte << kBits) | indices[k];
    out[i] = static_cast<uint8_t>(byte);
  }
  const int rest = width - whole * kPerByte;
  if (rest > 0) {
    unsigned byte = 0;
    for (int k = 0; k < kPerByte; ++k) byte = (byte << kBits) | (k < rest ? indices[k] : 0u);
    out[whole] = static_cast<uint8_t>(byte);
  }
}

void pack_row(const uint8_t* indices, int width, int bit_depth, uint8_t* out) {
  switch (bit_depth) {
    case 1:
      return pack_row<1>(indices, width, out);
    case 2:
      return pack_row<2>(indices, width, out);
    default:
      return pack_row<4>(indices, width, out);
  }
}

void write_png_body(png_structp png, png_infop info, PngJob* job) {
  png_set_write_fn(png, job, on_write, on_flush);
  png_set_IHDR(png, info, static_cast<png_uint_32>(job->width),
               static_cast<png_uint_32>(job->height), job->bit_depth, job->color_type,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_compression_level(png, kCompressionLevel);
  if (job->color_type == PNG_COLOR_TYPE_PALETTE) {
    png_set_PLTE(png, info, job->palette, job->palette_size);
    if (job->trans_size > 0) png_set_tRNS(png, info, job->trans, job->trans_size, nullptr);
    // Filters predict smooth images; on packed palette indices they only cost time.
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_NONE);
  }
  png_write_info(png, info);
  for (int y = 0; y < job->height; ++y) {
    const uint8_t* row = job->source + static_cast<size_t>(y) * job->source_stride;
    if (job->color_type == PNG_COLOR_TYPE_PALETTE && job->bit_depth < 8) {
      pack_row(row, job->width, job->bit_depth, job->packed_row);
      row = job->packed_row;
    }
    png_write_row(png, row);
  }
  png_write_end(png, nullptr);
}

// False on failure, with job->error set.
bool write_png(PngJob* job) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, job, on_error, on_warning);
  if (png == nullptr) {
    std::snprintf(job->error, sizeof(job->error), "cannot create the PNG writer");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_write_struct(&png, nullptr);
    std::snprintf(job->error, sizeof(job->error), "cannot create the PNG writer");
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  write_png_body(png, info, job);
  png_destroy_write_struct(&png, &info);
  return true;
}

Result<std::vector<uint8_t>> run(PngJob& job, size_t size_hint) {
  std::vector<uint8_t> out;
  out.reserve(size_hint);
  job.out = &out;
  if (!write_png(&job)) {
    return make_error(ErrorKind::kInternal, std::string("cannot write the PNG: ") + job.error);
  }
  return out;
}

int bit_depth_for(size_t colors) {
  if (colors <= 2) return 1;
  if (colors <= 4) return 2;
  if (colors <= 16) return 4;
  return 8;
}

}  // namespace

Result<std::vector<uint8_t>> write_png_indexed(int width, int height, const IndexedImage& ix) {
  auto job = std::make_unique<PngJob>();
  job->width = width;
  job->height = height;
  job->color_type = PNG_COLOR_TYPE_PALETTE;
  job->bit_depth = bit_depth_for(ix.palette.size());
  job->palette_size = static_cast<int>(ix.palette.size());
  for (size_t i = 0; i < ix.palette.size(); ++i) {
    const Rgba& c = ix.palette[i];
    job->palette[i] = png_color{c.r, c.g, c.b};
    job->trans[i] = c.a;
    // Translucent entries come first, so tRNS ends at the last one.
    if (c.a != 255) job->trans_size = static_cast<int>(i) + 1;
  }
  job->source = ix.indices.data();
  job->source_stride = static_cast<size_t>(width);
  std::vector<uint8_t> packed_row(static_cast<size_t>(width));
  job->packed_row = packed_row.data();
  const size_t raw_bytes = (static_cast<size_t>(width) * static_cast<size_t>(job->bit_depth) + 7) /
                           8 * static_cast<size_t>(height);
  return run(*job, raw_bytes / 2 + 1024);
}

Result<std::vector<uint8_t>> write_png_truecolor(const Image& img) {
  auto job = std::make_unique<PngJob>();
  job->width = img.width;
  job->height = img.height;
  job->color_type = img.has_alpha() ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB;
  job->bit_depth = 8;
  job->source = img.pixels.data();
  job->source_stride = img.stride();
  return run(*job, img.pixels.size() / 2 + 1024);
}

}  // namespace dither::imaging::internal
