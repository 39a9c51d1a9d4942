// suppress_store.cc - see suppress_store.h.
#include "suppress_store.h"

#include <utility>

#include "store/store_redis.h"
#include "store/store_sqlite.h"

namespace sluice::ctl {
namespace {

template <class Store>
class Adapter final : public SuppressStore {
 public:
  explicit Adapter(std::unique_ptr<Store> s) : s_(std::move(s)) {}
  Status add(const store::SuppressionEntry& e) override { return s_->add(e); }
  Result<size_t> addBatch(const std::vector<store::SuppressionEntry>& entries) override { return s_->addBatch(entries); }
  Result<bool> remove(std::string_view address, std::string_view scope) override { return s_->remove(address, scope); }
  Result<std::vector<store::SuppressionEntry>> list(const store::SuppressionFilter& f) override { return s_->list(f); }
  Status scan(const store::SuppressionFilter& f, const EntryFn& fn) override { return s_->scan(f, fn); }

 private:
  std::unique_ptr<Store> s_;
};

template <class Store>
Result<std::unique_ptr<SuppressStore>> adapt(Result<std::unique_ptr<Store>> opened) {
  if (!opened) return opened.error();
  return std::unique_ptr<SuppressStore>(std::make_unique<Adapter<Store>>(std::move(opened).value()));
}

}  // namespace

Result<std::unique_ptr<SuppressStore>> openSuppressStore(const config::StoreConfig& cfg, bool readOnly,
                                                         const Clock* clock) {
  if (cfg.useRedis()) return adapt(store::RedisSuppressionStore::open(cfg.redis, clock));
  store::SqliteOptions opts;
  opts.path = cfg.sqlitePath;
  opts.readOnly = readOnly;
  if (cfg.busyTimeoutMs > 0) opts.busyTimeoutMs = cfg.busyTimeoutMs;
  return adapt(store::SqliteStore::open(opts, clock));
}

}  // namespace sluice::ctl
