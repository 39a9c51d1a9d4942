// libmilter_glue.h - runs the filter's callbacks (milter_callbacks.h) on libmilter instead of the
// built-in engine (milter.engine: libmilter): each xxfi_* callback wraps its SMFICTX in a
// MilterCtx and calls the same MilterCallbacks entry. Kept for sites that want the reference
// implementation of the protocol; the built-in engine is the default (milter_server.h says why).
#pragma once

#include <string>

#include "base/result.h"

namespace sluice::milter {

// Registers with libmilter, opens the socket and serves until SIGTERM/SIGINT (libmilter's signal
// thread). installState() first.
Status runLibmilter(const std::string& listen);

}  // namespace sluice::milter
