// milter_callbacks.cc - the filter's callbacks: each turns the event into a MessageContext /
// EnvelopeChecks call and its Verdict into a MilterStatus. Callbacks get no user pointer (as with
// libmilter), so the current MilterState is one file-local shared_ptr behind a mutex; each
// connection holds its own reference and refreshes it at MAIL FROM.
#include "milter_callbacks.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <mutex>
#include <optional>
#include <vector>

#include "base/log.h"
#include "base/strings.h"
#include "envelope_policy.h"
#include "identity_header.h"
#include "message_context.h"
#include "net/metrics_server.h"

namespace sluice::milter {
namespace {

std::mutex gStateMu;
std::shared_ptr<const MilterState> gState;  // guarded by gStateMu
MilterStats gStats;

struct Connection {
  explicit Connection(std::shared_ptr<const MilterState> st)
      : state(std::move(st)), message(*state->signing, *state->identities) {}
  std::shared_ptr<const MilterState> state;
  MessageContext message;
  EnvelopeChecks envelope;
  std::shared_ptr<PolicyClient> policyClient;     // the client `policy` belongs to
  std::unique_ptr<PolicyClient::Session> policy;  // one policyd connection per SMTP session
  std::optional<IpAddr> client;
  IdentityHeader identity;    // relayd.identity_header: client copies removed, the SASL login added
  bool leadingSpace = false;  // proto::kHeaderLeadingSpace negotiated: header values keep their first byte
  bool canQuarantine = false;
  bool canChangeHeaders = false;  // proto::kChangeHeaders offered: identity headers can be removed
  bool canSkip = false;           // proto::kSkip negotiated: the rest of a body nobody needs is skipped
  uint32_t noReply = 0;      // SMFIP_NR_* negotiated: those steps answer MilterStatus::kNoReply
  std::optional<Verdict> deferred;  // the verdict of a no-reply step, answered at the next reply
  uint64_t bytes = 0;         // header + body bytes of the current message
  std::string queueId;        // the MTA's {i} for the current message; "" until it is known

  void setQueueId(std::string id) {
    queueId = std::move(id);
    message.setQueueId(queueId);
    envelope.setQueueId(queueId);
  }

