#include "cli/cli.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <vips/vips.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "cli/files.h"
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
    auto png =
        imaging::encode(engine::testing::synthetic_photo(64, 48), imaging::OutputFormat::kPng);
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
  for (const auto& o : pipeline::option_table()) {
    std::string flag = "--" + std::string(o.name);
    std::replace(flag.begin(), flag.end(), '_', '-');
    EXPECT_NE(out_.str().find(flag), std::string::npos) << flag;
  }
}

TEST_F(CliTest, ListNamesEveryAlgorithmAndPalette) {
  EXPECT_EQ(run({"--list"}), 0);
  for (const auto& a : engine::algorithms()) EXPECT_NE(out_.str().find(a.name), std::string::npos);
  for (const auto& p : engine::named_palettes())
    EXPECT_NE(out_.str().find(p.name), std::string::npos);
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
    const engine::Palette p = engine::Palette::from_colors(*engine::named_palette("pico8"));
    for (size_t i = 0; i < img->pixel_count(); ++i) {
      const uint8_t* px = img->pixels.data() + i * size_t(img->channels);
      ASSERT_TRUE(p.contains({px[0], px[1], px[2]})) << out;
    }
  }
  EXPECT_FALSE(fs::exists(path("out.png.tmp")));
}

// An output that is not a regular file (here a FIFO; /dev/null is the same case) is written in
// place: renaming a temporary file over it would replace it with a file (as root, /dev/null).
TEST_F(CliTest, WritesIntoADeviceOrFifoInPlace) {
  const std::string fifo = path("out.fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  std::string received;
  std::thread reader([&] {
    std::ifstream f(fifo, std::ios::binary);
    received.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  });
  const int code = run({path("photo.png"), fifo, "--format", "png"});
  reader.join();
  EXPECT_EQ(code, 0) << err_.str();
  EXPECT_TRUE(fs::is_fifo(fifo));
  EXPECT_EQ(received.rfind("\x89PNG", 0), 0u);
  EXPECT_FALSE(fs::exists(fifo + ".tmp"));
  // A folder is refused, not replaced.
  fs::create_directories(path("a-folder"));
  EXPECT_NE(run({path("photo.png"), path("a-folder")}), 0);
  EXPECT_TRUE(fs::is_directory(path("a-folder")));
}

// --preset: the built-in preset's options, then the flags beside it (wherever they stand); the
// result is the same as the preset's options spelled out.
TEST_F(CliTest, PresetsGiveTheirOptionsAndFlagsOverrideThem) {
  ASSERT_EQ(run({path("photo.png"), path("mac.png"), "--preset", "mac"}), 0) << err_.str();
  ASSERT_EQ(
      run({path("photo.png"), path("spelled.png"), "--palette", "bw", "--algorithm", "atkinson"}),
      0);
  EXPECT_EQ(read("mac.png"), read("spelled.png"));
  ASSERT_EQ(run({path("photo.png"), path("ega.png"), "--palette", "ega", "--preset", "mac"}), 0);
  ASSERT_EQ(
      run({path("photo.png"), path("ega2.png"), "--palette", "ega", "--algorithm", "atkinson"}), 0);
  EXPECT_EQ(read("ega.png"), read("ega2.png"));
  EXPECT_EQ(run({path("photo.png"), path("x.png"), "--preset", "nope"}), 2);
  expect_one_error_line();
  EXPECT_EQ(run({"--list"}), 0);
  EXPECT_NE(out_.str().find("newspaper"), std::string::npos);
}

// --list-options prints the table as the API's JSON, as the docs' Markdown, or as text.
TEST_F(CliTest, ListOptionsPrintsTheTable) {
  ASSERT_EQ(run({"--list-options", "json"}), 0);
  EXPECT_EQ(out_.str(), pipeline::options_api_json() + "\n");
  ASSERT_EQ(run({"--list-options", "markdown"}), 0);
  EXPECT_EQ(out_.str(), pipeline::options_markdown());
  ASSERT_EQ(run({"--list-options"}), 0);
  EXPECT_NE(out_.str().find("--bayer-size"), std::string::npos);
  EXPECT_EQ(run({"--list-options", "yaml"}), 2);
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

// read_file(): a large file is read in two halves on two threads; every byte in its place, at
// the limit and over it, and a file that is not a regular one.
TEST_F(CliTest, ReadFileReadsEveryByteWithinTheLimit) {
  for (const size_t size : {size_t{0}, size_t{1}, size_t{4} << 20, (size_t{5} << 20) + 4097}) {
    std::string bytes(size, '\0');
    uint32_t x = 12345;
    for (char& c : bytes) {
      x = x * 1664525u + 1013904223u;
      c = static_cast<char>(x >> 24);
    }
    write("data.bin", bytes);
    auto got = cli::read_file(path("data.bin"), size);
    ASSERT_TRUE(got.ok()) << size;
    ASSERT_EQ(got->size(), size);
    EXPECT_EQ(std::string(got->begin(), got->end()), bytes) << size;
    if (size > 0) {
      auto over = cli::read_file(path("data.bin"), size - 1);
      ASSERT_FALSE(over.ok()) << size;
      EXPECT_EQ(over.error().kind, ErrorKind::kTooLarge);
    }
  }
  EXPECT_EQ(cli::read_file(path("missing.bin"), 100).error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(cli::read_file(dir_.string(), 100).error().kind, ErrorKind::kNotFound);
  auto device = cli::read_file("/dev/zero", 100);
  ASSERT_FALSE(device.ok());
  EXPECT_NE(device.error().message.find("not a regular file"), std::string::npos);
  // A FIFO with no writer: refused at once, not waited on.
  ASSERT_EQ(mkfifo(path("pipe").c_str(), 0600), 0);
  auto fifo = cli::read_file(path("pipe"), 100);
  ASSERT_FALSE(fifo.ok());
  EXPECT_NE(fifo.error().message.find("not a regular file"), std::string::npos);
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

// Lines of `text` that start with `prefix`.
int count_lines(const std::string& text, const std::string& prefix) {
  int n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) n += line.rfind(prefix, 0) == 0 ? 1 : 0;
  return n;
}

// A folder of good images and one bad file: every good one is done, byte for byte what the
// one-file mode writes; the bad one is one line; the summary counts both; exit 1.
TEST_F(CliTest, AFolderWithABadFileDoesTheOthers) {
  fs::create_directories(dir_ / "in");
  for (const auto& [name, w] :
       {std::pair{"a.png", 40}, std::pair{"b.PNG", 57}, std::pair{"c.png", 33}}) {
    auto png =
        imaging::encode(engine::testing::synthetic_photo(w, 31), imaging::OutputFormat::kPng);
    ASSERT_TRUE(png.ok());
    write(std::string("in/") + name, std::string(png->begin(), png->end()));
  }
  write("in/broken.jpg", "not a JPEG at all");
  write("in/notes.txt", "not an image by its name: left out");
  EXPECT_EQ(run({path("in"), path("out"), "--palette", "ega", "--progress", "lines"}), 1);
  const std::string e = err_.str();
  EXPECT_EQ(count_lines(e, "dither: " + path("in/broken.jpg") + ": "), 1) << e;
  EXPECT_EQ(count_lines(e, "dither: 4 files in "), 1) << e;
  EXPECT_NE(e.find(": 3 done, 1 failed\n"), std::string::npos) << e;
  EXPECT_EQ(e.find("notes"), std::string::npos) << e;
  for (const auto& [in, out] :
       {std::pair{"in/a.png", "out/a.png"}, std::pair{"in/b.PNG", "out/b.png"},
        std::pair{"in/c.png", "out/c.png"}}) {
    EXPECT_EQ(count_lines(e, "dither: " + path(in) + " -> " + path(out) + " ("), 1) << e;
    ASSERT_EQ(run({path(in), path("single.png"), "--palette", "ega"}), 0) << err_.str();
    EXPECT_EQ(read(out), read("single.png")) << in;
  }
  EXPECT_FALSE(fs::exists(dir_ / "out" / "broken.png"));
  EXPECT_FALSE(fs::exists(dir_ / "out" / "notes.png"));
}

// Files named one by one with --out-dir (made when missing), in another format; two inputs
// with one name fail the second; the jobs and the progress style change no byte.
TEST_F(CliTest, FilesIntoAnOutputFolder) {
  fs::create_directories(dir_ / "other");
  write("other/photo.png", read("photo.png"));
  EXPECT_EQ(run({path("photo.png"), path("other/photo.png"), "--out-dir", path("o/deep"),
                 "--format", "gif", "--jobs", "1", "--progress", "lines"}),
            1);
  const std::string e = err_.str();
  EXPECT_NE(e.find("would overwrite '" + path("o/deep/photo.gif") + "'"), std::string::npos) << e;
  const std::string first = read("o/deep/photo.gif");
  ASSERT_EQ(run({path("photo.png"), path("single.gif")}), 0);
  EXPECT_EQ(first, read("single.gif"));
  EXPECT_EQ(run({path("photo.png"), "--out-dir", path("o2"), "--format", "gif", "--progress", "bar",
                 "--jobs", "3"}),
            0);
  EXPECT_EQ(read("o2/photo.gif"), first);
  // The bar is redrawn in place (carriage return, erase line) and ends with the summary.
  const std::string bar = err_.str();
  EXPECT_NE(bar.find("\r\033[Kdither: ["), std::string::npos) << bar;
  EXPECT_NE(bar.find("] 1/1"), std::string::npos) << bar;
  EXPECT_NE(bar.find("\r\033[Kdither: 1 file in "), std::string::npos) << bar;
}

// By default the bar is for a terminal; anything else gets a line per file.
TEST_F(CliTest, BatchProgressFollowsTheTerminal) {
  std::ostringstream out, err;
  EXPECT_EQ(cli::run({path("photo.png"), "--out-dir", path("t")}, out, err, true), 0);
  EXPECT_NE(err.str().find("\r\033[Kdither: ["), std::string::npos) << err.str();
  EXPECT_EQ(run({path("photo.png"), "--out-dir", path("t")}), 0);
  EXPECT_EQ(err_.str().find('\r'), std::string::npos) << err_.str();
  EXPECT_EQ(count_lines(err_.str(), "dither: " + path("photo.png") + " -> "), 1) << err_.str();
}

TEST_F(CliTest, BatchUsageErrors) {
  fs::create_directories(dir_ / "empty");
  EXPECT_EQ(run({"--out-dir", path("o")}), 2);
  EXPECT_EQ(run({path("photo.png"), "--out-dir", path("o"), "--timings"}), 2);
  EXPECT_EQ(run({path("photo.png"), "--out-dir", path("o"), "--jobs", "0"}), 2);
  EXPECT_EQ(run({path("photo.png"), "--out-dir", path("o"), "--progress", "fancy"}), 2);
  EXPECT_EQ(run({path("photo.png"), path("photo.png"), path("x.png")}), 2);
  // A folder without images: nothing is done, which is a failure.
  EXPECT_EQ(run({path("empty"), path("o"), "--progress", "lines"}), 1);
  EXPECT_NE(err_.str().find("no images in this folder"), std::string::npos) << err_.str();
  // An output folder that cannot be made.
  EXPECT_EQ(run({path("photo.png"), "--out-dir", path("photo.png")}), 1);
  EXPECT_NE(err_.str().find("cannot make the output folder"), std::string::npos) << err_.str();
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

// The real binary loads libvips only when it needs it (imaging/vips_lazy.h): not for a
// progressive JPEG to PNG, which the split JPEG decoder reads from its own look at the header (on
// two cores or more), but for a PNG in. The dynamic linker says what it loads (LD_DEBUG).
TEST_F(CliTest, BinaryLoadsLibvipsOnlyWhenItNeedsIt) {
  if (VIPS_INIT("cli_test") != 0) FAIL() << "libvips";
  const engine::Image photo = engine::testing::synthetic_photo(320, 240);
  VipsImage* image = vips_image_new_from_memory_copy(
      photo.pixels.data(), photo.pixels.size(), photo.width, photo.height, 3, VIPS_FORMAT_UCHAR);
  ASSERT_NE(image, nullptr);
  void* buffer = nullptr;
  size_t size = 0;
  ASSERT_EQ(vips_jpegsave_buffer(image, &buffer, &size, "interlace", TRUE, nullptr), 0);
  g_object_unref(image);
  write("progressive.jpg", std::string(static_cast<const char*>(buffer), size));
  g_free(buffer);
  const auto loads_libvips = [this](const std::string& input) {
    const std::string cmd = "LD_DEBUG=files " + std::string(DITHER_CLI_PATH) + " " + path(input) +
                            " " + path("out.png") + " 2>" + path("loaded.txt");
    const int status = std::system(cmd.c_str());
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << input;
    return read("loaded.txt").find("libvips.so") != std::string::npos;
  };
  EXPECT_EQ(loads_libvips("progressive.jpg"), std::thread::hardware_concurrency() < 2);
  EXPECT_TRUE(loads_libvips("photo.png"));
}

}  // namespace
}  // namespace dither
