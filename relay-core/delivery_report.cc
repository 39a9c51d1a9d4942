// delivery_report.cc - the outcome half of Delivery (see delivery.h): recording a job's
// outcomes in one queue transaction with their webhook outbox rows, the DSNs they call for
// (failed, delayed, relayed) and the suppression of hard bounces; then the events, the
// Postfix-style log lines, the suppression list, and the metrics text.
#include <algorithm>
#include <map>

#include "base/log.h"
#include "base/strings.h"
#include "delivery.h"
#include "delivery_util.h"
#include "dkim/message_headers.h"
#include "dkim/signer.h"
#include "dsn/dsn_writer.h"
#include "events/event.h"
#include "identity/identity_map.h"

namespace sluice::relayd {

using namespace delivery_util;  // NOLINT(google-build-using-namespace): internal helpers

// ---- after a job ----

void Delivery::finishJob(Job job, std::shared_ptr<const Queue::Envelope> env, std::vector<Queue::Outcome> outcomes,
                         std::shared_ptr<const std::string> content, bool peerDsn, std::function<void()> after) {
  // The events go into the webhook outbox in the same transaction as the new states, and so do
  // the DSNs and suppressions the outcomes call for, so none exists without the others. The
  // recorder commits in batches off this thread; what follows a commit (events, log lines,
  // suppression list) runs here when it is done.
  std::vector<std::optional<events::Event>> evs;
  for (const auto& o : outcomes) evs.push_back(makeEvent(env.get(), job, o));
  std::shared_ptr<Followups> follow = planFollowups(job, env.get(), outcomes, content.get(), peerDsn);
  std::vector<events::Event> dsnEvents;
  if (follow && env) dsnEvents = dsnAcceptedEvents(*env, *follow);
  std::vector<std::optional<events::Event>> outbox;
  if (!webhooks()->empty()) {
    outbox = evs;
    outbox.insert(outbox.end(), dsnEvents.begin(), dsnEvents.end());
  }
  recorder_->submit(outcomes, std::move(outbox), follow, io_.get_executor(),
                    [this, job = std::move(job), outcomes, evs = std::move(evs), follow, dsnEvents = std::move(dsnEvents),
                     after = std::move(after)](Status st) mutable {
                      recorded(job, outcomes, evs, follow.get(), dsnEvents, st);
                      if (after) after();
                    });
}

// The DSNs (failed, delayed, relayed) and suppressions that `outcomes` call for, before they are
// recorded; nullptr when there are none.
std::shared_ptr<Followups> Delivery::planFollowups(const Job& job, const Queue::Envelope* env,
                                                   const std::vector<Queue::Outcome>& outcomes,
                                                   const std::string* content, bool peerDsn) {
  if (env == nullptr) return nullptr;
  auto f = std::make_shared<Followups>();
  std::vector<Queue::Outcome> failed, delayed, relayed;
  for (const auto& o : outcomes) {
    const auto* er = env->rcpt(o.index);
    std::string notify = er ? er->notify : "";
    if ((o.state == "bounced" || o.state == "expired") && wantsFailureDsn(notify)) failed.push_back(o);
    if (o.state == "bounced" && o.attempted && o.recipientRefused && cfg_->delivery.suppressHardBounces) {
      if (auto ps = hardBounceSuppression(*env, o)) f->suppressions.push_back(std::move(*ps));
    }
    // RFC 3461 5.2.2.3: NOTIFY=SUCCESS to a peer without DSN - we report "relayed" ourselves.
    if (o.state == "delivered" && !peerDsn && toUpper(notify).find("SUCCESS") != std::string::npos) {
      relayed.push_back(o);
    }
    // One "delayed" DSN: at the first attempt made after delay_warning (this one, when none is
    // recorded yet since then).
    int64_t delayMs = cfg_->delivery.delayWarningMs;
    if (o.state == "deferred" && delayMs > 0 && wantsDelayDsn(notify) && nowMs() - env->receivedMs >= delayMs) {
      auto n = queue_->attemptsSince(job.messageId, o.index, env->receivedMs + delayMs);
      if (n && n.value() + (o.attempted ? 1 : 0) == 1) delayed.push_back(o);
    }
  }
  if (!env->sender.empty()) {
    for (const auto* list : {&failed, &delayed, &relayed}) {
      if (list->empty()) continue;
      f->messages.push_back(makeDsn(*env, *list, content));
      f->ids.push_back(Queue::newId());
    }
  }
  if (f->empty()) return nullptr;
  return f;
}

void Delivery::recorded(const Job& job, const std::vector<Queue::Outcome>& outcomes,
                        const std::vector<std::optional<events::Event>>& evs, const Followups* follow,
                        const std::vector<events::Event>& dsnEvents, const Status& st) {
  inFlight_ -= std::min(inFlight_, job.rcpts.size());
  stats_.inFlight = static_cast<int64_t>(inFlight_);
  if (auto it = domainInFlight_.find(job.domain); it != domainInFlight_.end()) {
    it->second -= std::min(it->second, job.rcpts.size());
    if (it->second <= kMaxInFlightPerDomain / 2 && saturated_.erase(job.domain) > 0) wake();
    if (it->second == 0) domainInFlight_.erase(it);
  }
  if (!st) {
    // The recipients stay 'delivering' and are due again at the next start: repeated, not lost
    // (and so are their DSNs, which were not queued either).
    logError("delivery: " + job.messageId + ": cannot record the outcome: " + st.message());
    return;
  }
  if (webhookSender_) webhookSender_->wake();
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const auto& o = outcomes[i];
    if (evs[i]) publish(*evs[i], o);
    if (o.state == "delivered") ++stats_.delivered;
    if (o.state == "deferred") ++stats_.deferred;
    if (o.state == "bounced") ++stats_.bounced;
    if (o.state == "expired") ++stats_.expired;
    if (o.state == "suppressed") ++stats_.suppressed;
  }
  if (follow == nullptr) return;
  for (const auto& ev : dsnEvents) {
    if (auto est = events_->append(ev); !est) logWarning("delivery: event log: " + est.message());
  }
  for (const auto& id : follow->ids) {
    ++stats_.dsns;
    logInfo(job.messageId + ": sender non-delivery notification: " + id);
  }
  if (!follow->ids.empty()) wake();
  if (!suppression_) return;
  std::vector<Queue::PendingSuppression> added;
  for (const auto& ps : follow->suppressions) {
    store::SuppressionEntry e{ps.address, ps.scope, ps.reason, ps.source, ps.createdMs, 0};
    if (auto sst = suppression_->add(e); !sst) {
      logWarning("delivery: suppression list: " + sst.message() + " (tried again at the next start)");
    } else {
      added.push_back(ps);
    }
  }
  recorder_->forget(std::move(added));
}

