// suppression_check.cc - see suppression_check.h.
#include "suppression_check.h"

#include <chrono>

#include "base/log.h"
#include "base/strings.h"
#include "events/event.h"
#include "store/store_redis.h"
#include "store/store_sqlite.h"

namespace sluice::relayd {
namespace {

int64_t wallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

SuppressionCheck::SuppressionCheck(const config::Config& cfg) : store_(cfg.store), stateDir_(cfg.stateDir) {}
SuppressionCheck::~SuppressionCheck() = default;

Status SuppressionCheck::open() {
  s_.reset();
  retryAtMs_ = wallMs() + kReopenMs;
  if (store_.useRedis()) {
    auto r = store::RedisSuppressionStore::open(store_.redis);
    if (!r) return makeError("suppression list (redis " + store_.redis.address + "): " + r.message());
    s_ = std::move(r.value());
    return okStatus();
  }
  store::SqliteOptions so;
  so.path = store_.sqlitePath.empty() ? stateDir_ + "/sluice.db" : store_.sqlitePath;
  so.busyTimeoutMs = store_.busyTimeoutMs;
  auto s = store::SqliteStore::open(so);
  if (!s) return makeError("suppression list: " + s.message());
  s_ = std::move(s.value());
  return okStatus();
}

store::SuppressionStore* SuppressionCheck::store() {
  if (!s_ && wallMs() >= retryAtMs_) {
    if (auto st = open(); !st) logWarning(st.message() + " (tried again in " + std::to_string(kReopenMs / 1000) + " s)");
    else logInfo("suppression list (" + store_.backend + ") reopened");
  }
  return s_.get();
}

void SuppressionCheck::failed(const std::string& what, const std::string& why) {
  logWarning("suppression list: " + what + ": " + why);
  // A Redis connection is unusable after an error: drop it, reopen later. SQLite errors (busy)
  // are per call.
  if (store_.useRedis()) {
    s_.reset();
    retryAtMs_ = wallMs() + kReopenMs;
  }
}

std::optional<store::SuppressionEntry> SuppressionCheck::find(const std::string& rcpt, const std::string& senderDomain) {
  auto* s = store();
  if (s == nullptr) return std::nullopt;
  store::SuppressionFilter f;
  f.address = toLower(rcpt);
  auto entries = s->list(f);
  if (!entries) {
    failed("lookup of " + rcpt, entries.message());
    return std::nullopt;
  }
  int64_t now = wallMs();
  std::string sd = toLower(senderDomain);
  std::optional<store::SuppressionEntry> best;
  for (auto& e : entries.value()) {
    if (e.expiresMs != 0 && e.expiresMs <= now) continue;
    if (e.scope.empty()) return std::move(e);  // global wins
    if (e.scope == sd && !best) best = std::move(e);
  }
  return best;
}

Status SuppressionCheck::add(const store::SuppressionEntry& e) {
  auto* s = store();
  if (s == nullptr) return makeError("suppression list (" + store_.backend + ") not open");
  Status st = s->add(e);
  if (!st) failed("adding " + e.address, st.message());
  return st;
}

std::string SuppressionCheck::replyFor(const store::SuppressionEntry& e) {
  std::string r = "550 5.1.1 recipient is on the suppression list (reason " + (e.reason.empty() ? "unknown" : e.reason);
  r += ", scope " + (e.scope.empty() ? std::string("global") : e.scope);
  if (!e.source.empty()) r += ", source " + e.source;
  if (e.createdMs > 0) r += ", since " + events::formatRfc3339Ms(e.createdMs);
  return r + ")";
}

}  // namespace sluice::relayd