  // The newest configuration, at the start of a message.
  void refresh() {
    auto now = currentState();
    if (now != state) {
      state = std::move(now);
      message.rebind(*state->signing, *state->identities);
    }
    identity.rename(state->config ? state->config->relayd.identityHeader : std::string());
    if (state->policy != policyClient) {
      policy.reset();
      policyClient = state->policy;
      if (policyClient) policy = std::make_unique<PolicyClient::Session>(*policyClient);
    }
  }
};

Connection* connection(MilterCtx& ctx) {
  auto* c = static_cast<Connection*>(ctx.priv());
  if (c == nullptr) {
    c = new Connection(currentState());
    ctx.setPriv(c);
    ++gStats.connections;
  }
  return c;
}

std::string macro(MilterCtx& ctx, const char* name) {
  const char* v = ctx.symbol(name);
  return v ? v : "";
}

// {i}, the queue id, at each event that may bring it first: Sendmail sends it from MAIL FROM on;
// Postfix once its queue file exists - with smtpd_delay_open_until_valid_rcpt = yes (the default)
// from the second RCPT, and always at end of headers and end of message.
void learnQueueId(MilterCtx& ctx, Connection* c) {
  std::string id = macro(ctx, "i");
  if (!id.empty() && id != c->queueId) c->setQueueId(std::move(id));
}

// "QUEUEID: text" (or "text" while the id is not known), for lines about the current message.
void logMessage(LogLevel level, const Connection* c, const std::string& text) { logQueueLine(level, c->queueId, text); }

std::string escapePercent(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '%' ? std::string("%%") : std::string(1, c);
  return out;
}

MilterStatus answer(MilterCtx& ctx, const Verdict& v) {
  switch (v.kind) {
    case Verdict::Kind::kContinue: return MilterStatus::kContinue;
    case Verdict::Kind::kAccept: return MilterStatus::kAccept;
    case Verdict::Kind::kDiscard: return MilterStatus::kDiscard;
    case Verdict::Kind::kReject:
      if (v.xcode == "5.7.1") ++gStats.rejectedOwnership;
      if (v.xcode == "5.6.0") ++gStats.rejectedMalformed;
      break;
    case Verdict::Kind::kTempfail: ++gStats.tempfailed; break;
  }
  if (!v.rcode.empty()) {
    std::string text = escapePercent(v.text);
    if (!ctx.setReply(v.rcode.c_str(), v.xcode.c_str(), text.c_str())) {
      logError("milter: reply \"" + v.rcode + " " + v.xcode + " " + v.text + "\" refused by the protocol; using the default text");
    }
  }
  return v.kind == Verdict::Kind::kReject ? MilterStatus::kReject : MilterStatus::kTempfail;
}

// The one catch-all of every callback.
template <class F>
MilterStatus guarded(const char* where, F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    logError(std::string("milter ") + where + ": " + e.what() + "; answering tempfail");
  } catch (...) {
    logError(std::string("milter ") + where + ": unknown exception; answering tempfail");
  }
  return MilterStatus::kTempfail;
}

// The catch-all of a callback whose step may be negotiated without a reply (SMFIP_NR_* `step`): no
// verdict can be given there, so a failure is remembered and answered (tempfail) at the next step
// that replies (end of message at the latest).
template <class F>
MilterStatus guardedNoReply(MilterCtx& ctx, uint32_t step, const char* where, F&& f) {
  std::string why;
  try {
    return f();
  } catch (const std::exception& e) {
    why = std::string("milter ") + where + ": " + e.what();
  } catch (...) {
    why = std::string("milter ") + where + ": unknown exception";
  }
  try {
    logError(why + "; answering tempfail");
    auto* c = static_cast<Connection*>(ctx.priv());
    // (Were the step without a reply after all, libmilter would drop this answer.)
    if (c == nullptr || (c->noReply & step) == 0) return MilterStatus::kTempfail;
    if (!c->deferred) c->deferred = Verdict::tempfail("Local error, try again later");
  } catch (...) {
    return MilterStatus::kTempfail;
  }
  return MilterStatus::kNoReply;
}

Verdict takeDeferred(Connection* c) {
  Verdict v = std::move(*c->deferred);
  c->deferred.reset();
  return v;
}

// The answer of `step`: MilterStatus::kNoReply when it was negotiated without a reply (a verdict other than
// continue is then kept for the next step that replies), else the verdict's code.
MilterStatus answerStep(MilterCtx& ctx, Connection* c, uint32_t step, Verdict v) {
  if ((c->noReply & step) == 0) return answer(ctx, v);
  if (v.kind != Verdict::Kind::kContinue && !c->deferred) c->deferred = std::move(v);
  return MilterStatus::kNoReply;
}

MilterStatus onNegotiate(MilterCtx& ctx, uint32_t f0, uint32_t f1, uint32_t* pf0, uint32_t* pf1) {
  return guarded("negotiate", [&] {
    if ((f0 & proto::kAddHeaders) == 0) return MilterStatus::kReject;  // cannot sign without adding headers
    Connection* c = connection(ctx);
    bool policy = c->state->policy != nullptr;
    bool identity = c->state->config && !c->state->config->relayd.identityHeader.empty();
    if (identity && (f0 & proto::kChangeHeaders) == 0) {
      // A forged identity header could not be removed: relayd would believe it.
      logError("the MTA does not let milters delete header fields (proto::kChangeHeaders); relayd.identity_header " +
               c->state->config->relayd.identityHeader + " cannot be protected; refusing the connection");
      return MilterStatus::kReject;
    }
    *pf0 = proto::kAddHeaders | (f0 & proto::kChangeHeaders) | (f0 & proto::kSetSymList) | (f0 & proto::kQuarantine);
    // No reply for header fields, end of headers and body chunks: the MTA streams the message
    // content without waiting, from the first header to end of message (libmilter fakes these
    // flags for an MTA that lacks them). What end of headers decides is answered at end of message
    // instead - the same for the client: both Postfix and Sendmail run the content steps after the
    // whole message has been received.
    uint32_t noReply = proto::kNrHeader | proto::kNrEoh | proto::kNrBody;
    // MAIL FROM too when it can only continue: every message followed to its end (policyd, the
    // identity header) or signed even unauthenticated - it never answers accept early then.
    if (policy || identity || c->state->signing->signUnauthenticated()) noReply |= proto::kNrMail;
    uint32_t want = proto::kNoData | proto::kNoUnknown | proto::kHeaderLeadingSpace | proto::kSkip | noReply;
    if (!policy) want |= proto::kNoHelo | proto::kNoRcpt;
    *pf1 = f1 & want;
    c->noReply = *pf1 & noReply;
    c->leadingSpace = (*pf1 & proto::kHeaderLeadingSpace) != 0;
    c->canSkip = (*pf1 & proto::kSkip) != 0;
    c->canQuarantine = (f0 & proto::kQuarantine) != 0;
    c->canChangeHeaders = (f0 & proto::kChangeHeaders) != 0;
    if (f0 & proto::kSetSymList) {
      // These lists replace the MTA's for this milter: {i} wherever it may first be known.
      ctx.setSymbolList(proto::kStageMail, "i {auth_authen} {auth_type}");
      ctx.setSymbolList(proto::kStageRcpt, "i");
      ctx.setSymbolList(proto::kStageEoh, "i");
      ctx.setSymbolList(proto::kStageEom, "i");
    }
    return MilterStatus::kContinue;
  });
}

MilterStatus onConnect(MilterCtx& ctx, const char* hostname, const char* address) {
  return guarded("connect", [&] {
    Connection* c = connection(ctx);
    std::string text = address ? address : "";
    if (!text.empty()) c->client = parseIp(text);
    std::string name = hostname ? hostname : "";
    if (!name.empty() && name.front() == '[') name.clear();  // Sendmail's "[1.2.3.4]": no name
    c->envelope.connect(text, name);
    return MilterStatus::kContinue;
  });
}

MilterStatus onHelo(MilterCtx& ctx, const char* helo) {
  return guarded("HELO", [&] {
    connection(ctx)->envelope.helo(helo ? helo : "");
    return MilterStatus::kContinue;
  });
}

MilterStatus onEnvFrom(MilterCtx& ctx, char** argv) {
  return guardedNoReply(ctx, proto::kNrMail, "MAIL FROM", [&] {
    Connection* c = connection(ctx);
    c->deferred.reset();
    c->refresh();
    ++gStats.messages;
    std::string user = macro(ctx, "{auth_authen}");
    std::string from = argv && argv[0] ? argv[0] : "";
    if (from.size() >= 2 && from.front() == '<' && from.back() == '>') from = from.substr(1, from.size() - 2);
    std::vector<std::string> args;
    for (int i = 1; argv && argv[0] && argv[i]; ++i) args.emplace_back(argv[i]);
    c->bytes = 0;
    bool policy = c->policy != nullptr;
    std::string queueId = macro(ctx, "i");
    if (policy) c->envelope.mail(from, user, macro(ctx, "{auth_type}"), queueId, args);
    c->identity.begin(user);
    bool trusted = c->state->signing->trustedClient(c->client);
    // The identity header must be seen (and removed) in every message, signed or not.
    Verdict v = c->message.beginMessage(user, from, trusted, policy || c->identity.enabled());
    c->setQueueId(std::move(queueId));
    return answerStep(ctx, c, proto::kNrMail, std::move(v));
  });
}

MilterStatus onEnvRcpt(MilterCtx& ctx, char** argv) {
  return guarded("RCPT TO", [&] {
    Connection* c = connection(ctx);
    if (!c->policy) return MilterStatus::kContinue;
    learnQueueId(ctx, c);
    std::string rcpt = argv && argv[0] ? argv[0] : "";
    if (rcpt.size() >= 2 && rcpt.front() == '<' && rcpt.back() == '>') rcpt = rcpt.substr(1, rcpt.size() - 2);
    ++gStats.policyQueries;
    MilterAction a = c->envelope.rcpt(*c->policy, rcpt);
    if (a.verdict.kind == Verdict::Kind::kReject || a.verdict.kind == Verdict::Kind::kTempfail) {
      ++gStats.policyRefusals;
    }
    return answer(ctx, a.verdict);
  });
}

MilterStatus onHeader(MilterCtx& ctx, const char* name, const char* value) {
  return guardedNoReply(ctx, proto::kNrHeader, "header", [&] {
    Connection* c = connection(ctx);
    std::string_view n = name ? name : "";
    std::string_view v = value ? value : "";
    std::string spaced;
    if (!c->leadingSpace) {  // the MTA dropped the usual space after the colon
      spaced.reserve(v.size() + 1);
      spaced.append(" ").append(v);
      v = spaced;
    }
    c->bytes += n.size() + v.size() + 3;
    if (c->identity.matches(n)) {  // removed at end of message: never checked nor signed
      c->identity.seen();
      return answerStep(ctx, c, proto::kNrHeader, Verdict::next());
    }
    return answerStep(ctx, c, proto::kNrHeader, c->message.header(n, v));
  });
}

MilterStatus onEndOfHeaders(MilterCtx& ctx) {
  return guardedNoReply(ctx, proto::kNrEoh, "end of headers", [&] {
    Connection* c = connection(ctx);
    learnQueueId(ctx, c);
    if (c->deferred) return answerStep(ctx, c, proto::kNrEoh, takeDeferred(c));  // decided already
    return answerStep(ctx, c, proto::kNrEoh, c->message.endOfHeaders());
  });
}

MilterStatus onBody(MilterCtx& ctx, const unsigned char* data, size_t len) {
  return guardedNoReply(ctx, proto::kNrBody, "body", [&] {
    Connection* c = connection(ctx);
    c->bytes += len;
    if (c->deferred) return answerStep(ctx, c, proto::kNrBody, takeDeferred(c));  // decided already
    // Only the signer and policyd's size need the body; without them, skip to end of message
    // (not possible when body chunks have no reply: they are then read and ignored).
    bool needed = c->message.signing() || c->policy;
    if (!needed && c->canSkip && (c->noReply & proto::kNrBody) == 0) return MilterStatus::kSkip;
    if (c->message.signing()) c->message.body(std::string_view(reinterpret_cast<const char*>(data), len));
    return answerStep(ctx, c, proto::kNrBody, Verdict::next());
  });
}

// Adds policyd's PREPEND fields (LF-separated) on top and quarantines on HOLD.
MilterStatus applyPolicyExtras(MilterCtx& ctx, Connection* c, const MilterAction& a) {
  for (auto field : split(a.prepend, '\n')) {
    if (field.empty()) continue;
    size_t colon = field.find(':');
    std::string name(trim(field.substr(0, colon)));
    std::string value = milterHeaderValue(field, c->leadingSpace);
    if (!ctx.insertHeader(0, name.c_str(), value.c_str())) {
      logMessage(LogLevel::kError, c, "inserting a header failed for a PREPEND field; answering tempfail");
      return MilterStatus::kTempfail;
    }
  }
  if (a.hold) {
    ++gStats.held;
    if (!c->canQuarantine) {
      logMessage(LogLevel::kWarning, c,
                 "policy answered HOLD but the MTA does not offer quarantine; message tempfailed");
      return MilterStatus::kTempfail;
    }
    std::string reason = a.reason.empty() ? std::string("held by policy") : a.reason;
    if (!ctx.quarantine(reason.c_str())) {
      logMessage(LogLevel::kError, c, "quarantine failed; answering tempfail");
      return MilterStatus::kTempfail;
    }
    logMessage(LogLevel::kInfo, c, "held (quarantined) message from <" + c->message.envelopeFrom() + ">: " + reason);
  }
  return MilterStatus::kContinue;
}

// Removes every identity header the client sent (highest index first, so the lower indexes stay
// valid) and adds one naming the SASL login when the session authenticated.
MilterStatus applyIdentityHeader(MilterCtx& ctx, Connection* c) {
  const IdentityHeader& id = c->identity;
  if (!id.enabled()) return MilterStatus::kContinue;
  std::string name = id.name();
  if (id.instances() > 0) {
    if (!c->canChangeHeaders) {
      logMessage(LogLevel::kError, c,
                 "cannot remove " + name + " (the MTA did not offer proto::kChangeHeaders); answering tempfail");
      return MilterStatus::kTempfail;
    }
    for (int i = id.instances(); i >= 1; --i) {
      if (!ctx.changeHeader(name.c_str(), i, nullptr)) {
        logMessage(LogLevel::kError, c, "deleting a header failed removing " + name + "; answering tempfail");
        return MilterStatus::kTempfail;
      }
    }
    logMessage(LogLevel::kInfo, c,
               "removed " + std::to_string(id.instances()) + " " + name + " field(s) sent by the client of <" +
                   c->message.envelopeFrom() + ">" + (id.value().empty() ? "" : " user=" + id.value()));
  }
  if (!id.value().empty()) {
    std::string value = (c->leadingSpace ? " " : "") + id.value();
    if (!ctx.addHeader(name.c_str(), value.c_str())) {
      logMessage(LogLevel::kError, c, "adding a header failed for " + name + "; answering tempfail");
      return MilterStatus::kTempfail;
    }
  }
  return MilterStatus::kContinue;
}

MilterStatus onEndOfMessage(MilterCtx& ctx) {
  return guarded("end of message", [&] {
    Connection* c = connection(ctx);
    learnQueueId(ctx, c);
    if (c->deferred) {  // a no-reply step decided (or failed): its verdict is the answer
      Verdict v = takeDeferred(c);
      c->message.beginMessage("", "");
      return answer(ctx, v);
    }
    MilterAction policy;
    if (c->policy) {
      ++gStats.policyQueries;
      policy = c->envelope.endOfMessage(*c->policy, c->bytes);
      if (policy.verdict.kind != Verdict::Kind::kContinue) {
        if (policy.verdict.kind != Verdict::Kind::kDiscard) ++gStats.policyRefusals;
        c->message.beginMessage("", "");
        return answer(ctx, policy.verdict);
      }
    }
    std::vector<std::string> fields;
    Verdict v = c->message.endOfMessage(&fields);
    if (v.kind != Verdict::Kind::kContinue) return answer(ctx, v);
    for (auto it = fields.rbegin(); it != fields.rend(); ++it) {  // index 0: spec order, top down
      std::string value = milterHeaderValue(*it, c->leadingSpace);
      if (!ctx.insertHeader(0, "DKIM-Signature", value.c_str())) {
        logMessage(LogLevel::kError, c,
                   "inserting a header failed for <" + c->message.envelopeFrom() + ">; answering tempfail");
        return MilterStatus::kTempfail;
      }
    }
    if (MilterStatus r = applyIdentityHeader(ctx, c); r != MilterStatus::kContinue) return r;
    if (MilterStatus r = applyPolicyExtras(ctx, c, policy); r != MilterStatus::kContinue) return r;
    if (!fields.empty()) {
      ++gStats.signedMessages;
      gStats.signatures += fields.size();
      logMessage(LogLevel::kInfo, c,
                 "signed message from <" + c->message.envelopeFrom() + "> user=" + c->message.authUser() +
                     " signatures=" + std::to_string(fields.size()));
    }
    return MilterStatus::kContinue;
  });
}

MilterStatus onAbort(MilterCtx& ctx) {
  return guarded("abort", [&] {
    Connection* c = connection(ctx);
    c->message.beginMessage("", "");
    c->deferred.reset();
    c->envelope.abort();
    c->setQueueId("");
    return MilterStatus::kContinue;
  });
}

MilterStatus onClose(MilterCtx& ctx) {
  return guarded("close", [&] {
    delete static_cast<Connection*>(ctx.priv());
    ctx.setPriv(nullptr);
    return MilterStatus::kContinue;
  });
}

}  // namespace

