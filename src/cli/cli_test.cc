#include "cli/cli.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/options.h"
#include "engine/palette.h"
#include "engine/testing/test_images.h"
#include "imaging/codec.h"
#include "pipeline/process_options.h"

namespace dither {
namespace {

namespace fs = std::filesystem;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("dither_cli_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    auto png = imaging::encode(testing::synthetic_photo(64, 48), imaging::OutputFormat::kPng);
    ASSERT_TRUE(png.ok());
    write("photo.png", std::string(png->begin(), png->end()));
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path(name), std::ios::binary) << bytes;
  }
  std::string read(const std::string& name) const {
    std::ifstream f(path(name), std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  }
  int run(const std::vector<std::string>& args) {
    out_.str("");
    err_.str("");
    return cli::run(args, out_, err_);
  }
  // Exactly one line, starting with "dither: ".
  void expect_one_error_line() const {
    const std::string e = err_.str();
    EXPECT_EQ(e.rfind("dither: ", 0), 0u) << e;
    EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
  }

  fs::path dir_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(CliTest, HelpNamesEveryOption) {
  EXPECT_EQ(run({"--help"}), 0);
  for (const auto& o : option_table()) {
    std::string flag = "--" + std::string(o.name);
    std::replace(flag.begin(), flag.end(), '_', '-');
    EXPECT_NE(out_.str().find(flag), std::string::npos) << flag;
  }
}

TEST_F(CliTest, ListNamesEveryAlgorithmAndPalette) {
  EXPECT_EQ(run({"--list"}), 0);
  for (const auto& a : algorithms()) EXPECT_NE(out_.str().find(a.name), std::string::npos);
  for (const auto& p : named_palettes()) EXPECT_NE(out_.str().find(p.name), std::string::npos);
}

TEST_F(CliTest, DithersToEachFormatWithOptions) {
  for (const char* out : {"out.png", "out.gif", "out.webp"}) {
    ASSERT_EQ(run({path("photo.png"), path(out), "--palette", "pico8", "--algorithm", "atkinson",
                   "--serpentine", "--linear-light", "--strength=0.8", "--threads", "2"}),
              0)
        << err_.str();
    const std::string bytes = read(out);
    auto img = imaging::decode(
        std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), imaging::Limits{});
    ASSERT_TRUE(img.ok()) << out;
    const Palette p = Palette::from_colors(*named_palette("pico8"));
    for (size_t i = 0; i < img->pixel_count(); ++i) {
      const uint8_t* px = img->pixels.data() + i * size_t(img->channels);
      ASSERT_TRUE(p.contains({px[0], px[1], px[2]})) << out;
    }
  }
  EXPECT_FALSE(fs::exists(path("out.png.tmp")));
}

TEST_F(CliTest, ChannelsAndResize) {
  ASSERT_EQ(run({path("photo.png"), path("small.png"), "--channels", "3", "--width", "32",
                 "--upscale", "2"}),
            0)
      << err_.str();
  const std::string bytes = read("small.png");
  auto info = imaging::probe(
      std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), imaging::Limits{});
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->width, 64);
  EXPECT_EQ(info->height, 48);
}

TEST_F(CliTest, TimingsAreOneJsonLineOnStandardError) {
  // Streamed (error diffusion follows the decoder) and not (ordered, with a resize).
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{},
        std::vector<std::string>{"--algorithm", "bayer", "--width", "32"}}) {
    std::vector<std::string> args = {path("photo.png"), path("out.png"), "--timings"};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_EQ(run(args), 0) << err_.str();
    const std::string e = err_.str();
    ASSERT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
    auto parsed = boost::json::parse(e);
    ASSERT_TRUE(parsed.is_object()) << e;
    for (const char* stage : {"read", "decode", "dither", "waited", "encode", "write"}) {
      const boost::json::value* v = parsed.as_object().if_contains(stage);
      ASSERT_NE(v, nullptr) << stage << " in " << e;
      EXPECT_GE(v->to_number<double>(), 0.0) << stage;
    }
    EXPECT_GT(parsed.at("decode").to_number<double>(), 0.0) << e;
    EXPECT_GT(parsed.at("encode").to_number<double>(), 0.0) << e;
  }
  // Without the flag, nothing on standard error.
  ASSERT_EQ(run({path("photo.png"), path("out.png")}), 0);
  EXPECT_EQ(err_.str(), "");
}

TEST_F(CliTest, BadInputsGiveOneLineAndExitOne) {
  write("notes.png", "this is text, not a picture");
  const std::string png = read("photo.png");
  write("truncated.png", png.substr(0, png.size() / 2));
  write("empty.png", "");
  for (const char* in : {"missing.png", "notes.png", "truncated.png", "empty.png"}) {
    EXPECT_EQ(run({path(in), path("out.png")}), 1) << in;
    expect_one_error_line();
    EXPECT_FALSE(fs::exists(path("out.png"))) << in;
  }
  EXPECT_EQ(run({path("photo.png"), path("out.png"), "--max-pixels", "100"}), 1);
  EXPECT_NE(err_.str().find("limit"), std::string::npos) << err_.str();
  EXPECT_EQ(run({path("photo.png"), path("out.png"), "--max-bytes", "100"}), 1);
  EXPECT_NE(err_.str().find("limit"), std::string::npos) << err_.str();
  expect_one_error_line();
  EXPECT_FALSE(fs::exists(path("out.png")));
  EXPECT_EQ(run({path("photo.png"), path("out.png"), "--max-bytes", "0"}), 2);
}

TEST_F(CliTest, BadUsageGivesOneLineAndExitTwo) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {path("photo.png")},
      {path("photo.png"), path("out.bmp")},
      {path("photo.png"), path("out.png"), "--channels", "1"},
      {path("photo.png"), path("out.png"), "--channels", "257"},
      {path("photo.png"), path("out.png"), "--channels", "x"},
      {path("photo.png"), path("out.png"), "--palette"},
      {path("photo.png"), path("out.png"), "--algorithm", "blur"},
      {path("photo.png"), path("out.png"), "--frobnicate", "1"},
      {path("photo.png"), path("out.png"), "-x"},
      {path("photo.png"), path("out.png"), "extra"},
  };
  for (const auto& args : cases) {
    EXPECT_EQ(run(args), 2) << (args.empty() ? "" : args.back());
    expect_one_error_line();
  }
}

// The real binary: a bad file is an exit code, not a crash.
TEST_F(CliTest, BinaryExitsCleanlyOnBadFiles) {
  write("junk.jpg", std::string("\xff\xd8\xff\xe0 garbage garbage", 20));
  const std::string cmd = std::string(DITHER_CLI_PATH) + " " + path("junk.jpg") + " " +
                          path("out.png") + " 2>" + path("err.txt");
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_EQ(read("err.txt").rfind("dither: ", 0), 0u);
}

}  // namespace
}  // namespace dither