Result<size_t> Delivery::redriveSuppressions(Queue& queue, store::SuppressionStore& suppression) {
  size_t n = 0;
  for (;;) {
    auto pending = queue.pendingSuppressions(1000);
    if (!pending) return pending.error();
    if (pending->empty()) return n;
    for (const auto& ps : pending.value()) {
      store::SuppressionEntry e{ps.address, ps.scope, ps.reason, ps.source, ps.createdMs, 0};
      if (auto st = suppression.add(e); !st) return st.error();
    }
    if (auto st = queue.forgetSuppressions(pending.value()); !st) return st.error();
    n += pending->size();
  }
}

// One "accepted" event per recipient of each DSN, as the intake writes for the mail it queues.
std::vector<events::Event> Delivery::dsnAcceptedEvents(const Queue::Envelope& env, const Followups& f) const {
  std::vector<events::Event> out;
  for (size_t i = 0; i < f.messages.size(); ++i) {
    const auto& m = f.messages[i];
    for (const auto& r : m.recipients) {
      events::Event ev;
      ev.timeMs = nowMs();
      ev.id = events::newEventId(ev.timeMs);
      ev.type = events::EventType::kAccepted;
      ev.queueId = f.ids[i];
      ev.recipient = r.address;
      ev.sender = m.sender;
      ev.messageId = m.messageId;
      ev.identity = m.identity;
      ev.details = {{"client", m.clientAddress}, {"size", m.content.size()}, {"dsn_for", env.id}};
      out.push_back(std::move(ev));
    }
  }
  return out;
}

std::optional<events::Event> Delivery::makeEvent(const Queue::Envelope* env, const Job& job, const Queue::Outcome& o) {
  static const std::map<std::string, events::EventType> kTypes = {
      {"delivered", events::EventType::kDelivered}, {"deferred", events::EventType::kDeferred},
      {"bounced", events::EventType::kBounced},     {"expired", events::EventType::kExpired},
      {"suppressed", events::EventType::kSuppressed}};
  auto t = kTypes.find(o.state);
  if (t == kTypes.end()) return std::nullopt;
  events::Event ev;
  ev.timeMs = nowMs();
  ev.id = events::newEventId(ev.timeMs);
  ev.type = t->second;
  ev.queueId = job.messageId;
  int attempts = 0;
  for (const auto& r : job.rcpts) {
    if (r.index == o.index) {
      ev.recipient = r.address;
      attempts = r.attempts + (o.attempted ? 1 : 0);
    }
  }
  int64_t delay = 0;
  if (env != nullptr) {
    ev.sender = env->sender;
    ev.messageId = env->messageId;
    ev.identity = env->identity;
    delay = ev.timeMs - env->receivedMs;
  }
  ev.details = {{"reply", o.reply}, {"attempt", attempts}, {"delay_ms", delay}};
  if (!o.mx.empty()) ev.details["mx"] = o.mx;
  if (!o.ip.empty()) ev.details["ip"] = o.ip;
  if (!o.tls.empty()) ev.details["tls"] = o.tls;
  if (o.state == "deferred") ev.details["next_attempt"] = events::formatRfc3339Ms(o.nextAttemptMs);
  std::string fallback = o.state == "delivered" ? "2.0.0" : o.state == "deferred" ? "4.4.2" : "5.0.0";  // no reply: a network failure
  ev.details["status"] = dsn::enhancedStatus(o.reply, fallback);
  if (o.state == "expired") {  // as its DSN says (RFC 3463 4.4.7); the last reply stays in "reply"
    ev.details["last_status"] = ev.details["status"];
    ev.details["status"] = "4.4.7";
  }
  return ev;
}

