// redis_keys.cc - see redis_keys.h.
#include "store/redis_keys.h"

#include <cstdint>

#include "base/strings.h"

namespace sluice::store::redis_keys {

static void appendClean(std::string* out, std::string_view s) {
  for (char c : s) out->push_back(static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
}

std::string encodeSuppression(std::string_view reason, std::string_view source, int64_t createdMs, int64_t expiresMs) {
  std::string v;
  appendClean(&v, reason);
  v += '\t';
  appendClean(&v, source);
  v += '\t' + std::to_string(createdMs) + '\t' + std::to_string(expiresMs);
  return v;
}

bool decodeSuppression(std::string_view value, std::string* reason, std::string* source, int64_t* createdMs,
                       int64_t* expiresMs) {
  auto f = split(value, '\t');
  if (f.size() != 4) return false;
  auto c = parseUint(f[2]);
  auto e = parseUint(f[3]);
  if (!c || !e) return false;
  *reason = std::string(f[0]);
  *source = std::string(f[1]);
  *createdMs = static_cast<int64_t>(*c);
  *expiresMs = static_cast<int64_t>(*e);
  return true;
}

}  // namespace sluice::store::redis_keys
