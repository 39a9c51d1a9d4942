// delivery.h - sluice-relayd's delivery: the scheduler with its per-destination queues, and the
// delivery agents that resolve MX hosts and speak SMTP to them (smtp_client.h).
//
// Threading: everything here runs on one thread with its own io_context and its own Queue
// connection; the intake only calls wake() (new mail) and the admin side reload()/stop().
//
// Scheduling: the scheduler claims due recipients from the queue index (only due rows are read,
// through the (state, next_attempt) index: the cost per delivery does not grow with the queue)
// while fewer than kMaxInFlight are in memory, at most kMaxInFlightPerDomain of one recipient
// domain (the rest of its due rows wait parked in the index: Queue::claimDue), groups them by (message, recipient domain) into
// jobs and appends each job to its destination's queue. A destination (the recipient domain,
// rolled up with the others of the same MX host list) has at most
// delivery.destination_concurrency agents, sends at most delivery.destination_rate messages a
// second (destination_pacer.h), and all together have at most delivery.max_concurrency; an agent resolves the MX hosts, connects to them in order (random
// among equal preferences, every address of a host, the next host on a connection failure, a
// refused greeting or a TLS policy failure) and sends job after job over one connection
// (delivery.messages_per_connection), several recipients per transaction unless a VERP return
// path gives each recipient its own.
//
// Outcomes (recorded by recorder.h in group commits, one batch per transaction): 2xx delivered;
// 5xx bounced (a DSN to the sender, the recipient suppressed when delivery.suppress_hard_bounces); 4xx, timeouts and connection
// failures deferred with exponential back-off and jitter (greylisting replies retried after
// delivery.greylist_retry first), expired past delivery.queue_lifetime (a DSN). A null MX and
// NXDOMAIN bounce at once; SERVFAIL and DNS timeouts defer. Recipients on the suppression list
// (SQLite or Redis, suppression_check.h) are dropped with an event - at queue time by the intake,
// and again here if the list changed since. Every state change is a JSON line in STATE_DIR/events.jsonl and a Postfix-style
// log line ("ID: to=<...>, relay=..., delay=..., tries=..., dsn=..., status=sent (...)").
//
// DSNs and hard-bounce suppressions are decided before the outcomes are recorded and made durable
// in the same queue transaction (Queue::record's follow-ups): a kill -9 leaves either the outcome
// with its DSN (and its "accepted" event in the webhook outbox) or neither - never one DSN lost
// or two. The suppression list is another database: the entry waits in the queue index until it
// is added there, and what a crash left waiting is added at the next start.
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <atomic>
#include <deque>
#include <map>
#include <optional>
#include <mutex>
#include <random>
#include <set>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "config/config.h"
#include "destination_pacer.h"
#include "dkim/signing.h"
#include "dns/mx_resolver.h"
#include "events/outbox.h"
#include "events/webhook_sender.h"
#include "queue/queue.h"
#include "recorder.h"
#include "smtp_client.h"
#include "store/store_sqlite.h"
#include "suppression_check.h"
#include "verp/verp.h"

namespace sluice::relayd {

struct DeliveryStats {
  std::atomic<uint64_t> delivered{0}, deferred{0}, bounced{0}, expired{0}, suppressed{0}, dsns{0};
  std::atomic<uint64_t> connections{0}, connectFailures{0}, tlsSessions{0}, tlsFailures{0}, dnsErrors{0};
  std::atomic<int64_t> activeSessions{0}, inFlight{0};
  // Delivery latency (queued -> delivered), seconds: le 1, 5, 30, 60, 300, 1800, 3600, 21600, +Inf.
  static constexpr double kBuckets[] = {1, 5, 30, 60, 300, 1800, 3600, 21600};
  std::atomic<uint64_t> latency[9] = {};
  std::atomic<uint64_t> latencyCount{0};
  std::atomic<int64_t> latencySumMs{0};
};

class Delivery {
 public:
  static constexpr size_t kMaxInFlight = 5000;  // recipients claimed and not yet finished
  // ... of one recipient domain (Queue::claimDue's perDomainCap): a slow destination with a large
  // backlog holds at most a tenth of the slots, the other domains' due mail is claimed meanwhile.
  static constexpr size_t kMaxInFlightPerDomain = kMaxInFlight / 10;
  static constexpr size_t kClaimBatch = 500;

