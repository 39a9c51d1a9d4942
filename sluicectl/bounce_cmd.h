// bounce_cmd.h - `sluicectl bounce classify FILE|DIR|MBOX [--json] [--rules FILE]`.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace sluice::ctl {

// args are the words after "bounce". Needs no configuration file.
int runBounceCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace sluice::ctl
