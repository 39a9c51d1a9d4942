// bounce_cmd.h - `sluicectl bounce classify FILE|DIR|MBOX [--json] [--rules FILE]`.
#pragma once

#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "config/config.h"

namespace sluice::ctl {

// args are the words after "bounce". Needs no configuration file.
int runBounceCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
// `sluicectl bounce receive --recipient ADDR < MESSAGE` (bounce_receive.cc): the intake the MTA pipes to.
int runBounceReceive(const std::vector<std::string>& args, const config::Config& cfg, std::istream& in,
                     std::ostream& out, std::ostream& err);

}  // namespace sluice::ctl
