// Error diffusion of RGBA images compiled for x86-64-v3: error_diffusion_v3.cc says how and why
// (and error_diffusion_impl.h why RGB and RGBA are units of their own).
#include "engine/isa_config.h"

#if DITHER_ENGINE_X86_64_V3

#define DITHER_ED_TARGET __attribute__((target("arch=x86-64-v3")))
#include "engine/error_diffusion_impl.h"

namespace dither::engine::detail {

DITHER_ED_TARGET void error_diffusion_rgba_v3(const Image& in, Image& out, const Quantizer& q,
                                              const DitherOptions& o,
                                              const std::function<void(int rows)>& wait,
                                              const std::function<void(int rows)>& done) {
  diffuse<true>(in, out, q, o, wait, done);
}

}  // namespace dither::engine::detail

#endif
