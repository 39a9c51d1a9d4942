// webhook_config.cc - see webhook_config.h.
#include "events/webhook_config.h"

namespace sluice::events {

std::vector<WebhookEndpoint> webhookEndpoints(const config::EventsConfig& cfg) {
  std::vector<WebhookEndpoint> out;
  for (const auto& w : cfg.webhooks) {
    WebhookEndpoint e;
    e.url = w.url;
    e.secret = w.secret;
    for (const auto& t : w.types) {
      if (auto et = parseEventType(t)) e.types.push_back(*et);
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace sluice::events
