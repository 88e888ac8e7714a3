// libvips glue shared by decode and resize: RAII ownership of VipsImage, translation of libvips'
// error buffer into `Error`, and copies between VipsImage and the engine's `Image`.
//
// Internal to dither_imaging: this header includes <vips/vips.h> and must not leak into codec.h.
// libvips is loaded on first use (vips_lazy.h): every libvips call made after this include goes
// through the table there.
#pragma once

#include <vips/vips.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string_view>

#include "common/result.h"
#include "engine/image.h"
#include "imaging/vips_lazy.h"

namespace dither::imaging::internal {

struct VipsImageUnref {
  void operator()(VipsImage* image) const { g_object_unref(image); }
};
// Owns one reference to a VipsImage.
using VipsImagePtr = std::unique_ptr<VipsImage, VipsImageUnref>;

// An Error of `kind` saying `what` failed, with libvips' message appended. Takes and clears
// libvips' error buffer. That buffer is process-wide: under concurrent failures a message may
// carry another call's text, never a torn one.
Error vips_failure(ErrorKind kind, std::string_view what);

// Runs the pipeline ending in `in` (8-bit, 3 or 4 bands) on the calling thread, never on
// libvips' worker threads, writing its pixels into `out` (already of its size) strip by strip
// from the top; `on_rows(n)` after each strip, when the top n rows are final (the time it takes
// moves `deadline` on: it is not decoding). Errors as for to_image.
Status read_rows(VipsImage* in, engine::Image& out, ErrorKind kind, std::string_view what,
                 std::chrono::steady_clock::time_point deadline, bool* timed_out,
                 const std::function<void(int rows)>& on_rows = {});

// read_rows() into rows that need not be one Image: row y of `in` (width * bands bytes) goes to
// `row(y)`. An animation's frames come as one tall image and go to one Image each; verify()
// reads every row into the same scratch row.
Status read_rows_to(VipsImage* in, const std::function<uint8_t*(int y)>& row, ErrorKind kind,
                    std::string_view what, std::chrono::steady_clock::time_point deadline,
                    bool* timed_out, const std::function<void(int rows)>& on_rows = {});

// Runs the pipeline ending in `in` (8-bit, 3 or 4 bands) on the calling thread, never on
// libvips' worker threads, and writes its pixels into an Image. A failure while computing pixels
// (truncated or corrupt input) is an Error of `kind`; so is passing `deadline` (checked between
// strips of rows), which also sets *timed_out.
Result<engine::Image> to_image(
    VipsImage* in, ErrorKind kind, std::string_view what,
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max(),
    bool* timed_out = nullptr);

// An sRGB VipsImage over img's pixels, without copying: `img` must outlive the result and every
// image computed from it.
Result<VipsImagePtr> wrap(const engine::Image& img);

}  // namespace dither::imaging::internal
