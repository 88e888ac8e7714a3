// Helpers shared by all the contract suites here (every *_contract.h includes it): the stores'
// factory (Factory, FactoryName), test messages, message comparison, outbox inspection, result
// checks and the walk through a paged list. Header-only.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ports/message.h"
#include "ports/outbox.h"
#include "ports/records.h"

namespace dither::contract {

// A fresh, empty store of port `Port`, named for test output ("sqlite_file", "postgres", ...).
template <class Port>
struct Factory {
  std::string name;
  std::function<std::unique_ptr<Port>()> make;
  friend void PrintTo(const Factory& f, std::ostream* os) { *os << f.name; }
};

// For INSTANTIATE_TEST_SUITE_P(..., ::testing::Values(...), FactoryName()).
struct FactoryName {
  template <class Param>
  std::string operator()(const ::testing::TestParamInfo<Param>& info) const {
    return info.param.name;
  }
};

// A message whose headers test exact preservation: the four standard ones, then a duplicate name,
// an empty value, quotes, a backslash, a newline and non-ASCII text, in that order. `tag` makes
// it distinct.
inline Message test_message(std::string topic, std::string_view type, std::string key,
                            const std::string& tag = "") {
  Message m = make_message(std::move(topic), type, std::move(key),
                           R"({"tag":")" + tag + R"(","text":"caf\u00e9 \"q\""})");
  m.headers.emplace_back("x-dup", "first");
  m.headers.emplace_back("x-empty", "");
  m.headers.emplace_back("x-dup", "second \"quoted\" \\ back\nline");
  m.headers.emplace_back("x-utf8", "gr\xC3\xBC\xC3\x9F dich \xE2\x9C\x93 " + tag);
  return m;
}

inline void expect_same_message(const Message& actual, const Message& expected) {
  EXPECT_EQ(actual.topic, expected.topic);
  EXPECT_EQ(actual.key, expected.key);
  EXPECT_EQ(actual.headers, expected.headers);
  EXPECT_EQ(actual.body, expected.body);
}

// Every pending entry, oldest first (the store must hold fewer than 1000).
inline std::vector<OutboxEntry> all_pending(Outbox& outbox) {
  auto pending = outbox.pending_messages(1000);
  EXPECT_TRUE(pending.ok()) << (pending.ok() ? "" : pending.error().message);
  return pending.ok() ? std::move(*pending) : std::vector<OutboxEntry>{};
}

// The outbox holds exactly `expected`, in that order, with increasing seq.
inline void expect_outbox(Outbox& outbox, const std::vector<Message>& expected) {
  const std::vector<OutboxEntry> pending = all_pending(outbox);
  ASSERT_EQ(pending.size(), expected.size());
  for (size_t i = 0; i < pending.size(); ++i) {
    SCOPED_TRACE("outbox entry " + std::to_string(i));
    expect_same_message(pending[i].message, expected[i]);
    if (i > 0) {
      EXPECT_GT(pending[i].seq, pending[i - 1].seq);
    }
  }
}

inline void expect_ok(const Status& status) {
  EXPECT_TRUE(status.ok()) << (status.ok() ? "" : status.error().message);
}

// Unwraps a Result, failing the test (and returning a default value) on error.
template <class T>
T value_of(Result<T> result) {
  EXPECT_TRUE(result.ok()) << (result.ok() ? "" : result.error().message);
  return result.ok() ? std::move(result).value() : T{};
}

template <class T>
void expect_error(const Result<T>& result, ErrorKind kind) {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, kind) << result.error().message;
}

// Walks every page of a newest-first list (`list`: PageRequest -> Result<Page<T>>) of `owner`
// ("" = everyone's) with `limit` items a page, checking on the way that every page but the last
// is full and that each cursor is the id (`id_of`) of its page's last item. Returns the ids seen.
template <class T, class List, class IdOf>
std::vector<int64_t> walk_pages(const List& list, int limit, const std::string& owner,
                                const IdOf& id_of) {
  std::vector<int64_t> seen;
  PageRequest request{.limit = limit, .before = std::nullopt, .owner = owner};
  for (int pages = 0; pages < 1000; ++pages) {
    Result<Page<T>> result = list(request);
    EXPECT_TRUE(result.ok()) << (result.ok() ? "" : result.error().message);
    if (!result.ok()) break;
    const Page<T>& page = *result;
    EXPECT_LE(page.items.size(), static_cast<size_t>(limit));
    for (const T& item : page.items) seen.push_back(id_of(item));
    if (page.next_cursor.empty()) break;
    EXPECT_EQ(page.items.size(), static_cast<size_t>(limit));
    if (page.items.empty()) break;
    EXPECT_EQ(page.next_cursor, std::to_string(id_of(page.items.back())));
    request.before = std::stoll(page.next_cursor);
  }
  return seen;
}