Status prepareSocket(const std::string& listen) {
  std::string path;
  if (startsWith(listen, "unix:")) path = listen.substr(5);
  else if (startsWith(listen, "local:")) path = listen.substr(6);
  else return okStatus();
  size_t slash = path.rfind('/');
  std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i < dir.size() && dir[i] != '/') continue;
    std::string part = dir.substr(0, i);
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) {
      return makeError("milter.listen: cannot create directory " + part + ": " + std::strerror(errno));
    }
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return makeError("milter.listen: " + path + " exists and is not a socket");
    if (::unlink(path.c_str()) != 0) {
      return makeError("milter.listen: cannot remove stale socket " + path + ": " + std::strerror(errno));
    }
  }
  return okStatus();
}

void logListening(const std::string& listen, const char* engine) {
  auto st = currentState();
  logInfo("listening on " + listen + " (" + engine + "), " + std::to_string(st->signing->keyCount()) + " DKIM keys" +
          (st->policy ? ", envelope checks by sluice-policyd at " + st->config->milter.policyService : ""));
}

Result<std::shared_ptr<const MilterState>> buildState(std::shared_ptr<const config::Config> cfg,
                                                      const MilterState* previous) {
  auto st = std::make_shared<MilterState>();
  auto signing = Signing::build(cfg->dkim);
  if (!signing) return signing.error();
  st->signing = std::move(signing.value());
  st->identities = std::make_unique<IdentityMap>(cfg->identities);
  const auto& m = cfg->milter;
  if (!m.policyService.empty()) {
    const config::MilterConfig* old = previous && previous->config ? &previous->config->milter : nullptr;
    if (old && previous->policy && old->policyService == m.policyService && old->policyTimeoutMs == m.policyTimeoutMs &&
        old->policyDefaultAction.text == m.policyDefaultAction.text) {
      st->policy = previous->policy;
    } else {
      PolicyClient::Options o;
      o.address = m.policyService;
      o.timeoutMs = static_cast<int>(m.policyTimeoutMs);
      o.defaultAction = m.policyDefaultAction.text;
      o.maxIdle = 256;
      st->policy = std::make_shared<PolicyClient>(o);
    }
  }
  st->config = std::move(cfg);
  return std::shared_ptr<const MilterState>(std::move(st));
}

