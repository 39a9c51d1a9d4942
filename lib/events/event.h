// event.h - delivery events: one record per state change of a recipient (accepted, delivered,
// deferred, bounced, expired, suppressed) or per complaint, as sluice-relayd emits them to the
// JSON Lines log and to webhooks.
//
// An event id is 26 characters of Crockford base32: 48 bits of milliseconds then 82 random bits,
// so ids sort by time and never collide in practice; receivers de-duplicate on it (webhooks are
// delivered at least once). The JSON form is flat and stable: {"id","type","time" (RFC 3339 UTC,
// milliseconds),"queue_id","recipient","sender","message_id","identity", then "details": {...}}.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace sluice::events {

enum class EventType { kAccepted, kDelivered, kDeferred, kBounced, kExpired, kSuppressed, kComplained };

const char* toString(EventType t);
std::optional<EventType> parseEventType(std::string_view s);

struct Event {
  std::string id;
  EventType type = EventType::kAccepted;
  int64_t timeMs = 0;
  std::string queueId;
  std::string recipient;
  std::string sender;
  std::string messageId;
  std::string identity;    // the submitting SASL user or client identity
  nlohmann::json details = nlohmann::json::object();  // reply, mx, ip, tls, attempt, reason, ...
};

std::string newEventId(int64_t nowMs);
std::string formatRfc3339Ms(int64_t ms);
std::string toJson(const Event& e);
Result<Event> eventFromJson(std::string_view line);

// The header webhooks carry: "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>"
// (the timestamp inside the MAC stops replays of old deliveries).
std::string webhookSignature(std::string_view secret, int64_t unixSeconds, std::string_view body);

}  // namespace sluice::events
