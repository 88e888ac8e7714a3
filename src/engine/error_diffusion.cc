// Error diffusion of RGB images; RGBA ones go to error_diffusion_rgba.cc. The code and how it is
// fast: error_diffusion_impl.h.
#include "engine/error_diffusion_impl.h"
#include "engine/isa.h"
#include "engine/isa_config.h"

namespace dither::engine::detail {

void error_diffusion(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o,
                     const std::function<void(int rows)>& wait,
                     const std::function<void(int rows)>& done) {
  // The one place that chooses among the four copies (isa.h).
#if DITHER_ENGINE_X86_64_V3
  if (active_isa() == Isa::kX86_64V3) {
    if (in.has_alpha()) return error_diffusion_rgba_v3(in, out, q, o, wait, done);
    return error_diffusion_v3(in, out, q, o, wait, done);
  }
#endif
  if (in.has_alpha()) return error_diffusion_rgba(in, out, q, o, wait, done);
  diffuse<false>(in, out, q, o, wait, done);
}

}  // namespace dither::engine::detail
