// The contract every BlobStore adapter must pass (blob_store.h).
//
// Header-only, in three suites so that a store instantiates what its backend can honour:
//   BlobStoreContract             every store: round trips, atomic overwrite, not-found, remove,
//                                 invalid keys, concurrency, public_url shape
//   BlobStoreEmptyObjectContract  stores that keep zero-byte objects (not Cloudinary)
//   BlobStoreListingContract      stores that can list (not Cloudinary: its Admin API is rate
//                                 limited, the database is the index)
// An adapter's test file includes this once and instantiates the suites with a factory. Stores
// may share a backend (one S3 bucket for all tests): every test works under its own random key
// prefix and removes what it wrote.
//
//   INSTANTIATE_TEST_SUITE_P(Fs, BlobStoreContract,
//                            ::testing::Values(BlobStoreFactory{"fs", [] { return make(); }}),
//                            dither::contract::FactoryName());
//
// Outside the contract: a key that is a path prefix of another key ("a/b" and "a/b/c" both
// stored); a directory cannot be a file too. Our keys never do that.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ports/blob_store.h"
#include "ports/testing/contract_helpers.h"

namespace dither::contract {

using BlobStoreFactory = Factory<BlobStore>;

inline std::vector<uint8_t> bytes_of(std::string_view text) { return {text.begin(), text.end()}; }

// `size` deterministic pseudo-random bytes (every value occurs, NUL and 0xFF included).
inline std::vector<uint8_t> pattern_bytes(size_t size, uint32_t seed) {
  std::vector<uint8_t> out(size);
  uint32_t x = seed * 2654435761u + 1;
  for (uint8_t& b : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<uint8_t>(x >> 24);
  }
  return out;
}

class BlobStoreContractBase : public ::testing::TestWithParam<BlobStoreFactory> {
 protected:
  void SetUp() override {
    store_ = GetParam().make();
    ASSERT_NE(store_, nullptr);
    // contract/<test name>-<random>/ : a test never sees another test's (or run's) objects.
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : name) {
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '-';
    }
    std::random_device random;
    prefix_ = "contract/" + name + "-" + std::to_string(random()) + "/";
  }

  void TearDown() override {
    if (!store_) return;
    std::lock_guard lock(written_mutex_);
    for (const std::string& key : written_) (void)store_->remove(ObjectKey{key});
  }

  ObjectKey key(std::string_view suffix) const { return ObjectKey{prefix_ + std::string(suffix)}; }

  // put() that fails the test on error and remembers the key for TearDown. Thread-safe.
  bool put(const ObjectKey& k, std::span<const uint8_t> bytes,
           std::string_view content_type = "application/octet-stream") {
    {
      std::lock_guard lock(written_mutex_);
      written_.insert(k.value);
    }
    const Status status = store_->put(k, bytes, content_type);
    EXPECT_TRUE(status.ok()) << k.value << ": " << (status.ok() ? "" : status.error().message);
    return status.ok();
  }

  std::vector<uint8_t> get(const ObjectKey& k) {
    Result<std::vector<uint8_t>> got = store_->get(k);
    EXPECT_TRUE(got.ok()) << k.value << ": " << (got.ok() ? "" : got.error().message);
    return got.ok() ? std::move(*got) : std::vector<uint8_t>{};
  }

  void expect_not_found(const ObjectKey& k) {
    Result<std::vector<uint8_t>> got = store_->get(k);
    ASSERT_FALSE(got.ok()) << k.value << " still exists with " << got->size() << " bytes";
    EXPECT_EQ(got.error().kind, ErrorKind::kNotFound) << got.error().message;
  }

  std::set<std::string> listed(std::string_view prefix) {
    Result<std::vector<ObjectKey>> keys = store_->list(prefix);
    EXPECT_TRUE(keys.ok()) << (keys.ok() ? "" : keys.error().message);
    std::set<std::string> out;
    if (!keys.ok()) return out;
    for (const ObjectKey& k : *keys) {
      EXPECT_TRUE(out.insert(k.value).second) << "listed twice: " << k.value;
    }
    return out;
  }

  std::unique_ptr<BlobStore> store_;
  std::string prefix_;
  std::mutex written_mutex_;
  std::set<std::string> written_;
};

class BlobStoreContract : public BlobStoreContractBase {};
class BlobStoreEmptyObjectContract : public BlobStoreContractBase {};
class BlobStoreListingContract : public BlobStoreContractBase {};

