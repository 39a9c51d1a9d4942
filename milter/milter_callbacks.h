// milter_callbacks.h - the libmilter glue of sluice-milter: registers the callbacks, opens the
// socket and runs smfi_main(). Only the events needed are negotiated: MAIL FROM (with the
// {auth_authen} macro, asked for with smfi_setsymlist), headers, end of headers, body, end of
// message; no CONNECT/HELO/RCPT/DATA/unknown events, and the only action is SMFIF_ADDHDRS.
// Invariant: no exception leaves a callback - each has one catch-all that logs and answers
// SMFIS_TEMPFAIL, so a bug never lets a message through unsigned (Postfix then tempfails too).
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "config/config.h"
#include "identity/identity_map.h"
#include "signing.h"

namespace sluice::milter {

// Everything the callbacks read; immutable while the milter runs.
struct MilterRuntime {
  std::shared_ptr<const config::Config> config;
  std::unique_ptr<Signing> signing;
  std::unique_ptr<IdentityMap> identities;
};

// Creates the directory of a unix: socket if missing and removes a stale socket.
Status prepareSocket(const std::string& listen);
// Registers with libmilter, opens the socket and serves until SIGTERM/SIGINT. `rt` must outlive it.
Status runMilter(const MilterRuntime& rt);

}  // namespace sluice::milter
