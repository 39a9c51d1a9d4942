// signing.h - the milter's names for the shared DKIM signing set-up (lib/dkim/signing.h).
#pragma once

#include "dkim/signing.h"

namespace sluice::milter {

using dkim::domainPatternMatches;
using dkim::headerPolicyFromConfig;
using dkim::Signing;
using dkim::SigningPlan;
using dkim::specFromConfig;

}  // namespace sluice::milter
