// Dithers one raw 8-bit RGB file to another with the engine, for scripts/bench/quality.py.
//
//   bench_dither_file IN.rgb WIDTH HEIGHT OUT.rgb [--algorithm NAME] [--palette SPEC]
//                     [--linear] [--serpentine] [--threads N]
//   bench_dither_file --print-palette SPEC     (the palette's colours, one #rrggbb a line)
//
// Defaults: Floyd-Steinberg, levels:2, sRGB, raster order, all threads.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "engine/dither.h"
#include "engine/options.h"
#include "engine/palette.h"
#include "raw_rgb.h"

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: bench_dither_file IN.rgb WIDTH HEIGHT OUT.rgb [--algorithm NAME] "
               "[--palette SPEC] [--linear] [--serpentine] [--threads N]\n"
               "       bench_dither_file --print-palette SPEC\n");
  return 2;
}

int fail(const std::string& what) {
  std::fprintf(stderr, "bench_dither_file: %s\n", what.c_str());
  return 1;
}

// The colours of a list palette, or every colour of a levels palette (levels^3 of them).
int print_palette(const std::string& text) {
  dither::Result<dither::engine::PaletteSpec> spec = dither::engine::parse_palette_spec(text);
  if (!spec) return fail(spec.error().message);
  if (spec->kind == dither::engine::PaletteSpec::Kind::kAdaptive)
    return fail("adaptive needs an image");
  const dither::engine::Palette palette =
      dither::engine::resolve_palette(*spec, dither::engine::Image(1, 1, 3));
  std::vector<dither::engine::Color> colors = palette.colors();
  if (palette.is_levels()) {
    const int n = palette.levels();
    for (int r = 0; r < n; ++r) {
      for (int g = 0; g < n; ++g) {
        for (int b = 0; b < n; ++b) {
          colors.push_back(
              {palette.level_value(r), palette.level_value(g), palette.level_value(b)});
        }
      }
    }
  }
  for (const dither::engine::Color& c : colors)
    std::printf("%s\n", dither::engine::to_hex(c).c_str());
  return 0;
}

int run(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--print-palette") return print_palette(argv[2]);
  if (argc < 5) return usage();
  const std::string in_path = argv[1];
  const int width = std::atoi(argv[2]);
  const int height = std::atoi(argv[3]);
  const std::string out_path = argv[4];
  std::string palette_text = "levels:2";
  dither::engine::DitherOptions options;
  options.color_space = dither::engine::ColorSpace::kSrgb;  // --linear turns linear light on
  options.threads = 0;
  for (int i = 5; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--algorithm" && has_value) {
      dither::Result<dither::engine::Algorithm> a = dither::engine::parse_algorithm(argv[++i]);
      if (!a) return fail(a.error().message);
      options.algorithm = *a;
    } else if (arg == "--palette" && has_value) {
      palette_text = argv[++i];
    } else if (arg == "--threads" && has_value) {
      options.threads = std::atoi(argv[++i]);
    } else if (arg == "--linear") {
      options.color_space = dither::engine::ColorSpace::kLinear;
    } else if (arg == "--serpentine") {
      options.serpentine = true;
    } else {
      return usage();
    }
  }
  dither::Result<dither::engine::Image> image = dither::bench::read_raw_rgb(in_path, width, height);
  if (!image) return fail(image.error().message);
  dither::Result<dither::engine::PaletteSpec> spec =
      dither::engine::parse_palette_spec(palette_text);
  if (!spec) return fail(spec.error().message);
  const dither::engine::Palette palette = dither::engine::resolve_palette(*spec, *image);
  dither::Result<dither::engine::Image> out =
      dither::engine::dither_image(*image, palette, options);
  if (!out) return fail(out.error().message);
  if (dither::Status s = dither::bench::write_raw_rgb(out_path, *out); !s) {
    return fail(s.error().message);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}
