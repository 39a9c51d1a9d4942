// decision_engine.h - the one decision engine (DESIGN.md): a Postfix policy request in, a Postfix
// action and the rule that decided out. Used inside sluice-policyd only; the milter and relayd
// reach it through the policy protocol.
//
// Checks, in order, for each request: store health, sender ownership (MAIL and RCPT), the
// suppression list (RCPT), rate limits (RCPT reserves, END-OF-MESSAGE commits).
// Transactions are keyed by Postfix's `instance` attribute. Units are reserved when a RCPT is
// admitted and committed at END-OF-MESSAGE (with the real size and recipient_count); a
// transaction that ends any other way - a new instance on the same connection, the connection
// closing, or reservation_ttl passing - releases them. An END-OF-MESSAGE for a transaction we
// hold no reservation for (policyd restarted, or it is only asked at end of data) is checked
// and counted then, so every delivered message is counted exactly once.
// Single-threaded; owned by policyd's event loop.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "config/config.h"
#include "decision/policy_request.h"
#include "identity/identity_map.h"
#include "ratelimit/rate_limiter.h"

namespace sluice {
class SuppressionList;
}

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
  uint64_t storeErrors = 0;
};

class DecisionEngine {
 public:
  DecisionEngine(std::shared_ptr<const config::Config> cfg, ratelimit::RateLimiter* limiter,
                 const SuppressionList* suppression, const Clock* clock);

  // New config (the owner reconfigures the limiter first). Open transactions keep their holds.
  void reconfigure(std::shared_ptr<const config::Config> cfg);

  Decision decide(const PolicyRequest& req, uint64_t connId);
  void connectionClosed(uint64_t connId);
  // Releases reservations older than reservation_ttl; returns how many transactions ended.
  size_t expireReservations();
  // When false, every RCPT/END-OF-MESSAGE answer is the configured store_error_action.
  void setStoreHealthy(bool healthy) { storeHealthy_ = healthy; }

  size_t openTransactions() const { return txns_.size(); }
  const EngineStats& stats() const { return stats_; }

 private:
  struct Held {
    uint32_t rule;
    std::string key;
    uint64_t units;
  };
  struct Txn {
    uint64_t connId = 0;
    int64_t startedMs = 0;
    uint64_t admittedRcpts = 0;
    std::vector<Held> held;
  };
  struct Charge {
    uint32_t rule;
    std::string_view key;
    uint64_t units;
  };

  Decision checkSender(const PolicyRequest& req) const;
  Decision checkSuppression(const PolicyRequest& req) const;
  Decision rateAtRcpt(const PolicyRequest& req, Txn& txn);
  Decision rateAtEnd(const PolicyRequest& req, uint64_t connId);
  // The key value of `rule` for this request; false when the rule does not apply.
  bool keyFor(uint32_t rule, const PolicyRequest& req, std::string* scratch, std::string_view* key) const;
  Decision refuse(uint32_t rule, std::string_view key, const PolicyRequest& req, const char* state);
  Txn& txnFor(const PolicyRequest& req, uint64_t connId, std::string* id);
  void endTxn(const std::string& id, bool commit, const PolicyRequest* eom);
  void logDecision(const PolicyRequest& req, const Decision& d) const;

  std::shared_ptr<const config::Config> cfg_;
  std::unique_ptr<IdentityMap> identities_;
  ratelimit::RateLimiter* limiter_;
  const SuppressionList* suppression_;
  const Clock* clock_;
  bool storeHealthy_ = true;
  std::unordered_map<std::string, Txn> txns_;
  std::unordered_map<uint64_t, std::string> connTxn_;
  EngineStats stats_;
};

}  // namespace sluice::decision
