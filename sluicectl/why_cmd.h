// why_cmd.h - `sluicectl why ID` (every recipient's history: state, attempts with the MX host,
// address, TLS outcome and reply, next attempt, bounces and complaints received later) and
// `sluicectl events tail [-n N] [--json] [--follow]` (the delivery events of
// STATE_DIR/events.jsonl). Both read relayd's files only.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "config/config.h"

namespace sluice::ctl {

int runWhyCommand(const std::vector<std::string>& args, const config::Config& cfg, std::ostream& out, std::ostream& err);
int runEventsCommand(const std::vector<std::string>& args, const config::Config& cfg, std::ostream& out,
                     std::ostream& err);

}  // namespace sluice::ctl