void installState(std::shared_ptr<const MilterState> state) {
  std::lock_guard<std::mutex> lock(gStateMu);
  gState = std::move(state);
}

std::shared_ptr<const MilterState> currentState() {
  std::lock_guard<std::mutex> lock(gStateMu);
  return gState;
}

MilterStats& stats() { return gStats; }

std::string renderMetrics() {
  std::string out;
  auto m = [&](const char* name, const char* type, const char* help, const std::atomic<uint64_t>& v) {
    net::appendMetric(&out, name, type, help, static_cast<double>(v.load()));
  };
  m("sluice_milter_connections_total", "counter", "Milter connections (SMTP sessions) seen.", gStats.connections);
  m("sluice_milter_messages_total", "counter", "Messages started (MAIL FROM).", gStats.messages);
  m("sluice_milter_signed_messages_total", "counter", "Messages signed.", gStats.signedMessages);
  m("sluice_milter_signatures_total", "counter", "DKIM-Signature fields added.", gStats.signatures);
  m("sluice_milter_rejected_ownership_total", "counter", "Messages or recipients refused with 5.7.1.",
    gStats.rejectedOwnership);
  m("sluice_milter_rejected_malformed_total", "counter", "Messages refused with 5.6.0 (From: count, header).",
    gStats.rejectedMalformed);
  m("sluice_milter_tempfailed_total", "counter", "Temporary failures answered.", gStats.tempfailed);
  m("sluice_milter_policy_queries_total", "counter", "Questions asked of sluice-policyd.", gStats.policyQueries);
  m("sluice_milter_policy_refusals_total", "counter", "Refusals answered by sluice-policyd.", gStats.policyRefusals);
  m("sluice_milter_held_total", "counter", "Messages quarantined on HOLD.", gStats.held);
  m("sluice_milter_reloads_total", "counter", "Configurations reloaded (SIGHUP).", gStats.reloads);
  m("sluice_milter_reload_failures_total", "counter", "Reloads refused (the old configuration kept).",
    gStats.reloadFailures);
  auto st = currentState();
  net::appendMetric(&out, "sluice_milter_dkim_keys", "gauge", "DKIM keys loaded.",
                    st && st->signing ? static_cast<double>(st->signing->keyCount()) : 0.0);
  return out;
}

const MilterCallbacks& filterCallbacks() {
  static const MilterCallbacks kCallbacks = {onNegotiate, onConnect,      onHelo,  onEnvFrom,        onEnvRcpt, onHeader,
                                             onEndOfHeaders, onBody, onEndOfMessage, onAbort, onClose};
  return kCallbacks;
}

}  // namespace sluice::milter
