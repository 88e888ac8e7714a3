// libvips loaded when first used, not when the program starts.
//
// Linked the ordinary way, libvips makes the dynamic linker load and relocate 106 shared
// libraries (ImageMagick, poppler, librsvg, OpenEXR, ...) before main(): about 30 ms of every run
// of `dither` on this project's machines, 5 % of the whole job for a 17.9 MP photo, which the
// command line's common case (a progressive JPEG in, PNG out: jpeg_scans.h and png_writer.h) never
// calls. So dither_imaging does not link libvips: it calls every libvips function through
// `vips_functions()`, a table filled by dlopen() and dlsym() on the first call. Each function
// libvips gives keeps its own name in the source: the macros below turn a call such as
// `vips_image_get_width(image)` into a call through the table, of the same C type (variadic
// functions included), and the libvips headers' own macros (VIPS_INIT, ...) expand to the same.
// GLib and GObject, which cost under 1 ms to load, are linked as usual.
//
// A libvips function used here without its line below is a link error ("undefined reference to
// vips_..."), so the list cannot fall behind the code.
//
// Internal to dither_imaging: include it only through vips_support.h, after <vips/vips.h>.
#pragma once

#include <vips/vips.h>

#include <atomic>
#include <string>

// Every libvips function dither_imaging calls (X-macro).
#define DITHER_VIPS_FUNCTIONS(X)     \
  X(vips_autorot)                    \
  X(vips_block_untrusted_set)        \
  X(vips_cache_set_max)              \
  X(vips_cache_set_max_files)        \
  X(vips_cache_set_max_mem)          \
  X(vips_cast)                       \
  X(vips_colourspace)                \
  X(vips_concurrency_set)            \
  X(vips_copy)                       \
  X(vips_embed)                      \
  X(vips_error)                      \
  X(vips_error_buffer_copy)          \
  X(vips_extract_band)               \
  X(vips_format_sizeof)              \
  X(vips_format_sizeof_unsafe)       \
  X(vips_gifload_buffer)             \
  X(vips_icc_transform)              \
  X(vips_image_get_array_int)        \
  X(vips_image_get_bands)            \
  X(vips_image_get_format)           \
  X(vips_image_get_height)           \
  X(vips_image_get_int)              \
  X(vips_image_get_interpretation)   \
  X(vips_image_get_n_pages)          \
  X(vips_image_get_orientation)      \
  X(vips_image_get_orientation_swap) \
  X(vips_image_get_typeof)           \
  X(vips_image_get_width)            \
  X(vips_image_new_from_memory)      \
  X(vips_image_set_int)              \
  X(vips_init)                       \
  X(vips_jpegload_buffer)            \
  X(vips_operation_block_set)        \
  X(vips_pngload_buffer)             \
  X(vips_premultiply)                \
  X(vips_region_new)                 \
  X(vips_region_prepare)             \
  X(vips_resize)                     \
  X(vips_rint)                       \
  X(vips_tiffload_buffer)            \
  X(vips_unpremultiply)              \
  X(vips_version)                    \
  X(vips_webpload_buffer)

namespace dither::imaging::internal {

// Pointers to the functions above, each of its own type.
struct VipsFunctions {
// NOLINTNEXTLINE(bugprone-macro-parentheses): `name` is a member's name
#define DITHER_VIPS_POINTER(name) decltype(&::name) name = nullptr;
  DITHER_VIPS_FUNCTIONS(DITHER_VIPS_POINTER)
#undef DITHER_VIPS_POINTER
};

// The table once libvips is loaded; null before.
extern std::atomic<const VipsFunctions*> loaded_vips_functions;

// Loads libvips (once, thread-safe) and fills the table; null if libvips cannot be loaded or lacks
// a function, with the dlopen() or dlsym() error in *why (init() reports it so).
const VipsFunctions* try_load_vips_functions(std::string* why);

// try_load_vips_functions(), ending the process with its message on failure: a program linked
// to libvips the ordinary way would not have started at all. init() has usually said so first.
const VipsFunctions& load_vips_functions();

inline const VipsFunctions& vips_functions() {
  const VipsFunctions* loaded = loaded_vips_functions.load(std::memory_order_acquire);
  return loaded != nullptr ? *loaded : load_vips_functions();
}

}  // namespace dither::imaging::internal

