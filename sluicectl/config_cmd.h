// config_cmd.h - `sluicectl config check [FILE]` and `sluicectl config params`.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace sluice::ctl {

// args are the words after "config". defaultFile is --config's value.
int runConfigCommand(const std::vector<std::string>& args, const std::string& defaultFile, std::ostream& out,
                     std::ostream& err);

}  // namespace sluice::ctl
