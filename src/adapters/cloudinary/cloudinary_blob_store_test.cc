// CloudinaryBlobStore tests.
//
// Cloudinary is a third-party SaaS that this machine cannot reach (no Internet), so the HTTP
// behaviour is tested against FakeCloudinary below: a LOCAL DOUBLE written from Cloudinary's
// public documentation. It implements the two documented Upload API endpoints (upload, destroy)
// and delivery URLs, and checks what the real service checks (API key, timestamp freshness, the
// signature, the parameters). Its signature check is written independently of the adapter's, and
// the adapter's signing is pinned by the official example from Cloudinary's documentation
// (Signature.DocumentedExample). Passing here does not prove the real service agrees on
// everything the double does not model (CDN caching, quotas).
#include "adapters/cloudinary/cloudinary_blob_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "adapters/shared/curl_client.h"
#include "common/crypto.h"
#include "http/multipart.h"
#include "http/testing.h"
#include "ports/testing/blob_store_contract.h"

namespace dither {
namespace {

using contract::BlobStoreContract;
using contract::BlobStoreFactory;
using contract::bytes_of;

// Cloudinary can honour neither suite (see cloudinary_blob_store.h): not instantiated here.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(BlobStoreEmptyObjectContract);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(BlobStoreListingContract);

TEST(Signature, DocumentedExample) {
  // From Cloudinary's "Generating authentication signatures" documentation.
  EXPECT_EQ(cloudinary_signature({{"timestamp", "1315060510"},
                                  {"public_id", "sample_image"},
                                  {"eager", "w_400,h_300,c_pad|w_260,h_200,c_crop"}},
                                 "abcd"),
            "bfd09f95f331f558cbd1320e67aa8d488770583e");
}

TEST(Signature, LeavesOutFileCloudNameResourceTypeAndApiKey) {
  const std::string expected =
      cloudinary_signature({{"public_id", "sample_image"},
                            {"eager", "w_400,h_300,c_pad|w_260,h_200,c_crop"},
                            {"timestamp", "1315060510"}},
                           "abcd");
  EXPECT_EQ(expected, "bfd09f95f331f558cbd1320e67aa8d488770583e") << "order does not matter";
  EXPECT_EQ(cloudinary_signature({{"file", "bytes"},
                                  {"public_id", "sample_image"},
                                  {"api_key", "1234"},
                                  {"cloud_name", "demo"},
                                  {"resource_type", "raw"},
                                  {"eager", "w_400,h_300,c_pad|w_260,h_200,c_crop"},
                                  {"timestamp", "1315060510"}},
                                 "abcd"),
            expected);
  EXPECT_NE(
      cloudinary_signature({{"public_id", "sample_image"}, {"timestamp", "1315060510"}}, "abcd"),
      expected);
}

constexpr std::string_view kCloud = "dither-test";
constexpr std::string_view kApiKey = "123456789012345";
constexpr std::string_view kSecret = "local-double-secret";

http::Response json(unsigned status, std::string body) {
  http::Response response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

http::Response cloudinary_error(unsigned status, const std::string& message) {
  return json(status, R"({"error":{"message":")" + message + R"("}})");
}

// LOCAL DOUBLE of Cloudinary (see the top of this file). Thread-safe.
class FakeCloudinary {
 public:
  FakeCloudinary()
      : server_(make_router(),
                http::ServerOptions{.body_limit = 64 << 20, .generic_server_errors = false}, 2) {}

  std::string base() const { return "http://127.0.0.1:" + std::to_string(server_.port()); }
  CloudinaryOptions options() const {
    return CloudinaryOptions{.cloud_name = std::string(kCloud),
                             .api_key = std::string(kApiKey),
                             .api_secret = std::string(kSecret),
                             .api_base = base(),
                             .delivery_base = base() + "/res"};
  }
  int requests() const { return requests_.load(); }
  // The next answers are this status (0: behave normally).
  void fail_with(unsigned status) { fail_with_ = status; }
  // The fields (not the file) of the last upload.
  std::map<std::string, std::string> last_upload() {
    std::lock_guard lock(mutex_);
    return last_upload_;
  }

 private:
  struct Stored {
    std::string bytes;
    std::string content_type;
  };

  http::Router make_router() {
    http::Router router;
    router.add(http::Verb::post, "/v1_1/{cloud}/{type}/{action}",
               [this](const http::RequestContext& c) { return api(c); });
    router.add(http::Verb::get, "/res/{cloud}/{type}/authenticated/{signature}/{public_id...}",
               [this](const http::RequestContext& c) { return deliver(c); });
    return router;
  }

  // The signature as Cloudinary's documentation describes it, computed here on its own.
  static std::string expected_signature(const std::map<std::string, std::string>& fields) {
    std::string to_sign;
    for (const auto& [name, value] : fields) {  // std::map: sorted by name
      if (name == "file" || name == "cloud_name" || name == "resource_type" || name == "api_key" ||
          name == "signature") {
        continue;
      }
      to_sign.append(to_sign.empty() ? "" : "&").append(name).append("=").append(value);
    }
    return curl::sha1_hex(to_sign.append(kSecret));
  }

  http::Response api(const http::RequestContext& c) {
    ++requests_;
    if (fail_with_ != 0) return cloudinary_error(fail_with_, "injected failure");
    if (c.param("cloud") != kCloud) return cloudinary_error(401, "Invalid cloud_name");
    if (c.param("type") != "raw") return cloudinary_error(400, "this double stores raw files");
    Result<std::vector<http::FormPart>> parts =
        http::parse_multipart(c.header("Content-Type"), c.request.body());
    if (!parts) return cloudinary_error(400, parts.error().message);
    std::map<std::string, std::string> fields;
    const http::FormPart* file = nullptr;
    for (const http::FormPart& part : *parts) {
      if (part.name == "file") {
        file = &part;
      } else if (!fields.emplace(part.name, std::string(part.data)).second) {
        return cloudinary_error(400, "repeated parameter " + part.name);
      }
    }
    if (fields["api_key"] != kApiKey) return cloudinary_error(401, "Unknown API key");
    const long long now = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
    if (fields["timestamp"].empty() || std::llabs(now - std::stoll(fields["timestamp"])) > 3600) {
      return cloudinary_error(400, "Stale request");
    }
    if (fields["signature"] != expected_signature(fields)) {
      return cloudinary_error(401, "Invalid Signature " + fields["signature"]);
    }
    const std::string public_id = fields["public_id"];
    if (public_id.empty()) return cloudinary_error(400, "Missing required parameter - public_id");
    if (fields["type"] != "authenticated") {
      return cloudinary_error(400, "this double keeps authenticated (private) assets only");
    }

    std::lock_guard lock(mutex_);
    if (c.param("action") == "upload") {
      if (file == nullptr || file->data.empty()) return cloudinary_error(400, "Empty file");
      if (fields["overwrite"] != "true" && stored_.contains(public_id)) {
        return json(200, R"({"existing":true,"public_id":")" + public_id + R"("})");
      }
      stored_[public_id] = Stored{std::string(file->data), file->content_type};
      last_upload_ = fields;
      return json(200, R"({"public_id":")" + public_id + R"(","resource_type":"raw","bytes":)" +
                           std::to_string(file->data.size()) + "}");
    }
    if (c.param("action") == "destroy") {
      const bool found = stored_.erase(public_id) > 0;
      return json(200, found ? R"({"result":"ok"})" : R"({"result":"not found"})");
    }
    return cloudinary_error(404, "unknown action");
  }

  http::Response deliver(const http::RequestContext& c) {
    ++requests_;
    if (fail_with_ != 0) return cloudinary_error(fail_with_, "injected failure");
    std::lock_guard lock(mutex_);
    const std::string public_id(c.param("public_id"));
    // Authenticated delivery: the signature, computed here on its own from the documentation.
    const std::string hex = curl::sha1_hex(public_id + std::string(kSecret));
    std::string digest;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
      digest.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    if (c.param("signature") != "s--" + base64url(digest).substr(0, 8) + "--") {
      return json(401, "");
    }
    const auto it = stored_.find(public_id);
    if (c.param("cloud") != kCloud || c.param("type") != "raw" || it == stored_.end()) {
      return json(404, "");
    }
    http::Response response;
    response.content_type = it->second.content_type;
    response.body = it->second.bytes;
    return response;
  }

  std::atomic<int> requests_{0};
  std::atomic<unsigned> fail_with_{0};
  std::mutex mutex_;
  std::map<std::string, Stored> stored_;
  std::map<std::string, std::string> last_upload_;
  http::testing::RunningServer server_;
};

FakeCloudinary& shared_double() {
  static FakeCloudinary fake;
  return fake;
}

const BlobStoreFactory kCloudinary{
    "cloudinary_local_double",
    [] { return std::make_unique<CloudinaryBlobStore>(shared_double().options()); }};

INSTANTIATE_TEST_SUITE_P(Cloudinary, BlobStoreContract, ::testing::Values(kCloudinary),
                         contract::FactoryName());

class CloudinaryTest : public ::testing::Test {
 protected:
  FakeCloudinary fake_;
  CloudinaryBlobStore store_{fake_.options()};
};

TEST_F(CloudinaryTest, UploadSendsTheDocumentedSignedParameters) {
  ASSERT_TRUE(store_.put(ObjectKey{"dithers/u/7.png"}, bytes_of("PNG"), "image/png").ok());
  const std::map<std::string, std::string> fields = fake_.last_upload();
  EXPECT_EQ(fields.at("public_id"), "dithers/u/7.png");
  EXPECT_EQ(fields.at("overwrite"), "true");
  EXPECT_EQ(fields.at("invalidate"), "true");
  EXPECT_EQ(fields.at("api_key"), kApiKey);
  EXPECT_EQ(fields.at("type"), "authenticated") << "files are private (docs/SECURITY.md)";
  EXPECT_EQ(fields.at("signature").size(), 40u);
  EXPECT_EQ(fields.size(), 7u) << "public_id type overwrite invalidate timestamp api_key signature";
}

TEST_F(CloudinaryTest, DeliveryUrlsAreSignedAndAnAlteredOneIsRefused) {
  ASSERT_TRUE(store_.put(ObjectKey{"originals/s.png"}, bytes_of("PNG"), "image/png").ok());
  const std::string url = store_.public_url(ObjectKey{"originals/s.png"});
  const std::string sig = cloudinary_delivery_signature("originals/s.png", kSecret);
  EXPECT_EQ(sig.size(), 13u);
  EXPECT_NE(url.find("/authenticated/" + sig + "/originals/s.png"), std::string::npos) << url;
  EXPECT_TRUE(store_.get(ObjectKey{"originals/s.png"}).ok());
  // Another secret signs differently: the double (as Cloudinary) refuses that URL.
  CloudinaryOptions other = fake_.options();
  other.api_secret = "another-secret";
  CloudinaryBlobStore wrong(other);
  EXPECT_NE(wrong.public_url(ObjectKey{"originals/s.png"}), url);
  EXPECT_FALSE(wrong.get(ObjectKey{"originals/s.png"}).ok());
}

TEST_F(CloudinaryTest, PublicUrlIsTheRawDeliveryUrl) {
  EXPECT_EQ(store_.public_url(ObjectKey{"originals/a.png"}),
            fake_.base() + "/res/dither-test/raw/authenticated/" +
                cloudinary_delivery_signature("originals/a.png", kSecret) + "/originals/a.png");
  CloudinaryBlobStore defaults({.cloud_name = "demo", .api_key = "k", .api_secret = "s"});
  EXPECT_EQ(defaults.public_url(ObjectKey{"dithers/u/1.gif"}),
            "https://res.cloudinary.com/demo/raw/authenticated/" +
                cloudinary_delivery_signature("dithers/u/1.gif", "s") + "/dithers/u/1.gif");
  EXPECT_EQ(defaults.name(), "cloudinary");
}

TEST_F(CloudinaryTest, ListIsUnsupportedAndSendsNothing) {
  Result<std::vector<ObjectKey>> keys = store_.list("originals/");
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(keys.error().kind, ErrorKind::kUnsupported);
  EXPECT_NE(keys.error().message.find("500 requests an hour"), std::string::npos);
  EXPECT_EQ(fake_.requests(), 0);
}

TEST_F(CloudinaryTest, EmptyObjectsAreRefusedWithoutARequest) {
  const Status put = store_.put(ObjectKey{"originals/empty.png"}, {}, "image/png");
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(fake_.requests(), 0);
}

TEST_F(CloudinaryTest, WrongSecretIsAClearInternalError) {
  CloudinaryOptions options = fake_.options();
  options.api_secret = "wrong";
  CloudinaryBlobStore store(options);
  const Status put = store.put(ObjectKey{"originals/a.png"}, bytes_of("x"), "image/png");
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().kind, ErrorKind::kInternal);
  EXPECT_NE(put.error().message.find("HTTP 401 (Invalid Signature"), std::string::npos)
      << put.error().message;
  EXPECT_NE(put.error().message.find("API secret"), std::string::npos) << put.error().message;
  EXPECT_EQ(put.error().message.find("wrong"), std::string::npos) << "leaks the secret";
  EXPECT_EQ(store.remove(ObjectKey{"originals/a.png"}).error().kind, ErrorKind::kInternal);
}

TEST_F(CloudinaryTest, RateLimitsAndServerErrorsAreUnavailable) {
  for (unsigned status : {420u, 429u, 500u, 503u}) {
    fake_.fail_with(status);
    const Status put = store_.put(ObjectKey{"originals/a.png"}, bytes_of("x"), "image/png");
    ASSERT_FALSE(put.ok());
    EXPECT_EQ(put.error().kind, ErrorKind::kUnavailable) << put.error().message;
    EXPECT_NE(put.error().message.find("HTTP " + std::to_string(status)), std::string::npos);
    EXPECT_EQ(store_.get(ObjectKey{"originals/a.png"}).error().kind, ErrorKind::kUnavailable);
    EXPECT_EQ(store_.remove(ObjectKey{"originals/a.png"}).error().kind, ErrorKind::kUnavailable);
  }
  fake_.fail_with(0);
  EXPECT_TRUE(store_.put(ObjectKey{"originals/a.png"}, bytes_of("x"), "image/png").ok());
}

TEST(Cloudinary, UnreachableIsUnavailable) {
  std::string base;
  {
    FakeCloudinary gone;
    base = gone.base();
  }
  CloudinaryBlobStore store({.cloud_name = "c",
                             .api_key = "k",
                             .api_secret = "s",
                             .api_base = base,
                             .delivery_base = base + "/res"});
  EXPECT_EQ(store.put(ObjectKey{"a.png"}, bytes_of("x"), "").error().kind, ErrorKind::kUnavailable);
  EXPECT_EQ(store.get(ObjectKey{"a.png"}).error().kind, ErrorKind::kUnavailable);
  EXPECT_EQ(store.remove(ObjectKey{"a.png"}).error().kind, ErrorKind::kUnavailable);
}

TEST(Cloudinary, OptionsAreChecked) {
  EXPECT_THROW(CloudinaryBlobStore({.cloud_name = "c", .api_key = "k"}), std::invalid_argument);
  EXPECT_THROW(
      CloudinaryBlobStore(
          {.cloud_name = "c", .api_key = "k", .api_secret = "s", .api_base = "api.cloudinary.com"}),
      std::invalid_argument);
}

}  // namespace
}  // namespace dither
