// redis_keys.h - the layout of Sluice's keys in Redis (store.backend: redis), shared by every
// process that reads or writes them: sluice-policyd (asynchronously, lib/ratelimit/redis_backend)
// and sluicectl (synchronously, store_redis). P is store.redis.key_prefix ("sluice:").
//
//   P t:<rule>:<key>   HASH  window index ("0", "1", ...) -> GCRA theoretical arrival time, in
//                             microseconds since the epoch, as a decimal integer string.
//                             PEXPIREd when it would be empty again (plus a minute).
//   P r:<rule>:<key>   ZSET  transaction id -> expiry time of its reservation (ms since epoch).
//   P u:<rule>:<key>   HASH  transaction id -> units that transaction has reserved.
//                             Reserved units of a bucket = sum of u over members of r not expired.
//   P s:<address>      HASH  scope -> "reason\tsource\tcreated_ms\texpires_ms" (expires 0 = never).
//                             The global scope is the field "*"; a sending domain is its own field.
//   P sq               STRING  a counter bumped on every suppression change (for `status`).
// Addresses, scopes and sending domains are lower-case. A transaction id is "<host>|<instance>".
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sluice::store::redis_keys {

inline constexpr std::string_view kGlobalScopeField = "*";

inline std::string tat(std::string_view prefix, std::string_view rule, std::string_view key) {
  return std::string(prefix) + "t:" + std::string(rule) + ":" + std::string(key);
}
inline std::string reservations(std::string_view prefix, std::string_view rule, std::string_view key) {
  return std::string(prefix) + "r:" + std::string(rule) + ":" + std::string(key);
}
inline std::string reservedUnits(std::string_view prefix, std::string_view rule, std::string_view key) {
  return std::string(prefix) + "u:" + std::string(rule) + ":" + std::string(key);
}
inline std::string suppression(std::string_view prefix, std::string_view address) {
  return std::string(prefix) + "s:" + std::string(address);
}
inline std::string suppressionSeq(std::string_view prefix) { return std::string(prefix) + "sq"; }

// "reason\tsource\tcreated_ms\texpires_ms"; tabs and control characters in reason/source are
// replaced by spaces when encoding.
std::string encodeSuppression(std::string_view reason, std::string_view source, int64_t createdMs, int64_t expiresMs);
// false when the value is not four tab-separated fields with numeric times.
bool decodeSuppression(std::string_view value, std::string* reason, std::string* source, int64_t* createdMs,
                       int64_t* expiresMs);

// A command's words as the pointer and length arrays hiredis's *Argv functions take; valid while
// the strings it was made from are.
struct ArgvArrays {
  explicit ArgvArrays(const std::vector<std::string>& argv) {
    ptrs.reserve(argv.size());
    lens.reserve(argv.size());
    for (const auto& a : argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
  }
  int count() const { return static_cast<int>(ptrs.size()); }
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
};

}  // namespace sluice::store::redis_keys
