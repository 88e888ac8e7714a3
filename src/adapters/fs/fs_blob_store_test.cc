#include "adapters/fs/fs_blob_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "ports/testing/blob_store_contract.h"

namespace dither {
namespace {

namespace fs = std::filesystem;
using contract::BlobStoreContract;
using contract::BlobStoreEmptyObjectContract;
using contract::BlobStoreListingContract;

class FsBlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("fs-blob-test-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

std::vector<uint8_t> bytes_of(std::string_view s) { return {s.begin(), s.end()}; }

TEST_F(FsBlobStoreTest, PutGetRemove) {
  FsBlobStore store(root_, "http://h/files/");
  const ObjectKey key{"dithers/abc/1.png"};
  ASSERT_TRUE(store.put(key, bytes_of("hello"), "image/png").ok());
  auto got = store.get(key);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(*got, bytes_of("hello"));
  EXPECT_EQ(store.public_url(key), "http://h/files/dithers/abc/1.png");
  ASSERT_TRUE(store.put(key, bytes_of("second"), "image/png").ok());
  EXPECT_EQ(*store.get(key), bytes_of("second"));
  ASSERT_TRUE(store.remove(key).ok());
  EXPECT_EQ(store.get(key).error().kind, ErrorKind::kNotFound);
  EXPECT_TRUE(store.remove(key).ok()) << "removing a missing key succeeds";
  EXPECT_FALSE(fs::exists(root_ / "dithers/abc")) << "emptied per-image directory removed";
  EXPECT_TRUE(fs::exists(root_ / "dithers"));
}

TEST_F(FsBlobStoreTest, RejectsKeysThatEscapeTheRoot) {
  FsBlobStore store(root_, "/files/");
  for (std::string bad : {"../x", "/etc/passwd", "a/../../x", "a b"}) {
    EXPECT_EQ(store.put(ObjectKey{bad}, bytes_of("x"), "").error().kind,
              ErrorKind::kInvalidArgument)
        << bad;
    EXPECT_EQ(store.get(ObjectKey{bad}).error().kind, ErrorKind::kInvalidArgument) << bad;
  }
}

TEST_F(FsBlobStoreTest, ListAndTemporaries) {
  FsBlobStore store(root_, "/files/");
  ASSERT_TRUE(store.put(ObjectKey{"originals/a.png"}, bytes_of("a"), "").ok());
  ASSERT_TRUE(store.put(ObjectKey{"dithers/u/1.png"}, bytes_of("b"), "").ok());
  std::ofstream(root_ / "originals" / ".tmp-1-1") << "partial";
  auto originals = store.list("originals/");
  ASSERT_TRUE(originals.ok());
  ASSERT_EQ(originals->size(), 1u);
  EXPECT_EQ((*originals)[0].value, "originals/a.png");
  EXPECT_EQ(store.list("")->size(), 2u);
  EXPECT_EQ(store.remove_temporaries(), 1);
  EXPECT_FALSE(fs::exists(root_ / "originals" / ".tmp-1-1"));
}

TEST_F(FsBlobStoreTest, ConcurrentPutsOfOneKeyLeaveOneWholeFile) {
  FsBlobStore store(root_, "/files/");
  const ObjectKey key{"originals/same.bin"};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const std::vector<uint8_t> data(100000, static_cast<uint8_t>('a' + t));
      for (int i = 0; i < 20; ++i) ASSERT_TRUE(store.put(key, data, "").ok());
    });
  }
  for (auto& th : threads) th.join();
  auto got = store.get(key);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 100000u);
  for (uint8_t b : *got) ASSERT_EQ(b, (*got)[0]);
  EXPECT_EQ(store.list("")->size(), 1u) << "no temporary file left behind";
}

// The contract suites run on an FsBlobStore in a fresh directory, removed with the store.
class TempDirBlobStore final : public BlobStore {
 public:
  TempDirBlobStore()
      : root_(fs::temp_directory_path() /
              ("fs-blob-contract-" + std::to_string(::getpid()) + "-" + std::to_string(next_++))),
        store_(root_, "http://127.0.0.1:8080/files/") {}
  ~TempDirBlobStore() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  Status put(const ObjectKey& key, std::span<const uint8_t> bytes,
             std::string_view content_type) override {
    return store_.put(key, bytes, content_type);
  }
  Result<std::vector<uint8_t>> get(const ObjectKey& key) override { return store_.get(key); }
  Status remove(const ObjectKey& key) override { return store_.remove(key); }
  std::string public_url(const ObjectKey& key) const override { return store_.public_url(key); }
  Result<std::vector<ObjectKey>> list(std::string_view prefix) override {
    return store_.list(prefix);
  }
  std::string_view name() const override { return store_.name(); }

 private:
  static inline std::atomic<int> next_{0};
  fs::path root_;
  FsBlobStore store_;
};

const contract::BlobStoreFactory kFsFactory{"fs",
                                            [] { return std::make_unique<TempDirBlobStore>(); }};

INSTANTIATE_TEST_SUITE_P(Fs, BlobStoreContract, ::testing::Values(kFsFactory),
                         contract::FactoryName());
INSTANTIATE_TEST_SUITE_P(Fs, BlobStoreEmptyObjectContract, ::testing::Values(kFsFactory),
                         contract::FactoryName());
INSTANTIATE_TEST_SUITE_P(Fs, BlobStoreListingContract, ::testing::Values(kFsFactory),
                         contract::FactoryName());

}  // namespace
}  // namespace dither
