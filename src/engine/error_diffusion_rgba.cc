// Error diffusion of RGBA images: error_diffusion_impl.h with the rows that drop a transparent
// pixel's error, compiled apart from the RGB code (see there).
#include "engine/error_diffusion_impl.h"

namespace dither::engine::detail {

void error_diffusion_rgba(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o,
                          const std::function<void(int rows)>& wait,
                          const std::function<void(int rows)>& done) {
  diffuse<true>(in, out, q, o, wait, done);
}

}  // namespace dither::engine::detail
