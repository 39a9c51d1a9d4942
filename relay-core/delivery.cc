// delivery.cc - see delivery.h.
// GCC 12 miscompiles a class-type ?: inside a co_await expression: such values are built in
// locals before the co_await.
#include "delivery.h"
#include "delivery_util.h"
#include "identity/identity_map.h"

#include <pthread.h>
#include <openssl/ssl.h>

#include <asio/experimental/as_tuple.hpp>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <fstream>
#include <set>

#include "base/log.h"
#include "base/strings.h"
#include "dkim/message_headers.h"
#include "dkim/signer.h"
#include "dsn/dsn_writer.h"
#include "events/event.h"
#include "events/webhook_config.h"
#include "events/webhook_sender.h"
#include "smtp/smtp_parse.h"

namespace sluice::relayd {
using namespace delivery_util;  // NOLINT(google-build-using-namespace): internal helpers


Delivery::Delivery(std::shared_ptr<const config::Config> cfg, std::shared_ptr<const dkim::Signing> signing)
    : cfg_(std::move(cfg)), signing_(std::move(signing)) {}

Delivery::~Delivery() { stop(); }

Status Delivery::start() {
  queue::QueueOptions qo;
  qo.stateDir = cfg_->stateDir;
  qo.recover = false;  // the intake's committer recovers the spool (once per start)
  auto q = Queue::open(qo);
  if (!q) return q.error();
  queue_ = std::move(q.value());
  auto reset = queue_->resetDelivering();
  if (!reset) return reset.error();
  if (*reset > 0) logInfo("delivery: " + std::to_string(*reset) + " recipient(s) interrupted by a stop are due again");

  dns::ResolverOptions ro;
  ro.servers = cfg_->dns.servers;
  ro.timeoutMs = static_cast<int>(cfg_->dns.timeoutMs);
  resolver_ = std::make_unique<dns::MxResolver>(io_, ro);
  if (auto st = resolver_->init(); !st) return makeError("dns.servers: " + st.message());

  suppression_ = std::make_unique<SuppressionCheck>(*cfg_);
  if (auto st = suppression_->open(); !st) {
    // SQLite is local: a list that cannot be opened is a broken installation. Redis may come
    // back: delivery goes on and the list is reopened later (suppression_check.h).
    if (!cfg_->store.useRedis()) return st;
    logWarning("delivery: " + st.message() + "; delivering without the suppression check until it can be reopened");
  }
  if (auto* list = suppression_->store()) {
    auto n = redriveSuppressions(*queue_, *list);
    if (!n) return makeError("suppression list: " + n.message());
    if (*n > 0) logInfo("delivery: " + std::to_string(*n) + " hard bounce(s) recorded before a stop added to the suppression list");
  }
  logInfo("delivery: suppression list in " + std::string(cfg_->store.useRedis() ? "redis " + cfg_->store.redis.address : "sqlite") +
          ": checked at queue time and again at delivery");
  if (auto st = events::EventOutbox::createSchema(queue_->db()); !st) return st;
  auto hooks = std::make_shared<const std::vector<events::WebhookEndpoint>>(events::webhookEndpoints(cfg_->events));
  {
    std::lock_guard<std::mutex> l(webhooksMu_);
    webhooks_ = hooks;
  }
  // Started even without endpoints (it then waits): a reload may add some.
  webhookSender_ = std::make_unique<events::WebhookSender>(cfg_->stateDir + "/queue.db", *hooks,
                                                           webhookOptions(cfg_->events));
  if (auto st = webhookSender_->start(); !st) return makeError("webhooks: " + st.message());
  recorder_ = std::make_unique<OutcomeRecorder>(qo, *hooks);
  if (auto st = recorder_->start(); !st) return st;
  auto log = events::EventLog::open(cfg_->stateDir + "/events.jsonl");
  if (!log) return log.error();
  events_ = std::move(log.value());
  std::ifstream sf(cfg_->stateDir + "/server.secret");
  std::string secret;
  std::getline(sf, secret);
  if (secret.size() >= 16) verp_ = std::make_unique<verp::VerpCodec>(secret);

  auto tls = makeClientTls(cfg_->delivery);
  if (!tls) return tls.error();
  tls_ = std::make_shared<const ClientTls>(std::move(tls.value()));

  work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(io_.get_executor());
  asio::co_spawn(io_, schedulerLoop(), asio::detached);
  thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "sluice-deliver");  // as top -H and perf show it
    try {
      io_.run();
    } catch (const std::exception& e) {
      logError(std::string("delivery: ") + e.what());
    }
  });
  return okStatus();
}