  Delivery(std::shared_ptr<const config::Config> cfg, std::shared_ptr<const dkim::Signing> signing);
  ~Delivery();
  Delivery(const Delivery&) = delete;
  Delivery& operator=(const Delivery&) = delete;

  Status start();
  void stop();  // stops claiming, lets sessions in flight end (bounded), joins
  void wake();  // new mail is queued (any thread)
  void wakeWebhooks();  // events were put into the outbox (any thread)
  // The webhook endpoints now configured (any thread; replaced by reload()).
  std::shared_ptr<const std::vector<events::WebhookEndpoint>> webhooks() const;
  // The outbound TLS contexts: without verification (may, encrypt) and verifying against
  // delivery.tls_ca_file or the system store (verify).
  struct ClientTls {
    std::shared_ptr<asio::ssl::context> noVerify, verify;
  };
  // Fails (naming delivery.tls_ca_file) when the CA file cannot be loaded: the caller refuses the
  // configuration (at start, or a reload).
  static Result<ClientTls> makeClientTls(const config::DeliveryConfig& dc);
  static events::WebhookOptions webhookOptions(const config::EventsConfig& ec);
  // SIGHUP: the new configuration, signing keys, outbound TLS contexts (from makeClientTls) and
  // webhook endpoints/secrets/timeouts. Sessions in flight finish with what they started with.
  void reload(std::shared_ptr<const config::Config> cfg, std::shared_ptr<const dkim::Signing> signing, ClientTls tls);
  DeliveryStats& stats() { return stats_; }
  // Adds to the suppression list the hard bounces recorded in the queue index but not yet added
  // there (a crash came between the two; Queue::PendingSuppression) and forgets them in the index.
  // Run at start; the number re-driven.
  static Result<size_t> redriveSuppressions(queue::Queue& queue, store::SuppressionStore& suppression);
  std::string renderMetrics() const;

 private:
  struct Job {
    std::string messageId;
    std::string domain;
    std::vector<queue::Queue::Due> rcpts;
  };
  struct Destination {
    std::deque<Job> jobs;
    int active = 0;
  };
  struct Attempt {  // where a job's transaction went
    std::string mx, ip, tls;
    std::vector<queue::Queue::Outcome::Tried> tried;  // hosts that failed before it
    bool peerDsn = false;  // the peer took the DSN parameters (it reports success itself)
  };

