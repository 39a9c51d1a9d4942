// store_sqlite.h - the SQLite backend of the store interfaces (store.h): one database file under
// state_dir in WAL mode, shared by several processes (sluicectl and relayd write suppressions,
// policyd follows them and checkpoints its rate counters).
//
// Schema and invariants:
//  - Migrations are keyed on PRAGMA user_version: step N takes a database from version N-1 to N
//    inside one transaction. A database newer than this code is refused and never modified; a
//    read-only open never migrates and refuses a database that is not at kSchemaVersion.
//  - open() creates the database file but never its directory.
//  - remove() does not delete a suppression row: it turns it into a tombstone (deleted = 1,
//    created_ms = time of the removal) with a new seq, so readers following changesSince() see
//    deletions. list(), count(), get() and scan() skip tombstones. purgeTombstones() drops old
//    tombstones and remembers the highest seq it dropped; oldestRetainedSeq() reports it + 1.
//  - meta('seq') holds the highest seq ever handed out. Writers take the next values from it
//    inside BEGIN IMMEDIATE transactions, so seqs strictly increase across adds, removes and
//    purges, and a committed seq is never preceded by one that is still uncommitted.
//  - Addresses and scopes are lower-cased on write and on lookup.
//  - An entry written with createdMs == 0 gets the current time.
//
// Threading: not thread-safe. Use one SqliteStore per thread (each holds its own connection and
// its own cached prepared statements); any number of objects and processes may share the file.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "store/store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace sluice::store {

class SqliteStore final : public SuppressionStore, public CounterStore {
 public:
  static constexpr int kSchemaVersion = 1;

  // clock == nullptr uses the system clock. The clock must outlive the store.
  static sluice::Result<std::unique_ptr<SqliteStore>> open(const SqliteOptions& options,
                                                          const Clock* clock = nullptr);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // SuppressionStore. In filters, scope "*" (or "" with anyScope) means any scope, "" without
  // anyScope means global only, anything else that exact scope. changesSince(after, 0) has no limit.
  sluice::Status add(const SuppressionEntry& entry) override;
  sluice::Result<size_t> addBatch(const std::vector<SuppressionEntry>& entries) override;
  sluice::Result<bool> remove(std::string_view address, std::string_view scope) override;
  sluice::Result<std::vector<SuppressionEntry>> list(const SuppressionFilter& filter) override;
  sluice::Result<size_t> count() override;
  sluice::Result<std::vector<SuppressionChange>> changesSince(int64_t afterSeq, size_t max) override;
  sluice::Result<int64_t> currentSeq() override;
  sluice::Result<int64_t> oldestRetainedSeq() override;

  // The live entry for (address, scope), if any.
  sluice::Result<std::optional<SuppressionEntry>> get(std::string_view address, std::string_view scope);
  // Streams the live entries matching filter, ordered by address then scope, without holding
  // them all in memory. fn must not call back into this store.
  sluice::Status scan(const SuppressionFilter& filter,
                      const std::function<void(const SuppressionEntry&)>& fn);
  // Drops tombstones whose removal time is before olderThanMs (ms since the epoch; callers pass
  // now - 7 days). Returns how many were dropped.
  sluice::Result<size_t> purgeTombstones(int64_t olderThanMs);
  sluice::Result<int> schemaVersion();

  // CounterStore
  sluice::Status saveBuckets(const std::vector<BucketState>& changed,
                             const std::vector<BucketState>& expired) override;
  sluice::Result<std::vector<BucketState>> loadBuckets() override;

  const std::string& path() const { return options_.path; }

 private:
  enum Sql : int;
  static constexpr size_t kStmtCount = 16;
  static constexpr size_t kScanVariants = 8;

  SqliteStore(sqlite3* db, SqliteOptions options, const Clock* clock);
  sluice::Status configure();
  sluice::Status migrate();
  sluice::Status exec(const char* sql, std::string_view what);
  sluice::Result<sqlite3_stmt*> prepared(Sql id);
  sluice::Result<sqlite3_stmt*> scanStatement(const SuppressionFilter& filter, unsigned* variant);
  sluice::Status runStatement(Sql id, std::string_view what);
  sluice::Result<int64_t> readMeta(std::string_view key);
  sluice::Status writeMeta(std::string_view key, int64_t value);
  sluice::Status writeTransaction(bool usesSeq, const std::function<sluice::Status()>& body);
  sluice::Status writeEntries(std::span<const SuppressionEntry> entries);
  sluice::Status writeEntry(const SuppressionEntry& entry, int64_t nowMs);
  sluice::Error sqlError(std::string_view what) const;

  sqlite3* db_;
  SqliteOptions options_;
  SystemClock systemClock_;
  const Clock* clock_;
  std::array<sqlite3_stmt*, kStmtCount> stmts_{};
  std::array<sqlite3_stmt*, kScanVariants> scanStmts_{};
  int64_t seq_ = 0;  // inside a write transaction: the last seq handed out
  std::string address_;  // scratch for lower-casing
  std::string scope_;
};

}  // namespace sluice::store
