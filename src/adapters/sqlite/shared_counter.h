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
// The file is created 0600; one that is a symbolic link, not a regular file, or writable by
// group or others is refused. Its page is allocated on disk when it is opened (a full disk fails
// the open, never a later write through the mapping). It is one of the database's files, like
// SQLite's -wal and -shm: replacing, truncating or removing it while a process has it open is
// not supported (the data directory is restored with the server stopped).
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
  uint64_t load(size_t i) const;
  // Adds one to counter `i`, after everything this thread did before (sequentially consistent).
  void bump(size_t i);

 private:
  SharedCounters(void* mapping, size_t size);

  void* mapping_ = nullptr;  // the file's first page; null for counters of this process alone
  size_t size_ = 0;
  uint64_t* words_ = nullptr;  // in mapping_, or own_
  alignas(8) uint64_t own_[kCount] = {};
};

}  // namespace dither::sqlite
