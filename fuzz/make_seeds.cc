// Writes the fuzz targets' seed corpora, made by code (no binary files in the repository):
//   make_seeds <dir>   ->   <dir>/<target>/<name> for every target of fuzz/CMakeLists.txt
// Images are made with the project's own encoders (PNG, GIF, WebP: imaging::encode) and with
// libvips, which the project already decodes with (JPEG, TIFF, an EXIF-rotated JPEG, an animated
// GIF); message bodies with the project's own writers; links and keys with its own signer.
#include <vips/vips.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "auth/api_keys.h"
#include "auth/link_signer.h"
#include "common/crypto.h"
#include "imaging/codec.h"
#include "messaging/events.h"

namespace {

namespace fs = std::filesystem;
using namespace dither;

fs::path root;
int written = 0;

void write(const std::string& target, const std::string& name, std::string_view bytes) {
  const fs::path dir = root / target;
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "make_seeds: cannot write %s\n", (dir / name).c_str());
    std::exit(1);
  }
  ++written;
}

std::string join(std::initializer_list<std::string_view> fields) {
  std::string out;
  for (const std::string_view f : fields) {
    if (!out.empty()) out += '\xff';
    out += f;
  }
  return out;
}

// A small picture with gradients, a few flat colours and (optionally) alpha.
engine::Image test_image(int width, int height, int channels) {
  engine::Image img(width, height, channels);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = img.pixels.data() + (static_cast<size_t>(y) * width + x) * channels;
      p[0] = static_cast<uint8_t>(x * 255 / std::max(1, width - 1));
      p[1] = static_cast<uint8_t>(y * 255 / std::max(1, height - 1));
      p[2] = static_cast<uint8_t>(((x / 4 + y / 4) % 2) * 200);
      if (channels == 4) p[3] = static_cast<uint8_t>((x + y) % 3 == 0 ? 0 : 255);
    }
  }
  return img;
}

// Few colours, so that PNG is indexed and GIF accepts it.
engine::Image flat_image(int width, int height, int channels) {
  engine::Image img(width, height, channels);
  static constexpr uint8_t kColours[4][4] = {
      {0, 0, 0, 255}, {255, 255, 255, 255}, {200, 30, 30, 0}, {30, 60, 200, 255}};
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = img.pixels.data() + (static_cast<size_t>(y) * width + x) * channels;
      const uint8_t* c = kColours[(x / 3 + y / 2) % 4];
      for (int k = 0; k < channels; ++k) p[k] = c[k];
    }
  }
  return img;
}

void encoded(const std::string& name, const engine::Image& img, imaging::OutputFormat format) {
  const Result<std::vector<uint8_t>> bytes = imaging::encode(img, format);
  if (!bytes) {
    std::fprintf(stderr, "make_seeds: %s: %s\n", name.c_str(), bytes.error().message.c_str());
    std::exit(1);
  }
  write("decode", name,
        std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()));
}

// JPEG, TIFF and lossy WebP through libvips' savers: `save` calls one of them on the image.
// `orientation` > 1 sets the EXIF orientation tag.
template <class Save>
void vips_saved(const std::string& name, const engine::Image& img, int orientation, Save save) {
  VipsImage* in = vips_image_new_from_memory_copy(img.pixels.data(), img.pixels.size(), img.width,
                                                  img.height, img.channels, VIPS_FORMAT_UCHAR);
  if (in == nullptr) {
    std::fprintf(stderr, "make_seeds: %s: %s\n", name.c_str(), vips_error_buffer());
    std::exit(1);
  }
  in->Type = VIPS_INTERPRETATION_sRGB;
  if (orientation > 1) vips_image_set_int(in, "orientation", orientation);
  void* buffer = nullptr;
  size_t length = 0;
  if (save(in, &buffer, &length) != 0) {
    std::fprintf(stderr, "make_seeds: %s: %s\n", name.c_str(), vips_error_buffer());
    std::exit(1);
  }
  write("decode", name, std::string_view(static_cast<const char*>(buffer), length));
  g_free(buffer);
  g_object_unref(in);
}