TEST_P(BlobStoreContract, RoundTripsBinaryBytes) {
  std::vector<uint8_t> all;
  for (int i = 0; i < 512; ++i) all.push_back(static_cast<uint8_t>(i));
  const std::vector<uint8_t> edges = {0x00, 0x00, 0xFF, 0xFF, 0x0D, 0x0A, 0x00, 0xFF, 0x80, 0x7F};
  put(key("all-bytes.bin"), all);
  put(key("edges.bin"), edges, "image/png");
  put(key("one.bin"), bytes_of("x"), "");  // no content type: the store picks one
  EXPECT_EQ(get(key("all-bytes.bin")), all);
  EXPECT_EQ(get(key("edges.bin")), edges);
  EXPECT_EQ(get(key("one.bin")), bytes_of("x"));
}

TEST_P(BlobStoreContract, RoundTripsSeveralMegabytes) {
  const std::vector<uint8_t> big = pattern_bytes(5 * 1024 * 1024 + 12345, 7);
  put(key("originals/big.png"), big, "image/png");
  const std::vector<uint8_t> got = get(key("originals/big.png"));
  ASSERT_EQ(got.size(), big.size());
  EXPECT_TRUE(got == big) << "the bytes differ";
}

TEST_P(BlobStoreContract, KeysWithSlashesDotsDashesAndUnderscores) {
  const std::vector<std::string> suffixes = {"dithers/0b5e0c8e-6a7c-4a39-9a58-0d7c6f1b2a33/17.png",
                                             "a/b/c/d/e/f/g.gif",
                                             "Mixed_Case-name.v2.final.webp",
                                             "no-extension",
                                             ".hidden",
                                             "x/-_.-/y"};
  for (size_t i = 0; i < suffixes.size(); ++i) {
    put(key(suffixes[i]), pattern_bytes(100 + i, static_cast<uint32_t>(i)));
  }
  for (size_t i = 0; i < suffixes.size(); ++i) {
    EXPECT_EQ(get(key(suffixes[i])), pattern_bytes(100 + i, static_cast<uint32_t>(i)))
        << suffixes[i];
  }
}

TEST_P(BlobStoreContract, OverwriteReplacesTheObject) {
  const ObjectKey k = key("dithers/u/1.png");
  put(k, pattern_bytes(300000, 1));
  put(k, bytes_of("shorter"));
  EXPECT_EQ(get(k), bytes_of("shorter"));
  put(k, pattern_bytes(200000, 2));
  EXPECT_EQ(get(k), pattern_bytes(200000, 2));
}

TEST_P(BlobStoreContract, OverwriteIsAtomicForConcurrentReaders) {
  const ObjectKey k = key("originals/contended.png");
  const std::vector<uint8_t> a = pattern_bytes(1024 * 1024, 11);
  const std::vector<uint8_t> b = pattern_bytes(1024 * 1024 + 4096, 12);
  ASSERT_TRUE(put(k, a));
  std::atomic<bool> writing{true};
  std::atomic<int> reads{0}, torn{0}, errors{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 4; ++r) {
    readers.emplace_back([&] {
      do {
        Result<std::vector<uint8_t>> got = store_->get(k);
        if (!got.ok()) {
          ++errors;
        } else if (*got != a && *got != b) {
          ++torn;
        }
        ++reads;
      } while (writing.load());
    });
  }
  for (int i = 0; i < 12; ++i) put(k, i % 2 == 0 ? b : a);
  writing = false;
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(torn.load(), 0) << "a reader saw a mix of the old and new object";
  EXPECT_EQ(errors.load(), 0) << "a reader saw no object while it was being replaced";
  EXPECT_GE(reads.load(), 4);
  EXPECT_EQ(get(k), a);
}

TEST_P(BlobStoreContract, GetMissingIsNotFound) {
  expect_not_found(key("never-written.png"));
  // A "directory": only a prefix of stored keys, not an object.
  put(key("dir/inside.png"), bytes_of("x"));
  expect_not_found(key("dir"));
  expect_not_found(key("dir/other.png"));
  // Below an object, as if it were a directory.
  expect_not_found(key("dir/inside.png/below"));
}

