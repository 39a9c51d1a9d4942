// daemon_args.cc - see daemon_args.h.
#include "config/daemon_args.h"

#include <iostream>

#include "config/config.h"

namespace sluice::config {

DaemonArgs parseDaemonArgs(int argc, char** argv, const char* program, const char* usage) {
  DaemonArgs out;
  out.configPath = kDefaultConfigFile;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "-c" || a == "--config") && i + 1 < argc) {
      out.configPath = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      out.configPath = a.substr(9);
    } else if (a == "-f" || a == "--foreground") {
      continue;
    } else if (a == "-h" || a == "--help") {
      std::cout << usage;
      out.exitCode = 0;
      return out;
    } else if (a == "-V" || a == "--version") {
      std::cout << program << " " << SLUICE_VERSION << "\n";
      out.exitCode = 0;
      return out;
    } else {
      std::cerr << program << ": unknown argument \"" << a << "\"\n\n" << usage;
      out.exitCode = 2;
      return out;
    }
  }
  return out;
}

}  // namespace sluice::config