void Delivery::stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  asio::post(io_, [this] { timer_.cancel(); });
  // Sessions in flight get up to 10 s to finish their transaction; what is left stays
  // 'delivering' in the index and is due again at the next start.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (stats_.activeSessions.load() > 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // What the sessions handed over is recorded; the recorder posts each job's follow-up (events,
  // DSNs) to io_ before the stop posted after them.
  if (recorder_) recorder_->stop();
  work_.reset();
  asio::post(io_, [this] { io_.stop(); });
  thread_.join();
  slow_.join();
  if (webhookSender_) webhookSender_->stop();
}

void Delivery::wakeWebhooks() {
  if (webhookSender_) webhookSender_->wake();
}

void Delivery::wake() {
  if (woken_.exchange(true)) return;
  asio::post(io_, [this] { timer_.cancel(); });
}

Result<Delivery::ClientTls> Delivery::makeClientTls(const config::DeliveryConfig& dc) {
  ClientTls t;
  t.noVerify = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  t.verify = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  for (auto* ctx : {t.noVerify.get(), t.verify.get()}) {
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  }
  asio::error_code ec;
  if (dc.tlsCaFile.empty()) t.verify->set_default_verify_paths(ec);
  else t.verify->load_verify_file(dc.tlsCaFile, ec);
  if (ec) return makeError("delivery.tls_ca_file " + dc.tlsCaFile + ": " + ec.message());
  return t;
}

events::WebhookOptions Delivery::webhookOptions(const config::EventsConfig& ec) {
  events::WebhookOptions wo;
  wo.timeoutMs = ec.webhookTimeoutMs;
  wo.initialBackoffMs = ec.webhookInitialBackoffMs;
  wo.maxBackoffMs = ec.webhookMaxBackoffMs;
  wo.maxAgeMs = ec.webhookMaxAgeMs;
  return wo;
}

std::shared_ptr<const std::vector<events::WebhookEndpoint>> Delivery::webhooks() const {
  std::lock_guard<std::mutex> l(webhooksMu_);
  return webhooks_;
}

void Delivery::reload(std::shared_ptr<const config::Config> cfg, std::shared_ptr<const dkim::Signing> signing,
                      ClientTls tls) {
  // The webhooks at once, for every thread: the recorder's outbox rows, the sender's URLs and
  // secrets, the intake's accepted events. Rows already in the outbox for an endpoint no longer
  // configured are retried until webhook_max_age, then given up (logged).
  auto hooks = std::make_shared<const std::vector<events::WebhookEndpoint>>(events::webhookEndpoints(cfg->events));
  {
    std::lock_guard<std::mutex> l(webhooksMu_);
    webhooks_ = hooks;
  }
  if (recorder_) recorder_->setWebhooks(*hooks);
  if (webhookSender_) webhookSender_->reconfigure(*hooks, webhookOptions(cfg->events));
  // The rest on the delivery thread; clients already connected keep their contexts (tlsOwner).
  auto t = std::make_shared<const ClientTls>(std::move(tls));
  asio::post(io_, [this, cfg = std::move(cfg), signing = std::move(signing), t = std::move(t)]() mutable {
    cfg_ = std::move(cfg);
    signing_ = std::move(signing);
    tls_ = std::move(t);
  });
}

// ---- scheduling ----

