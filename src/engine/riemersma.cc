// STUB: replaced by the real implementation.
#include "engine/algorithms.h"

namespace dither::detail {

void riemersma_dither(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o) {
  ordered_dither(in, out, q, o);
}

}  // namespace dither::detail
