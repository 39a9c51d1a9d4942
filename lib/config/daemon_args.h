// daemon_args.h - the command line every Sluice daemon takes (DESIGN.md conventions):
//   -c/--config FILE (or --config=FILE), -f/--foreground (accepted; daemons never detach),
//   -h/--help, -V/--version. Help and version print to stdout; an unknown argument prints the
//   usage to stderr. Returns the config path, or the exit code when the program should stop.
#pragma once

#include <string>

namespace sluice::config {

struct DaemonArgs {
  std::string configPath;
  int exitCode = -1;  // >= 0: exit now with this code
};

DaemonArgs parseDaemonArgs(int argc, char** argv, const char* program, const char* usage);

}  // namespace sluice::config
