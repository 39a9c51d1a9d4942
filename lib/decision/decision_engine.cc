// decision_engine.cc - see decision_engine.h.
#include "decision/decision_engine.h"

#include <cmath>

#include "base/log.h"
#include "base/strings.h"
#include "suppression/suppression_list.h"

namespace sluice::decision {

using config::LimitCount;
using config::LimitKey;

namespace {

std::string_view orDash(std::string_view v) { return v.empty() ? std::string_view("-") : v; }

uint64_t attrNumber(const PolicyRequest& req, Attr a) {
  auto v = parseUint(req.get(a));
  return v ? *v : 0;
}

std::string windowText(const config::RateWindow& w) {
  return std::to_string(w.limit) + "/" + formatDurationMs(w.perMs);
}

}  // namespace

DecisionEngine::DecisionEngine(std::shared_ptr<const config::Config> cfg, ratelimit::RateLimiter* limiter,
                               const SuppressionList* suppression, const Clock* clock)
    : limiter_(limiter), suppression_(suppression), clock_(clock) {
  reconfigure(std::move(cfg));
}

void DecisionEngine::reconfigure(std::shared_ptr<const config::Config> cfg) {
  cfg_ = std::move(cfg);
  identities_ = std::make_unique<IdentityMap>(cfg_->identities);
  // Rule indexes may have moved: holds refer to rules by index, so drop holds of vanished rules.
  for (auto& [id, txn] : txns_) {
    std::vector<Held> kept;
    for (auto& h : txn.held) {
      if (h.rule < limiter_->ruleCount()) kept.push_back(std::move(h));
    }
    txn.held = std::move(kept);
  }
}

Decision DecisionEngine::decide(const PolicyRequest& req, uint64_t connId) {
  ++stats_.requests;
  std::string_view state = req.get(Attr::kProtocolState);
  bool rcpt = state == "RCPT";
  bool eom = state == "END-OF-MESSAGE";
  Decision d;
  if (!storeHealthy_ && (rcpt || eom)) {
    ++stats_.storeErrors;
    d = {cfg_->policyd.storeErrorAction.text, "store_error", cfg_->policyd.storeErrorAction.refuses()};
  } else if (eom) {
    d = rateAtEnd(req, connId);
  } else if (rcpt || state == "MAIL") {
    d = checkSender(req);
    if (!d.refuses && rcpt) {
      Decision s = checkSuppression(req);
      if (s.refuses) d = std::move(s);
    }
    if (!d.refuses && rcpt) {
      std::string id;
      Txn& txn = txnFor(req, connId, &id);
      Decision r = rateAtRcpt(req, txn);
      if (r.refuses || d.rule.empty()) d = std::move(r);
      if (txn.held.empty() && txn.admittedRcpts == 0) txns_.erase(id);
    }
  }
  if (d.refuses) ++stats_.refused;
  if (!d.rule.empty()) logDecision(req, d);
  return d;
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

Decision DecisionEngine::checkSuppression(const PolicyRequest& req) const {
  if (!cfg_->suppression.enabled || suppression_ == nullptr) return {};
  std::string_view rcpt = req.get(Attr::kRecipient);
  if (rcpt.empty()) return {};
  const auto* e = suppression_->find(rcpt, domainOf(req.get(Attr::kSender)), clock_->nowMs());
  if (e == nullptr) return {};
  const auto& a = cfg_->suppression.rejectAction;
  config::Vars vars = {{"recipient", rcpt},
                       {"reason", e->reason.empty() ? std::string_view("suppressed") : std::string_view(e->reason)},
                       {"scope", e->scope.empty() ? std::string_view("global") : std::string_view(e->scope)}};
  return {expandAction(a, vars), "suppression", a.refuses()};
}

bool DecisionEngine::keyFor(uint32_t rule, const PolicyRequest& req, std::string* scratch,
                            std::string_view* key) const {
  const auto& r = limiter_->rule(rule);
  switch (r.key) {
    case LimitKey::kSaslUsername:
      *key = req.get(Attr::kSaslUsername);
      break;
    case LimitKey::kSender:
      *scratch = toLower(req.get(Attr::kSender));
      *key = *scratch;
      break;
    case LimitKey::kSenderDomain:
      *scratch = domainOf(req.get(Attr::kSender));
      *key = *scratch;
      break;
    case LimitKey::kClientAddress:
      *key = req.get(Attr::kClientAddress);
      break;
    case LimitKey::kClientNetwork: {
      *key = std::string_view();
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
    case LimitKey::kRecipientDomain:
      *scratch = domainOf(req.get(Attr::kRecipient));
      *key = *scratch;
      break;
  }
  return !key->empty();
}

DecisionEngine::Txn& DecisionEngine::txnFor(const PolicyRequest& req, uint64_t connId, std::string* id) {
  std::string_view inst = req.get(Attr::kInstance);
  *id = inst.empty() ? "conn:" + std::to_string(connId) : std::string(inst);
  auto cur = connTxn_.find(connId);
  if (cur != connTxn_.end() && cur->second != *id) {
    endTxn(cur->second, false, nullptr);  // the previous transaction on this connection was abandoned
  }
  connTxn_[connId] = *id;
  auto [it, fresh] = txns_.try_emplace(*id);
  if (fresh) {
    it->second.connId = connId;
    it->second.startedMs = clock_->nowMs();
  }
  return it->second;
}

Decision DecisionEngine::refuse(uint32_t rule, std::string_view key, const PolicyRequest& req, const char* state) {
  const auto& r = limiter_->rule(rule);
  Decision d;
  config::Vars vars = {{"rule", r.name}, {"key", key}};
  std::string limit = r.windows.empty() ? std::string() : windowText(r.windows[0]);
  vars.emplace_back("limit", limit);
  d.action = expandAction(r.action, vars);
  d.rule = r.name;
  d.refuses = r.action.refuses();
  if (r.monitor) {
    ++stats_.monitorHits;
    logInfo("monitor: rule=" + r.name + " key=" + std::string(key) + " state=" + state +
            " instance=" + std::string(orDash(req.get(Attr::kInstance))) + " would answer " + d.action);
    return {};
  }
  return d;
}

Decision DecisionEngine::rateAtRcpt(const PolicyRequest& req, Txn& txn) {
  std::vector<Charge> charges;
  std::vector<std::string> scratch(limiter_->ruleCount());
  double nowUs = static_cast<double>(clock_->nowMs()) * 1000.0;
  Decision soft;
  for (uint32_t r = 0; r < limiter_->ruleCount(); ++r) {
    std::string_view key;
    if (!keyFor(r, req, &scratch[r], &key)) continue;
    const auto& rule = limiter_->rule(r);
    bool perMessage = rule.count != LimitCount::kRecipients;
    bool held = false;
    for (const auto& h : txn.held) held = held || (h.rule == r && h.key == key);
    if (perMessage && held) continue;  // this message is already counted for this key
    uint64_t units = rule.count == LimitCount::kMessages ? 1
                     : rule.count == LimitCount::kRecipients ? 1
                                                             : attrNumber(req, Attr::kSize);
    if (units > 0 && !limiter_->check(r, key, units, nowUs).fits) {
      Decision d = refuse(r, key, req, "RCPT");
      if (d.refuses) return d;  // nothing reserved for any rule: the RCPT is refused
      if (soft.rule.empty()) soft = std::move(d);
      continue;
    }
    charges.push_back({r, key, units});
  }
  for (const auto& c : charges) {
    limiter_->reserve(c.rule, c.key, c.units);
    txn.held.push_back({c.rule, std::string(c.key), c.units});
  }
  ++txn.admittedRcpts;
  return soft;
}

Decision DecisionEngine::rateAtEnd(const PolicyRequest& req, uint64_t connId) {
  std::string_view inst = req.get(Attr::kInstance);
  std::string id = inst.empty() ? "conn:" + std::to_string(connId) : std::string(inst);
  double nowUs = static_cast<double>(clock_->nowMs()) * 1000.0;
  uint64_t size = attrNumber(req, Attr::kSize);
  auto it = txns_.find(id);
  if (it != txns_.end()) {
    // Bytes reserved from SIZE= may be fewer than the message really has: check the difference.
    for (const auto& h : it->second.held) {
      const auto& rule = limiter_->rule(h.rule);
      if (rule.count != LimitCount::kBytes || size <= h.units) continue;
      if (!limiter_->check(h.rule, h.key, size - h.units, nowUs).fits) {
        Decision d = refuse(h.rule, h.key, req, "END-OF-MESSAGE");
        if (d.refuses) {
          endTxn(id, false, nullptr);
          return d;
        }
      }
    }
    endTxn(id, true, &req);
    return {};
  }
  // No reservation: count the message now (policyd restarted mid-transaction, or it is only
  // consulted at end of data). Check first so that the end-of-data-only setup still limits.
  std::vector<std::string> scratch(limiter_->ruleCount());
  std::vector<Charge> charges;
  uint64_t rcpts = std::max<uint64_t>(1, attrNumber(req, Attr::kRecipientCount));
  for (uint32_t r = 0; r < limiter_->ruleCount(); ++r) {
    std::string_view key;
    if (!keyFor(r, req, &scratch[r], &key)) continue;
    const auto& rule = limiter_->rule(r);
    uint64_t units = rule.count == LimitCount::kMessages ? 1 : rule.count == LimitCount::kRecipients ? rcpts : size;
    if (units == 0) continue;
    if (!limiter_->check(r, key, units, nowUs).fits) {
      Decision d = refuse(r, key, req, "END-OF-MESSAGE");
      if (d.refuses) return d;
      continue;
    }
    charges.push_back({r, key, units});
  }
  for (const auto& c : charges) limiter_->commit(c.rule, c.key, 0, c.units, nowUs);
  return {};
}

void DecisionEngine::endTxn(const std::string& id, bool commit, const PolicyRequest* eom) {
  auto it = txns_.find(id);
  if (it == txns_.end()) return;
  Txn txn = std::move(it->second);
  txns_.erase(it);
  auto c = connTxn_.find(txn.connId);
  if (c != connTxn_.end() && c->second == id) connTxn_.erase(c);
  double nowUs = static_cast<double>(clock_->nowMs()) * 1000.0;
  uint64_t size = eom ? attrNumber(*eom, Attr::kSize) : 0;
  uint64_t rcptCount = eom ? attrNumber(*eom, Attr::kRecipientCount) : 0;
  std::vector<uint64_t> rcptsCommitted(limiter_->ruleCount(), 0);
  for (const auto& h : txn.held) {
    if (h.rule >= limiter_->ruleCount()) continue;
    const auto& rule = limiter_->rule(h.rule);
    bool doCommit = commit;
    uint64_t units = h.units;
    if (commit && rule.count == LimitCount::kBytes && size > 0) units = size;
    // Recipients admitted by us but refused by a later restriction are not counted: Postfix
    // reports how many were accepted. (Per-recipient-domain keys cannot tell which; all count.)
    if (commit && rule.count == LimitCount::kRecipients && rule.key != LimitKey::kRecipientDomain && rcptCount > 0) {
      doCommit = rcptsCommitted[h.rule] < rcptCount;
      if (doCommit) rcptsCommitted[h.rule] += h.units;
    }
    if (doCommit) {
      limiter_->commit(h.rule, h.key, h.units, units, nowUs);
    } else {
      limiter_->release(h.rule, h.key, h.units);
    }
  }
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
  line += std::string(orDash(req.get(Attr::kProtocolState)));
  line += " from ";
  line += std::string(orDash(req.get(Attr::kClientName)));
  line += "[" + std::string(orDash(req.get(Attr::kClientAddress))) + "]";
  line += ": instance=" + std::string(orDash(req.get(Attr::kInstance)));
  line += " sasl_username=" + std::string(orDash(req.get(Attr::kSaslUsername)));
  line += " from=<" + std::string(req.get(Attr::kSender)) + ">";
  line += " to=<" + std::string(req.get(Attr::kRecipient)) + ">";
  line += " rule=" + d.rule + " action=" + d.action;
  logInfo(line);
}

}  // namespace sluice::decision
