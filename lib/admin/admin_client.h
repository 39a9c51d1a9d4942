// admin_client.h - the client of a daemon's admin socket (see admin_server.h), used by sluicectl
// and the tests. Blocking, one request per connection, with a timeout.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "base/result.h"

namespace sluice::admin {

// Sends `request` to the unix socket at `path` and returns the reply object. A reply with
// "ok": false is returned as is (the caller shows its "error"); transport failures are Errors
// that say which daemon socket could not be reached and why.
Result<nlohmann::json> adminCall(const std::string& path, const nlohmann::json& request, int timeoutMs = 5000);

}  // namespace sluice::admin
