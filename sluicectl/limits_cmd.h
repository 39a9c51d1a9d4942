// limits_cmd.h - `sluicectl limits show [KEY] [--json]` and `sluicectl limits reset KEY`: the
// running sluice-policyd's live counters, through its admin socket (STATE_DIR/policyd.sock).
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace sluice::ctl {

int runLimitsCommand(const std::vector<std::string>& args, const std::string& adminSocket, std::ostream& out,
                     std::ostream& err);
// `sluicectl status`: the daemon's counters as key: value lines (or --json).
int runStatusCommand(const std::vector<std::string>& args, const std::string& adminSocket, std::ostream& out,
                     std::ostream& err);

}  // namespace sluice::ctl
