// Progressive JPEGs decoded on several threads (jpeg_scans.h) against libjpeg decoding the whole
// file on one, and against libvips, byte for byte. The JPEGs are made here with libjpeg, with the
// scan scripts encoders use and some they rarely do.
#include "imaging/jpeg_scans.h"

// clang-format off
#include <cstdio>
#include <jpeglib.h>
// clang-format on
#include <gtest/gtest.h>
#include <vips/vips.h>

#include <bit>
#include <csetjmp>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "engine/isa.h"
#include "engine/isa_config.h"
#include "engine/testing/isa_from_environment.h"
#include "imaging/codec.h"
#include "imaging/jpeg_ac.h"

namespace dither::imaging::internal {
namespace {

using Bytes = std::vector<uint8_t>;

// ctest runs these tests twice where the build has the x86-64-v3 copy of the AC decoding
// (src/imaging/CMakeLists.txt): engine/testing/isa_from_environment.h.
using engine::testing::testing_build_copy;

TEST(JpegScans, TheTestsRunTheCopyTheirRunNames) {
  const bool v3 = !testing_build_copy() && engine::best_isa() == engine::Isa::kX86_64V3 &&
                  engine::fast_bit_deposit();
  EXPECT_EQ(AcDecoder::uses_x86_64_v3(), v3);
#if DITHER_ENGINE_X86_64_V3 && defined(__x86_64__)
  // fast_bit_deposit(): BMI2, and on AMD a Zen 3 or later (family 19h and up).
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("bmi2")) {
    EXPECT_FALSE(engine::fast_bit_deposit());
  }
  if (__builtin_cpu_is("intel") && __builtin_cpu_supports("bmi2")) {
    EXPECT_TRUE(engine::fast_bit_deposit());
  }
  if (__builtin_cpu_is("amd") && (__builtin_cpu_is("znver1") || __builtin_cpu_is("znver2"))) {
    EXPECT_FALSE(engine::fast_bit_deposit());
  }
  if (__builtin_cpu_is("amd") && __builtin_cpu_is("znver3") && __builtin_cpu_supports("bmi2")) {
    EXPECT_TRUE(engine::fast_bit_deposit());
  }
#else
  EXPECT_FALSE(engine::fast_bit_deposit());
  EXPECT_FALSE(AcDecoder::uses_x86_64_v3());
#endif
}

struct Sampling {
  int h, v;  // of the luma; chroma is 1x1
};

enum class Script {
  kSimple,
  kSeparateDc,
  kSpectralOnly,
  kManyRefinements,
  kManyBands,
  kUnrefined,  // luma's AC left one bit short: libjpeg smooths the blocks
  kNoChromaAc  // chroma's AC never sent: the same
};

// Smooth colour ramps with noise: something like a photo, so that every band carries data.
std::vector<uint8_t> picture(int w, int h, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> noise(-40, 40);
  std::vector<uint8_t> rgb(static_cast<size_t>(w) * static_cast<size_t>(h) * 3);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &rgb[(static_cast<size_t>(y) * static_cast<size_t>(w) + x) * 3];
      const int base[3] = {x * 255 / std::max(w, 1), y * 255 / std::max(h, 1), (x + y) % 256};
      for (int c = 0; c < 3; ++c)
        p[c] = static_cast<uint8_t>(std::clamp(base[c] + noise(rng), 0, 255));
    }
  }
  return rgb;
}

