// limits_cmd.h - `sluicectl limits show [KEY] [--json]` and `sluicectl limits reset KEY`: the live
// rate-limit counters. With store.backend: sqlite they live in the running sluice-policyd, asked
// through its admin socket (STATE_DIR/policyd.sock); with store.backend: redis they live in
// Redis, shared by every policyd, and are read and deleted there (ratelimit/redis_limits_view.h).
// Both modes print the same table, or with --json the same JSON object per line:
// {"rule","window","key","limit","per_ms","burst","used","reserved","retry_after_ms"}.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "base/clock.h"
#include "config/config.h"

namespace sluice::ctl {

// Chooses the mode by cfg.store.backend. clock (nullptr: the system clock) is "now" in Redis mode.
int runLimitsCommand(const std::vector<std::string>& args, const config::Config& cfg, std::ostream& out,
                     std::ostream& err, const Clock* clock = nullptr);
// SQLite mode: asks the policyd listening on adminSocket.
int runLimitsCommand(const std::vector<std::string>& args, const std::string& adminSocket, std::ostream& out,
                     std::ostream& err);
// `sluicectl status`: the daemon's counters as key: value lines (or --json).
int runStatusCommand(const std::vector<std::string>& args, const std::string& adminSocket, std::ostream& out,
                     std::ostream& err);

}  // namespace sluice::ctl