awaitable<void> Delivery::schedulerLoop() {
  while (!stopping_) {
    woken_ = false;
    housekeeping();
    bool full = false;
    if (cfg_->delivery.enabled && inFlight_ < kMaxInFlight) {
      size_t want = std::min(kClaimBatch, kMaxInFlight - inFlight_);
      // Claimed on the recorder's thread (a write transaction); agents go on meanwhile.
      auto claimWake = std::make_shared<asio::steady_timer>(io_, asio::steady_timer::time_point::max());
      auto claimed = std::make_shared<std::optional<Result<std::vector<Queue::Due>>>>();
      recorder_->claim(nowMs(), want, kMaxInFlightPerDomain, io_.get_executor(), [claimWake, claimed](Result<std::vector<Queue::Due>> r) {
        *claimed = std::move(r);
        claimWake->cancel();
      });
      if (!claimed->has_value()) (void)co_await claimWake->async_wait(kTuple);
      auto due = std::move(**claimed);
      if (!due) {
        logError("delivery: " + due.message());
      } else if (!due->empty()) {
        full = due->size() == want;
        enqueue(std::move(due.value()));
        startAgents();
      }
    }
    int64_t waitMs = 1000;
    if (full && inFlight_ < kMaxInFlight) {
      waitMs = 0;
    } else if (auto next = queue_->nextDueMs(); next && next.value()) {
      waitMs = std::clamp<int64_t>(*next.value() - nowMs(), 5, 1000);
    }
    if (waitMs > 0 && !woken_) {
      timer_.expires_after(std::chrono::milliseconds(waitMs));
      (void)co_await timer_.async_wait(kTuple);
    } else {
      co_await asio::post(io_, asio::use_awaitable);
    }
  }
}

// Queue sizes for the metrics once a minute, and finished messages' rows past
// delivery.retention removed every hour - on their own thread and index connection: at a million
// queued messages the counts take ~0.4 s, which must not stall the agents.
void Delivery::housekeeping() {
  int64_t now = nowMs();
  bool count = now - totalsAtMs_ >= 60000;
  bool purge = now - purgedAtMs_ >= 3600 * 1000;
  if ((!count && !purge) || housekeepingBusy_.exchange(true)) return;
  if (count) totalsAtMs_ = now;
  if (purge) purgedAtMs_ = now;
  int64_t retentionMs = cfg_->delivery.retentionMs;
  asio::post(slow_, [this, count, purge, now, retentionMs, stateDir = cfg_->stateDir] {
    if (!slowQueue_) {
      // The pool's thread was started by whoever built Delivery and carries that thread's name.
      ::pthread_setname_np(::pthread_self(), "sluice-house");  // as top -H and perf show it
      queue::QueueOptions qo;
      qo.stateDir = stateDir;
      qo.recover = false;
      auto q = Queue::open(qo);
      if (!q) {
        logWarning("delivery: housekeeping: " + q.message());
        housekeepingBusy_ = false;
        return;
      }
      slowQueue_ = std::move(q.value());
    }
    if (count) {
      if (auto t = slowQueue_->countsByState(); t) {
        std::lock_guard<std::mutex> l(totalsMu_);
        totals_ = std::move(t.value());
      }
    }
    if (purge) {
      auto n = slowQueue_->purgeFinished(now - retentionMs);
      if (!n) logWarning("delivery: purging finished messages: " + n.message());
      else if (*n > 0) logInfo("delivery: removed " + std::to_string(*n) + " finished message(s) past delivery.retention");
    }
    housekeepingBusy_ = false;
  });
}

void Delivery::enqueue(std::vector<Queue::Due> due) {
  std::map<std::pair<std::string, std::string>, Job> jobs;
  for (auto& d : due) {
    auto& job = jobs[{d.messageId, d.domain}];
    job.messageId = d.messageId;
    job.domain = d.domain;
    job.rcpts.push_back(std::move(d));
  }
  for (auto& [key, job] : jobs) {
    inFlight_ += job.rcpts.size();
    size_t& mine = domainInFlight_[job.domain];
    mine += job.rcpts.size();
    if (mine >= kMaxInFlightPerDomain) saturated_.insert(job.domain);
    Destination& dest = dests_[job.domain];
    dest.jobs.push_back(std::move(job));
    waiting_.push_back(key.second);
  }
  stats_.inFlight = static_cast<int64_t>(inFlight_);
}

void Delivery::startAgents() {
  std::deque<std::string> still;
  while (!waiting_.empty()) {
    std::string domain = std::move(waiting_.front());
    waiting_.pop_front();
    auto it = dests_.find(domain);
    if (it == dests_.end() || it->second.jobs.empty()) continue;
    Destination& d = it->second;
    // One more agent when the queue is longer than what the running ones will take soon.
    bool wanted = d.active == 0 || d.jobs.size() > static_cast<size_t>(d.active);
    if (!wanted) continue;
    if (agents_ >= cfg_->delivery.maxConcurrency || d.active >= cfg_->delivery.destinationConcurrency) {
      if (d.active == 0) still.push_back(domain);
      continue;
    }
    ++d.active;
    ++agents_;
    asio::co_spawn(io_, agent(domain), asio::detached);
    if (d.jobs.size() > static_cast<size_t>(d.active)) still.push_back(domain);
  }
  waiting_ = std::move(still);
}