void image_seeds() {
  if (!imaging::init()) std::exit(1);
  encoded("png-rgb.png", test_image(16, 12, 3), imaging::OutputFormat::kPng);
  encoded("png-rgba.png", test_image(9, 7, 4), imaging::OutputFormat::kPng);
  encoded("png-indexed.png", flat_image(13, 5, 3), imaging::OutputFormat::kPng);
  encoded("png-indexed-alpha.png", flat_image(6, 6, 4), imaging::OutputFormat::kPng);
  encoded("gif.gif", flat_image(12, 8, 3), imaging::OutputFormat::kGif);
  encoded("gif-transparent.gif", flat_image(5, 9, 4), imaging::OutputFormat::kGif);
  encoded("webp-lossless.webp", test_image(10, 10, 3), imaging::OutputFormat::kWebp);
  encoded("webp-alpha.webp", test_image(7, 5, 4), imaging::OutputFormat::kWebp);
  vips_saved("jpeg.jpg", test_image(16, 16, 3), 1, [](VipsImage* in, void** b, size_t* n) {
    return vips_jpegsave_buffer(in, b, n, "Q", 75, nullptr);
  });
  vips_saved("jpeg-progressive.jpg", test_image(24, 8, 3), 1,
             [](VipsImage* in, void** b, size_t* n) {
               return vips_jpegsave_buffer(in, b, n, "interlace", TRUE, nullptr);
             });
  // Large enough that decode() reads it on two threads (imaging/jpeg_scans.h).
  vips_saved("jpeg-progressive-split.jpg", test_image(64, 48, 3), 1,
             [](VipsImage* in, void** b, size_t* n) {
               return vips_jpegsave_buffer(in, b, n, "interlace", TRUE, "Q", 90, nullptr);
             });
  vips_saved("jpeg-rotated.jpg", test_image(12, 6, 3), 6, [](VipsImage* in, void** b, size_t* n) {
    return vips_jpegsave_buffer(in, b, n, nullptr);
  });
  vips_saved("tiff.tif", test_image(8, 8, 3), 1, [](VipsImage* in, void** b, size_t* n) {
    return vips_tiffsave_buffer(in, b, n, nullptr);
  });
  vips_saved(
      "tiff-rgba-rotated.tif", test_image(6, 4, 4), 8,
      [](VipsImage* in, void** b, size_t* n) { return vips_tiffsave_buffer(in, b, n, nullptr); });
  vips_saved("tiff-lzw.tif", test_image(8, 5, 3), 1, [](VipsImage* in, void** b, size_t* n) {
    return vips_tiffsave_buffer(in, b, n, "compression", VIPS_FOREIGN_TIFF_COMPRESSION_LZW,
                                nullptr);
  });
  vips_saved("webp-lossy.webp", test_image(16, 16, 3), 1, [](VipsImage* in, void** b, size_t* n) {
    return vips_webpsave_buffer(in, b, n, "Q", 50, nullptr);
  });
  // An animated GIF (decode keeps the first frame): two frames stacked, page-height set.
  {
    engine::Image two = flat_image(8, 12, 3);
    VipsImage* in = vips_image_new_from_memory_copy(two.pixels.data(), two.pixels.size(), 8, 12, 3,
                                                    VIPS_FORMAT_UCHAR);
    vips_image_set_int(in, "page-height", 6);
    void* buffer = nullptr;
    size_t length = 0;
    if (vips_gifsave_buffer(in, &buffer, &length, nullptr) == 0) {
      write("decode", "gif-animated.gif",
            std::string_view(static_cast<const char*>(buffer), length));
      g_free(buffer);
    } else {
      vips_error_clear();  // older libvips without gifsave: the other GIFs suffice
    }
    g_object_unref(in);
  }
}

const char* const kUuid = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";

void multipart_seeds() {
  const std::string type = "multipart/form-data; boundary=----fuzzB0undary\n";
  write("multipart", "file",
        type +
            "------fuzzB0undary\r\n"
            "Content-Disposition: form-data; name=\"file\"; filename=\"photo.png\"\r\n"
            "Content-Type: image/png\r\n\r\n"
            "\x89PNG\r\n\x1a\n...\r\n"
            "------fuzzB0undary--\r\n");
  write("multipart", "file-and-email",
        type +
            "preamble\r\n------fuzzB0undary\r\n"
            "Content-Disposition: form-data; name=\"email\"\r\n\r\n"
            "someone@example.org\r\n"
            "------fuzzB0undary  \r\n"
            "content-disposition: form-data; name=file; filename=\"a \\\"b\\\".jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n"
            "\xff\xd8\xff\xe0 data\r\n"
            "------fuzzB0undary--epilogue");
  write("multipart", "quoted-boundary",
        "Multipart/Form-Data; charset=utf-8; boundary=\"a b'()+_,-./:=?\"\n"
        "--a b'()+_,-./:=?\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n"
        "--a b'()+_,-./:=?\r\nContent-Disposition: form-data; name=\"y\"\r\n\r\n\r\n"
        "--a b'()+_,-./:=?--");
  write("multipart", "empty", "multipart/form-data; boundary=x\n--x--\r\n");
}

