// ctl_run.h - runs sluicectl's command line in-process for the sluicectl unit tests
// (ctl::runSluicectl from dispatch.h): exit code, standard output and standard error.
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include "dispatch.h"

namespace sluice::testing {

struct CtlRun {
  int code = -1;
  std::string out, err;
};

inline CtlRun sluicectl(const std::vector<std::string>& args, const std::string& stdinText = "") {
  std::istringstream in(stdinText);
  std::ostringstream out, err;
  CtlRun r;
  r.code = ctl::runSluicectl(args, in, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

}  // namespace sluice::testing
