// store.h - the narrow interfaces for each kind of persistent state (see DESIGN.md "State: who
// owns what"). The SQLite backend (store_sqlite.*) implements them today; a Redis backend will
// implement the same interfaces for state several hosts share.
//
// Invariants:
//  - Addresses and scopes are stored lower-cased; callers may pass any case.
//  - Every suppression change (add, update, remove) gets a new, strictly increasing sequence
//    number, so a reader that remembers the last seq it saw can fetch only what changed
//    (changesSince) and sees deletions as tombstones.
//  - Calls are synchronous: SQLite is local and a call costs microseconds. Callers on an event
//    loop only call these off the request path (checkpoints, polling), never per request.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace sluice::store {

// One suppressed recipient. scope "" is global; otherwise the sending domain it applies to.
struct SuppressionEntry {
  std::string address;
  std::string scope;
  std::string reason;   // "hard-bounce", "complaint", "manual", "unsubscribe", ...
  std::string source;   // who added it: "sluicectl", "relayd", "import:FILE", ...
  int64_t createdMs = 0;
  int64_t expiresMs = 0;  // 0 = never expires
};

struct SuppressionChange {
  int64_t seq = 0;
  bool deleted = false;
  SuppressionEntry entry;  // for a deletion only address and scope are set
};

struct SuppressionFilter {
  std::string address;   // exact address, "" = any
  std::string scope;     // exact scope; "*" = any scope (default), "" = global only
  bool anyScope = true;
  std::string reason;    // "" = any
  size_t limit = 0;      // 0 = no limit
  size_t offset = 0;
};

class SuppressionStore {
 public:
  virtual ~SuppressionStore() = default;
  // Inserts or replaces the entry with the same (address, scope).
  virtual sluice::Status add(const SuppressionEntry& entry) = 0;
  // Adds or replaces many entries in one transaction; returns how many were written.
  virtual sluice::Result<size_t> addBatch(const std::vector<SuppressionEntry>& entries) = 0;
  // Returns false when there was no such entry.
  virtual sluice::Result<bool> remove(std::string_view address, std::string_view scope) = 0;
  virtual sluice::Result<std::vector<SuppressionEntry>> list(const SuppressionFilter& filter) = 0;
  virtual sluice::Result<size_t> count() = 0;
  // Changes with seq > afterSeq, oldest first, at most max of them.
  virtual sluice::Result<std::vector<SuppressionChange>> changesSince(int64_t afterSeq, size_t max) = 0;
  // The highest seq ever handed out (0 on an empty store).
  virtual sluice::Result<int64_t> currentSeq() = 0;
  // Old tombstones may be purged; every change with seq >= oldestRetainedSeq() is still returned
  // by changesSince() (1 when nothing was ever purged). A reader whose lastSeq + 1 is below it
  // may have missed deletions and must reload in full.
  virtual sluice::Result<int64_t> oldestRetainedSeq() = 0;
};

// A GCRA bucket: its theoretical arrival time in microseconds since the epoch.
struct BucketState {
  std::string rule;     // rule name from the config
  uint32_t window = 0;  // index of the window in the rule
  std::string key;      // the limited key's value, e.g. the SASL user name
  int64_t tatUs = 0;
};

class CounterStore {
 public:
  virtual ~CounterStore() = default;
  // Upserts the given buckets and deletes the ones named in `expired`, in one transaction.
  virtual sluice::Status saveBuckets(const std::vector<BucketState>& changed,
                                     const std::vector<BucketState>& expired) = 0;
  virtual sluice::Result<std::vector<BucketState>> loadBuckets() = 0;
};

// Opens (creating and migrating as needed) the SQLite database at `path`, in WAL mode.
struct SqliteOptions {
  std::string path;
  int64_t busyTimeoutMs = 5000;
  bool readOnly = false;
};

class SqliteStore;  // implements SuppressionStore and CounterStore; see store_sqlite.h

}  // namespace sluice::store
