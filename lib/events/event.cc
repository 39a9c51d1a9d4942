// event.cc - see event.h.
#include "events/event.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstdio>
#include <ctime>

namespace sluice::events {
namespace {

constexpr const char* kCrockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
constexpr std::pair<EventType, const char*> kNames[] = {
    {EventType::kAccepted, "accepted"},   {EventType::kDelivered, "delivered"},
    {EventType::kDeferred, "deferred"},   {EventType::kBounced, "bounced"},
    {EventType::kExpired, "expired"},     {EventType::kSuppressed, "suppressed"},
    {EventType::kComplained, "complained"}};

}  // namespace

const char* toString(EventType t) {
  for (const auto& [k, n] : kNames) {
    if (k == t) return n;
  }
  return "unknown";
}

std::optional<EventType> parseEventType(std::string_view s) {
  for (const auto& [k, n] : kNames) {
    if (s == n) return k;
  }
  return std::nullopt;
}

std::string newEventId(int64_t nowMs) {
  unsigned char rnd[11] = {};
  RAND_bytes(rnd, sizeof rnd);
  // 130 bits: 48 of time, 82 of randomness, 5 bits per character.
  std::string out(26, '0');
  uint64_t t = static_cast<uint64_t>(nowMs) & ((1ULL << 48) - 1);
  for (int i = 9; i >= 0; --i) {  // 10 chars = 50 bits, the top 2 always zero
    out[static_cast<size_t>(i)] = kCrockford[t & 31];
    t >>= 5;
  }
  uint64_t acc = 0;
  int bits = 0;
  size_t pos = 10, byte = 0;
  while (pos < 26) {
    if (bits < 5) {
      acc = (acc << 8) | (byte < sizeof rnd ? rnd[byte++] : 0);
      bits += 8;
    }
    out[pos++] = kCrockford[(acc >> (bits - 5)) & 31];
    bits -= 5;
  }
  return out;
}

std::string formatRfc3339Ms(int64_t ms) {
  time_t secs = static_cast<time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(((ms % 1000) + 1000) % 1000));
  return std::string(buf, n) + frac;
}

std::string toJson(const Event& e) {
  nlohmann::ordered_json j;
  j["id"] = e.id;
  j["type"] = toString(e.type);
  j["time"] = formatRfc3339Ms(e.timeMs);
  j["time_ms"] = e.timeMs;
  j["queue_id"] = e.queueId;
  j["recipient"] = e.recipient;
  j["sender"] = e.sender;
  j["message_id"] = e.messageId;
  j["identity"] = e.identity;
  j["details"] = e.details;
  // Invalid UTF-8 (a raw 8-bit reply text) is replaced, never an exception.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

Result<Event> eventFromJson(std::string_view line) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return makeError("not a JSON object");
  Event e;
  try {
    e.id = j.value("id", "");
    auto t = parseEventType(j.value("type", ""));
    if (!t || e.id.empty()) return makeError("no id or unknown type");
    e.type = *t;
    e.timeMs = j.value("time_ms", int64_t{0});
    e.queueId = j.value("queue_id", "");
    e.recipient = j.value("recipient", "");
    e.sender = j.value("sender", "");
    e.messageId = j.value("message_id", "");
    e.identity = j.value("identity", "");
    if (j.contains("details")) e.details = j["details"];
  } catch (const nlohmann::json::exception& ex) {
    return makeError(std::string("bad event: ") + ex.what());
  }
  return e;
}

std::string webhookSignature(std::string_view secret, int64_t unixSeconds, std::string_view body) {
  std::string data = std::to_string(unixSeconds) + "." + std::string(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), mac, &len);
  static const char* hex = "0123456789abcdef";
  std::string out = "t=" + std::to_string(unixSeconds) + ",v1=";
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[mac[i] >> 4];
    out += hex[mac[i] & 15];
  }
  return out;
}

}  // namespace sluice::events