TlsLevel Delivery::tlsLevelFor(const std::string& domain) const {
  const auto& dc = cfg_->delivery;
  for (const auto& [pattern, policy] : dc.tlsPolicyMap) {
    bool match = pattern == domain || (!pattern.empty() && pattern[0] == '.' && domain.size() > pattern.size() &&
                                       domain.compare(domain.size() - pattern.size(), pattern.size(), pattern) == 0);
    if (match) return parseTlsLevel(policy).value_or(TlsLevel::kMay);
  }
  return parseTlsLevel(dc.tlsPolicy).value_or(TlsLevel::kMay);
}

awaitable<std::shared_ptr<SmtpClient>> Delivery::connect(const std::string& domain, const dns::MxHost& host,
                                                         const IpAddr& addr, SmtpReply* reply) {
  const auto& dc = cfg_->delivery;
  ClientOptions o;
  o.heloName = dc.heloName;
  o.tls = tlsLevelFor(domain);
  o.tlsNoVerify = tls_->noVerify.get();
  o.tlsVerify = tls_->verify.get();
  o.tlsOwner = tls_;
  o.peerName = host.name;
  o.connectTimeoutMs = dc.connectTimeoutMs;
  o.greetingTimeoutMs = dc.greetingTimeoutMs;
  o.commandTimeoutMs = dc.commandTimeoutMs;
  o.dataTimeoutMs = dc.dataTimeoutMs;
  asio::ip::tcp::endpoint ep(asio::ip::make_address(addr.toString()), static_cast<unsigned short>(dc.smtpPort));
  for (int round = 0; round < 2; ++round) {
    auto client = std::make_shared<SmtpClient>(io_, o);
    ++stats_.connections;
    *reply = co_await client->open(ep);
    if (client->usable()) {
      if (client->tlsSummary() != "none") ++stats_.tlsSessions;
      co_return client;
    }
    if (client->tlsFailed()) ++stats_.tlsFailures;
    // "may": a failed handshake is retried once in the clear, as Postfix does.
    if (!(client->tlsFailed() && o.tls == TlsLevel::kMay)) break;
    logInfo("delivery: TLS with " + host.name + "[" + addr.toString() + "] failed (" + reply->text +
            "); trying again without TLS (tls_policy may)");
    o.tls = TlsLevel::kNone;
  }
  ++stats_.connectFailures;
  co_return nullptr;
}

