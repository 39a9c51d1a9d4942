// suppression_check.h - sluice-relayd's reads and writes of the suppression list, with either
// store.backend: SQLite (STATE_DIR/sluice.db or store.sqlite_path) or Redis (the list several
// hosts share, store_redis.h). Two users, each with its own instance on its own thread: the
// intake's spool writer (a recipient on the list is dropped at queue time: session.cc, queue.h
// NewMessage) and the delivery (the same check again when a recipient is picked up - the list may
// have changed meanwhile - and the hard bounces added).
//
// Invariants:
//  - find() returns the entry that suppresses the recipient for mail from senderDomain: global
//    (scope "") or scoped to that domain, not expired. Case-insensitive.
//  - A store that cannot be read never stops mail: find() logs and answers "not suppressed" (the
//    other line, and sluice-policyd at RCPT, remain). With Redis, a failed connection (RedisSync
//    is unusable after an error or a timeout) is reopened at most once per kReopenMs; in between
//    lookups are skipped, so a Redis that hangs costs at most one timeout per kReopenMs.
//  - Calls are synchronous (SQLite: microseconds; a local Redis: one round trip).
// Not thread-safe: one instance per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "base/result.h"
#include "config/config.h"
#include "store/store.h"

namespace sluice::relayd {

class SuppressionCheck {
 public:
  static constexpr int64_t kReopenMs = 10000;
  explicit SuppressionCheck(const config::Config& cfg);
  ~SuppressionCheck();
  // Opens the store now (at start: the caller decides whether a failure stops it).
  Status open();
  std::optional<store::SuppressionEntry> find(const std::string& rcpt, const std::string& senderDomain);
  Status add(const store::SuppressionEntry& e);
  // The open store, or nullptr (not open, or Redis waiting to be reopened).
  store::SuppressionStore* store();
  const std::string& backend() const { return store_.backend; }
  // The reply a suppressed recipient is recorded with: why, as `sluicectl why` shows it.
  static std::string replyFor(const store::SuppressionEntry& e);

 private:
  void failed(const std::string& what, const std::string& why);
  config::StoreConfig store_;
  std::string stateDir_;
  std::unique_ptr<store::SuppressionStore> s_;
  int64_t retryAtMs_ = 0;
};

}  // namespace sluice::relayd
