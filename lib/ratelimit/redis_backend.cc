// redis_backend.cc - see redis_backend.h. The two Lua scripts are the whole protocol.
#include "ratelimit/redis_backend.h"

#include <chrono>
#include <cmath>
#include <cstdio>

#include "base/log.h"
#include "store/redis_keys.h"

namespace sluice::ratelimit {
namespace {

// KEYS: per charge c: t, r, u (redis_keys.h); then the suppression hash when ARGV[8] == '1'.
// ARGV: mode ('R' reserve, 'C' count now), now_us, now_ms, ttl_ms, txn, n, sender_domain,
//       has_suppression, then per charge: units, blocking, nwin, nwin x (T_us, tolerance_us).
// Returns {1, entry, scope} when suppressed, else {0, admitted, n, fits x n, retry_us x n}.
const store::RedisScript kCheckScript(R"LUA(
local mode, now_us, now_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl, txn, n, sdom = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]), ARGV[7]
if ARGV[8] == '1' then
  local v = redis.call('HMGET', KEYS[3 * n + 1], '*', sdom)
  for i = 1, 2 do
    if v[i] then
      local exp = tonumber(string.match(v[i], '\t(%d+)$')) or 0
      if exp == 0 or exp > now_ms then return {1, v[i], i == 1 and '*' or sdom} end
    end
  end
end
local a, units, T, fits, retry, blocked = 9, {}, {}, {}, {}, false
for c = 1, n do
  local t, r, u = KEYS[3 * c - 2], KEYS[3 * c - 1], KEYS[3 * c]
  units[c] = tonumber(ARGV[a])
  local blocking, nwin = ARGV[a + 1] == '1', tonumber(ARGV[a + 2])
  a = a + 3
  local expired = redis.call('ZRANGEBYSCORE', r, '-inf', now_ms)
  if #expired > 0 then
    redis.call('ZREMRANGEBYSCORE', r, '-inf', now_ms)
    redis.call('HDEL', u, unpack(expired))
  end
  local reserved = 0
  for _, x in ipairs(redis.call('HVALS', u)) do reserved = reserved + tonumber(x) end
  fits[c], retry[c], T[c] = 1, 0, {}
  for w = 1, nwin do
    local Tw, tol = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
    a = a + 2
    T[c][w] = Tw
    if units[c] > 0 then
      local tat = tonumber(redis.call('HGET', t, tostring(w - 1))) or 0
      local over = math.max(tat, now_us) + (reserved + units[c]) * Tw - now_us - tol
      if over > 0.001 then
        fits[c] = 0
        retry[c] = math.max(retry[c], over)
      end
    end
  end
  if fits[c] == 0 and blocking then blocked = true end
end
if not blocked then
  for c = 1, n do
    if fits[c] == 1 and units[c] > 0 then
      local t, r, u = KEYS[3 * c - 2], KEYS[3 * c - 1], KEYS[3 * c]
      if mode == 'R' then
        redis.call('HINCRBY', u, txn, units[c])
        redis.call('ZADD', r, now_ms + ttl, txn)
        redis.call('PEXPIRE', u, ttl + 60000)
        redis.call('PEXPIRE', r, ttl + 60000)
      else
        local maxtat = now_us
        for w = 1, #T[c] do
          local tat = math.max(tonumber(redis.call('HGET', t, tostring(w - 1))) or 0, now_us) + units[c] * T[c][w]
          redis.call('HSET', t, tostring(w - 1), string.format('%.0f', tat))
          if tat > maxtat then maxtat = tat end
        end
        redis.call('PEXPIRE', t, math.ceil((maxtat - now_us) / 1000) + 60000)
      end
    end
  end
end
local out = {0, blocked and 0 or 1, n}
for c = 1, n do out[#out + 1] = fits[c] end
for c = 1, n do out[#out + 1] = math.floor(retry[c]) end
return out
)LUA");

// Gives back reserved units of a transaction and counts `units` (0 for a release).
// KEYS: per held c: t, r, u. ARGV: now_us, txn, n, then per held: reserved, units, nwin, nwin x T_us.
const store::RedisScript kSettleScript(R"LUA(
local now_us, txn, n, a = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), 4
for c = 1, n do
  local t, r, u = KEYS[3 * c - 2], KEYS[3 * c - 1], KEYS[3 * c]
  local reserved, units, nwin = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  a = a + 3
  if reserved > 0 then
    if redis.call('HINCRBY', u, txn, -reserved) <= 0 then
      redis.call('HDEL', u, txn)
      redis.call('ZREM', r, txn)
    end
  end
  local maxtat = now_us
  for w = 1, nwin do
    local Tw = tonumber(ARGV[a])
    a = a + 1
    if units > 0 then
      local tat = math.max(tonumber(redis.call('HGET', t, tostring(w - 1))) or 0, now_us) + units * Tw
      redis.call('HSET', t, tostring(w - 1), string.format('%.0f', tat))
      if tat > maxtat then maxtat = tat end
    end
  end
  if units > 0 then redis.call('PEXPIRE', t, math.ceil((maxtat - now_us) / 1000) + 60000) end
end
return n
)LUA");

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f", v);
  return buf;
}

}  // namespace

