// dispatch.h - sluicectl's command line as a whole: the global options, help, then the
// <topic>_cmd.cc handler of the command. main.cc only calls it; the unit tests call it too.
#pragma once

#include <istream>
#include <ostream>
#include <string>
#include <vector>

namespace sluice::ctl {

// The top-level usage (`sluicectl --help`).
extern const char* const kSluicectlUsage;

// args are argv[1...]. Returns the exit status: 0 success, 1 failure, 2 usage error, and for
// `bounce receive` 75 (EX_TEMPFAIL) for every failure that is not the report's own. `COMMAND
// --help` and `COMMAND SUBCOMMAND --help` print the command's usage and exit 0 without reading
// the configuration. No exception escapes.
int runSluicectl(const std::vector<std::string>& args, std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace sluice::ctl