void Delivery::publish(const events::Event& ev, const Queue::Outcome& o) {
  if (auto st = events_->append(ev); !st) logWarning("delivery: event log: " + st.message());
  int64_t delay = ev.details.value("delay_ms", int64_t{0});
  if (o.state == "delivered") {
    double secs = static_cast<double>(delay) / 1000.0;
    size_t b = 0;
    while (b < 8 && secs > DeliveryStats::kBuckets[b]) ++b;
    ++stats_.latency[b];
    ++stats_.latencyCount;
    stats_.latencySumMs += delay;
  }
  // The line Postfix sysadmins grep for.
  std::string word = o.state == "delivered" ? "sent" : o.state;
  std::string relay = o.mx.empty() ? "none" : o.mx + "[" + o.ip + "]:" + std::to_string(cfg_->delivery.smtpPort);
  logInfo(ev.queueId + ": to=<" + ev.recipient + ">, relay=" + relay + ", delay=" + ms(delay) + ", tries=" +
          std::to_string(ev.details.value("attempt", 0)) + ", dsn=" + ev.details.value("status", std::string()) +
          ", status=" + word + " (" + o.reply + ")");
}

std::optional<Queue::PendingSuppression> Delivery::hardBounceSuppression(const Queue::Envelope& env,
                                                                         const Queue::Outcome& o) const {
  if (!suppression_) return std::nullopt;
  const auto* er = env.rcpt(o.index);
  if (er == nullptr) return std::nullopt;
  Queue::PendingSuppression e;
  e.messageId = env.id;
  e.index = o.index;
  e.address = toLower(er->address);
  e.scope = cfg_->bounces.globalScope ? "" : domainOf(env.sender);
  e.reason = "hard-bounce:" + dsn::enhancedStatus(o.reply, "5.0.0");
  e.source = "relayd:" + env.id;
  e.createdMs = nowMs();
  return e;
}

queue::NewMessage Delivery::makeDsn(const Queue::Envelope& env, const std::vector<Queue::Outcome>& list,
                                    const std::string* content) {
  dsn::DsnInput in;
  in.reportingMta = cfg_->relayd.hostname;
  in.queueId = env.id;
  in.envid = env.envid;
  in.originalSender = env.sender;
  in.ret = toUpper(env.ret);
  in.arrivalMs = env.receivedMs;
  in.nowMs = nowMs();
  // The content is read before the outcome is recorded (the last final recipient deletes it);
  // without it the DSN returns what the index knows.
  in.original = content ? *content : std::string("Message-ID: " + env.messageId + "\r\n\r\n");
  if (!content) in.ret = "HDRS";
  for (const auto& o : list) {
    dsn::DsnRecipient r;
    if (const auto* er = env.rcpt(o.index)) {
      r.address = er->address;
      r.orcpt = er->orcpt;
    }
    r.action = o.state == "deferred" ? "delayed" : o.state == "delivered" ? "relayed" : "failed";
    std::string fallback = o.state == "expired" ? "4.4.7" : o.state == "deferred" ? "4.4.2"
                           : o.state == "delivered" ? "2.0.0" : "5.0.0";
    r.status = dsn::enhancedStatus(o.reply, fallback);
    if (o.state == "expired") {
      r.status = "4.4.7";
      r.diagnostic = "delivery time expired; last reply: " + o.reply;
    } else {
      r.diagnostic = o.reply;
    }
    r.diagnosticIsSmtp = !o.mx.empty();
    r.remoteMta = o.mx;
    r.lastAttemptMs = in.nowMs;
    if (o.state == "deferred") r.willRetryUntilMs = env.receivedMs + cfg_->delivery.queueLifetimeMs;
    in.recipients.push_back(std::move(r));
  }
  queue::NewMessage m;
  m.sender = "";
  m.recipients.push_back(queue::NewRecipient{env.sender, "", "NEVER"});
  m.content = dsn::buildDsn(in);
  m.body = "7BIT";
  for (char c : m.content) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      m.body = "8BITMIME";
      break;
    }
  }
  m.identity = env.identity;
  m.helo = cfg_->relayd.hostname;
  m.clientAddress = "127.0.0.1";
  size_t hdrEnd = m.content.find("Message-ID: <");
  if (hdrEnd != std::string::npos) m.messageId = m.content.substr(hdrEnd + 12, m.content.find('\n', hdrEnd) - hdrEnd - 13);
  // DSNs are signed like any other mail (the From: domain is relayd.hostname).
  if (signing_) {
    auto hdrs = dkim::MessageHeaders::parse(m.content);
    auto plan = signing_->lookup(toLower(cfg_->relayd.hostname), "");
    if (hdrs && !plan.specs.empty()) {
      auto fields = dkim::signatureFields(std::move(plan.specs), hdrs.value(), m.content);
      if (fields) m.content.insert(0, fields.value());
      else logWarning("delivery: " + env.id + ": DKIM signing of the DSN failed: " + fields.message());
    }
  }
  return m;
}

