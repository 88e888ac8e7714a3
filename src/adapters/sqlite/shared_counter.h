// Counters that every process using the same file sees: the first words of a small file mapped
// MAP_SHARED, read and moved without a system call (as SQLite's own WAL index is shared). The
// SQLite identity store moves one on every revocation, so that a gateway can believe a key it
// checked until then (identity.h, revocation_stamp). Without a path the counters are this
// process's alone (an in-memory database).
//
//   Result<std::unique_ptr<SharedCounters>> c = SharedCounters::open("data/auth.db-revocations");
//   const uint64_t seen = (*c)->load(0);   // ... later: (*c)->load(0) != seen: something moved
//   (*c)->bump(0);
//
// The file: created 0600 (a file there that others may write, or that is not a regular file or
// is a symbolic link, is refused), its page allocated on disk at once (a full disk fails the
// open, never a later write). When it is replaced or removed while mapped (a restored data
// directory), load() notices within a second (one stat() a second) and maps the new one; every
// value it returns then differs from all it returned before. bump() checks every time, so it
// always moves the counter of the file at the path. When that fails, every load()
// returns a new value: whoever believes something until a counter moves then believes nothing.
//
// Thread- and process-safe (atomic operations on the shared words).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"

namespace dither::sqlite {

class SharedCounters {
 public:
  static constexpr size_t kCount = 2;  // counters 0 and 1

  // Maps `path` (created when missing); "" for counters of this process alone. kUnavailable
  // when the file cannot be opened, allocated or mapped, or is refused (above).
  static Result<std::unique_ptr<SharedCounters>> open(const std::string& path);
  ~SharedCounters();
  SharedCounters(const SharedCounters&) = delete;
  SharedCounters& operator=(const SharedCounters&) = delete;

  // Counter `i`'s current value (i < kCount). Acquire: what the mover wrote before it moved the
  // counter is visible.
  uint64_t load(size_t i);
  // Adds one to counter `i`, after everything this thread did before (sequentially consistent).
  void bump(size_t i);

 private:
  struct Mapping;
  SharedCounters(std::string path, std::unique_ptr<Mapping> first);
  // Whether the file mapped is still the one at the path, remapping when not: at most once a
  // second unless `now_always`.
  void check_file(bool now_always);

  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace dither::sqlite
