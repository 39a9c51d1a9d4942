// redis_backend.h - the LimitBackend shared by several hosts (store.backend: redis).
//
// Each rcpt()/charge() is ONE server-side Lua script, so that the check of every rule and the
// reservation (or the count) happen atomically for the whole fleet: two hosts can never both take
// the last unit. The same script first looks the recipient up in the suppression hash, so a RCPT
// costs one round trip. commit() and release() are one script each, sent without waiting (their
// answer changes nothing Postfix is told). Reservations carry a TTL inside Redis (a ZSET of
// expiry times per bucket, pruned by the scripts): a host that dies mid-transaction cannot leak
// units for longer than policyd.reservation_ttl. Key layout: store/redis_keys.h. GCRA as in
// gcra.h, with the same tolerance, so a fleet on Redis admits exactly what one host on SQLite
// would. Failures (timeouts, Redis down) reach the engine as Errors; it applies the failure modes.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "ratelimit/gcra.h"
#include "ratelimit/limit_backend.h"
#include "store/redis_client.h"

namespace sluice::ratelimit {

class RedisLimitBackend final : public LimitBackend {
 public:
  RedisLimitBackend(store::RedisClient* client, std::string keyPrefix, const std::vector<config::RateRuleConfig>& rules);
  void setRules(const std::vector<config::RateRuleConfig>& rules);

  void rcpt(RcptQuery query, RcptCallback done) override;
  void commit(const std::string& txn, std::vector<HeldUnits> held, int64_t nowMs) override;
  void release(const std::string& txn, std::vector<HeldUnits> held) override;
  void charge(RcptQuery query, RcptCallback done) override;
  bool asynchronous() const override { return true; }

 private:
  struct Rule {
    std::string name;
    std::vector<WindowSpec> windows;
  };
  void run(char mode, RcptQuery q, RcptCallback done);
  void settle(const std::string& txn, const std::vector<HeldUnits>& held, int64_t nowMs, bool count);

  store::RedisClient* client_;
  std::string prefix_;
  std::vector<Rule> rules_;
};

// Parses the reply of the rcpt/charge script (exposed for tests).
Result<RcptOutcome> parseRcptReply(const store::RedisReply& reply, size_t charges, const std::string& senderDomain);

}  // namespace sluice::ratelimit
