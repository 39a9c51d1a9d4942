// webhook_config.h - the webhook endpoints of the config's `events` section as the outbox wants
// them. Every process that enqueues events (sluice-relayd for its deliveries, `sluicectl bounce
// receive` for asynchronous bounces and complaints) builds its endpoints here, so both write the
// same (event, url) rows and relayd's webhook sender, which posts every row of the outbox,
// recognises the url of each.
#pragma once

#include <vector>

#include "config/config.h"
#include "events/outbox.h"

namespace sluice::events {

// Unknown type names are skipped (config validation has refused them already).
std::vector<WebhookEndpoint> webhookEndpoints(const config::EventsConfig& cfg);

}  // namespace sluice::events
