// Throughput of dither_image on one large image, in megapixels per second.
//
// The image: raw interleaved 8-bit RGB from $DITHER_BENCH_RGB, sized $DITHER_BENCH_WIDTH x
// $DITHER_BENCH_HEIGHT (scripts/bench.sh makes one from a real photo); without them a synthetic
// 4000x3000 image, so the binary always runs.
//
// Benchmark names: <algorithm>/<palette>/<srgb|linear>/threads=<1|all>, e.g.
//   floyd-steinberg/levels:2/srgb/threads=1
// Wall-clock time is measured (the engine runs its own threads), and every run reports
// items_per_second (pixels/s) and the counter "MP/s".
//
//   engine_benchmark --benchmark_filter='^bayer/' --benchmark_repetitions=3
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "engine/custom.h"
#include "engine/dither.h"
#include "engine/isa.h"
#include "engine/options.h"
#include "engine/palette.h"
#include "raw_rgb.h"

#ifdef DITHER_BENCH_HAVE_TEST_IMAGES
#include "engine/testing/test_images.h"
#endif

namespace dither::bench {
namespace {

#ifndef DITHER_BENCH_HAVE_TEST_IMAGES
// A smooth gradient with some texture, for builds without the tests' image generator.
engine::Image fallback_image(int width, int height) {
  engine::Image image(width, height, 3);
  for (int y = 0; y < height; ++y) {
    uint8_t* row = image.row(y);
    for (int x = 0; x < width; ++x) {
      row[3 * x + 0] = static_cast<uint8_t>(x * 255 / (width - 1));
      row[3 * x + 1] = static_cast<uint8_t>(y * 255 / (height - 1));
      row[3 * x + 2] = static_cast<uint8_t>((x * 7 + y * 13) % 256);
    }
  }
  return image;
}
#endif

engine::Image load_image() {
  const char* path = std::getenv("DITHER_BENCH_RGB");
  if (path != nullptr && *path != '\0') {
    const char* w = std::getenv("DITHER_BENCH_WIDTH");
    const char* h = std::getenv("DITHER_BENCH_HEIGHT");
    if (w == nullptr || h == nullptr) {
      std::fprintf(stderr, "DITHER_BENCH_RGB needs DITHER_BENCH_WIDTH and DITHER_BENCH_HEIGHT\n");
      std::exit(2);
    }
    Result<engine::Image> image = read_raw_rgb(path, std::atoi(w), std::atoi(h));
    if (!image) {
      std::fprintf(stderr, "engine_benchmark: %s\n", image.error().message.c_str());
      std::exit(2);
    }
    std::fprintf(stderr, "engine_benchmark: %s, %dx%d (%.2f MP)\n", path, image->width,
                 image->height, static_cast<double>(image->pixel_count()) / 1e6);
    return std::move(image).value();
  }
  constexpr int kWidth = 4000;
  constexpr int kHeight = 3000;
#ifdef DITHER_BENCH_HAVE_TEST_IMAGES
  std::fprintf(stderr, "engine_benchmark: no DITHER_BENCH_RGB, synthetic photo %dx%d\n", kWidth,
               kHeight);
  return dither::engine::testing::synthetic_photo(kWidth, kHeight);
#else
  std::fprintf(stderr, "engine_benchmark: no DITHER_BENCH_RGB, synthetic gradient %dx%d\n", kWidth,
               kHeight);
  return fallback_image(kWidth, kHeight);
#endif
}

const engine::Image& bench_image() {
  static const engine::Image image = load_image();
  return image;
}

engine::Palette palette_from_spec(const std::string& text) {
  Result<engine::PaletteSpec> spec = engine::parse_palette_spec(text);
  if (!spec) {
    std::fprintf(stderr, "engine_benchmark: palette %s: %s\n", text.c_str(),
                 spec.error().message.c_str());
    std::exit(2);
  }
  return engine::resolve_palette(*spec, bench_image());
}

// `reuse`: dither into one output buffer kept across iterations (dither_into), which leaves out
// the kernel's cost of supplying a fresh output buffer on every call.
void run_dither(benchmark::State& state, const engine::Palette& palette,
                const engine::DitherOptions& options, bool reuse) {
  const engine::Image& image = bench_image();
  engine::Image kept;
  for (auto _ : state) {
    if (reuse) {
      if (Status s = engine::dither_into(image, palette, options, kept); !s) {
        state.SkipWithError(s.error().message.c_str());
        break;
      }
      benchmark::DoNotOptimize(kept.pixels.data());
    } else {
      Result<engine::Image> out = engine::dither_image(image, palette, options);
      if (!out) {
        state.SkipWithError(out.error().message.c_str());
        break;
      }
      benchmark::DoNotOptimize(out->pixels.data());
    }
    benchmark::ClobberMemory();
  }
  const auto pixels = static_cast<int64_t>(image.pixel_count());
  state.SetItemsProcessed(state.iterations() * pixels);
  state.counters["MP/s"] =
      benchmark::Counter(static_cast<double>(pixels) / 1e6,
                         benchmark::Counter::kIsRate | benchmark::Counter::kIsIterationInvariant);
  state.counters["MP"] = static_cast<double>(pixels) / 1e6;
}

// Algorithms slow enough that one iteration per run is plenty on a 12 MP image (Riemersma: about
// 0.3 s). Yliluoma is not here: with levels:2 it takes the fast path (about 2 GP/s), and one
// 6 ms iteration would be all noise. Anything else slow still gets few iterations: Google
// Benchmark stops after the first one when that alone exceeds the minimum time (0.5 s). Direct
// binary search is the slowest by far (about 1 MP/s, one thread whatever `threads` says): one
// iteration, and no threads=all run.
bool is_slow(engine::Algorithm a) {
  return a == engine::Algorithm::kRiemersma || a == engine::Algorithm::kDbs;
}

struct Case {
  std::string name;  // <algorithm>/<palette>/<space>[/reuse]
  std::string palette;
  engine::DitherOptions options;
  bool reuse = false;
};

std::vector<Case> cases() {
  std::vector<Case> list;
  for (const engine::AlgorithmInfo& info : engine::algorithms()) {
    engine::DitherOptions o;
    o.algorithm = info.algorithm;
    o.color_space = engine::ColorSpace::kSrgb;
    // The custom algorithms with Floyd-Steinberg's kernel and Bayer's 4x4 matrix: what the
    // caller's data costs against the same work built in.
    if (info.algorithm == engine::Algorithm::kCustomKernel) {
      o.kernel = *engine::parse_custom_kernel("[[0,0,7],[3,5,1]]");
    } else if (info.algorithm == engine::Algorithm::kCustomMatrix) {
      o.matrix = *engine::parse_custom_matrix("[[0,8,2,10],[12,4,14,6],[3,11,1,9],[15,7,13,5]]");
    }
    list.push_back({std::string(info.name) + "/levels:2/srgb", "levels:2", o});
  }
  engine::DitherOptions fs;
  fs.algorithm = engine::Algorithm::kFloydSteinberg;
  fs.color_space = engine::ColorSpace::kSrgb;  // the peers work in sRGB
  engine::DitherOptions bayer;
  bayer.algorithm = engine::Algorithm::kBayer;
  bayer.color_space = engine::ColorSpace::kSrgb;
  bayer.bayer_size = 8;
  engine::DitherOptions fs_linear = fs;
  fs_linear.color_space = engine::ColorSpace::kLinear;
  list.push_back({"floyd-steinberg/ega/srgb", "ega", fs});
  list.push_back({"floyd-steinberg/pico8/srgb", "pico8", fs});
  list.push_back({"floyd-steinberg/levels:4/srgb", "levels:4", fs});
  list.push_back({"bayer/ega/srgb", "ega", bayer});
  // Yliluoma with levels:2 takes the Bayer path; a list palette measures its plan search.
  engine::DitherOptions yliluoma;
  yliluoma.algorithm = engine::Algorithm::kYliluoma;
  yliluoma.color_space = engine::ColorSpace::kSrgb;
  list.push_back({"yliluoma/ega/srgb", "ega", yliluoma});
  list.push_back({"floyd-steinberg/levels:2/linear", "levels:2", fs_linear});
  // The same work into a kept output buffer: what the thread speed-up is without page faults.
  list.push_back({"bayer/levels:2/srgb/reuse", "levels:2", bayer, true});
  list.push_back({"floyd-steinberg/levels:2/srgb/reuse", "levels:2", fs, true});
  return list;
}

void register_benchmarks() {
  for (const Case& c : cases()) {
    for (int threads : {1, 0}) {
      if (threads == 0 && c.options.algorithm == engine::Algorithm::kDbs) continue;
      engine::DitherOptions options = c.options;
      options.threads = threads;
      const std::string name = c.name + (threads == 1 ? "/threads=1" : "/threads=all");
      const std::string palette_text = c.palette;
      benchmark::internal::Benchmark* b = benchmark::RegisterBenchmark(
          name.c_str(), [palette_text, options, reuse = c.reuse](benchmark::State& state) {
            // Resolved once per run, outside the timed loop; the quantiser is built inside.
            const engine::Palette palette = palette_from_spec(palette_text);
            run_dither(state, palette, options, reuse);
          });
      b->UseRealTime()->Unit(benchmark::kMillisecond);
      if (is_slow(options.algorithm)) b->Iterations(1);
    }
  }
}

}  // namespace
}  // namespace dither::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  dither::bench::register_benchmarks();
  benchmark::AddCustomContext("image", std::getenv("DITHER_BENCH_RGB") != nullptr
                                           ? std::getenv("DITHER_BENCH_RGB")
                                           : "synthetic 4000x3000");
  // DITHER_BENCH_ISA=build: error diffusion's loops as built, not the copy this CPU would choose
  // (src/engine/isa.h); the context says which ran.
  const char* isa = std::getenv("DITHER_BENCH_ISA");
  if (isa != nullptr && std::string_view(isa) == "build") {
    dither::engine::detail::limit_isa(dither::engine::Isa::kBuild);
  }
  benchmark::AddCustomContext("engine_isa",
                              std::string(dither::engine::isa_name(dither::engine::active_isa())));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
