// The AC scans' decoding compiled for x86-64-v3 (engine/isa.h): jpeg_ac_scans.h again, every
// function of it (all of internal linkage) built for AVX2 and BMI2, with pdep in nth_bit(). Chosen
// by AcDecoder::chosen_scans() (jpeg_ac.cc) only on a CPU with x86-64-v3 whose pdep is fast. As
// with error diffusion's copy, only what GCC compiles into those functions uses the new
// instructions, and the test imaging_v3_objects checks the object: no function another unit
// could call holds one. A build without the copy compiles nothing here (jpeg_ac.cc then says
// there is none).
#include "engine/isa_config.h"
#include "imaging/jpeg_ac.h"

#if DITHER_ENGINE_X86_64_V3

#define DITHER_AC_TARGET __attribute__((target("arch=x86-64-v3")))
#include "imaging/jpeg_ac_scans.h"

namespace dither::imaging::internal {
namespace {

struct V3Copy {
  static constexpr bool kPdep = true;
};

}  // namespace

AcDecoder::Scans AcDecoder::scans_x86_64_v3() {
  return {&decode_first<V3Copy>, &decode_refine<V3Copy>};
}

}  // namespace dither::imaging::internal

#endif