// `workers` threads claim concurrently through `claim` (limit, worker name "host:1:<n>" ->
// Result<std::vector<T>>), 1 to 3 items a call, until nothing is left: no call fails and every id
// of `made` (ascending) is claimed exactly once.
template <class T, class Claim, class IdOf>
void expect_each_claimed_once(const std::vector<int64_t>& made, int workers, const Claim& claim,
                              const IdOf& id_of) {
  std::vector<std::vector<int64_t>> got(static_cast<size_t>(workers));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      const std::string worker = "host:1:" + std::to_string(w);
      for (;;) {
        Result<std::vector<T>> claimed = claim(1 + w % 3, worker);
        if (!claimed.ok()) {
          ++failures;
          return;
        }
        if (claimed->empty()) return;
        for (const T& item : *claimed) got[static_cast<size_t>(w)].push_back(id_of(item));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  std::vector<int64_t> all;
  for (const auto& of_worker : got) all.insert(all.end(), of_worker.begin(), of_worker.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, made);  // each exactly once
}

// The owners that the owner-list tests interleave: their items alternate irregularly.
inline std::vector<std::string> interleaved_owners() {
  return {"alice",
          "key:k0123456789a",
          "alice",
          "alice",
          "key:k0123456789a",
          "alice",
          "key:k0123456789a",
          "key:k0123456789a",
          "alice"};
}

// Stores an item for each of interleaved_owners() with `store` (owner -> the stored item), then
// checks the newest-first list `list` (PageRequest -> Result<Page<T>>) of each owner and of all
// (""): page by page at every limit, only that owner's items, a cursor from another owner's item
// giving that owner's older items only, and nothing at all for `nobody`.
template <class T, class Store, class List, class IdOf>
void check_owner_lists(const Store& store, const List& list, const IdOf& id_of,
                       const std::string& nobody) {
  const std::vector<std::string> owners = interleaved_owners();
  std::map<std::string, std::vector<int64_t>> expected;  // newest first
  for (const std::string& owner : owners) {
    const T stored = store(owner);
    expected[owner].insert(expected[owner].begin(), id_of(stored));
    expected[""].insert(expected[""].begin(), id_of(stored));
  }
  for (int limit = 1; limit <= static_cast<int>(owners.size()) + 1; ++limit) {
    for (const auto& [owner, ids] : expected) {
      SCOPED_TRACE("owner '" + owner + "', limit " + std::to_string(limit));
      EXPECT_EQ(walk_pages<T>(list, limit, owner, id_of), ids);
    }
  }
  for (const auto& [owner, ids] : expected) {
    if (owner.empty()) continue;
    for (const T& item :
         value_of(list({.limit = 100, .before = std::nullopt, .owner = owner})).items) {
      EXPECT_EQ(item.owner, owner);
    }
  }
  // A cursor from anywhere gives that owner's older items only.
  const int64_t newest_other = expected["key:k0123456789a"][0];
  std::vector<int64_t> older;
  for (const T& item :
       value_of(list({.limit = 100, .before = newest_other, .owner = "alice"})).items) {
    older.push_back(id_of(item));
  }
  std::vector<int64_t> want;
  for (int64_t id : expected["alice"]) {
    if (id < newest_other) want.push_back(id);
  }
  EXPECT_EQ(older, want);
  const Page<T> none = value_of(list({.limit = 10, .before = std::nullopt, .owner = nobody}));
  EXPECT_TRUE(none.items.empty());
  EXPECT_EQ(none.next_cursor, "");
}

}  // namespace dither::contract