std::string Delivery::renderMetrics() const {
  std::string m;
  auto counter = [&m](const char* name, const char* help, const std::string& labels, uint64_t v) {
    m += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n";
    m += std::string(name) + labels + " " + std::to_string(v) + "\n";
  };
  m += "# HELP sluice_relayd_deliveries_total Recipients by delivery outcome.\n"
       "# TYPE sluice_relayd_deliveries_total counter\n";
  for (auto [result, v] : {std::pair<const char*, uint64_t>{"delivered", stats_.delivered.load()},
                           {"deferred", stats_.deferred.load()},
                           {"bounced", stats_.bounced.load()},
                           {"expired", stats_.expired.load()},
                           {"suppressed", stats_.suppressed.load()}}) {
    m += std::string("sluice_relayd_deliveries_total{result=\"") + result + "\"} " + std::to_string(v) + "\n";
  }
  counter("sluice_relayd_dsn_sent_total", "DSNs queued to senders.", "", stats_.dsns.load());
  counter("sluice_relayd_smtp_connections_total", "Outbound SMTP connections tried.", "", stats_.connections.load());
  counter("sluice_relayd_smtp_connect_failures_total", "Outbound connections that failed.", "", stats_.connectFailures.load());
  m += "# HELP sluice_relayd_outbound_tls_total Outbound TLS outcomes.\n# TYPE sluice_relayd_outbound_tls_total counter\n";
  m += "sluice_relayd_outbound_tls_total{outcome=\"established\"} " + std::to_string(stats_.tlsSessions.load()) + "\n";
  m += "sluice_relayd_outbound_tls_total{outcome=\"failed\"} " + std::to_string(stats_.tlsFailures.load()) + "\n";
  counter("sluice_relayd_dns_errors_total", "MX lookups that failed.", "", stats_.dnsErrors.load());
  {
    std::lock_guard<std::mutex> l(totalsMu_);
    m += "# HELP sluice_relayd_queue_recipients Recipients in the queue index by state (counted every minute).\n"
         "# TYPE sluice_relayd_queue_recipients gauge\n";
    for (const auto& [state, n] : totals_) {
      m += "sluice_relayd_queue_recipients{state=\"" + state + "\"} " + std::to_string(n) + "\n";
    }
  }
  m += "# HELP sluice_relayd_delivery_sessions Outbound SMTP agents running.\n# TYPE sluice_relayd_delivery_sessions gauge\n";
  m += "sluice_relayd_delivery_sessions " + std::to_string(stats_.activeSessions.load()) + "\n";
  m += "# HELP sluice_relayd_delivery_latency_seconds Time from queueing to delivery.\n"
       "# TYPE sluice_relayd_delivery_latency_seconds histogram\n";
  uint64_t cum = 0;
  for (size_t b = 0; b < 9; ++b) {
    cum += stats_.latency[b].load();
    std::string le = b < 8 ? std::to_string(static_cast<int>(DeliveryStats::kBuckets[b])) : "+Inf";
    m += "sluice_relayd_delivery_latency_seconds_bucket{le=\"" + le + "\"} " + std::to_string(cum) + "\n";
  }
  m += "sluice_relayd_delivery_latency_seconds_sum " + std::to_string(static_cast<double>(stats_.latencySumMs.load()) / 1000.0) + "\n";
  m += "sluice_relayd_delivery_latency_seconds_count " + std::to_string(stats_.latencyCount.load()) + "\n";
  return m;
}

}  // namespace sluice::relayd