TEST_P(BlobStoreContract, RemoveMissingSucceeds) {
  expect_ok(store_->remove(key("never-written.png")));
  put(key("dir/inside.png"), bytes_of("x"));
  expect_ok(store_->remove(key("dir")));  // a prefix of a key, not an object
  expect_ok(store_->remove(key("dir/inside.png/below")));
  EXPECT_EQ(get(key("dir/inside.png")), bytes_of("x"));
}

TEST_P(BlobStoreContract, RemoveThenGetIsNotFound) {
  const ObjectKey k = key("dithers/u/2.gif");
  const ObjectKey kept = key("dithers/u/3.gif");
  put(k, bytes_of("GIF89a"));
  put(kept, bytes_of("GIF87a"));
  expect_ok(store_->remove(k));
  expect_not_found(k);
  expect_ok(store_->remove(k));  // twice: still fine
  EXPECT_EQ(get(kept), bytes_of("GIF87a"));
  put(k, bytes_of("again"));  // and it can be written again
  EXPECT_EQ(get(k), bytes_of("again"));
}

TEST_P(BlobStoreContract, InvalidKeysAreRejected) {
  const std::vector<std::string> bad = {"",
                                        "/absolute.png",
                                        prefix_ + "../escape.png",
                                        prefix_ + "a//b.png",
                                        prefix_,  // ends with '/'
                                        prefix_ + "with space.png",
                                        prefix_ + "caf\xC3\xA9.png",
                                        prefix_ + "q?x=1",
                                        prefix_ + "hash#x",
                                        prefix_ + "back\\slash"};
  for (const std::string& k : bad) {
    const Status put_status = store_->put(ObjectKey{k}, bytes_of("x"), "image/png");
    ASSERT_FALSE(put_status.ok()) << "'" << k << "' was accepted";
    EXPECT_EQ(put_status.error().kind, ErrorKind::kInvalidArgument) << k;
    Result<std::vector<uint8_t>> got = store_->get(ObjectKey{k});
    ASSERT_FALSE(got.ok()) << k;
    EXPECT_EQ(got.error().kind, ErrorKind::kInvalidArgument) << k;
    const Status removed = store_->remove(ObjectKey{k});
    ASSERT_FALSE(removed.ok()) << k;
    EXPECT_EQ(removed.error().kind, ErrorKind::kInvalidArgument) << k;
  }
}

TEST_P(BlobStoreContract, ConcurrentPutsAndGetsFromEightThreads) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 12;
  std::atomic<int> failures{0};
  const ObjectKey shared = key("shared.bin");
  ASSERT_TRUE(put(shared, pattern_bytes(50000, 99)));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const ObjectKey k = key("t" + std::to_string(t) + "/" + std::to_string(i) + ".png");
        const auto seed = static_cast<uint32_t>(t * 1000 + i);
        const std::vector<uint8_t> data = pattern_bytes(1 + (seed * 7919) % 70000, seed);
        if (!put(k, data)) ++failures;
        Result<std::vector<uint8_t>> got = store_->get(k);
        if (!got.ok() || *got != data) ++failures;
        Result<std::vector<uint8_t>> other = store_->get(shared);
        if (!other.ok() || *other != pattern_bytes(50000, 99)) ++failures;
        if (i % 3 == 2 && !store_->remove(k).ok()) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      const ObjectKey k = key("t" + std::to_string(t) + "/" + std::to_string(i) + ".png");
      if (i % 3 == 2) {
        expect_not_found(k);
      } else {
        const auto seed = static_cast<uint32_t>(t * 1000 + i);
        EXPECT_EQ(get(k), pattern_bytes(1 + (seed * 7919) % 70000, seed)) << k.value;
      }
    }
  }
}

// The URL ends with the key after a '/'; what comes before may depend on the key (a store's own
// delivery signature, as Cloudinary's authenticated assets have).
TEST_P(BlobStoreContract, PublicUrlEndsWithTheKey) {
  const ObjectKey a = key("originals/a.png");
  const ObjectKey b = key("dithers/u/7.webp");
  const std::string url_a = store_->public_url(a);
  const std::string url_b = store_->public_url(b);
  ASSERT_TRUE(url_a.ends_with(a.value)) << url_a;
  ASSERT_TRUE(url_b.ends_with(b.value)) << url_b;
  const std::string base = url_a.substr(0, url_a.size() - a.value.size());
  EXPECT_FALSE(base.empty());
  EXPECT_TRUE(base.ends_with('/')) << base;
  EXPECT_NE(url_a, url_b);
  EXPECT_TRUE(base.starts_with("http://") || base.starts_with("https://") || base.starts_with("/"))
      << base;
  EXPECT_FALSE(store_->name().empty());
}

