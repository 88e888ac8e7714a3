#include "http/compress.h"

#include <gtest/gtest.h>
#include <libdeflate.h>

#include <string>

namespace dither::http {
namespace {

std::string gunzip(const std::string& data, size_t size) {
  libdeflate_decompressor* d = libdeflate_alloc_decompressor();
  std::string out(size, '\0');
  size_t actual = 0;
  const auto r =
      libdeflate_gzip_decompress(d, data.data(), data.size(), out.data(), out.size(), &actual);
  libdeflate_free_decompressor(d);
  EXPECT_EQ(r, LIBDEFLATE_SUCCESS);
  out.resize(actual);
  return out;
}

std::string header(const Response& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return "";
}

Request get(std::string_view accept) {
  Request request{Verb::get, "/app.js", 11};
  if (!accept.empty()) request.set(boost::beast::http::field::accept_encoding, accept);
  return request;
}

Response script(size_t bytes) {
  Response r;
  r.content_type = "application/javascript; charset=utf-8";
  for (size_t i = 0; r.body.size() < bytes; ++i)
    r.body += "const x" + std::to_string(i) + " = 1;\n";
  r.body.resize(bytes);
  r.headers.emplace_back("ETag", "\"v1\"");
  return r;
}

TEST(Compress, AcceptEncodingIsReadAsTheStandardSays) {
  EXPECT_TRUE(accepts_gzip("gzip"));
  EXPECT_TRUE(accepts_gzip("deflate, gzip;q=0.5, br"));
  EXPECT_TRUE(accepts_gzip("GZIP"));
  EXPECT_TRUE(accepts_gzip("*"));
  EXPECT_TRUE(accepts_gzip("x-gzip"));
  EXPECT_FALSE(accepts_gzip(""));
  EXPECT_FALSE(accepts_gzip("br, deflate"));
  EXPECT_FALSE(accepts_gzip("gzip;q=0"));
  EXPECT_FALSE(accepts_gzip("gzip; q=0.000"));
  EXPECT_FALSE(accepts_gzip("*, gzip;q=0")) << "naming gzip wins over *";
  EXPECT_FALSE(accepts_gzip("*;q=0"));
  EXPECT_TRUE(accepts_gzip("gzip;q=0.001"));
}

TEST(Compress, TextTypesOnly) {
  for (const char* t : {"text/html; charset=utf-8", "text/css", "application/json",
                        "application/javascript", "image/svg+xml", "application/problem+json"}) {
    EXPECT_TRUE(is_compressible(t)) << t;
  }
  for (const char* t : {"image/png", "image/webp", "application/octet-stream", ""}) {
    EXPECT_FALSE(is_compressible(t)) << t;
  }
}

TEST(Compress, EntityTagsOfBothFormsMatch) {
  EXPECT_EQ(gzip_etag("\"v1\""), "\"v1-gzip\"");
  EXPECT_EQ(gzip_etag("W/\"v1\""), "W/\"v1-gzip\"");
  EXPECT_TRUE(etag_matches("\"v1\"", "\"v1\""));
  EXPECT_TRUE(etag_matches("\"v1-gzip\"", "\"v1\""));
  EXPECT_TRUE(etag_matches("W/\"v1-gzip\"", "\"v1\""));
  EXPECT_TRUE(etag_matches("\"old\", \"v1\"", "\"v1\""));
  EXPECT_TRUE(etag_matches("*", "\"v1\""));
  EXPECT_FALSE(etag_matches("\"v2\"", "\"v1\""));
  EXPECT_FALSE(etag_matches("\"v1-gzip-gzip\"", "\"v1\""));
  EXPECT_FALSE(etag_matches("", "\"v1\""));
  EXPECT_FALSE(etag_matches("\"v1\"", ""));
}

TEST(Compress, TextAnswersAreGzippedForClientsThatAcceptIt) {
  Response r = script(37000);
  const std::string plain = r.body;
  compress_for(get("gzip, deflate, br"), r, 1024);
  EXPECT_EQ(header(r, "Content-Encoding"), "gzip");
  EXPECT_EQ(header(r, "Vary"), "Accept-Encoding");
  EXPECT_EQ(header(r, "ETag"), "\"v1-gzip\"");
  EXPECT_LT(r.body.size(), plain.size() / 2);
  EXPECT_EQ(gunzip(r.body, plain.size()), plain);
}

TEST(Compress, OtherAnswersAreLeftAlone) {
  {
    Response r = script(37000);  // the client does not accept gzip: Vary all the same
    compress_for(get(""), r, 1024);
    EXPECT_EQ(header(r, "Content-Encoding"), "");
    EXPECT_EQ(header(r, "Vary"), "Accept-Encoding");
    EXPECT_EQ(header(r, "ETag"), "\"v1\"");
    EXPECT_EQ(r.body.size(), 37000u);
  }
  {
    Response r = script(500);  // too small
    compress_for(get("gzip"), r, 1024);
    EXPECT_EQ(r.body.size(), 500u);
    EXPECT_EQ(header(r, "Vary"), "");
  }
  {
    Response r = script(37000);  // not text
    r.content_type = "image/png";
    compress_for(get("gzip"), r, 1024);
    EXPECT_EQ(header(r, "Content-Encoding"), "");
  }
  {
    Response r = script(37000);  // compression off
    compress_for(get("gzip"), r, 0);
    EXPECT_EQ(header(r, "Content-Encoding"), "");
  }
  {
    Response r = script(37000);  // a file streamed from disk, and a 304
    r.file_path = "/nonexistent";
    compress_for(get("gzip"), r, 1024);
    EXPECT_EQ(header(r, "Content-Encoding"), "");
    Response not_modified = script(37000);
    not_modified.status = 304;
    compress_for(get("gzip"), not_modified, 1024);
    EXPECT_EQ(header(not_modified, "Content-Encoding"), "");
  }
}

}  // namespace
}  // namespace dither::http