// Every call below goes through the table (see the top of this file). Not in vips_lazy.cc, which
// fills the table and needs the plain names.
#ifndef DITHER_VIPS_FILLING_THE_TABLE
#define DITHER_VIPS_CALL(name) (*::dither::imaging::internal::vips_functions().name)
#define vips_autorot DITHER_VIPS_CALL(vips_autorot)
#define vips_block_untrusted_set DITHER_VIPS_CALL(vips_block_untrusted_set)
#define vips_cache_set_max DITHER_VIPS_CALL(vips_cache_set_max)
#define vips_cache_set_max_files DITHER_VIPS_CALL(vips_cache_set_max_files)
#define vips_cache_set_max_mem DITHER_VIPS_CALL(vips_cache_set_max_mem)
#define vips_cast DITHER_VIPS_CALL(vips_cast)
#define vips_colourspace DITHER_VIPS_CALL(vips_colourspace)
#define vips_concurrency_set DITHER_VIPS_CALL(vips_concurrency_set)
#define vips_copy DITHER_VIPS_CALL(vips_copy)
#define vips_embed DITHER_VIPS_CALL(vips_embed)
#define vips_error DITHER_VIPS_CALL(vips_error)
#define vips_error_buffer_copy DITHER_VIPS_CALL(vips_error_buffer_copy)
#define vips_extract_band DITHER_VIPS_CALL(vips_extract_band)
#define vips_format_sizeof DITHER_VIPS_CALL(vips_format_sizeof)
#define vips_format_sizeof_unsafe DITHER_VIPS_CALL(vips_format_sizeof_unsafe)
#define vips_gifload_buffer DITHER_VIPS_CALL(vips_gifload_buffer)
#define vips_icc_transform DITHER_VIPS_CALL(vips_icc_transform)
#define vips_image_get_array_int DITHER_VIPS_CALL(vips_image_get_array_int)
#define vips_image_get_bands DITHER_VIPS_CALL(vips_image_get_bands)
#define vips_image_get_format DITHER_VIPS_CALL(vips_image_get_format)
#define vips_image_get_height DITHER_VIPS_CALL(vips_image_get_height)
#define vips_image_get_int DITHER_VIPS_CALL(vips_image_get_int)
#define vips_image_get_interpretation DITHER_VIPS_CALL(vips_image_get_interpretation)
#define vips_image_get_n_pages DITHER_VIPS_CALL(vips_image_get_n_pages)
#define vips_image_get_orientation DITHER_VIPS_CALL(vips_image_get_orientation)
#define vips_image_get_orientation_swap DITHER_VIPS_CALL(vips_image_get_orientation_swap)
#define vips_image_get_typeof DITHER_VIPS_CALL(vips_image_get_typeof)
#define vips_image_get_width DITHER_VIPS_CALL(vips_image_get_width)
#define vips_image_new_from_memory DITHER_VIPS_CALL(vips_image_new_from_memory)
#define vips_image_set_int DITHER_VIPS_CALL(vips_image_set_int)
#define vips_init DITHER_VIPS_CALL(vips_init)
#define vips_jpegload_buffer DITHER_VIPS_CALL(vips_jpegload_buffer)
#define vips_operation_block_set DITHER_VIPS_CALL(vips_operation_block_set)
#define vips_pngload_buffer DITHER_VIPS_CALL(vips_pngload_buffer)
#define vips_premultiply DITHER_VIPS_CALL(vips_premultiply)
#define vips_region_new DITHER_VIPS_CALL(vips_region_new)
#define vips_region_prepare DITHER_VIPS_CALL(vips_region_prepare)
#define vips_resize DITHER_VIPS_CALL(vips_resize)
#define vips_rint DITHER_VIPS_CALL(vips_rint)
#define vips_tiffload_buffer DITHER_VIPS_CALL(vips_tiffload_buffer)
#define vips_unpremultiply DITHER_VIPS_CALL(vips_unpremultiply)
#define vips_version DITHER_VIPS_CALL(vips_version)
#define vips_webpload_buffer DITHER_VIPS_CALL(vips_webpload_buffer)
#endif  // DITHER_VIPS_FILLING_THE_TABLE
