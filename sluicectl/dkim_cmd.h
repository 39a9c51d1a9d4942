// dkim_cmd.h - `sluicectl dkim keygen` (a new signing key and its DNS record) and
// `sluicectl dkim check` (the published record against the key, through real DNS).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "config/config.h"

namespace sluice::ctl {

// args are the words after "dkim". cfg may be null (no readable config): check then needs --key,
// and keygen run as root gives the key to `sluice` (run_as_user's default) if that user exists.
int runDkimCommand(const std::vector<std::string>& args, const config::Config* cfg, std::ostream& out,
                   std::ostream& err);

}  // namespace sluice::ctl
