// limit_backend.h - where the decision engine's RCPT-time state lives: rate-limit buckets with
// their reservations, and the suppression lookup. Two implementations:
//   MemoryLimitBackend (memory_backend.h): policyd's own memory (the RateLimiter) and its
//     in-memory copy of the SQLite suppression list; answers synchronously.
//   RedisLimitBackend (redis_backend.h): Redis, shared by several hosts; each call is one atomic
//     server-side script, answered asynchronously on policyd's event loop, with a timeout.
//
// The contract every backend keeps (what makes counts exact across hosts):
//   rcpt():   atomically, look the recipient up in the suppression list and, unless suppressed,
//             check every charge; if a `blocking` charge does not fit nothing is reserved,
//             otherwise every charge that fits is reserved under `txn` (with `ttlMs`, after which
//             the backend frees it by itself). Reports per charge whether it fit.
//   commit(): turns held reservations into counted units (the real unit count may differ).
//   release(): frees held reservations.
//   charge(): checks and counts at once, with no reservation (END-OF-MESSAGE without RCPT).
// Callbacks run on the caller's event loop, possibly before the call returns.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "store/store.h"

namespace sluice::ratelimit {

struct LimitCharge {
  uint32_t rule = 0;
  std::string key;
  uint64_t units = 0;
  bool blocking = false;  // enforce mode with a refusing action: a miss refuses the request
};

struct HeldUnits {
  uint32_t rule = 0;
  std::string key;
  uint64_t reserved = 0;  // what rcpt() reserved
  uint64_t units = 0;     // what commit() should count
};

struct RcptQuery {
  std::string txn;           // unique per transaction and host
  std::string recipient;     // "" = no suppression lookup
  std::string senderDomain;  // scope of per-domain suppression entries
  int64_t nowMs = 0;
  int64_t ttlMs = 0;
  std::vector<LimitCharge> charges;
};

struct RcptOutcome {
  std::optional<store::SuppressionEntry> suppressed;  // set: nothing was reserved
  std::vector<bool> fits;                             // per charge
  std::vector<double> retryUs;                        // per charge, when !fits
  bool reserved = false;                              // the fitting charges were reserved
};

using RcptCallback = std::function<void(Result<RcptOutcome>)>;

class LimitBackend {
 public:
  virtual ~LimitBackend() = default;
  virtual void rcpt(RcptQuery query, RcptCallback done) = 0;
  virtual void commit(const std::string& txn, std::vector<HeldUnits> held, int64_t nowMs) = 0;
  virtual void release(const std::string& txn, std::vector<HeldUnits> held) = 0;
  // Like rcpt() without a recipient, but counting at once instead of reserving.
  virtual void charge(RcptQuery query, RcptCallback done) = 0;
  // True when calls may complete later (the engine then answers Postfix asynchronously).
  virtual bool asynchronous() const = 0;
};

}  // namespace sluice::ratelimit
