// S3BlobStore against a real S3 server: versitygw, started by scripts/infra/s3.sh (ctest runs it
// as the infra_s3 fixture on port DITHER_TEST_S3_PORT). The BlobStore contract suites, then what
// only S3 has: credentials, buckets, paging, and the server going away and coming back.
//
// By hand:
//   DITHER_INFRA_RUN=build/release/infra-test S3_PORT=<DITHER_TEST_S3_PORT> scripts/infra/s3.sh
//   start build/release/src/adapters/s3/s3_blob_store_test
#include "adapters/s3/s3_blob_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <string>

#include "ports/testing/blob_store_contract.h"

namespace dither {
namespace {

using contract::BlobStoreContract;
using contract::BlobStoreEmptyObjectContract;
using contract::BlobStoreFactory;
using contract::BlobStoreListingContract;
using contract::bytes_of;

constexpr int kPort = DITHER_TEST_S3_PORT;

std::string start_hint(int port, const std::string& run_dir) {
  return "start it with: DITHER_INFRA_RUN=" + run_dir + " S3_PORT=" + std::to_string(port) + " " +
         DITHER_SOURCE_DIR +
         "/scripts/infra/s3.sh start (ctest does this through the infra_s3 "
         "fixture)";
}

S3Options options_on(int port) {
  return S3Options{.endpoint = "http://127.0.0.1:" + std::to_string(port),
                   .bucket = "dither",
                   .access_key = "dither",
                   .secret_key = "dither-secret-key"};
}

// A store on the shared test server; a test fails at once, saying how to start the server, when
// it does not answer.
std::unique_ptr<S3BlobStore> make_store(S3Options options = options_on(kPort)) {
  auto store = std::make_unique<S3BlobStore>(std::move(options));
  if (const Status up = store->ping(); !up) {
    ADD_FAILURE() << "the S3 test server on 127.0.0.1:" << kPort
                  << " does not answer: " << up.error().message << "\n"
                  << start_hint(kPort, DITHER_TEST_INFRA_RUN);
  }
  return store;
}

const BlobStoreFactory kS3{"s3", [] { return make_store(); }};
// Pages of three keys: every listing test also walks continuation tokens.
const BlobStoreFactory kS3SmallPages{"s3_pages_of_3", [] {
                                       S3Options options = options_on(kPort);
                                       options.list_page_size = 3;
                                       return make_store(std::move(options));
                                     }};

INSTANTIATE_TEST_SUITE_P(S3, BlobStoreContract, ::testing::Values(kS3), contract::FactoryName());
INSTANTIATE_TEST_SUITE_P(S3, BlobStoreEmptyObjectContract, ::testing::Values(kS3),
                         contract::FactoryName());
INSTANTIATE_TEST_SUITE_P(S3, BlobStoreListingContract, ::testing::Values(kS3, kS3SmallPages),
                         contract::FactoryName());

std::string random_suffix() {
  std::random_device random;
  return std::to_string(random());
}

TEST(S3BlobStore, WrongSecretIsAClearInternalError) {
  S3Options options = options_on(kPort);
  options.secret_key = "not-the-secret";
  auto store = std::make_unique<S3BlobStore>(options);
  const ObjectKey key{"s3-test/wrong-secret-" + random_suffix() + ".png"};
  const Status put = store->put(key, bytes_of("x"), "image/png");
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().kind, ErrorKind::kInternal);
  EXPECT_NE(put.error().message.find("HTTP 403"), std::string::npos) << put.error().message;
  EXPECT_NE(put.error().message.find("SignatureDoesNotMatch"), std::string::npos)
      << put.error().message;
  EXPECT_NE(put.error().message.find("secret key"), std::string::npos) << put.error().message;
  EXPECT_EQ(put.error().message.find("not-the-secret"), std::string::npos) << "leaks the secret";
  // Not "not found": a wrong secret must never look like a missing object.
  Result<std::vector<uint8_t>> got = store->get(key);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().kind, ErrorKind::kInternal) << got.error().message;
  EXPECT_EQ(store->list("s3-test/").error().kind, ErrorKind::kInternal);
  EXPECT_EQ(store->remove(key).error().kind, ErrorKind::kInternal);
  EXPECT_EQ(store->ping().error().kind, ErrorKind::kInternal);
}

TEST(S3BlobStore, UnknownAccessKeyIsAClearInternalError) {
  S3Options options = options_on(kPort);
  options.access_key = "nobody";
  S3BlobStore store(options);
  const ObjectKey key{"s3-test/unknown-key.png"};
  const Status put = store.put(key, bytes_of("x"), "");
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().kind, ErrorKind::kInternal);
  // AWS answers 403 InvalidAccessKeyId; versitygw 404 XAdminUserNotFound. Either way the message
  // says what to check, and a read is never mistaken for a missing object.
  EXPECT_NE(put.error().message.find("access key"), std::string::npos) << put.error().message;
  Result<std::vector<uint8_t>> got = store.get(key);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().kind, ErrorKind::kInternal) << got.error().message;
  EXPECT_EQ(store.remove(key).error().kind, ErrorKind::kInternal);
  EXPECT_EQ(store.ping().error().kind, ErrorKind::kInternal);
}