std::vector<jpeg_scan_info> script_of(Script script) {
  switch (script) {
    case Script::kSimple:
      return {};
    case Script::kSeparateDc:  // one DC scan per component, successive approximation
      return {{1, {0}, 0, 0, 0, 1},       {1, {1}, 0, 0, 0, 1},  {1, {2}, 0, 0, 0, 1},
              {1, {0}, 1, 63, 0, 1},      {1, {1}, 1, 63, 0, 0}, {1, {2}, 1, 63, 0, 0},
              {3, {0, 1, 2}, 0, 0, 1, 0}, {1, {0}, 1, 63, 1, 0}};
    case Script::kSpectralOnly:  // bands, no refinement
      return {{3, {0, 1, 2}, 0, 0, 0, 0}, {1, {0}, 1, 2, 0, 0},  {1, {0}, 3, 9, 0, 0},
              {1, {0}, 10, 63, 0, 0},     {1, {2}, 1, 63, 0, 0}, {1, {1}, 1, 63, 0, 0}};
    case Script::kManyRefinements:
      return {{3, {0, 1, 2}, 0, 0, 0, 2}, {1, {0}, 1, 5, 0, 3},       {1, {1}, 1, 63, 0, 2},
              {1, {2}, 1, 63, 0, 2},      {1, {0}, 6, 63, 0, 3},      {1, {0}, 1, 63, 3, 2},
              {3, {0, 1, 2}, 0, 0, 2, 1}, {1, {0}, 1, 63, 2, 1},      {1, {1}, 1, 63, 2, 1},
              {1, {2}, 1, 63, 2, 1},      {3, {0, 1, 2}, 0, 0, 1, 0}, {1, {0}, 1, 63, 1, 0},
              {1, {1}, 1, 63, 1, 0},      {1, {2}, 1, 63, 1, 0}};
    case Script::kManyBands: {  // more AC scans than parts: luma one coefficient a scan
      std::vector<jpeg_scan_info> scans = {{3, {0, 1, 2}, 0, 0, 0, 0}};
      for (int k = 1; k <= 20; ++k) scans.push_back({1, {0}, k, k, 0, 0});
      scans.push_back({1, {0}, 21, 63, 0, 0});
      scans.push_back({1, {1}, 1, 63, 0, 0});
      scans.push_back({1, {2}, 1, 63, 0, 0});
      return scans;
    }
    case Script::kUnrefined:
      return {{3, {0, 1, 2}, 0, 0, 0, 0},
              {1, {0}, 1, 63, 0, 1},
              {1, {1}, 1, 63, 0, 0},
              {1, {2}, 1, 63, 0, 0}};
    case Script::kNoChromaAc:
      return {{3, {0, 1, 2}, 0, 0, 0, 0}, {1, {0}, 1, 63, 0, 0}};
  }
  return {};
}

struct JpegError {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
};

[[noreturn]] void jump_out(j_common_ptr cinfo) {
  std::longjmp(reinterpret_cast<JpegError*>(cinfo->err)->jump, 1);
}

void quiet(j_common_ptr, int) {}

Bytes encode(int w, int h, Sampling sampling, Script script, int restart_rows = 0,
             bool progressive = true, uint32_t seed = 1) {
  const std::vector<uint8_t> rgb = picture(w, h, seed);
  const std::vector<jpeg_scan_info> scans = script_of(script);
  jpeg_compress_struct cinfo{};
  JpegError err{};
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = jump_out;
  unsigned char* out = nullptr;
  unsigned long size = 0;
  if (setjmp(err.jump) != 0) {
    jpeg_destroy_compress(&cinfo);
    ADD_FAILURE() << "libjpeg could not encode the test image";
    return {};
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, &out, &size);
  cinfo.image_width = static_cast<JDIMENSION>(w);
  cinfo.image_height = static_cast<JDIMENSION>(h);
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, 90, TRUE);
  cinfo.comp_info[0].h_samp_factor = sampling.h;
  cinfo.comp_info[0].v_samp_factor = sampling.v;
  cinfo.restart_in_rows = restart_rows;
  if (progressive) {
    jpeg_simple_progression(&cinfo);
    if (!scans.empty()) {
      cinfo.scan_info = scans.data();
      cinfo.num_scans = static_cast<int>(scans.size());
    }
  }
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    auto* row = const_cast<uint8_t*>(&rgb[static_cast<size_t>(cinfo.next_scanline) * w * 3]);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  Bytes bytes(out, out + size);
  free(out);
  return bytes;
}