awaitable<void> Delivery::agent(std::string domain) {
  ++stats_.activeSessions;
  Destination& d = dests_[domain];
  while (!d.jobs.empty() && !stopping_) {
    dns::MxResult mx = co_await resolveMx(*resolver_, domain);
    if (mx.status != dns::MxResult::Status::kOk) {
      ++stats_.dnsErrors;
      std::string why;
      if (mx.status == dns::MxResult::Status::kNullMx) {
        why = "556 5.1.10 Recipient address rejected: domain " + domain + " does not accept mail (null MX)";
      } else if (mx.permanent()) {
        why = "550 5.1.2 Host or domain name not found: " + domain + ": " + mx.error;
      } else {
        why = "451 4.4.3 Host or domain name lookup failed for " + domain + ": " + mx.error;
      }
      failJobs(d, why, mx.permanent(), Attempt{});
      break;
    }
    // Destinations roll up by MX set: one provider hosting many domains gets at most
    // destination_concurrency sessions in all, and a session also carries the other domains'
    // jobs (same MX set, same TLS policy) before it closes.
    std::string key;
    for (const auto& h : mx.hosts) key += h.name + ",";
    if (mxKeyOf_.size() > 100000) mxKeyOf_.clear();  // a cache: bounded
    mxKeyOf_[domain] = key;
    if (mxSessions_[key] >= cfg_->delivery.destinationConcurrency) {
      parked_[key].push_back(domain);  // an agent of that MX set takes these jobs, or restarts us
      break;
    }
    ++mxSessions_[key];
    bool progressed = false, connected = false;
    std::string lastError;
    Attempt lastWhere;
    std::vector<Queue::Outcome::Tried> tried;
    for (const auto& host : mx.hosts) {
      for (const auto& addr : host.addresses) {
        if (d.jobs.empty() || stopping_) break;
        SmtpReply r;
        auto client = co_await connect(domain, host, addr, &r);
        // Until a session exists, the policy that applied (and that none was set up).
        std::string policy = "policy=" + std::string(toString(tlsLevelFor(domain)));
        Attempt where{host.name, addr.toString(), policy + " (no session)", tried, false};
        if (!client) {
          lastError = r.text.empty() ? "connection to " + host.name + " failed" : r.text;
          if (r.code != 0 && r.text.find(host.name) == std::string::npos) lastError = "host " + host.name + "[" + addr.toString() + "] said: " + r.text;
          lastWhere = where;
          if (tried.size() < 10) tried.push_back({host.name, addr.toString(), lastError, policy});
          continue;
        }
        connected = true;
        where.tls = policy + " " + client->tlsSummary();
        int sent = 0;
        for (;;) {
          if (!client->usable() || sent >= cfg_->delivery.messagesPerConnection || stopping_) break;
          if (d.jobs.empty() && !stealJob(domain, key, &d)) break;
          if (cfg_->delivery.destinationRate > 0) {
            // One schedule per MX host list: every agent and domain of that destination shares it.
            int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::steady_clock::now().time_since_epoch()).count();
            int64_t at = pacer_.reserve(key, cfg_->delivery.destinationRate, now);
            if (at > now) {
              asio::steady_timer t(io_, std::chrono::microseconds(at - now));
              (void)co_await t.async_wait(kTuple);
            }
            if (d.jobs.empty()) break;
          }
          Job job = std::move(d.jobs.front());
          d.jobs.pop_front();
          co_await deliverJob(*client, std::move(job), where);
          progressed = true;
          ++sent;
        }
        co_await client->quit();
      }
      if (d.jobs.empty() || stopping_) break;
    }
    if (--mxSessions_[key] <= 0) mxSessions_.erase(key);
    if (auto p = parked_.find(key); p != parked_.end()) {
      for (auto& dom : p->second) waiting_.push_back(std::move(dom));
      parked_.erase(p);
    }
    // Jobs that arrived after a working session had found the queue empty are not a failure:
    // the loop goes round again. Only when no host could be reached are they deferred.
    if (!progressed && !connected && !d.jobs.empty() && !stopping_) {
      if (lastError.empty()) lastError = "no MX host of " + domain + " has an address";
      failJobs(d, "451 4.4.1 " + lastError, false, lastWhere);
      break;
    }
  }
  --d.active;
  --agents_;
  --stats_.activeSessions;
  if (d.active == 0 && d.jobs.empty()) dests_.erase(domain);
  startAgents();
  wake();
}

// Moves the next job of another destination with the same MX set and TLS policy into *d.
bool Delivery::stealJob(const std::string& domain, const std::string& key, Destination* d) {
  TlsLevel mine = tlsLevelFor(domain);
  for (auto it = dests_.begin(); it != dests_.end(); ++it) {
    if (it->first == domain || it->second.jobs.empty()) continue;
    auto k = mxKeyOf_.find(it->first);
    if (k == mxKeyOf_.end() || k->second != key || tlsLevelFor(it->first) != mine) continue;
    d->jobs.push_back(std::move(it->second.jobs.front()));
    it->second.jobs.pop_front();
    if (it->second.jobs.empty() && it->second.active == 0) dests_.erase(it);
    return true;
  }
  return false;
}

void Delivery::failJobs(Destination& d, const std::string& reply, bool permanent, const Attempt& where) {
  SmtpReply r;
  r.code = std::atoi(reply.substr(0, 3).c_str());
  r.text = reply;
  if (!permanent && r.code >= 500) r.code = 451;
  while (!d.jobs.empty()) {
    Job job = std::move(d.jobs.front());
    d.jobs.pop_front();
    auto env = queue_->envelope(job.messageId);
    std::shared_ptr<const Queue::Envelope> e;
    if (env && env->has_value()) e = std::make_shared<const Queue::Envelope>(std::move(env->value()));
    std::vector<Queue::Outcome> out;
    for (const auto& rc : job.rcpts) out.push_back(outcomeFor(rc, e.get(), r, where));
    std::shared_ptr<const std::string> content;
    if (permanent && e) {
      if (auto c = queue_->content(job.messageId)) content = std::make_shared<const std::string>(std::move(c.value()));
    }
    finishJob(std::move(job), std::move(e), std::move(out), std::move(content));
  }
}

