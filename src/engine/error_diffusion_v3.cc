// Error diffusion of RGB images compiled for x86-64-v3 (isa.h): error_diffusion_impl.h again,
// every function of it (all of internal linkage) built for AVX2, BMI2 and FMA, entered through
// error_diffusion() only when active_isa() says so. error_diffusion_rgba_v3.cc does the same for
// RGBA images.
//
// Only these copies are x86-64-v3 code: DITHER_ED_TARGET marks the header's functions (all of
// internal linkage), and only what GCC inlines into them is compiled with it. The standard
// library's templates they instantiate keep the build's instruction set, so the linker can never
// hand another caller an x86-64-v3 copy. The test engine_v3_objects checks the object file: no
// symbol of external linkage but the entry points may hold an x86-64-v3 instruction.
#include "engine/isa_config.h"

#if DITHER_ENGINE_X86_64_V3

#define DITHER_ED_TARGET __attribute__((target("arch=x86-64-v3")))
#include "engine/error_diffusion_impl.h"

namespace dither::engine::detail {

DITHER_ED_TARGET void error_diffusion_v3(const Image& in, Image& out, const Quantizer& q,
                                         const DitherOptions& o,
                                         const std::function<void(int rows)>& wait,
                                         const std::function<void(int rows)>& done) {
  diffuse<false>(in, out, q, o, wait, done);
}

}  // namespace dither::engine::detail

#endif
