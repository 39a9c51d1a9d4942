// decision_engine.h - the one decision engine (DESIGN.md): a Postfix policy request in, a Postfix
// action and the rule that decided out. Used inside sluice-policyd only; the milter and relayd
// reach it through the policy protocol.
//
// Checks, in order, for each request: store health, sender ownership (MAIL and RCPT), then at
// RCPT the suppression list and the rate limits together (one LimitBackend call: one atomic
// server-side script with Redis), and at END-OF-MESSAGE the commit of what RCPT reserved.
// Transactions are keyed by Postfix's `instance` attribute. Units are reserved when a RCPT is
// admitted and committed at END-OF-MESSAGE (with the real size and recipient_count); a
// transaction that ends any other way - a new instance on the same connection, the connection
// closing, or reservation_ttl passing - releases them. An END-OF-MESSAGE for a transaction we
// hold no reservation for (policyd restarted, or it is only asked at end of data) is checked
// and counted then, so every delivered message is counted exactly once.
// When the backend fails (Redis unreachable or too slow), each rule's failure_mode decides:
// open (admit), closed (store_error_action) or local (this host's own counters, local_percent of
// each window); the suppression lookup follows suppression.failure_mode.
// Asynchronous: decide() calls `done` exactly once, before returning with the SQLite backend,
// later with Redis. The request must stay valid until then (PolicyServer guarantees it).
// Single-threaded; owned by policyd's event loop.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "config/config.h"
#include "decision/policy_request.h"
#include "identity/identity_map.h"
#include "ratelimit/limit_backend.h"
#include "ratelimit/memory_backend.h"
#include "ratelimit/rate_limiter.h"

namespace sluice::decision {

struct Decision {
  std::string action = "DUNNO";
  std::string rule;        // "" when nothing decided; else a rate rule, "sender_login", ...
  bool refuses = false;
};

struct EngineStats {
  uint64_t requests = 0;
  uint64_t refused = 0;
  uint64_t monitorHits = 0;
  uint64_t storeErrors = 0;     // requests answered store_error_action
  uint64_t backendFailures = 0; // backend calls that failed (each rule's failure_mode applied)
};

using DecisionCallback = std::function<void(Decision)>;

class DecisionEngine {
 public:
  // `backend` holds the counters and the suppression list; `hostId` makes transaction ids unique
  // across the hosts that share a Redis.
  DecisionEngine(std::shared_ptr<const config::Config> cfg, ratelimit::LimitBackend* backend, const Clock* clock,
                 std::string hostId = "local");
  ~DecisionEngine();

  // New config (the owner reconfigures its RateLimiter first). Open transactions keep their holds.
  void reconfigure(std::shared_ptr<const config::Config> cfg);

  void decide(const PolicyRequest& req, uint64_t connId, DecisionCallback done);
  void connectionClosed(uint64_t connId);
  // Releases reservations older than reservation_ttl; returns how many transactions ended.
  size_t expireReservations();
  // When false, every RCPT/END-OF-MESSAGE answer is the configured store_error_action.
  void setStoreHealthy(bool healthy) { storeHealthy_ = healthy; }

  size_t openTransactions() const { return txns_.size(); }
  const EngineStats& stats() const { return stats_; }
  // The per-host counters used while the shared backend fails (null with a local backend).
  ratelimit::RateLimiter* localLimiter() { return local_.get(); }

 private:
  struct Held {
    uint32_t rule;
    std::string key;
    uint64_t units;
    bool local;  // reserved in the per-host fallback, not the shared backend
  };
  struct Txn {
    uint64_t connId = 0;
    int64_t startedMs = 0;
    uint64_t admittedRcpts = 0;
    std::vector<Held> held;
  };
  struct Pending;  // one RCPT or END-OF-MESSAGE waiting for the backend

  Decision checkSender(const PolicyRequest& req) const;
  void atRcpt(const PolicyRequest& req, uint64_t connId, DecisionCallback done);
  void atEnd(const PolicyRequest& req, uint64_t connId, DecisionCallback done);
  void rcptAnswered(const std::shared_ptr<Pending>& p, Result<ratelimit::RcptOutcome> r);
  void endAnswered(const std::shared_ptr<Pending>& p, Result<ratelimit::RcptOutcome> r);
  // Turns the backend's answer into a decision; charges that missed in monitor mode are logged.
  Decision verdict(const Pending& p, const ratelimit::RcptOutcome& out, const char* state);
  // The backend failed: apply every rule's failure mode. Returns the refusal, if any.
  Decision onBackendFailure(Pending& p, const std::string& why, ratelimit::RcptOutcome* out);
  std::vector<ratelimit::LimitCharge> chargesFor(const PolicyRequest& req, const Txn* txn, uint64_t rcpts) const;
  bool keyFor(const config::RateRuleConfig& rule, const PolicyRequest& req, std::string* key) const;
  Decision refuse(uint32_t rule, const std::string& key, const PolicyRequest& req, const char* state);
  Decision storeError();
  Txn& txnFor(const PolicyRequest& req, uint64_t connId, std::string* id);
  void endTxn(const std::string& id, bool commit, const PolicyRequest* eom, bool extraBytesCharged = false);
  void finish(const PolicyRequest& req, Decision d, const DecisionCallback& done);
  void logDecision(const PolicyRequest& req, const Decision& d) const;
  void rebuildLocal();

  std::shared_ptr<const config::Config> cfg_;
  std::unique_ptr<IdentityMap> identities_;
  ratelimit::LimitBackend* backend_;
  const Clock* clock_;
  std::string hostId_;
  std::unique_ptr<ratelimit::RateLimiter> local_;
  std::unique_ptr<ratelimit::MemoryLimitBackend> localBackend_;
  bool storeHealthy_ = true;
  uint64_t generation_ = 0;  // bumped by reconfigure: answers for an older rule set are dropped
  int64_t lastFailureLogMs_ = 0;
  std::unordered_map<std::string, Txn> txns_;
  std::unordered_map<uint64_t, std::string> connTxn_;
  EngineStats stats_;
};

}  // namespace sluice::decision