// ---- one job: one message to the recipients of one domain ----

awaitable<void> Delivery::deliverJob(SmtpClient& client, Job job, Attempt where) {
  auto envr = queue_->envelope(job.messageId);
  std::vector<Queue::Outcome> outcomes;
  if (!envr || !envr->has_value()) {
    // Deleted by sluicectl while queued, or the index failed: nothing to send.
    if (!envr) logError("delivery: " + job.messageId + ": " + envr.message());
    for (const auto& r : job.rcpts) {
      Queue::Outcome o = localOutcome(job.messageId, r.index, "deferred", "451 4.3.0 queue index error");
      o.nextAttemptMs = nowMs() + 60000;
      if (envr) o.state = "expired";
      outcomes.push_back(o);
    }
    finishJob(std::move(job), nullptr, std::move(outcomes), nullptr);
    co_return;
  }
  auto envp = std::make_shared<const Queue::Envelope>(std::move(envr->value()));
  const Queue::Envelope& env = *envp;
  std::string senderDomain = domainOf(env.sender);
  std::vector<const Queue::Due*> send;
  for (const auto& r : job.rcpts) {
    if (auto e = suppressed(r.address, senderDomain)) {
      outcomes.push_back(localOutcome(job.messageId, r.index, "suppressed", SuppressionCheck::replyFor(*e)));
    } else {
      send.push_back(&r);
    }
  }
  std::string content;
  if (!send.empty()) {
    auto c = queue_->content(job.messageId);
    if (!c) {
      logError("delivery: " + job.messageId + ": " + c.message());
      SmtpReply r{451, "451 4.3.0 cannot read the queued message: " + c.message()};
      for (const auto* rc : send) outcomes.push_back(outcomeFor(*rc, &env, r, Attempt{}));
      send.clear();
    } else {
      content = std::move(c.value());
    }
  }
  // What the peer cannot take is bounced rather than sent damaged (RFC 6152, 6531, 1870).
  std::string refuse;
  if (!send.empty()) {
    if (client.sizeLimit() > 0 && content.size() > client.sizeLimit()) {
      refuse = "552 5.3.4 message size " + std::to_string(content.size()) + " exceeds size limit " +
               std::to_string(client.sizeLimit()) + " of server " + where.mx;
    } else if (toUpper(env.body) == "8BITMIME" && !client.has("8BITMIME")) {
      refuse = "554 5.6.3 host " + where.mx + " does not support 8BITMIME and the message is 8-bit";
    } else if (env.smtputf8 && !client.has("SMTPUTF8")) {
      refuse = "553 5.6.7 host " + where.mx + " does not support SMTPUTF8, which the message requires";
    }
  }
  if (!refuse.empty()) {
    SmtpReply r{std::atoi(refuse.c_str()), refuse};
    for (const auto* rc : send) outcomes.push_back(outcomeFor(*rc, &env, r, where));
    send.clear();
  }
  bool verp = !returnPath(env, 0).empty() && returnPath(env, 0) != env.sender;
  size_t perTx = verp ? 1 : static_cast<size_t>(cfg_->delivery.recipientsPerTransaction);
  for (size_t i = 0; i < send.size(); i += perTx) {
    std::vector<const Queue::Due*> chunk(send.begin() + static_cast<long>(i),
                                         send.begin() + static_cast<long>(std::min(send.size(), i + perTx)));
    if (!client.usable()) {
      SmtpReply r{0, "lost connection with " + where.mx + " before the transaction"};
      for (const auto* rc : chunk) outcomes.push_back(outcomeFor(*rc, &env, r, where));
      continue;
    }
    Transaction t;
    t.mailFrom = returnPath(env, chunk.front()->index);
    t.content = &content;
    if (client.has("SIZE")) t.mailParams.push_back("SIZE=" + std::to_string(content.size()));
    if (toUpper(env.body) == "8BITMIME") t.mailParams.push_back("BODY=8BITMIME");
    if (env.smtputf8) t.mailParams.push_back("SMTPUTF8");
    bool dsn = client.has("DSN");
    where.peerDsn = dsn;
    if (dsn && !env.ret.empty()) t.mailParams.push_back("RET=" + env.ret);
    if (dsn && !env.envid.empty()) t.mailParams.push_back("ENVID=" + smtp::encodeXtext(env.envid));
    for (const auto* rc : chunk) {
      Transaction::Rcpt tr;
      tr.address = rc->address;
      const auto* er = dsn ? env.rcpt(rc->index) : nullptr;
      if (er != nullptr && !er->notify.empty()) tr.params.push_back("NOTIFY=" + er->notify);
      if (er != nullptr && !er->orcpt.empty()) {
        size_t semi = er->orcpt.find(';');
        std::string type = semi == std::string::npos ? "rfc822" : er->orcpt.substr(0, semi);
        std::string addr = semi == std::string::npos ? er->orcpt : er->orcpt.substr(semi + 1);
        tr.params.push_back("ORCPT=" + type + ";" + smtp::encodeXtext(addr));
      }
      t.rcpts.push_back(std::move(tr));
    }
    TransactionResult res = co_await client.send(t);
    for (size_t k = 0; k < chunk.size(); ++k) {
      SmtpReply r;
      bool atRcpt = false;
      if (!res.mail.ok()) r = res.mail;
      else if (!res.rcpts[k].ok()) r = res.rcpts[k], atRcpt = true;
      else r = res.data;
      if (r.code == 0 && r.text.empty()) r.text = "lost connection with " + where.mx;
      outcomes.push_back(outcomeFor(*chunk[k], &env, r, where, atRcpt));
    }
  }
  std::shared_ptr<const std::string> held;
  if (!content.empty()) held = std::make_shared<const std::string>(std::move(content));
  // The agent sends its next transaction only once this one's outcome is committed: at any moment
  // at most one transaction per agent has been accepted by a peer and not yet recorded (what a
  // crash can make us repeat), while the recorder still groups the commits of all agents.
  auto recordedWake = std::make_shared<asio::steady_timer>(io_, asio::steady_timer::time_point::max());
  auto isRecorded = std::make_shared<bool>(false);
  finishJob(std::move(job), std::move(envp), std::move(outcomes), std::move(held), where.peerDsn,
            [recordedWake, isRecorded] {
              *isRecorded = true;
              recordedWake->cancel();
            });
  if (!*isRecorded) (void)co_await recordedWake->async_wait(kTuple);
}

