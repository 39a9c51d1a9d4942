// memory_backend.h - the LimitBackend of a single host (store.backend: sqlite): the counters are
// policyd's RateLimiter, the suppression list is its in-memory copy of the SQLite table. Every
// call completes synchronously, before it returns. Reservation TTLs are enforced by the decision
// engine (expireReservations), which owns the transactions in this mode.
#pragma once

#include "base/clock.h"
#include "ratelimit/limit_backend.h"
#include "ratelimit/rate_limiter.h"

namespace sluice {
class SuppressionList;
}

namespace sluice::ratelimit {

class MemoryLimitBackend final : public LimitBackend {
 public:
  // `suppression` may be null (no suppression lookups).
  MemoryLimitBackend(RateLimiter* limiter, const SuppressionList* suppression)
      : limiter_(limiter), suppression_(suppression) {}

  void rcpt(RcptQuery query, RcptCallback done) override;
  void commit(const std::string& txn, std::vector<HeldUnits> held, int64_t nowMs) override;
  void release(const std::string& txn, std::vector<HeldUnits> held) override;
  void charge(RcptQuery query, RcptCallback done) override;
  bool asynchronous() const override { return false; }

 private:
  // Checks every charge; true when no blocking charge missed.
  bool check(const RcptQuery& q, RcptOutcome* out) const;

  RateLimiter* limiter_;
  const SuppressionList* suppression_;
};

}  // namespace sluice::ratelimit
