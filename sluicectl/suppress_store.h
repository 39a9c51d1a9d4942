// suppress_store.h - the suppression list as `sluicectl suppress` uses it, on either backend of
// store.backend: SQLite (store/store_sqlite.h, the file in state_dir) or Redis
// (store/store_redis.h, shared by every host). The adapters only forward; both backends keep
// the same semantics (lower-cased addresses and scopes, replace on add, listings ordered by
// address then scope, filters as store::SuppressionFilter describes).
#pragma once

#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "config/config.h"
#include "store/store.h"

namespace sluice::ctl {

class SuppressStore {
 public:
  using EntryFn = std::function<void(const store::SuppressionEntry&)>;
  virtual ~SuppressStore() = default;
  virtual Status add(const store::SuppressionEntry& entry) = 0;
  virtual Result<size_t> addBatch(const std::vector<store::SuppressionEntry>& entries) = 0;
  virtual Result<bool> remove(std::string_view address, std::string_view scope) = 0;
  virtual Result<std::vector<store::SuppressionEntry>> list(const store::SuppressionFilter& filter) = 0;
  // Streams the matching entries, ordered by address then scope.
  virtual Status scan(const store::SuppressionFilter& filter, const EntryFn& fn) = 0;
};

// Opens the store that cfg.backend names. readOnly matters for SQLite only (no migration, no
// writes); clock (nullptr: the system clock) must outlive the store.
Result<std::unique_ptr<SuppressStore>> openSuppressStore(const config::StoreConfig& cfg, bool readOnly,
                                                         const Clock* clock);

}  // namespace sluice::ctl