Queue::Outcome Delivery::outcomeFor(const Queue::Due& r, const Queue::Envelope* env, const SmtpReply& reply,
                                    const Attempt& where, bool atRcpt) {
  Queue::Outcome o;
  o.messageId = r.messageId;
  o.index = r.index;
  o.reply = reply.text.empty() ? std::to_string(reply.code) : reply.text;
  o.mx = where.mx;
  o.ip = where.ip;
  o.tls = where.tls;
  o.tried = where.tried;
  o.attempted = true;
  int64_t now = nowMs();
  if (reply.ok()) {
    o.state = "delivered";
  } else if (reply.permanent()) {
    o.state = "bounced";
    o.recipientRefused = recipientRefused(reply, atRcpt);
  } else if (env != nullptr && now - env->receivedMs >= cfg_->delivery.queueLifetimeMs) {
    o.state = "expired";
  } else {
    o.state = "deferred";
    o.nextAttemptMs = now + backoffMs(cfg_->delivery, r.attempts, greylisted(reply), rng_);
  }
  return o;
}

std::string Delivery::returnPath(const Queue::Envelope& env, int index) const {
  if (env.sender.empty() || !verp_) return env.sender;
  std::string senderDomain = domainOf(env.sender);
  std::string bounceDomain = cfg_->delivery.bounceDomain;
  for (const auto& [sd, bd] : cfg_->delivery.bounceDomains) {
    if (sd == senderDomain) bounceDomain = bd;
  }
  if (bounceDomain.empty()) return env.sender;
  return verp_->encode(localPart(env.sender), env.id, static_cast<uint32_t>(index), bounceDomain);
}

std::optional<store::SuppressionEntry> Delivery::suppressed(const std::string& rcpt, const std::string& senderDomain) {
  return suppression_ ? suppression_->find(rcpt, senderDomain) : std::nullopt;
}

}  // namespace sluice::relayd