TEST(S3BlobStore, MissingBucketIsAnErrorUntilEnsured) {
  S3Options options = options_on(kPort);
  options.bucket = "dither-test-" + random_suffix();
  S3BlobStore store(options);
  const Status down = store.ping();
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().kind, ErrorKind::kInternal);
  EXPECT_NE(down.error().message.find(options.bucket), std::string::npos) << down.error().message;
  const Status put = store.put(ObjectKey{"a.png"}, bytes_of("x"), "");
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().kind, ErrorKind::kInternal) << put.error().message;
  EXPECT_NE(put.error().message.find("NoSuchBucket"), std::string::npos) << put.error().message;
  Result<std::vector<uint8_t>> got = store.get(ObjectKey{"a.png"});
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().kind, ErrorKind::kInternal) << "a missing bucket is not a missing object";

  ASSERT_TRUE(store.ensure_bucket().ok());
  ASSERT_TRUE(store.ensure_bucket().ok()) << "ensuring twice is fine";
  EXPECT_TRUE(store.ping().ok());
  ASSERT_TRUE(store.put(ObjectKey{"a.png"}, bytes_of("x"), "").ok());
  EXPECT_EQ(*store.get(ObjectKey{"a.png"}), bytes_of("x"));
  EXPECT_TRUE(store.remove(ObjectKey{"a.png"}).ok());
}

TEST(S3BlobStore, EnsureBucketOfTheExistingBucketIsFine) {
  auto store = make_store();
  EXPECT_TRUE(store->ensure_bucket().ok());
}

TEST(S3BlobStore, ThePublicUrlServesTheObject) {
  // Without public_base_url the public URL is the path-style object URL; versitygw needs
  // signatures for reads, so only its shape is checked here.
  auto store = make_store();
  EXPECT_EQ(store->public_url(ObjectKey{"originals/a.png"}),
            "http://127.0.0.1:" + std::to_string(kPort) + "/dither/originals/a.png");
}

// Runs scripts/infra/s3.sh <command> for the restart test's own server.
int s3_script(const std::string& command, int port, const std::string& run_dir) {
  const std::string line = "DITHER_INFRA_RUN='" + run_dir + "' S3_PORT=" + std::to_string(port) +
                           " '" + DITHER_SOURCE_DIR + "/scripts/infra/s3.sh' " + command;
  return std::system(line.c_str());
}

TEST(S3BlobStore, ServerStoppedIsUnavailableWithinTheTimeoutAndRestartRecovers) {
  // Its own versitygw (port DITHER_TEST_S3_PORT + 1, its own state directory): stopping the
  // shared one would fail tests running next to this one.
  const int port = DITHER_TEST_S3_RESTART_PORT;
  const std::string run_dir = std::string(DITHER_TEST_INFRA_RUN) + "/s3-restart-test";
  ASSERT_EQ(s3_script("start", port, run_dir), 0)
      << "could not start versitygw: " << start_hint(port, run_dir);
  struct StopAtEnd {
    int port;
    std::string run_dir;
    ~StopAtEnd() { (void)s3_script("stop", port, run_dir); }
  } stop_at_end{port, run_dir};

  S3Options options = options_on(port);
  options.timeout = std::chrono::milliseconds(2000);
  S3BlobStore store(options);
  const ObjectKey key{"s3-test/restart-" + random_suffix() + ".png"};
  ASSERT_TRUE(store.put(key, bytes_of("before"), "image/png").ok());

  ASSERT_EQ(s3_script("stop", port, run_dir), 0);
  const auto start = std::chrono::steady_clock::now();
  const Status put = store.put(key, bytes_of("during"), "image/png");
  Result<std::vector<uint8_t>> got = store.get(key);
  Result<std::vector<ObjectKey>> listed = store.list("s3-test/");
  const Status removed = store.remove(key);
  const Status ping = store.ping();
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(put.ok());
  ASSERT_FALSE(got.ok());
  ASSERT_FALSE(listed.ok());
  ASSERT_FALSE(removed.ok());
  ASSERT_FALSE(ping.ok());
  for (const Error& e : {put.error(), got.error(), listed.error(), removed.error(), ping.error()}) {
    EXPECT_EQ(e.kind, ErrorKind::kUnavailable) << e.message;
    EXPECT_NE(e.message.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << e.message;
  }
  // Five requests, each bounded by the 2 s timeout (refused connections fail at once).
  EXPECT_LT(elapsed, 5 * options.timeout);

  ASSERT_EQ(s3_script("start", port, run_dir), 0);
  // The same store: its pooled connections died with the server; it connects again.
  Result<std::vector<uint8_t>> after = store.get(key);
  ASSERT_TRUE(after.ok()) << after.error().message;
  EXPECT_EQ(*after, bytes_of("before"));
  ASSERT_TRUE(store.put(key, bytes_of("after"), "image/png").ok());
  EXPECT_EQ(*store.get(key), bytes_of("after"));
  EXPECT_TRUE(store.remove(key).ok());
}

}  // namespace
}  // namespace dither
