#include "adapters/fs/fs_blob_store.h"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

namespace dither {
namespace {

namespace fs = std::filesystem;

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

}  // namespace
}  // namespace dither