  asio::awaitable<void> schedulerLoop();
  void housekeeping();
  void enqueue(std::vector<queue::Queue::Due> due);
  void startAgents();
  asio::awaitable<void> agent(std::string domain);
  asio::awaitable<std::shared_ptr<SmtpClient>> connect(const std::string& domain, const dns::MxHost& host,
                                                       const IpAddr& addr, SmtpReply* reply);
  asio::awaitable<void> deliverJob(SmtpClient& client, Job job, Attempt where);
  bool stealJob(const std::string& domain, const std::string& key, Destination* d);
  void failJobs(Destination& d, const std::string& reply, bool permanent, const Attempt& where);
  void finishJob(Job job, std::shared_ptr<const queue::Queue::Envelope> env,
                 std::vector<queue::Queue::Outcome> outcomes, std::shared_ptr<const std::string> content,
                 bool peerDsn = false, std::function<void()> after = nullptr);
  void recorded(const Job& job, const std::vector<queue::Queue::Outcome>& outcomes,
                const std::vector<std::optional<events::Event>>& evs, const Followups* followups,
                const std::vector<events::Event>& dsnEvents, const Status& st);
  std::shared_ptr<Followups> planFollowups(const Job& job, const queue::Queue::Envelope* env,
                                           const std::vector<queue::Queue::Outcome>& outcomes,
                                           const std::string* content, bool peerDsn);
  queue::Queue::Outcome outcomeFor(const queue::Queue::Due& r, const queue::Queue::Envelope* env,
                                   const SmtpReply& reply, const Attempt& where, bool atRcpt = false);
  TlsLevel tlsLevelFor(const std::string& domain) const;
  std::string returnPath(const queue::Queue::Envelope& env, int index) const;
  queue::NewMessage makeDsn(const queue::Queue::Envelope& env, const std::vector<queue::Queue::Outcome>& failed,
                            const std::string* content);
  std::vector<events::Event> dsnAcceptedEvents(const queue::Queue::Envelope& env, const Followups& f) const;
  std::optional<queue::Queue::PendingSuppression> hardBounceSuppression(const queue::Queue::Envelope& env,
                                                                       const queue::Queue::Outcome& o) const;
  std::optional<store::SuppressionEntry> suppressed(const std::string& rcpt, const std::string& senderDomain);
  std::optional<events::Event> makeEvent(const queue::Queue::Envelope* env, const Job& job,
                                         const queue::Queue::Outcome& o);
  void publish(const events::Event& ev, const queue::Queue::Outcome& o);

  std::shared_ptr<const config::Config> cfg_;
  std::shared_ptr<const dkim::Signing> signing_;
  asio::io_context io_;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  asio::steady_timer timer_{io_};
  std::thread thread_;
  std::unique_ptr<queue::Queue> queue_;
  std::unique_ptr<OutcomeRecorder> recorder_;  // outcomes are committed there, in batches
  std::unique_ptr<dns::MxResolver> resolver_;
  std::unique_ptr<SuppressionCheck> suppression_;  // SQLite or Redis (store.backend)
  std::unique_ptr<events::EventLog> events_;
  mutable std::mutex webhooksMu_;
  std::shared_ptr<const std::vector<events::WebhookEndpoint>> webhooks_;  // under webhooksMu_
  std::unique_ptr<events::WebhookSender> webhookSender_;  // always there; idle without endpoints
  std::unique_ptr<verp::VerpCodec> verp_;
  std::shared_ptr<const ClientTls> tls_;
  std::map<std::string, Destination> dests_;
  std::deque<std::string> waiting_;  // destinations with jobs and no free agent slot
  std::map<std::string, std::string> mxKeyOf_;  // domain -> its MX host list (the last lookup)
  std::map<std::string, int> mxSessions_;       // MX host list -> agents connected to it
  std::map<std::string, std::vector<std::string>> parked_;  // MX list -> domains waiting for a slot
  DestinationPacer pacer_;                                  // delivery.destination_rate, per MX list
  int agents_ = 0;
  size_t inFlight_ = 0;
  // Claimed recipients per domain, and the domains that reached kMaxInFlightPerDomain (their
  // further due rows may be parked in the queue): when one is down to half, the scheduler claims
  // again at once rather than at its next tick.
  std::map<std::string, size_t> domainInFlight_;
  std::set<std::string> saturated_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> woken_{false};
  DeliveryStats stats_;
  mutable std::mutex totalsMu_;
  std::vector<std::pair<std::string, int64_t>> totals_;  // recipients by state, refreshed every minute
  int64_t totalsAtMs_ = 0, purgedAtMs_ = 0;
  std::unique_ptr<queue::Queue> slowQueue_;  // housekeeping's own index connection, used on slow_ only
  asio::thread_pool slow_{1};               // housekeeping: counts and purges (see housekeeping())
  std::atomic<bool> housekeepingBusy_{false};
  std::mt19937 rng_{std::random_device{}()};
};

}  // namespace sluice::relayd
