// store_redis.h - the suppression list in Redis (store.backend: redis), shared by every host, for
// sluicectl (synchronous: redis_sync.h). Key layout: redis_keys.h - one hash P s:<address> per
// address, field = scope ("*" for the global scope ""), value = "reason\tsource\tcreated\texpires".
//
// Invariants:
//  - Addresses and scopes are lower-cased on write and on lookup; createdMs == 0 becomes now.
//  - Every change (add, each entry of addBatch, a remove that removed something) bumps P sq, so
//    currentSeq() counts changes. There is no change log: changesSince() is always empty and
//    oldestRetainedSeq() is 0, because sluice-policyd in Redis mode keeps no copy of the list -
//    it looks the recipient up in Redis at each RCPT (ratelimit/redis_backend.h).
//  - addBatch() pipelines its writes in chunks of kChunkCommands commands (one round trip each);
//    it is not atomic: after a failure, earlier chunks stay written.
//  - scan() and list() use SCAN (never KEYS), then sort the address keys, so listings are ordered
//    by address then scope like SQLite's; memory is one string per address, not per entry. An
//    entry added during a scan may be missed; values that do not decode are skipped.
//  - Expired entries are listed and counted until removed (policyd ignores them); count() is
//    the number of (address, scope) entries.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "config/config.h"
#include "store/store.h"

namespace sluice::store {

class RedisSync;

class RedisSuppressionStore final : public SuppressionStore {
 public:
  static constexpr size_t kChunkCommands = 10'000;

  // clock == nullptr uses the system clock. The clock must outlive the store.
  static Result<std::unique_ptr<RedisSuppressionStore>> open(const config::RedisConfig& cfg,
                                                             const Clock* clock = nullptr);
  ~RedisSuppressionStore() override;

  Status add(const SuppressionEntry& entry) override;
  Result<size_t> addBatch(const std::vector<SuppressionEntry>& entries) override;
  Result<bool> remove(std::string_view address, std::string_view scope) override;
  Result<std::vector<SuppressionEntry>> list(const SuppressionFilter& filter) override;
  Result<size_t> count() override;
  Result<std::vector<SuppressionChange>> changesSince(int64_t afterSeq, size_t max) override;
  Result<int64_t> currentSeq() override;
  Result<int64_t> oldestRetainedSeq() override;

  Result<std::optional<SuppressionEntry>> get(std::string_view address, std::string_view scope);
  // Streams the entries matching filter (limit and offset included), ordered by address then
  // scope. fn must not call back into this store.
  Status scan(const SuppressionFilter& filter, const std::function<void(const SuppressionEntry&)>& fn);

 private:
  RedisSuppressionStore(std::unique_ptr<RedisSync> link, std::string prefix, const Clock* clock);
  std::vector<std::string> hashSet(const SuppressionEntry& entry, int64_t nowMs) const;
  Status writeChunk(std::vector<std::vector<std::string>>* commands, size_t entries);
  // Calls fn for every decodable entry of the hashes `keys` that matches filter's scope and
  // reason, in (address, scope) order, until fn returns false.
  Status readKeys(const std::vector<std::string>& keys, const SuppressionFilter& filter,
                  const std::function<bool(const SuppressionEntry&)>& fn);

  std::unique_ptr<RedisSync> link_;
  std::string prefix_;
  SystemClock systemClock_;
  const Clock* clock_;
};

}  // namespace sluice::store