// The oracle: one libjpeg decompressor reading the whole file with its defaults.
std::optional<std::vector<uint8_t>> libjpeg_pixels(const Bytes& bytes) {
  jpeg_decompress_struct cinfo{};
  JpegError err{};
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = jump_out;
  err.pub.emit_message = quiet;
  std::vector<uint8_t> rgb;
  if (setjmp(err.jump) != 0) {
    jpeg_destroy_decompress(&cinfo);
    return std::nullopt;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, bytes.data(), bytes.size());
  jpeg_read_header(&cinfo, TRUE);
  jpeg_start_decompress(&cinfo);
  rgb.resize(static_cast<size_t>(cinfo.output_width) * cinfo.output_height * 3);
  while (cinfo.output_scanline < cinfo.output_height) {
    uint8_t* row = &rgb[static_cast<size_t>(cinfo.output_scanline) * cinfo.output_width * 3];
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return rgb;
}

// What libvips makes of the file (as decode() loads it), or nothing if it refuses it; with
// `upright`, turned by its EXIF orientation, as decode() shows it.
std::optional<std::vector<uint8_t>> vips_pixels(const Bytes& bytes, bool upright = false) {
  VipsImage* image = nullptr;
  if (vips_jpegload_buffer(const_cast<uint8_t*>(bytes.data()), bytes.size(), &image, "fail_on",
                           VIPS_FAIL_ON_ERROR, nullptr) != 0) {
    vips_error_clear();
    return std::nullopt;
  }
  if (upright) {
    VipsImage* turned = nullptr;
    const int failed = vips_autorot(image, &turned, nullptr);
    g_object_unref(image);
    if (failed) {
      vips_error_clear();
      return std::nullopt;
    }
    image = turned;
  }
  size_t size = 0;
  void* memory = vips_image_write_to_memory(image, &size);
  g_object_unref(image);
  if (memory == nullptr) {
    vips_error_clear();
    return std::nullopt;
  }
  std::vector<uint8_t> rgb(static_cast<uint8_t*>(memory), static_cast<uint8_t*>(memory) + size);
  g_free(memory);
  return rgb;
}

struct Split {
  ScanOutcome outcome;
  std::vector<uint8_t> rgb;
  std::vector<int> rows;  // what on_rows() was told, in order
};

Split split_decode(
    const Bytes& bytes, int w, int h, int threads,
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max()) {
  std::optional<ScanPlan> plan = plan_scans(bytes, threads);
  EXPECT_TRUE(plan.has_value());
  if (!plan) return {ScanOutcome::kFallBack, {}, {}};
  engine::Image img(w, h, 3);
  Split split;
  split.outcome = decode_scans(*plan, img, deadline, [&split](int n) { split.rows.push_back(n); });
  split.rgb.assign(img.pixels.begin(), img.pixels.end());
  return split;
}

std::string name(int w, int h, Sampling s, Script script, int restart) {
  return std::to_string(w) + "x" + std::to_string(h) + " luma " + std::to_string(s.h) + "x" +
         std::to_string(s.v) + " script " + std::to_string(static_cast<int>(script)) + " restart " +
         std::to_string(restart);
}

TEST(JpegScans, SameBytesAsOneDecompressor) {
  if (VIPS_INIT("jpeg_scans_test") != 0) FAIL() << "libvips";
  const Sampling samplings[] = {{1, 1}, {2, 1}, {2, 2}, {1, 2}, {4, 1}};
  const Script scripts[] = {Script::kSimple, Script::kSeparateDc, Script::kSpectralOnly,
                            Script::kManyRefinements, Script::kManyBands};
  const int sizes[][2] = {{1, 1}, {9, 7}, {33, 17}, {250, 131}, {640, 481}};
  int checked = 0;
  for (const auto& size : sizes) {
    for (Sampling sampling : samplings) {
      for (Script script : scripts) {
        for (int restart : {0, 2}) {
          const int w = size[0], h = size[1];
          const std::string what = name(w, h, sampling, script, restart);
          const Bytes jpeg = encode(w, h, sampling, script, restart);
          const std::optional<ScanPlan> plan = plan_scans(jpeg, 2);
          // A tiny image can have nearly all its data in one part: then it is not split.
          if (!plan) {
            EXPECT_LT(w * h, 1000) << what;
            continue;
          }
          const size_t ac_scans = plan->scans.size() - plan->parts[0].scans.size();
          for (int threads : {2, 3}) {
            const uint64_t ac_before = AcDecoder::scans_decoded();
            const Split split = split_decode(jpeg, w, h, threads);
            ASSERT_EQ(split.outcome, ScanOutcome::kDecoded) << what;
            // Every AC scan went through jpeg_ac.h's decoder, none through libjpeg's own.
            EXPECT_EQ(AcDecoder::scans_decoded() - ac_before, ac_scans) << what;
            EXPECT_EQ(split.rgb, libjpeg_pixels(jpeg)) << what << " threads " << threads;
            ASSERT_FALSE(split.rows.empty()) << what;
            EXPECT_EQ(split.rows.back(), h) << what;
            EXPECT_TRUE(std::is_sorted(split.rows.begin(), split.rows.end())) << what;
          }
          if (w >= 250) {
            EXPECT_EQ(split_decode(jpeg, w, h, 2).rgb, vips_pixels(jpeg)) << what;
          }
          ++checked;
        }
      }
    }
  }
  EXPECT_GT(checked, 120);
}

// Each scan of the plan: which it trails, and that every scan is read by exactly one part, in
// the order of reading within it.
void expect_consistent(const ScanPlan& plan, const std::string& what) {
  std::vector<int> read_by(plan.scans.size(), 0);
  for (const ScanPlan::Part& part : plan.parts) {
    EXPECT_TRUE(std::is_sorted(part.scans.begin(), part.scans.end())) << what;
    for (int s : part.scans) ++read_by[static_cast<size_t>(s)];
  }
  EXPECT_EQ(read_by, std::vector<int>(plan.scans.size(), 1)) << what;
  for (size_t s = 0; s < plan.scans.size(); ++s) {
    const ScanPlan::Scan& scan = plan.scans[s];
    const bool dc = std::find(plan.parts[0].scans.begin(), plan.parts[0].scans.end(),
                              static_cast<int>(s)) != plan.parts[0].scans.end();
    if (dc) {
      EXPECT_EQ(scan.after, -1) << what << " scan " << s;
      continue;
    }
    // An AC scan trails the last scan before it of its component.
    ASSERT_EQ(std::popcount(scan.components), 1) << what;
    ASSERT_GE(scan.after, 0) << what << " scan " << s;
    ASSERT_LT(scan.after, static_cast<int>(s)) << what;
    EXPECT_NE(plan.scans[static_cast<size_t>(scan.after)].components & scan.components, 0U);
    for (size_t between = static_cast<size_t>(scan.after) + 1; between < s; ++between) {
      EXPECT_EQ(plan.scans[between].components & scan.components, 0U) << what << " scan " << s;
    }
  }
}

TEST(JpegScans, PlansAPartPerAcScanEachTrailingTheOneBefore) {
  // libjpeg's own script: DC, then Y 1-5, Cr, Cb, Y 6-63, Y refined, DC refined, Cr, Cb, Y refined.
  const Bytes jpeg = encode(640, 480, {1, 1}, Script::kSimple);
  const std::optional<ScanPlan> plan = plan_scans(jpeg, 2);
  ASSERT_TRUE(plan.has_value());
  ASSERT_EQ(plan->scans.size(), 10U);
  ASSERT_EQ(plan->parts.size(), 9U);  // the DC scans, then one part per AC scan
  EXPECT_EQ(plan->parts[0].scans, (std::vector<int>{0, 1}));
  for (size_t p = 1; p < plan->parts.size(); ++p) {
    EXPECT_EQ(plan->parts[p].scans, std::vector<int>{static_cast<int>(p) + 1});
  }
  expect_consistent(*plan, "simple");
  // Y 6-63 trails Y 1-5 (scans 2 and 5); Y 1-5 the DC refinement, read first (scan 1).
  EXPECT_EQ(plan->scans[5].after, 2);
  EXPECT_EQ(plan->scans[2].after, 1);
  EXPECT_FALSE(plan_scans(jpeg, 1).has_value());
  EXPECT_TRUE(plan_scans(jpeg, 8).has_value());
}

TEST(JpegScans, MoreAcScansThanPartsShareThemInOrder) {
  const Bytes jpeg = encode(640, 480, {2, 2}, Script::kManyBands);
  const std::optional<ScanPlan> plan = plan_scans(jpeg, 2);
  ASSERT_TRUE(plan.has_value());
  EXPECT_EQ(plan->scans.size(), 24U);
  EXPECT_EQ(plan->parts.size(), static_cast<size_t>(kMaxParts));
  expect_consistent(*plan, "many bands");
  for (size_t p = 2; p < plan->parts.size(); ++p) {  // runs in the file's order
    EXPECT_LT(plan->parts[p - 1].scans.back(), plan->parts[p].scans.front());
  }
}

TEST(JpegScans, LeavesOtherFilesToTheOrdinaryDecoder) {
  // Baseline: one scan.
  EXPECT_FALSE(plan_scans(encode(320, 240, {2, 2}, Script::kSimple, 0, false), 2).has_value());
  // Not a JPEG, empty, truncated before the first scan.
  const Bytes jpeg = encode(320, 240, {2, 2}, Script::kSimple);
  EXPECT_FALSE(plan_scans(Bytes{1, 2, 3}, 2).has_value());
  EXPECT_FALSE(plan_scans(Bytes{}, 2).has_value());
  EXPECT_FALSE(plan_scans(Bytes(jpeg.begin(), jpeg.begin() + 300), 2).has_value());
  // A quantisation table redefined after the first scan: DC scans could not move forward.
  Bytes later = jpeg;
  size_t second_sos = 0;
  for (size_t i = 2, seen = 0; i + 1 < later.size(); ++i) {
    if (later[i] == 0xFF && later[i + 1] == 0xDA && ++seen == 2) {
      second_sos = i;
      break;
    }
  }
  ASSERT_GT(second_sos, 0U);
  Bytes dqt = {0xFF, 0xDB, 0x00, 0x43, 0x00};
  for (int i = 0; i < 64; ++i) dqt.push_back(static_cast<uint8_t>(1 + i));
  later.insert(later.begin() + static_cast<ptrdiff_t>(second_sos), dqt.begin(), dqt.end());
  EXPECT_FALSE(plan_scans(later, 2).has_value());
  EXPECT_TRUE(plan_scans(jpeg, 2).has_value());
}

TEST(JpegScans, TruncatedFallsBackWithoutRows) {
  const Bytes jpeg = encode(400, 300, {2, 2}, Script::kSimple);
  // Cut in the middle of the last scan, the end marker put back: libjpeg warns (the scan's data
  // ends early) and the ordinary decoder must decide.
  Bytes cut(jpeg.begin(), jpeg.end() - 2000);
  cut.push_back(0xFF);
  cut.push_back(0xD9);
  std::optional<ScanPlan> plan = plan_scans(cut, 2);
  ASSERT_TRUE(plan.has_value());
  engine::Image img(400, 300, 3);
  int rows = 0;
  EXPECT_EQ(decode_scans(*plan, img, std::chrono::steady_clock::time_point::max(),
                         [&rows](int n) { rows = n; }),
            ScanOutcome::kFallBack);
  EXPECT_EQ(rows, 0);
}

// decode() with random damage in the scans: whatever libvips alone would say (the same pixels, or
// an error), the split decoder says too, because it falls back whenever libjpeg complains.
TEST(JpegScans, DamagedFilesDecodeAsLibvipsAlone) {
  if (VIPS_INIT("jpeg_scans_test") != 0) FAIL() << "libvips";
  // libjpeg's own script, a refinement-heavy one with restart markers, and a small image (where a
  // scan can end with the bit buffer still full).
  const Bytes files[] = {encode(256, 160, {2, 2}, Script::kSimple),
                         encode(250, 131, {2, 1}, Script::kManyRefinements, 2),
                         encode(40, 24, {1, 1}, Script::kManyRefinements)};
  std::mt19937 rng(7);
  for (size_t f = 0; f < std::size(files); ++f) {
    const Bytes& jpeg = files[f];
    ASSERT_TRUE(plan_scans(jpeg, 2).has_value()) << "file " << f;
    int same = 0;
    for (int i = 0; i < 120; ++i) {
      Bytes damaged = jpeg;
      std::uniform_int_distribution<size_t> at(damaged.size() / 4, damaged.size() - 3);
      for (int k = 0; k < 1 + i % 3; ++k) {
        // Whole bytes, or a single bit (what a fuzzer tries first).
        damaged[at(rng)] ^= static_cast<uint8_t>(i % 2 == 0 ? 1 + rng() % 255 : 1U << (rng() % 8));
      }
      const std::string what = "file " + std::to_string(f) + " mutation " + std::to_string(i);
      const std::optional<std::vector<uint8_t>> alone = vips_pixels(damaged);
      const Result<engine::Image> decoded = decode(damaged, Limits{});
      ASSERT_EQ(decoded.ok(), alone.has_value()) << what;
      // verify(), the upload's check, reads the same way at 1/8 scale and agrees.
      EXPECT_EQ(verify(damaged, Limits{}).ok(), decoded.ok()) << what;
      if (decoded.ok()) {
        EXPECT_EQ(std::vector<uint8_t>(decoded->pixels.begin(), decoded->pixels.end()), *alone)
            << what;
        ++same;
      }
    }
    EXPECT_GT(same, 0) << "file " << f;  // some damage is only to coefficients: it decodes
  }
}

TEST(JpegScans, ScaledForVerify) {
  const Bytes jpeg = encode(203, 97, {2, 2}, Script::kSimple);
  std::optional<ScanPlan> plan = plan_scans(jpeg, 2);
  ASSERT_TRUE(plan.has_value());
  engine::Image small(26, 13, 3);  // 203 / 8 and 97 / 8, rounded up, as libjpeg scales
  EXPECT_EQ(decode_scans(*plan, small, std::chrono::steady_clock::time_point::max(), {}, 8),
            ScanOutcome::kDecoded);
  engine::Image wrong(25, 12, 3);
  EXPECT_EQ(decode_scans(*plan, wrong, std::chrono::steady_clock::time_point::max(), {}, 8),
            ScanOutcome::kFallBack);
  const uint64_t before = scan_decodes();
  const Result<ImageInfo> info = verify(jpeg, Limits{});
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(scan_decodes(), before + 1);  // verify() took this path
  EXPECT_EQ(info->width, 203);
  EXPECT_EQ(info->height, 97);
}

// An image of 4 MiB or more is written into pages moved from the coefficients as they are given
// back (jpeg_scans.cc, PageRecycler): the pixels are still exactly libjpeg's, whether the image's
// memory is fresh or reused from the image before (PixelAllocator keeps one large buffer).
TEST(JpegScans, RowsInRecycledPagesAreTheSame) {
  for (Sampling sampling : {Sampling{1, 1}, Sampling{2, 2}}) {
    const int w = 1601, h = 1103;  // 5.3 MB of RGB; rows do not start on page boundaries
    const std::string what = name(w, h, sampling, Script::kManyRefinements, 0);
    const Bytes jpeg = encode(w, h, sampling, Script::kManyRefinements);
    const std::optional<std::vector<uint8_t>> expected = libjpeg_pixels(jpeg);
    ASSERT_TRUE(expected.has_value()) << what;
    for (int round = 0; round < 2; ++round) {
      const uint64_t before = pages_recycled();
      const Split split = split_decode(jpeg, w, h, 2);
      ASSERT_EQ(split.outcome, ScanOutcome::kDecoded) << what;
      EXPECT_EQ(split.rgb, *expected) << what << " round " << round;
      const uint64_t moved = pages_recycled() - before;
      EXPECT_GT(moved, 0U) << what;
      EXPECT_LE(moved, static_cast<uint64_t>(w) * h * 3 / 4096) << what;
    }
  }
}

TEST(JpegScans, StopsAtItsDeadline) {
  const Bytes jpeg = encode(640, 480, {2, 2}, Script::kSimple);
  const Split late = split_decode(jpeg, 640, 480, 2, std::chrono::steady_clock::now());
  EXPECT_EQ(late.outcome, ScanOutcome::kTimedOut);
  EXPECT_TRUE(late.rows.empty());
}

TEST(JpegScans, DecodeUsesItAndKeepsLibvipsPixels) {
  if (VIPS_INIT("jpeg_scans_test") != 0) FAIL() << "libvips";
  const Bytes jpeg = encode(1000, 700, {2, 1}, Script::kSimple);
  ASSERT_TRUE(plan_scans(jpeg, 2).has_value());
  const uint64_t before = scan_decodes();
  const Result<engine::Image> decoded = decode(jpeg, Limits{});
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(scan_decodes(), before + 1);  // not libvips' decoder, whose pixels are the same
  EXPECT_EQ(std::vector<uint8_t>(decoded->pixels.begin(), decoded->pixels.end()),
            vips_pixels(jpeg));
}

// `jpeg` with a marker segment (`marker`, then `data`) put right after its SOI.
Bytes with_segment(const Bytes& jpeg, uint8_t marker, const Bytes& data) {
  const size_t length = data.size() + 2;
  Bytes out(jpeg.begin(), jpeg.begin() + 2);
  out.insert(out.end(), {0xFF, marker, static_cast<uint8_t>(length >> 8),
                         static_cast<uint8_t>(length & 0xFF)});
  out.insert(out.end(), data.begin(), data.end());
  out.insert(out.end(), jpeg.begin() + 2, jpeg.end());
  return out;
}

Bytes text(std::string_view s) { return Bytes(s.begin(), s.end()); }

// An APP1 "Exif" segment's data: a TIFF header (`little`-endian or not) and one IFD holding
// `entries` (tag, type, count, value: a SHORT's value in the first two bytes of the field).
struct Entry {
  uint16_t tag, type;
  uint32_t count, value;
};
Bytes exif(bool little, const std::vector<Entry>& entries, uint32_t ifd = 8) {
  Bytes out = text(std::string_view("Exif\0\0", 6));
  const auto put16 = [&out, little](uint32_t v) {
    const uint8_t lo = v & 0xFF, hi = (v >> 8) & 0xFF;
    out.insert(out.end(), little ? std::initializer_list<uint8_t>{lo, hi}
                                 : std::initializer_list<uint8_t>{hi, lo});
  };
  const auto put32 = [&put16, little](uint32_t v) {
    put16(little ? v & 0xFFFF : v >> 16);
    put16(little ? v >> 16 : v & 0xFFFF);
  };
  out.push_back(little ? 'I' : 'M');
  out.push_back(little ? 'I' : 'M');
  put16(42);
  put32(ifd);
  put16(static_cast<uint32_t>(entries.size()));
  for (const Entry& e : entries) {
    put16(e.tag);
    put16(e.type);
    put32(e.count);
    if (e.type == 3) {
      put16(e.value);
      put16(0);
    } else {
      put32(e.value);
    }
  }
  put32(0);  // no next IFD
  return out;
}

constexpr uint16_t kOrientationTag = 0x0112, kShortType = 3, kLongType = 4;

// The plan reads the header itself (libvips is not loaded for a planned file: vips_lazy.h), so
// it must leave to libvips every file whose pixels libvips would change: an EXIF orientation
// other than 1 and an ICC profile, here as libvips itself writes them.
TEST(JpegScans, LeavesToLibvipsTheFilesItWouldTurnOrConvert) {
  if (VIPS_INIT("jpeg_scans_test") != 0) FAIL() << "libvips";
  const int w = 300, h = 200;
  const std::vector<uint8_t> rgb = picture(w, h, 5);
  VipsImage* raw =
      vips_image_new_from_memory_copy(rgb.data(), rgb.size(), w, h, 3, VIPS_FORMAT_UCHAR);
  ASSERT_NE(raw, nullptr);
  const auto save = [](VipsImage* image) {
    void* buffer = nullptr;
    size_t size = 0;
    EXPECT_EQ(vips_jpegsave_buffer(image, &buffer, &size, "interlace", TRUE, nullptr), 0);
    Bytes bytes(static_cast<uint8_t*>(buffer), static_cast<uint8_t*>(buffer) + size);
    g_free(buffer);
    return bytes;
  };
  for (int orientation = 1; orientation <= 8; ++orientation) {
    VipsImage* tagged = nullptr;
    ASSERT_EQ(vips_copy(raw, &tagged, "interpretation", VIPS_INTERPRETATION_sRGB, nullptr), 0);
    vips_image_set_int(tagged, VIPS_META_ORIENTATION, orientation);
    const Bytes jpeg = save(tagged);
    g_object_unref(tagged);
    const std::string what = "orientation " + std::to_string(orientation);
    const std::optional<ScanPlan> plan = plan_scans(jpeg, 2);
    ASSERT_EQ(plan.has_value(), orientation == 1) << what;
    if (plan) {
      EXPECT_EQ(plan->width, w);
      EXPECT_EQ(plan->height, h);
    }
    const uint64_t before = scan_decodes();
    const Result<engine::Image> decoded = decode(jpeg, Limits{});
    ASSERT_TRUE(decoded.ok()) << what;
    EXPECT_EQ(scan_decodes() - before, orientation == 1 ? 1U : 0U) << what;
    EXPECT_EQ(decoded->width, orientation >= 5 ? h : w) << what;
    EXPECT_EQ(std::vector<uint8_t>(decoded->pixels.begin(), decoded->pixels.end()),
              vips_pixels(jpeg, /*upright=*/true))
        << what;
  }
  VipsImage* p3 = nullptr;  // the same picture with a Display P3 profile attached
  ASSERT_EQ(vips_icc_transform(raw, &p3, "p3", "input_profile", "srgb", nullptr), 0);
  const Bytes with_icc = save(p3);
  g_object_unref(p3);
  g_object_unref(raw);
  EXPECT_FALSE(plan_scans(with_icc, 2).has_value());
}

// EXIF as encoders write it, and as they should not: only what reads cleanly as orientation 1 (or
// no orientation) is planned; the rest goes to libvips, whatever it makes of it.
TEST(JpegScans, PlansOnlyExifThatReadsCleanlyAsUpright) {
  if (VIPS_INIT("jpeg_scans_test") != 0) FAIL() << "libvips";
  const Bytes jpeg = encode(320, 240, {2, 2}, Script::kSimple);
  const Entry upright{kOrientationTag, kShortType, 1, 1};
  const Entry other{0x010F, 2, 4, 0x6F6F66};  // Make: "foo", in the field
  struct Case {
    const char* what;
    Bytes file;
    bool planned;
  };
  const Bytes app1_upright = exif(true, {other, upright});
  Bytes no_byte_order = app1_upright;
  no_byte_order[6] = no_byte_order[7] = 'X';
  const Case cases[] = {
      {"orientation 1, little-endian", with_segment(jpeg, 0xE1, app1_upright), true},
      {"orientation 1, big-endian", with_segment(jpeg, 0xE1, exif(false, {upright, other})), true},
      {"no orientation", with_segment(jpeg, 0xE1, exif(false, {other})), true},
      {"no entries", with_segment(jpeg, 0xE1, exif(true, {})), true},
      {"XMP, not EXIF", with_segment(jpeg, 0xE1, text("http://ns.adobe.com/xap/1.0/")), true},
      {"APP2, not ICC", with_segment(jpeg, 0xE2, text("FPXR")), true},
      {"orientation 6", with_segment(jpeg, 0xE1, exif(true, {{kOrientationTag, kShortType, 1, 6}})),
       false},
      {"orientation 3, big-endian",
       with_segment(jpeg, 0xE1, exif(false, {other, {kOrientationTag, kShortType, 1, 3}})), false},
      {"orientation 0", with_segment(jpeg, 0xE1, exif(true, {{kOrientationTag, kShortType, 1, 0}})),
       false},
      {"orientation as a LONG",
       with_segment(jpeg, 0xE1, exif(true, {{kOrientationTag, kLongType, 1, 1}})), false},
      {"orientation twice", with_segment(jpeg, 0xE1, exif(true, {upright, upright})), false},
      {"two EXIF segments",
       with_segment(with_segment(jpeg, 0xE1, app1_upright), 0xE1, app1_upright), false},
      {"IFD past the end", with_segment(jpeg, 0xE1, exif(true, {upright}, 4000)), false},
      {"IFD inside the header", with_segment(jpeg, 0xE1, exif(true, {upright}, 4)), false},
      {"EXIF cut inside the IFD",
       with_segment(jpeg, 0xE1, Bytes(app1_upright.begin(), app1_upright.end() - 10)), false},
      {"no TIFF byte order", with_segment(jpeg, 0xE1, no_byte_order), false},
      {"orientation of two SHORTs",
       with_segment(jpeg, 0xE1, exif(true, {{kOrientationTag, kShortType, 2, 1}})), false},
      {"ICC profile", with_segment(jpeg, 0xE2, text(std::string_view("ICC_PROFILE\0\1\1", 14))),
       false},
  };
  for (const Case& c : cases) {
    const std::optional<ScanPlan> plan = plan_scans(c.file, 2);
    EXPECT_EQ(plan.has_value(), c.planned) << c.what;
    // libvips (libexif) reads the clean ones the same way: upright, the same pixels.
    if (c.planned) {
      const Result<engine::Image> decoded = decode(c.file, Limits{});
      ASSERT_TRUE(decoded.ok()) << c.what;
      EXPECT_EQ(std::vector<uint8_t>(decoded->pixels.begin(), decoded->pixels.end()),
                vips_pixels(c.file, /*upright=*/true))
          << c.what;
    }
  }
  // libexif reads the hand-made orientation 6 as libvips' own: turned.
  const Result<engine::Image> turned =
      decode(with_segment(jpeg, 0xE1, exif(true, {{kOrientationTag, kShortType, 1, 6}})), Limits{});
  ASSERT_TRUE(turned.ok());
  EXPECT_EQ(turned->width, 240);
  EXPECT_EQ(turned->height, 320);
}

// libvips leaves libjpeg's block smoothing on, and libjpeg smooths when a low coefficient is
// missing or not fully refined: such files are not split (the split decoder does not smooth), and
// decode() gives libvips' pixels.
TEST(JpegScans, LeavesFilesLibjpegWouldSmoothToLibvips) {
  if (VIPS_INIT("jpeg_scans_test") != 0) FAIL() << "libvips";
  for (Script script : {Script::kUnrefined, Script::kNoChromaAc}) {
    const Bytes jpeg = encode(320, 200, {2, 2}, script);
    const std::string what = "script " + std::to_string(static_cast<int>(script));
    EXPECT_FALSE(plan_scans(jpeg, 2).has_value()) << what;
    const Result<engine::Image> decoded = decode(jpeg, Limits{});
    ASSERT_TRUE(decoded.ok()) << what;
    EXPECT_EQ(std::vector<uint8_t>(decoded->pixels.begin(), decoded->pixels.end()),
              vips_pixels(jpeg))
        << what;
  }
}

// A header libjpeg refuses (here a frame larger than its 65,500 pixels a side) is not planned:
// libvips refuses it at the start, with the same error from probe(), verify() and decode().
TEST(JpegScans, LeavesHeadersLibjpegRefusesToLibvips) {
  Bytes jpeg = encode(320, 240, {2, 2}, Script::kSimple);
  size_t sof = 0;
  for (size_t i = 2; i + 1 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xC2) {
      sof = i;
      break;
    }
  }
  ASSERT_GT(sof, 0U);
  for (size_t at : {sof + 5, sof + 7}) jpeg[at] = jpeg[at + 1] = 0xFF;  // 65535 x 65535
  EXPECT_FALSE(plan_scans(jpeg, 2).has_value());
  Limits huge;
  huge.max_pixels = uint64_t{1} << 40;
  for (const Limits& limits : {Limits{}, huge}) {
    const Result<ImageInfo> probed = probe(jpeg, limits);
    const Result<ImageInfo> verified = verify(jpeg, limits);
    const Result<engine::Image> decoded = decode(jpeg, limits);
    ASSERT_FALSE(probed.ok());
    ASSERT_FALSE(verified.ok());
    ASSERT_FALSE(decoded.ok());
    // (libvips' error buffer is process-wide: a message may carry an earlier call's warnings.)
    for (const Error& error : {probed.error(), verified.error(), decoded.error()}) {
      EXPECT_EQ(error.kind, ErrorKind::kUndecodable) << error.message;
      EXPECT_EQ(error.message.rfind("cannot read the JPEG header", 0), 0U) << error.message;
      EXPECT_NE(error.message.find("65500"), std::string::npos) << error.message;
    }
  }
}

}  // namespace
}  // namespace dither::imaging::internal
