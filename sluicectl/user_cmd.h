// user_cmd.h - `sluicectl user add|list|disable|enable|remove|rotate` (sluice-relayd's AUTH users)
// and `sluicectl queue list|show|hold|release|delete|totals` (its queue).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "config/config.h"

namespace sluice::ctl {

int runUserCommand(const std::vector<std::string>& args, const config::Config& cfg, std::ostream& out, std::ostream& err);
int runQueueCommand(const std::vector<std::string>& args, const config::Config& cfg, std::ostream& out, std::ostream& err);

}  // namespace sluice::ctl
