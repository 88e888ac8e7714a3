// Error diffusion of RGBA images: error_diffusion_impl.h with the rows that drop a transparent
// pixel's error, compiled apart from the RGB code (see there).
#include "engine/error_diffusion_impl.h"
#include "engine/isa.h"
#include "engine/isa_config.h"

namespace dither::engine::detail {

void error_diffusion_rgba(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o,
                          const std::function<void(int rows)>& wait,
                          const std::function<void(int rows)>& done) {
#if DITHER_ENGINE_X86_64_V3
  if (active_isa() == Isa::kX86_64V3) return error_diffusion_rgba_v3(in, out, q, o, wait, done);
#endif
  diffuse<true>(in, out, q, o, wait, done);
}

}  // namespace dither::engine::detail
