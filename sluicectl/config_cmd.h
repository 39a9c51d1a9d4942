// config_cmd.h - `sluicectl config check [FILE]` and `sluicectl config params [--man]`.
// `params --man` writes the KEYS section of sluice.yaml(5) from the params table (the build runs
// it to make the man page); a key without documentation makes it fail, and so the build.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace sluice::ctl {

// args are the words after "config". defaultFile is --config's value.
int runConfigCommand(const std::vector<std::string>& args, const std::string& defaultFile, std::ostream& out,
                     std::ostream& err);

// The roff body of sluice.yaml(5)'s KEYS section: one .SS per top-level section, one .TP per
// key (its full path, type, choices, default, documentation). Writes the reason to err and
// returns false when a key has no documentation.
bool writeParamsRoff(std::ostream& out, std::ostream& err);

}  // namespace sluice::ctl
