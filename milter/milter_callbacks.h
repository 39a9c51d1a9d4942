// milter_callbacks.h - the filter of sluice-milter, as a MilterCallbacks table that either engine
// runs: the built-in protocol engine (lib/milter/milter_protocol.h, milter_server.h; the default)
// or libmilter (libmilter_glue.h, milter.engine: libmilter). Only the events needed are
// negotiated: CONNECT (client address, for
// dkim.trusted_networks), MAIL FROM (with the {auth_authen} macro, asked for with a symbol list),
// headers, end of headers, body, end of message; HELO and RCPT only when milter.policy_service is
// set (Sendmail: envelope checks asked of sluice-policyd). Header fields, end of headers and body
// chunks are negotiated without a reply (SMFIP_NR_HDR/EOH/BODY; both engines fake them for an MTA
// that lacks them), and MAIL FROM too when it can only continue (NR_MAIL: policyd, the identity
// header or dkim.sign_unauthenticated on), so the MTA streams the message content without a round trip per step; what
// those steps decide (refusals at end of headers, failures) is answered at end of message - the
// same to the SMTP client, as Postfix and Sendmail run them after the whole message is in.
// Actions: add headers, change headers (every client copy of relayd.identity_header is deleted at
// end of message and one naming the SASL login added - identity_header.h; an MTA that cannot
// delete headers is refused while the header is configured), and quarantine for policyd's HOLD. With the identity header on,
// every message is followed to its end (never accept early). The queue id ({i}, asked for
// at MAIL, RCPT, end of headers and end of message) starts every log line about a message once
// the MTA has one (Sendmail: from MAIL FROM on; Postfix: once its queue file exists).
// Invariants: no exception leaves a callback - each has one catch-all that logs and answers
// tempfail (a no-reply step keeps the tempfail for the next step that replies), so a bug
// never lets a message through unsigned (Postfix then tempfails too).
// The configuration is one immutable MilterState; a reload (SIGHUP) installs a new one, which each
// connection picks up at its next MAIL FROM, never in the middle of a message.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "base/result.h"
#include "config/config.h"
#include "identity/identity_map.h"
#include "milter/milter_protocol.h"
#include "policy_client/policy_client.h"
#include "signing.h"

namespace sluice::milter {

// One generation of the configuration and everything built from it.
struct MilterState {
  std::shared_ptr<const config::Config> config;
  std::unique_ptr<Signing> signing;
  std::unique_ptr<IdentityMap> identities;
  std::shared_ptr<PolicyClient> policy;  // null when milter.policy_service is empty
};

// Loads keys and builds the state from a checked config. `previous` (may be null) lends its
// policyd connection pool when the policy settings did not change.
Result<std::shared_ptr<const MilterState>> buildState(std::shared_ptr<const config::Config> cfg,
                                                      const MilterState* previous);
void installState(std::shared_ptr<const MilterState> state);
std::shared_ptr<const MilterState> currentState();

// Counters for the metrics endpoint (monotonic since start).
struct MilterStats {
  std::atomic<uint64_t> connections{0}, messages{0}, signedMessages{0}, signatures{0};
  std::atomic<uint64_t> rejectedOwnership{0}, rejectedMalformed{0}, tempfailed{0};
  std::atomic<uint64_t> policyQueries{0}, policyRefusals{0}, held{0}, reloads{0}, reloadFailures{0};
};
MilterStats& stats();
std::string renderMetrics();

// Creates the directory of a unix: socket if missing and removes a stale socket.
Status prepareSocket(const std::string& listen);
// The start-up line, once an engine listens: where, on which engine, keys, policyd.
void logListening(const std::string& listen, const char* engine);
// The filter's callbacks, for either engine. installState() before the first connection.
const MilterCallbacks& filterCallbacks();

}  // namespace sluice::milter
