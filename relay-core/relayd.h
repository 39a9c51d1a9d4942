// relayd.h - sluice-relayd's intake: the listeners (relay for the local MTA, 587 STARTTLS, 465
// implicit TLS), the SMTP sessions (session.cc), the group committer, AUTH against the user
// store, the per-address AUTH-failure throttle, connection limits, metrics, and reload/stop.
//
// Threading: one io_context on one thread runs every session; the group committer and the
// user-store lookups are the only other threads (AUTH is rare and quick; commits are batched).
// Reload (SIGHUP) replaces the configuration, the TLS context (new sessions use the new ones;
// each session keeps the shared_ptr copies it started with) and the identity map; stop (SIGTERM)
// closes the listeners, lets sessions finish for up to 10 s, then closes them, commits what is
// pending and exits. Sessions may outlive the Relayd on that forced path (see aliveToken()).
#pragma once

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ssl.hpp>
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "auth/user_store.h"
#include "base/net_addr.h"
#include "base/result.h"
#include "committer.h"
#include "config/config.h"
#include "delivery.h"
#include "suppression_check.h"
#include "dkim/signing.h"
#include "events/outbox.h"
#include "identity/identity_map.h"
#include "net/listener.h"
#include "net/metrics_server.h"
#include "policy_client/policy_client.h"

namespace sluice::relayd {

enum class ListenerKind { kRelay, kSubmission, kSmtps };
const char* toString(ListenerKind k);

struct Stats {
  std::atomic<uint64_t> connections{0}, rejectedConnections{0}, messages{0}, bytes{0}, recipients{0};
  std::atomic<uint64_t> rejectedRcpt{0}, rejectedData{0}, tempfailed{0}, authOk{0}, authFailed{0}, tlsHandshakes{0},
      tlsFailures{0}, smugglingRejected{0}, timeouts{0};
};

class Relayd {
 public:
  Relayd(asio::io_context& io, std::shared_ptr<const config::Config> cfg, std::string configPath);
  ~Relayd();
  // Opens the listeners (as root, for 465/587, before the privilege drop). Logs nothing: a start
  // refused later (a key, the state directory) stays one line.
  Status bind();
  // Everything else (state, TLS, users); bind() first if it was not called. Logs the listeners
  // once everything is ready.
  Status start();
  void reload();
  void stop();

  // For sessions. A session keeps cfgPtr() (taken at its start) and reads only that: cfg() is
  // replaced by reload() and must never be held across a co_await.
  const config::Config& cfg() const { return *cfg_; }
  std::shared_ptr<const config::Config> cfgPtr() const { return cfg_; }
  // Lives as long as this daemon; a session checks it before calling back (release()).
  std::weak_ptr<const void> aliveToken() const { return alive_; }
  std::shared_ptr<asio::ssl::context> tls() const { return tls_; }
  const IdentityMap& identities() const { return *identities_; }
  GroupCommitter& committer() { return *committer_; }
  std::shared_ptr<PolicyClient> policy() const { return policy_; }
  asio::thread_pool& policyPool() { return policyPool_; }
  std::shared_ptr<const dkim::Signing> signing() const { return signing_; }
  Stats& stats() { return stats_; }
  bool trusted(const std::optional<IpAddr>& a) const;
  // AUTH: the throttle first (false: refuse before checking), then the store.
  bool authAllowed(const std::string& client);
  bool authenticate(const std::string& client, const std::string& user, const std::string& secret);
  bool stopping() const { return stopping_; }
  int sessions() const { return active_; }
  // Connection accounting; false when a limit refuses the new session (and why in *reply).
  bool admit(const std::string& client, std::string* reply);
  void release(const std::string& client);
  std::string renderMetrics();

 private:
  void onCommitted(const queue::NewMessage& m, const std::string& id, const std::vector<std::string>& suppressed);
  asio::awaitable<void> acceptLoop(std::shared_ptr<net::Acceptor> acc, ListenerKind kind);
  Result<std::shared_ptr<asio::ssl::context>> makeTls(const config::RelaydConfig& c);

  asio::io_context& io_;
  std::shared_ptr<const config::Config> cfg_;
  std::string configPath_;
  std::shared_ptr<asio::ssl::context> tls_;
  std::unique_ptr<IdentityMap> identities_;
  std::shared_ptr<const dkim::Signing> signing_;
  std::unique_ptr<GroupCommitter> committer_;
  std::unique_ptr<events::EventLog> events_;
  std::unique_ptr<events::EventOutbox> outbox_;  // accepted events, on the committer's thread
  std::unique_ptr<Delivery> delivery_;
  std::shared_ptr<SuppressionCheck> intakeSuppression_;  // the committer's writer thread only
  std::unique_ptr<auth::UserStore> users_;
  std::shared_ptr<PolicyClient> policy_;
  asio::thread_pool policyPool_{8};  // blocking policyd questions, off the event loop
  std::vector<std::shared_ptr<net::Acceptor>> acceptors_;
  std::vector<ListenerKind> kinds_;
  std::vector<std::string> addresses_;  // of acceptors_, for the start line
  std::unique_ptr<net::MetricsServer> metrics_;
  std::map<std::string, int> perClient_;
  std::map<std::string, std::vector<int64_t>> authFailures_;
  int active_ = 0;
  bool stopping_ = false;
  std::shared_ptr<const void> alive_ = std::make_shared<int>(0);
  Stats stats_;
};

}  // namespace sluice::relayd