Result<RcptOutcome> parseRcptReply(const store::RedisReply& reply, size_t charges, const std::string& senderDomain) {
  using T = store::RedisReply::Type;
  if (reply.type == T::kError) return makeError("Redis script error: " + reply.str);
  if (reply.type != T::kArray || reply.elements.empty() || reply.elements[0].type != T::kInteger) {
    return makeError("unexpected reply from the Redis script");
  }
  RcptOutcome out;
  const auto& e = reply.elements;
  if (e[0].integer == 1) {
    if (e.size() != 3) return makeError("unexpected suppression reply from the Redis script");
    store::SuppressionEntry s;
    if (!store::redis_keys::decodeSuppression(e[1].str, &s.reason, &s.source, &s.createdMs, &s.expiresMs)) {
      return makeError("malformed suppression entry in Redis");
    }
    s.scope = e[2].str == store::redis_keys::kGlobalScopeField ? std::string() : senderDomain;
    out.suppressed = std::move(s);
    return out;
  }
  if (e.size() != 3 + 2 * charges || static_cast<size_t>(e[2].integer) != charges) {
    return makeError("unexpected reply size from the Redis script");
  }
  out.reserved = e[1].integer == 1;
  for (size_t c = 0; c < charges; ++c) {
    out.fits.push_back(e[3 + c].integer == 1);
    out.retryUs.push_back(static_cast<double>(e[3 + charges + c].integer));
  }
  return out;
}

RedisLimitBackend::RedisLimitBackend(store::RedisClient* client, std::string keyPrefix,
                                     const std::vector<config::RateRuleConfig>& rules)
    : client_(client), prefix_(std::move(keyPrefix)) {
  setRules(rules);
}

void RedisLimitBackend::setRules(const std::vector<config::RateRuleConfig>& rules) {
  rules_.clear();
  for (const auto& r : rules) {
    Rule rule;
    rule.name = r.name;
    for (const auto& w : r.windows) rule.windows.push_back(WindowSpec::make(w.limit, w.perMs, w.burst));
    rules_.push_back(std::move(rule));
  }
}

void RedisLimitBackend::rcpt(RcptQuery query, RcptCallback done) { run('R', std::move(query), std::move(done)); }

void RedisLimitBackend::charge(RcptQuery query, RcptCallback done) {
  query.recipient.clear();
  run('C', std::move(query), std::move(done));
}

void RedisLimitBackend::run(char mode, RcptQuery q, RcptCallback done) {
  namespace rk = store::redis_keys;
  std::vector<std::string> keys, args;
  keys.reserve(3 * q.charges.size() + 1);
  int64_t nowUs = q.nowMs * 1000;
  args = {std::string(1, mode), std::to_string(nowUs), std::to_string(q.nowMs), std::to_string(q.ttlMs), q.txn,
          std::to_string(q.charges.size()), q.senderDomain, q.recipient.empty() ? "0" : "1"};
  for (const auto& c : q.charges) {
    if (c.rule >= rules_.size()) return done(makeError("rule index out of range"));
    const Rule& r = rules_[c.rule];
    keys.push_back(rk::tat(prefix_, r.name, c.key));
    keys.push_back(rk::reservations(prefix_, r.name, c.key));
    keys.push_back(rk::reservedUnits(prefix_, r.name, c.key));
    args.push_back(std::to_string(c.units));
    args.push_back(c.blocking ? "1" : "0");
    args.push_back(std::to_string(r.windows.size()));
    for (const auto& w : r.windows) {
      args.push_back(num(w.emissionUs));
      args.push_back(num(w.toleranceUs));
    }
  }
  if (!q.recipient.empty()) keys.push_back(rk::suppression(prefix_, q.recipient));
  size_t n = q.charges.size();
  client_->eval(kCheckScript, std::move(keys), std::move(args),
                [n, domain = q.senderDomain, done = std::move(done)](Result<store::RedisReply> r) {
                  if (!r) return done(r.error());
                  done(parseRcptReply(r.value(), n, domain));
                });
}

void RedisLimitBackend::settle(const std::string& txn, const std::vector<HeldUnits>& held, int64_t nowMs, bool count) {
  namespace rk = store::redis_keys;
  std::vector<std::string> keys, args = {std::to_string(nowMs * 1000), txn, std::to_string(held.size())};
  for (const auto& h : held) {
    if (h.rule >= rules_.size()) continue;
    const Rule& r = rules_[h.rule];
    keys.push_back(rk::tat(prefix_, r.name, h.key));
    keys.push_back(rk::reservations(prefix_, r.name, h.key));
    keys.push_back(rk::reservedUnits(prefix_, r.name, h.key));
    args.push_back(std::to_string(h.reserved));
    args.push_back(count ? std::to_string(h.units) : "0");
    args.push_back(std::to_string(r.windows.size()));
    for (const auto& w : r.windows) args.push_back(num(w.emissionUs));
  }
  args[2] = std::to_string(keys.size() / 3);
  client_->eval(kSettleScript, std::move(keys), std::move(args), [txn](Result<store::RedisReply> r) {
    if (!r || r->type == store::RedisReply::Type::kError) {
      // The reservation expires in Redis by itself; a lost count is the cost of the outage.
      logDebug("Redis settle for " + txn + " failed: " + (r ? r->str : r.message()));
    }
  });
}

void RedisLimitBackend::commit(const std::string& txn, std::vector<HeldUnits> held, int64_t nowMs) {
  settle(txn, held, nowMs, true);
}

void RedisLimitBackend::release(const std::string& txn, std::vector<HeldUnits> held) {
  int64_t nowMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
  settle(txn, held, nowMs, false);
}

}  // namespace sluice::ratelimit