void http_seeds() {
  write("http_request", "get-health", "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n");
  write("http_request", "get-list",
        "GET /images?limit=2&cursor=5&q=red+dot%21&flag HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
        "X-Request-Id: abc-123\r\n\r\n");
  write("http_request", "get-image",
        std::string("GET /images/") + kUuid + " HTTP/1.1\r\nHost: h\r\n\r\n");
  write("http_request", "post-dither",
        std::string("POST /images/") + kUuid +
            "/4?algorithm=atkinson&palette=pico8 HTTP/1.1\r\nHost: h\r\n"
            "Content-Type: application/json\r\nContent-Length: 21\r\n\r\n{\"serpentine\": true}\n");
  write("http_request", "post-chunked",
        "POST /images HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n\r\n"
        "5\r\n--b\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  write("http_request", "delete-dither",
        std::string("DELETE /images/") + kUuid +
            "/17 HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
  write("http_request", "head-file",
        "HEAD /files/originals/a%20b%2Fc.png?expires=1800000000&sig=abc_-DEF HTTP/1.1\r\n"
        "Host: h\r\n\r\n");
  write("http_request", "thumbnail", "GET /thumbnails/dithers/x/1.png HTTP/1.1\r\nHost: h\r\n\r\n");
  write("http_request", "wrong-method",
        "PUT /images/x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi");
  write("http_request", "async", "GET /async/caf%C3%A9 HTTP/1.0\r\n\r\n");
  write("http_request", "throws",
        "GET /throw/x HTTP/1.1\r\nHost: h\r\n\r\nGET /fail/y HTTP/1.1\r\n\r\n");
  write("http_request", "pipelined",
        "GET /health HTTP/1.1\r\nHost: h\r\n\r\nGET /files/ HTTP/1.1\r\nHost: h\r\n\r\n"
        "GET http://evil/health HTTP/1.1\r\nHost: h\r\n\r\nGET /images/%zz HTTP/1.1\r\n\r\n"
        "GET /health?x=%2 HTTP/1.1\r\n\r\n");
}

void options_seeds() {
  const auto query = [](const std::string& name, std::string_view text) {
    write("options", name, std::string(1, '\x00') + std::string(text));
  };
  const auto post = [](const std::string& name, std::string_view query_text,
                       std::string_view body) {
    write("options", name,
          std::string(1, '\x01') + std::string(query_text) + "\n" + std::string(body));
  };
  query("auto-default", "algorithm=floyd-steinberg&channels=2");
  query("bayer", "algorithm=bayer&bayer_size=4&palette=levels:3&serpentine=true");
  query("halftone", "algorithm=halftone&halftone=h4x4a&palette=grey:4&format=gif");
  query("random", "algorithm=random&seed=42&strength=0.75&linear_light=off&perceptual=1");
  query("custom", "palette=%23ff0000%2C%2300ff00,%230000ff&algorithm=yliluoma&upscale=2");
  query("adaptive", "palette=adaptive:8&width=320&height=0&format=webp&algorithm=riemersma");
  query("named", "palette=pico8&algorithm=atkinson&&algorithm=stucki+&x");
  query("threads", "threads=2&bayer_size=3&algorithm=ordered");
  post("post-empty", "", "");
  post("post-json", "algorithm=atkinson&palette=ega",
       R"({"serpentine": true, "strength": 0.5, "width": 64, "format": "png"})");
  post("post-types", "channels=4",
       R"({"perceptual": 0, "seed": 18446744073709551615, "strength": 1e-3})");
  post("post-nested", "", R"({"palette": ["ega"], "x": null})");
  post("post-stored", "", R"({"channels":"2","algorithm":"floyd-steinberg"})");
  post("post-bad", "a=%zz", "[1,2,3]");
}

void message_seeds() {
  const ImageId uuid = *parse_image_id(kUuid);
  ImageUploadedEvent up;
  up.uuid = uuid;
  up.url = "http://127.0.0.1:8080/files/originals/" + uuid.value + ".png";
  up.filename = "photo.png";
  up.blob_key = ObjectKey{"originals/" + uuid.value + ".png"};
  up.content_type = "image/png";
  up.size = 1234;
  up.width = 640;
  up.height = 480;
  up.email = "someone@example.org";
  up.owner = "key:k0123456789a";
  write("messages", "image-uploaded", image_uploaded_body(up));
  up.content_type = "image/gif";
  up.frames = 12;
  write("messages", "image-uploaded-animated", image_uploaded_body(up));
  DitherEvent d;
  d.uuid = uuid;
  d.dither_id = 7;
  d.url_dither = "http://127.0.0.1:8080/files/dithers/" + uuid.value + "/7.png";
  d.channels = 4;
  d.algorithm = "atkinson";
  d.palette = "pico8";
  d.format = "png";
  d.source = "request";
  d.url = up.url;
  d.filename = "photo.png";
  d.email = "someone@example.org";
  write("messages", "dither-uploaded", dither_event_body(d, false));
  d.error = "could not decode the original";
  write("messages", "dither-failed", dither_event_body(d, true));
  write("messages", "uuid", uuid_body(uuid));
  write("messages", "dither-deleted-one", dither_deleted_body({uuid, 7}));
  // The Python prototype's bodies.
  write(
      "messages", "prototype-image-uploaded",
      std::string(R"({"uuid": ")") + kUuid +
          R"(", "url": "https://res.cloudinary.com/demo/image/upload/x.jpg", "filename": "x.jpg"})");
  write("messages", "prototype-dither-uploaded",
        std::string(R"({"uuid": ")") + kUuid + R"(", "url_dither": "https://x.example/d.png"})");
  write("messages", "odd-types",
        std::string(R"({"uuid": ")") + kUuid +
            R"(", "dither_id": 18446744073709551615, "channels": 1e3, "owner": "", "size": -1})");
}

void auth_seeds() {
  const std::string key1 = "first-link-key-0123456789abcdef";
  const std::string key2 = "second-link-key";
  const LinkSigner signer({key1, key2}, "https://d.example/files/");
  const std::string object = "originals/" + std::string(kUuid) + ".png";
  const std::string query = signer.query_for(object, 1'800'000'600);
  const std::string expires = query.substr(8, query.find('&') - 8);
  const std::string sig = query.substr(query.find("&sig=") + 5);
  const std::string api_key = make_api_key("", "fuzz", false, "pepper")->key;
  write("auth", "valid", join({key1, key2, object, expires, sig, api_key, base64url("hello")}));
  write(
      "auth", "expired",
      join({key1, key2, object, "1700000000", base64url(hmac_sha256(key2, object + "\n1700000000")),
            "dk_k0123456789a_short", "AA"}));
  write("auth", "unsigned", join({key1, key2, object, "-", "-", "", "YQ"}));
  write("auth", "malformed",
        join({key1, key1, "", "0123", sig + "=", "dk_K0123456789A_" + std::string(43, 'x'), "YR"}));
}

void mail_seeds() {
  write("mail", "notification",
        join({"someone@example.org", "Dither <noreply@localhost.localdomain>",
              "someone@example.org", "Your dithered image is ready",
              "Hello,\n\nyour image photo.png is "
              "ready:\nhttps://d.example/files/dithers/x/1.png?expires=1&sig=a\n",
              "<p>Hello,</p>\r\n<p><a href=\"https://d.example/\">open</a></p>",
              std::string("<dither-") + kUuid + "-7@localhost.localdomain>"}));
  write("mail", "utf8",
        join({"\"Name, Jr.\" <a.b+c@[127.0.0.1]>", "\"Ünïcödé, Sender\" <s@x.example>",
              "To <t@x.example>",
              "Caf\xc3\xa9 \xe2\x98\x95 ready =?not-encoded?= " + std::string(120, 'w'),
              "tab\tand trailing space \r\n=\r" + std::string(200, 'q'), "", ""}));
  write("mail", "injection",
        join({"a@b.c\r\nBcc: x@y.z", "x@y.z", "a@b.c\nBcc: evil@x.example",
              "Hi\r\nBcc: evil@x.example", "text", "html", "<id@x>"}));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds <dir>\n");
    return 2;
  }
  root = argv[1];
  multipart_seeds();
  http_seeds();
  options_seeds();
  message_seeds();
  auth_seeds();
  mail_seeds();
  image_seeds();
  std::printf("make_seeds: %d seeds in %s\n", written, root.c_str());
  return 0;
}
