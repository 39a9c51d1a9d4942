// decision_engine.cc - see decision_engine.h.
#include "decision/decision_engine.h"

#include <algorithm>

#include "base/log.h"
#include "base/strings.h"

namespace sluice::decision {

using config::FailureMode;
using config::LimitCount;
using config::LimitKey;
using ratelimit::HeldUnits;
using ratelimit::LimitCharge;
using ratelimit::RcptOutcome;
using ratelimit::RcptQuery;

namespace {

std::string_view orDash(std::string_view v) { return v.empty() ? std::string_view("-") : v; }

// A line about one message starts with its queue id when the request carries one, as Postfix's
// own reject lines do. Postfix sends queue_id once its queue file exists: not at MAIL, nor at the
// first RCPT with smtpd_delay_open_until_valid_rcpt = yes (the default), then at every later
// RCPT and at END-OF-MESSAGE. sluice-milter sends Sendmail's (known from MAIL FROM on).
void logAboutMessage(LogLevel level, const PolicyRequest& req, std::string_view line) {
  logQueueLine(level, req.get(Attr::kQueueId), line);
}

uint64_t attrNumber(const PolicyRequest& req, Attr a) {
  auto v = parseUint(req.get(a));
  return v ? *v : 0;
}

std::string windowText(const config::RateWindow& w) {
  return std::to_string(w.limit) + "/" + formatDurationMs(w.perMs);
}

std::string txnIdOf(const PolicyRequest& req, uint64_t connId) {
  std::string_view inst = req.get(Attr::kInstance);
  return inst.empty() ? "conn:" + std::to_string(connId) : std::string(inst);
}

}  // namespace

struct DecisionEngine::Pending {
  const PolicyRequest* req = nullptr;
  uint64_t connId = 0;
  std::string txnId;
  std::vector<LimitCharge> charges;
  std::vector<char> local;  // per charge: reserved in the per-host fallback
  DecisionCallback done;
  uint64_t generation = 0;
  bool knownTxn = false;    // END-OF-MESSAGE of a transaction we hold (extra bytes check)
};

DecisionEngine::DecisionEngine(std::shared_ptr<const config::Config> cfg, ratelimit::LimitBackend* backend,
                               const Clock* clock, std::string hostId)
    : backend_(backend), clock_(clock), hostId_(std::move(hostId)) {
  reconfigure(std::move(cfg));
}

DecisionEngine::~DecisionEngine() = default;

void DecisionEngine::reconfigure(std::shared_ptr<const config::Config> cfg) {
  bool rulesChanged = !cfg_ || cfg_->rateLimits.size() != cfg->rateLimits.size();
  for (size_t i = 0; !rulesChanged && i < cfg->rateLimits.size(); ++i) {
    rulesChanged = cfg_->rateLimits[i].name != cfg->rateLimits[i].name;
  }
  cfg_ = std::move(cfg);
  identities_ = std::make_unique<IdentityMap>(cfg_->identities);
  if (rulesChanged) {
    ++generation_;
    // Holds refer to rules by index: drop those whose index no longer names the same rule.
    for (auto& [id, txn] : txns_) {
      txn.held.erase(std::remove_if(txn.held.begin(), txn.held.end(),
                                    [&](const Held& h) { return h.rule >= cfg_->rateLimits.size(); }),
                     txn.held.end());
    }
  }
  rebuildLocal();
}

void DecisionEngine::rebuildLocal() {
  if (!backend_->asynchronous()) return;  // the backend is this host's memory already
  std::vector<config::RateRuleConfig> scaled = cfg_->rateLimits;
  for (auto& r : scaled) {
    for (auto& w : r.windows) {
      w.limit = std::max<uint64_t>(1, w.limit * static_cast<uint64_t>(r.localPercent) / 100);
      w.burst = std::max<uint64_t>(1, w.burst * static_cast<uint64_t>(r.localPercent) / 100);
    }
  }
  if (local_) {
    local_->reconfigure(scaled);
  } else {
    local_ = std::make_unique<ratelimit::RateLimiter>(scaled);
    localBackend_ = std::make_unique<ratelimit::MemoryLimitBackend>(local_.get(), nullptr);
  }
}

void DecisionEngine::decide(const PolicyRequest& req, uint64_t connId, DecisionCallback done) {
  ++stats_.requests;
  std::string_view state = req.get(Attr::kProtocolState);
  bool rcpt = state == "RCPT";
  bool eom = state == "END-OF-MESSAGE";
  if (!storeHealthy_ && (rcpt || eom)) {
    finish(req, storeError(), done);
  } else if (eom) {
    atEnd(req, connId, std::move(done));
  } else if (rcpt || state == "MAIL") {
    Decision d = checkSender(req);
    if (d.refuses || !rcpt) {
      finish(req, std::move(d), done);
    } else {
      atRcpt(req, connId, std::move(done));
    }
  } else {
    finish(req, {}, done);
  }
}

void DecisionEngine::finish(const PolicyRequest& req, Decision d, const DecisionCallback& done) {
  if (d.refuses) ++stats_.refused;
  if (!d.rule.empty()) logDecision(req, d);
  done(std::move(d));
}

Decision DecisionEngine::storeError() {
  ++stats_.storeErrors;
  const auto& a = cfg_->policyd.storeErrorAction;
  return {a.text, "store_error", a.refuses()};
}

Decision DecisionEngine::checkSender(const PolicyRequest& req) const {
  const auto& sl = cfg_->senderLogin;
  std::string_view sender = req.get(Attr::kSender);
  if (!sl.enabled || sender.empty()) return {};  // the null sender (bounces) is never refused here
  std::string domain = domainOf(sender);
  std::string_view user = req.get(Attr::kSaslUsername);
  std::vector<const config::IdentityConfig*> ids;
  std::string who;
  if (!user.empty()) {
    ids = identities_->forSaslUser(user);
    who = std::string(user);
    if (ids.empty() && sl.allowUnknownUsers && !identities_->isProtectedDomain(domain)) return {};
  } else {
    auto ip = parseIp(req.get(Attr::kClientAddress));
    if (ip) ids = identities_->forClient(*ip);
    who = "client " + std::string(orDash(req.get(Attr::kClientAddress)));
    if (ids.empty()) {
      if (!identities_->isProtectedDomain(domain)) return {};
      config::Vars vars = {{"sender", sender}, {"domain", domain}, {"user", who}};
      return {expandAction(sl.unauthenticatedAction, vars), "sender_login", sl.unauthenticatedAction.refuses()};
    }
  }
  for (const auto* id : ids) {
    if (IdentityMap::owns(*id, sender)) return {};
  }
  config::Vars vars = {{"sender", sender}, {"domain", domain}, {"user", who}};
  return {expandAction(sl.rejectAction, vars), "sender_login", sl.rejectAction.refuses()};
}

bool DecisionEngine::keyFor(const config::RateRuleConfig& r, const PolicyRequest& req, std::string* key) const {
  switch (r.key) {
    case LimitKey::kSaslUsername: *key = std::string(req.get(Attr::kSaslUsername)); break;
    case LimitKey::kSender: *key = toLower(req.get(Attr::kSender)); break;
    case LimitKey::kSenderDomain: *key = domainOf(req.get(Attr::kSender)); break;
    case LimitKey::kClientAddress: *key = std::string(req.get(Attr::kClientAddress)); break;
    case LimitKey::kRecipientDomain: *key = domainOf(req.get(Attr::kRecipient)); break;
    case LimitKey::kClientNetwork: {
      key->clear();
      auto ip = parseIp(req.get(Attr::kClientAddress));
      if (!ip) break;
      for (const auto& net : r.networks) {
        if (net.contains(*ip)) {
          *key = net.text;
          break;
        }
      }
      break;
    }
  }
  return !key->empty();
}

std::vector<LimitCharge> DecisionEngine::chargesFor(const PolicyRequest& req, const Txn* txn, uint64_t rcpts) const {
  std::vector<LimitCharge> out;
  const auto& rules = cfg_->rateLimits;
  for (uint32_t r = 0; r < rules.size(); ++r) {
    LimitCharge c;
    if (!keyFor(rules[r], req, &c.key)) continue;
    bool perMessage = rules[r].count != LimitCount::kRecipients;
    if (txn != nullptr && perMessage &&
        std::any_of(txn->held.begin(), txn->held.end(), [&](const Held& h) { return h.rule == r && h.key == c.key; })) {
      continue;  // this message is already counted for this key
    }
    c.rule = r;
    c.units = rules[r].count == LimitCount::kMessages ? 1
              : rules[r].count == LimitCount::kRecipients ? rcpts
                                                          : attrNumber(req, Attr::kSize);
    c.blocking = !rules[r].monitor && rules[r].action.refuses();
    out.push_back(std::move(c));
  }
  return out;
}

DecisionEngine::Txn& DecisionEngine::txnFor(const PolicyRequest& req, uint64_t connId, std::string* id) {
  *id = txnIdOf(req, connId);
  auto cur = connTxn_.find(connId);
  if (cur == connTxn_.end()) {
    connTxn_.emplace(connId, *id);
  } else if (cur->second != *id) {
    std::string previous = std::move(cur->second);
    cur->second = *id;
    endTxn(previous, false, nullptr);  // the previous transaction on this connection was abandoned
  }
  auto [it, fresh] = txns_.try_emplace(*id);
  if (fresh) {
    it->second.connId = connId;
    it->second.startedMs = clock_->nowMs();
  }
  return it->second;
}

void DecisionEngine::atRcpt(const PolicyRequest& req, uint64_t connId, DecisionCallback done) {
  auto p = std::make_shared<Pending>();
  Txn& txn = txnFor(req, connId, &p->txnId);
  p->req = &req;
  p->connId = connId;
  p->charges = chargesFor(req, &txn, 1);
  p->done = std::move(done);
  p->generation = generation_;
  RcptQuery q;
  q.txn = hostId_ + "|" + p->txnId;
  if (cfg_->suppression.enabled) q.recipient = toLower(req.get(Attr::kRecipient));
  q.senderDomain = domainOf(req.get(Attr::kSender));
  q.nowMs = clock_->nowMs();
  q.ttlMs = cfg_->policyd.reservationTtlMs;
  q.charges = p->charges;
  backend_->rcpt(std::move(q), [this, p](Result<RcptOutcome> r) { rcptAnswered(p, std::move(r)); });
}

void DecisionEngine::rcptAnswered(const std::shared_ptr<Pending>& p, Result<RcptOutcome> r) {
  const PolicyRequest& req = *p->req;
  RcptOutcome out;
  Decision d;
  bool backendOk = static_cast<bool>(r);
  p->local.assign(p->charges.size(), 0);
  if (!r) {
    d = onBackendFailure(*p, r.message(), &out);
  } else {
    out = std::move(r.value());
  }
  if (r && out.suppressed) {
    const auto& e = *out.suppressed;
    const auto& a = cfg_->suppression.rejectAction;
    config::Vars vars = {{"recipient", req.get(Attr::kRecipient)},
                         {"reason", e.reason.empty() ? std::string_view("suppressed") : std::string_view(e.reason)},
                         {"scope", e.scope.empty() ? std::string_view("global") : std::string_view(e.scope)}};
    d = {expandAction(a, vars), "suppression", a.refuses()};
  } else if (!d.refuses && p->generation == generation_) {
    Decision v = verdict(*p, out, "RCPT");
    if (v.refuses || d.rule.empty()) d = std::move(v);
  }
  // Record what was reserved with the transaction; if it is gone meanwhile, give it back.
  std::vector<HeldUnits> sharedBack, localBack;
  auto it = txns_.find(p->txnId);
  bool keep = it != txns_.end() && !d.refuses && p->generation == generation_;
  if (!d.refuses) {
    for (size_t i = 0; i < p->charges.size(); ++i) {
      bool held = backendOk ? out.reserved && out.fits[i] : p->local[i] != 0;
      if (!held) continue;
      const LimitCharge& c = p->charges[i];
      if (keep) {
        it->second.held.push_back({c.rule, c.key, c.units, p->local[i] != 0});
      } else {
        (p->local[i] ? localBack : sharedBack).push_back({c.rule, c.key, c.units, 0});
      }
    }
  }
  if (!sharedBack.empty()) backend_->release(hostId_ + "|" + p->txnId, std::move(sharedBack));
  if (!localBack.empty()) localBackend_->release(p->txnId, std::move(localBack));
  if (it != txns_.end()) {
    if (!d.refuses) ++it->second.admittedRcpts;
    if (it->second.held.empty() && it->second.admittedRcpts == 0) txns_.erase(it);
  }
  finish(req, std::move(d), p->done);
}

Decision DecisionEngine::verdict(const Pending& p, const RcptOutcome& out, const char* state) {
  Decision soft;
  for (size_t i = 0; i < p.charges.size() && i < out.fits.size(); ++i) {
    if (out.fits[i]) continue;
    Decision d = refuse(p.charges[i].rule, p.charges[i].key, *p.req, state);
    if (d.refuses) return d;
    if (soft.rule.empty()) soft = std::move(d);
  }
  return soft;
}

Decision DecisionEngine::refuse(uint32_t rule, const std::string& key, const PolicyRequest& req, const char* state) {
  const auto& r = cfg_->rateLimits[rule];
  Decision d;
  std::string limit = r.windows.empty() ? std::string() : windowText(r.windows[0]);
  config::Vars vars = {{"rule", r.name}, {"key", key}, {"limit", limit}};
  d.action = expandAction(r.action, vars);
  d.rule = r.name;
  d.refuses = r.action.refuses();
  if (r.monitor) {
    ++stats_.monitorHits;
    logAboutMessage(LogLevel::kInfo, req,
                    "monitor: rule=" + r.name + " key=" + key + " state=" + state +
                        " instance=" + std::string(orDash(req.get(Attr::kInstance))) + " would answer " + d.action);
    return {};
  }
  return d;
}

Decision DecisionEngine::onBackendFailure(Pending& p, const std::string& why, RcptOutcome* out) {
  ++stats_.backendFailures;
  int64_t now = clock_->nowMs();
  if (now - lastFailureLogMs_ >= 10'000) {  // once per outage, reminded every 10 s while it lasts
    lastFailureLogMs_ = now;
    logWarning("store unavailable (" + why + "): applying each rule's failure_mode");
  }
  bool rcpt = !p.knownTxn && !p.txnId.empty();
  if (rcpt && cfg_->suppression.enabled && cfg_->suppression.failureMode == FailureMode::kClosed &&
      !p.req->get(Attr::kRecipient).empty()) {
    return storeError();
  }
  out->fits.assign(p.charges.size(), true);
  out->reserved = false;
  RcptQuery local;
  local.txn = p.txnId;
  local.nowMs = now;
  std::vector<size_t> localIndex;
  for (size_t i = 0; i < p.charges.size(); ++i) {
    switch (cfg_->rateLimits[p.charges[i].rule].failureMode) {
      case FailureMode::kOpen: break;
      case FailureMode::kClosed: return storeError();
      case FailureMode::kLocal:
        local.charges.push_back(p.charges[i]);
        localIndex.push_back(i);
        break;
    }
  }
  if (local.charges.empty() || !localBackend_) return {};
  auto apply = [&](Result<RcptOutcome> r) {
    if (!r) return;
    for (size_t j = 0; j < localIndex.size(); ++j) {
      out->fits[localIndex[j]] = r->fits[j];
      if (r->reserved && r->fits[j] && p.local.size() > localIndex[j]) p.local[localIndex[j]] = 1;
    }
    out->reserved = out->reserved || r->reserved;
  };
  if (rcpt) {
    localBackend_->rcpt(std::move(local), apply);
  } else {
    localBackend_->charge(std::move(local), apply);
  }
  return {};
}

void DecisionEngine::atEnd(const PolicyRequest& req, uint64_t connId, DecisionCallback done) {
  auto p = std::make_shared<Pending>();
  p->req = &req;
  p->connId = connId;
  p->done = std::move(done);
  p->generation = generation_;
  std::string id = txnIdOf(req, connId);
  uint64_t size = attrNumber(req, Attr::kSize);
  auto it = txns_.find(id);
  if (it != txns_.end()) {
    // Bytes reserved from SIZE= may be fewer than the message really has: charge the difference.
    for (const auto& h : it->second.held) {
      const auto& rule = cfg_->rateLimits[h.rule];
      if (rule.count != LimitCount::kBytes || size <= h.units || h.local) continue;
      p->charges.push_back({h.rule, h.key, size - h.units, !rule.monitor && rule.action.refuses()});
    }
    if (p->charges.empty()) {
      endTxn(id, true, &req);
      finish(req, {}, p->done);
      return;
    }
    p->knownTxn = true;
    p->txnId = id;
  } else {
    // No reservation: count the message now (policyd restarted mid-transaction, or it is only
    // consulted at end of data). Checked first, so that the end-of-data-only setup still limits.
    p->charges = chargesFor(req, nullptr, std::max<uint64_t>(1, attrNumber(req, Attr::kRecipientCount)));
    p->charges.erase(std::remove_if(p->charges.begin(), p->charges.end(), [](const LimitCharge& c) { return c.units == 0; }),
                     p->charges.end());
    if (p->charges.empty()) {
      finish(req, {}, p->done);
      return;
    }
  }
  RcptQuery q;
  q.txn = hostId_ + "|" + id;
  q.nowMs = clock_->nowMs();
  q.charges = p->charges;
  backend_->charge(std::move(q), [this, p](Result<RcptOutcome> r) { endAnswered(p, std::move(r)); });
}

void DecisionEngine::endAnswered(const std::shared_ptr<Pending>& p, Result<RcptOutcome> r) {
  RcptOutcome out;
  Decision d;
  p->local.assign(p->charges.size(), 0);
  if (!r) {
    d = onBackendFailure(*p, r.message(), &out);
  } else {
    out = std::move(r.value());
  }
  if (!d.refuses && p->generation == generation_) {
    Decision v = verdict(*p, out, "END-OF-MESSAGE");
    if (v.refuses || d.rule.empty()) d = std::move(v);
  }
  if (p->knownTxn) endTxn(p->txnId, !d.refuses, d.refuses ? nullptr : p->req, true);
  finish(*p->req, std::move(d), p->done);
}

void DecisionEngine::endTxn(const std::string& id, bool commit, const PolicyRequest* eom, bool extraBytesCharged) {
  auto it = txns_.find(id);
  if (it == txns_.end()) return;
  Txn txn = std::move(it->second);
  txns_.erase(it);
  auto c = connTxn_.find(txn.connId);
  if (c != connTxn_.end() && c->second == id) connTxn_.erase(c);
  uint64_t size = eom ? attrNumber(*eom, Attr::kSize) : 0;
  uint64_t rcptCount = eom ? attrNumber(*eom, Attr::kRecipientCount) : 0;
  std::vector<uint64_t> rcptsCommitted(cfg_->rateLimits.size(), 0);
  std::vector<HeldUnits> sharedCommit, sharedRelease, localCommit, localRelease;
  for (auto& h : txn.held) {
    if (h.rule >= cfg_->rateLimits.size()) continue;
    const auto& rule = cfg_->rateLimits[h.rule];
    bool doCommit = commit;
    uint64_t units = h.units;
    if (commit && rule.count == LimitCount::kBytes && size > 0 && !extraBytesCharged) units = size;
    // Recipients admitted by us but refused by a later restriction are not counted: Postfix
    // reports how many were accepted. (Per-recipient-domain keys cannot tell which; all count.)
    if (commit && rule.count == LimitCount::kRecipients && rule.key != LimitKey::kRecipientDomain && rcptCount > 0) {
      doCommit = rcptsCommitted[h.rule] < rcptCount;
      if (doCommit) rcptsCommitted[h.rule] += h.units;
    }
    auto& list = h.local ? (doCommit ? localCommit : localRelease) : (doCommit ? sharedCommit : sharedRelease);
    list.push_back({h.rule, std::move(h.key), h.units, units});
  }
  std::string key = hostId_ + "|" + id;
  int64_t now = clock_->nowMs();
  if (!sharedCommit.empty()) backend_->commit(key, std::move(sharedCommit), now);
  if (!sharedRelease.empty()) backend_->release(key, std::move(sharedRelease));
  if (!localCommit.empty()) localBackend_->commit(id, std::move(localCommit), now);
  if (!localRelease.empty()) localBackend_->release(id, std::move(localRelease));
}

void DecisionEngine::connectionClosed(uint64_t connId) {
  auto c = connTxn_.find(connId);
  if (c == connTxn_.end()) return;
  std::string id = c->second;
  connTxn_.erase(c);
  auto t = txns_.find(id);
  if (t != txns_.end() && t->second.connId == connId) endTxn(id, false, nullptr);
}

size_t DecisionEngine::expireReservations() {
  int64_t cutoff = clock_->nowMs() - cfg_->policyd.reservationTtlMs;
  std::vector<std::string> old;
  for (const auto& [id, txn] : txns_) {
    if (txn.startedMs < cutoff) old.push_back(id);
  }
  for (const auto& id : old) endTxn(id, false, nullptr);
  return old.size();
}

void DecisionEngine::logDecision(const PolicyRequest& req, const Decision& d) const {
  std::string line;
  line.reserve(256);
  line += d.refuses ? "reject: " : "action: ";
  line += orDash(req.get(Attr::kProtocolState));
  line += " from ";
  line += orDash(req.get(Attr::kClientName));
  line += "[";
  line += orDash(req.get(Attr::kClientAddress));
  line += "]: instance=";
  line += orDash(req.get(Attr::kInstance));
  line += " sasl_username=";
  line += orDash(req.get(Attr::kSaslUsername));
  line += " from=<";
  line += req.get(Attr::kSender);
  line += "> to=<";
  line += req.get(Attr::kRecipient);
  line += "> rule=" + d.rule + " action=" + d.action;
  logAboutMessage(LogLevel::kInfo, req, line);
}

}  // namespace sluice::decision