TEST_P(BlobStoreEmptyObjectContract, EmptyObjectRoundTrips) {
  const ObjectKey k = key("empty.bin");
  put(k, {});
  Result<std::vector<uint8_t>> got = store_->get(k);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_TRUE(got->empty());
  put(k, bytes_of("now something"));
  EXPECT_EQ(get(k), bytes_of("now something"));
  put(k, {});
  EXPECT_TRUE(get(k).empty());
}

TEST_P(BlobStoreListingContract, ListByPrefixIsTheExactSet) {
  const std::vector<std::string> suffixes = {"img/1.png",    "img/2.png",        "img-other/x.gif",
                                             "imgx.webp",    "deep/a/b/c/d.gif", "other/img/3.png",
                                             "img/sub/4.png"};
  for (const std::string& s : suffixes) put(key(s), bytes_of(s));
  auto keys = [&](std::initializer_list<std::string_view> list) {
    std::set<std::string> out;
    for (std::string_view s : list) out.insert(prefix_ + std::string(s));
    return out;
  };
  EXPECT_EQ(listed(prefix_ + "img/"), keys({"img/1.png", "img/2.png", "img/sub/4.png"}));
  EXPECT_EQ(listed(prefix_ + "img"),
            keys({"img/1.png", "img/2.png", "img/sub/4.png", "img-other/x.gif", "imgx.webp"}));
  EXPECT_EQ(listed(prefix_ + "img/1.png"), keys({"img/1.png"}));
  EXPECT_EQ(listed(prefix_ + "deep/a/b/"), keys({"deep/a/b/c/d.gif"}));
  EXPECT_EQ(listed(prefix_).size(), suffixes.size());
  EXPECT_TRUE(listed(prefix_ + "nothing").empty());
  EXPECT_TRUE(listed(prefix_ + "img/1.png/").empty());
  // An empty prefix lists everything: ours are among them.
  const std::set<std::string> all = listed("");
  for (const std::string& s : suffixes) EXPECT_TRUE(all.contains(prefix_ + s)) << s;
}

TEST_P(BlobStoreListingContract, ListFollowsOverwritesAndRemovals) {
  put(key("a.png"), bytes_of("1"));
  put(key("a.png"), bytes_of("2"));
  put(key("b.png"), bytes_of("3"));
  EXPECT_EQ(listed(prefix_), (std::set<std::string>{prefix_ + "a.png", prefix_ + "b.png"}));
  expect_ok(store_->remove(key("a.png")));
  EXPECT_EQ(listed(prefix_), (std::set<std::string>{prefix_ + "b.png"}));
  expect_ok(store_->remove(key("b.png")));
  EXPECT_TRUE(listed(prefix_).empty());
}

TEST_P(BlobStoreListingContract, ListWithAnyPrefixTextIsAnAnswer) {
  // Prefixes are not keys: spaces, non-ASCII, URL and XML metacharacters must reach the store
  // intact (percent-encoded, signed) and simply match nothing here.
  put(key("x.png"), bytes_of("x"));
  for (const std::string tail :
       {"with space", "caf\xC3\xA9/\xE2\x9C\x93", "a&b=c?d#e%f+g", "<tag>\"'&amp;", "x.png/"}) {
    EXPECT_TRUE(listed(prefix_ + tail).empty()) << tail;
  }
  EXPECT_EQ(listed(prefix_ + "x"), (std::set<std::string>{prefix_ + "x.png"}));
}

TEST_P(BlobStoreListingContract, ListManyKeys) {
  constexpr int kKeys = 60;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kKeys; i += 4)
        put(key("many/" + std::to_string(i) + ".png"), bytes_of("m"));
    });
  }
  for (std::thread& thread : threads) thread.join();
  const std::set<std::string> got = listed(prefix_ + "many/");
  EXPECT_EQ(got.size(), static_cast<size_t>(kKeys));
  for (int i = 0; i < kKeys; ++i) {
    EXPECT_TRUE(got.contains(prefix_ + "many/" + std::to_string(i) + ".png")) << i;
  }
}

}  // namespace dither::contract
