// milter_callbacks.cc - libmilter callbacks: each turns the event into a MessageContext /
// EnvelopeChecks call and its Verdict into an SMFIS_* code. libmilter gives callbacks no user
// pointer, so the current MilterState is one file-local shared_ptr behind a mutex; each
// connection holds its own reference and refreshes it at MAIL FROM.
#include "milter_callbacks.h"

#include <arpa/inet.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>
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
  bool leadingSpace = false;  // SMFIP_HDR_LEADSPC negotiated: header values keep their first byte
  bool canQuarantine = false;
  bool canChangeHeaders = false;  // SMFIF_CHGHDRS offered: identity headers can be removed
  bool canSkip = false;           // SMFIP_SKIP negotiated: the rest of a body nobody needs is skipped
  unsigned long noReply = 0;      // SMFIP_NR_* negotiated: those steps answer SMFIS_NOREPLY
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

Connection* connection(SMFICTX* ctx) {
  auto* c = static_cast<Connection*>(smfi_getpriv(ctx));
  if (c == nullptr) {
    c = new Connection(currentState());
    smfi_setpriv(ctx, c);
    ++gStats.connections;
  }
  return c;
}

std::string macro(SMFICTX* ctx, const char* name) {
  const char* v = smfi_getsymval(ctx, const_cast<char*>(name));
  return v ? v : "";
}

// {i}, the queue id, at each event that may bring it first: Sendmail sends it from MAIL FROM on;
// Postfix once its queue file exists - with smtpd_delay_open_until_valid_rcpt = yes (the default)
// from the second RCPT, and always at end of headers and end of message.
void learnQueueId(SMFICTX* ctx, Connection* c) {
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

sfsistat answer(SMFICTX* ctx, const Verdict& v) {
  switch (v.kind) {
    case Verdict::Kind::kContinue: return SMFIS_CONTINUE;
    case Verdict::Kind::kAccept: return SMFIS_ACCEPT;
    case Verdict::Kind::kDiscard: return SMFIS_DISCARD;
    case Verdict::Kind::kReject:
      if (v.xcode == "5.7.1") ++gStats.rejectedOwnership;
      if (v.xcode == "5.6.0") ++gStats.rejectedMalformed;
      break;
    case Verdict::Kind::kTempfail: ++gStats.tempfailed; break;
  }
  if (!v.rcode.empty()) {
    std::string text = escapePercent(v.text);
    smfi_setreply(ctx, const_cast<char*>(v.rcode.c_str()), const_cast<char*>(v.xcode.c_str()), text.data());
  }
  return v.kind == Verdict::Kind::kReject ? SMFIS_REJECT : SMFIS_TEMPFAIL;
}

// The one catch-all of every callback.
template <class F>
sfsistat guarded(const char* where, F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    logError(std::string("milter ") + where + ": " + e.what() + "; answering tempfail");
  } catch (...) {
    logError(std::string("milter ") + where + ": unknown exception; answering tempfail");
  }
  return SMFIS_TEMPFAIL;
}

// The catch-all of a callback whose step may be negotiated without a reply (SMFIP_NR_* `step`): no
// verdict can be given there, so a failure is remembered and answered (tempfail) at the next step
// that replies (end of message at the latest).
template <class F>
sfsistat guardedNoReply(SMFICTX* ctx, unsigned long step, const char* where, F&& f) {
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
    auto* c = static_cast<Connection*>(smfi_getpriv(ctx));
    // (Were the step without a reply after all, libmilter would drop this answer.)
    if (c == nullptr || (c->noReply & step) == 0) return SMFIS_TEMPFAIL;
    if (!c->deferred) c->deferred = Verdict::tempfail("Local error, try again later");
  } catch (...) {
    return SMFIS_TEMPFAIL;
  }
  return SMFIS_NOREPLY;
}

Verdict takeDeferred(Connection* c) {
  Verdict v = std::move(*c->deferred);
  c->deferred.reset();
  return v;
}

// The answer of `step`: SMFIS_NOREPLY when it was negotiated without a reply (a verdict other than
// continue is then kept for the next step that replies), else the verdict's code.
sfsistat answerStep(SMFICTX* ctx, Connection* c, unsigned long step, Verdict v) {
  if ((c->noReply & step) == 0) return answer(ctx, v);
  if (v.kind != Verdict::Kind::kContinue && !c->deferred) c->deferred = std::move(v);
  return SMFIS_NOREPLY;
}

sfsistat onNegotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                     unsigned long* pf0, unsigned long* pf1, unsigned long* pf2, unsigned long* pf3) {
  return guarded("negotiate", [&] {
    if ((f0 & SMFIF_ADDHDRS) == 0) return SMFIS_REJECT;  // cannot sign without adding headers
    Connection* c = connection(ctx);
    bool policy = c->state->policy != nullptr;
    bool identity = c->state->config && !c->state->config->relayd.identityHeader.empty();
    if (identity && (f0 & SMFIF_CHGHDRS) == 0) {
      // A forged identity header could not be removed: relayd would believe it.
      logError("the MTA does not let milters delete header fields (SMFIF_CHGHDRS); relayd.identity_header " +
               c->state->config->relayd.identityHeader + " cannot be protected; refusing the connection");
      return SMFIS_REJECT;
    }
    *pf0 = SMFIF_ADDHDRS | (f0 & SMFIF_CHGHDRS) | (f0 & SMFIF_SETSYMLIST) | (f0 & SMFIF_QUARANTINE);
    // No reply for header fields, end of headers and body chunks: the MTA streams the message
    // content without waiting, from the first header to end of message (libmilter fakes these
    // flags for an MTA that lacks them). What end of headers decides is answered at end of message
    // instead - the same for the client: both Postfix and Sendmail run the content steps after the
    // whole message has been received.
    unsigned long noReply = SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY;
    // MAIL FROM too when it can only continue: every message followed to its end (policyd, the
    // identity header) or signed even unauthenticated - it never answers accept early then.
    if (policy || identity || c->state->signing->signUnauthenticated()) noReply |= SMFIP_NR_MAIL;
    unsigned long want = SMFIP_NODATA | SMFIP_NOUNKNOWN | SMFIP_HDR_LEADSPC | SMFIP_SKIP | noReply;
    if (!policy) want |= SMFIP_NOHELO | SMFIP_NORCPT;
    *pf1 = f1 & want;
    c->noReply = *pf1 & noReply;
    *pf2 = 0;
    *pf3 = 0;
    c->leadingSpace = (*pf1 & SMFIP_HDR_LEADSPC) != 0;
    c->canSkip = (*pf1 & SMFIP_SKIP) != 0;
    c->canQuarantine = (f0 & SMFIF_QUARANTINE) != 0;
    c->canChangeHeaders = (f0 & SMFIF_CHGHDRS) != 0;
    if (f0 & SMFIF_SETSYMLIST) {
      // These lists replace the MTA's for this milter: {i} wherever it may first be known.
      smfi_setsymlist(ctx, SMFIM_ENVFROM, const_cast<char*>("i {auth_authen} {auth_type}"));
      smfi_setsymlist(ctx, SMFIM_ENVRCPT, const_cast<char*>("i"));
      smfi_setsymlist(ctx, SMFIM_EOH, const_cast<char*>("i"));
      smfi_setsymlist(ctx, SMFIM_EOM, const_cast<char*>("i"));
    }
    return SMFIS_CONTINUE;
  });
}

sfsistat onConnect(SMFICTX* ctx, char* hostname, _SOCK_ADDR* addr) {
  return guarded("connect", [&] {
    Connection* c = connection(ctx);
    std::string text;
    if (addr != nullptr && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6)) {
      char buf[INET6_ADDRSTRLEN] = {};
      const void* raw = addr->sa_family == AF_INET
                            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(addr)->sin_addr)
                            : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(addr)->sin6_addr);
      if (::inet_ntop(addr->sa_family, raw, buf, sizeof buf) != nullptr) text = buf;
      c->client = parseIp(text);
    }
    std::string name = hostname ? hostname : "";
    if (!name.empty() && name.front() == '[') name.clear();  // Sendmail's "[1.2.3.4]": no name
    c->envelope.connect(text, name);
    return SMFIS_CONTINUE;
  });
}

sfsistat onHelo(SMFICTX* ctx, char* helo) {
  return guarded("HELO", [&] {
    connection(ctx)->envelope.helo(helo ? helo : "");
    return SMFIS_CONTINUE;
  });
}

sfsistat onEnvFrom(SMFICTX* ctx, char** argv) {
  return guardedNoReply(ctx, SMFIP_NR_MAIL, "MAIL FROM", [&] {
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
    return answerStep(ctx, c, SMFIP_NR_MAIL, std::move(v));
  });
}

sfsistat onEnvRcpt(SMFICTX* ctx, char** argv) {
  return guarded("RCPT TO", [&] {
    Connection* c = connection(ctx);
    if (!c->policy) return SMFIS_CONTINUE;
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

sfsistat onHeader(SMFICTX* ctx, char* name, char* value) {
  return guardedNoReply(ctx, SMFIP_NR_HDR, "header", [&] {
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
      return answerStep(ctx, c, SMFIP_NR_HDR, Verdict::next());
    }
    return answerStep(ctx, c, SMFIP_NR_HDR, c->message.header(n, v));
  });
}

sfsistat onEndOfHeaders(SMFICTX* ctx) {
  return guardedNoReply(ctx, SMFIP_NR_EOH, "end of headers", [&] {
    Connection* c = connection(ctx);
    learnQueueId(ctx, c);
    if (c->deferred) return answerStep(ctx, c, SMFIP_NR_EOH, takeDeferred(c));  // decided already
    return answerStep(ctx, c, SMFIP_NR_EOH, c->message.endOfHeaders());
  });
}

sfsistat onBody(SMFICTX* ctx, unsigned char* data, size_t len) {
  return guardedNoReply(ctx, SMFIP_NR_BODY, "body", [&] {
    Connection* c = connection(ctx);
    c->bytes += len;
    if (c->deferred) return answerStep(ctx, c, SMFIP_NR_BODY, takeDeferred(c));  // decided already
    // Only the signer and policyd's size need the body; without them, skip to end of message
    // (not possible when body chunks have no reply: they are then read and ignored).
    bool needed = c->message.signing() || c->policy;
    if (!needed && c->canSkip && (c->noReply & SMFIP_NR_BODY) == 0) return SMFIS_SKIP;
    if (c->message.signing()) c->message.body(std::string_view(reinterpret_cast<const char*>(data), len));
    return answerStep(ctx, c, SMFIP_NR_BODY, Verdict::next());
  });
}

// Adds policyd's PREPEND fields (LF-separated) on top and quarantines on HOLD.
sfsistat applyPolicyExtras(SMFICTX* ctx, Connection* c, const MilterAction& a) {
  for (auto field : split(a.prepend, '\n')) {
    if (field.empty()) continue;
    size_t colon = field.find(':');
    std::string name(trim(field.substr(0, colon)));
    std::string value = milterHeaderValue(field, c->leadingSpace);
    if (smfi_insheader(ctx, 0, name.data(), value.data()) != MI_SUCCESS) {
      logMessage(LogLevel::kError, c, "smfi_insheader failed for a PREPEND field; answering tempfail");
      return SMFIS_TEMPFAIL;
    }
  }
  if (a.hold) {
    ++gStats.held;
    if (!c->canQuarantine) {
      logMessage(LogLevel::kWarning, c,
                 "policy answered HOLD but the MTA does not offer quarantine; message tempfailed");
      return SMFIS_TEMPFAIL;
    }
    std::string reason = a.reason.empty() ? std::string("held by policy") : a.reason;
    if (smfi_quarantine(ctx, reason.data()) != MI_SUCCESS) {
      logMessage(LogLevel::kError, c, "smfi_quarantine failed; answering tempfail");
      return SMFIS_TEMPFAIL;
    }
    logMessage(LogLevel::kInfo, c, "held (quarantined) message from <" + c->message.envelopeFrom() + ">: " + reason);
  }
  return SMFIS_CONTINUE;
}

// Removes every identity header the client sent (highest index first, so the lower indexes stay
// valid) and adds one naming the SASL login when the session authenticated.
sfsistat applyIdentityHeader(SMFICTX* ctx, Connection* c) {
  const IdentityHeader& id = c->identity;
  if (!id.enabled()) return SMFIS_CONTINUE;
  std::string name = id.name();
  if (id.instances() > 0) {
    if (!c->canChangeHeaders) {
      logMessage(LogLevel::kError, c,
                 "cannot remove " + name + " (the MTA did not offer SMFIF_CHGHDRS); answering tempfail");
      return SMFIS_TEMPFAIL;
    }
    for (int i = id.instances(); i >= 1; --i) {
      if (smfi_chgheader(ctx, name.data(), i, nullptr) != MI_SUCCESS) {
        logMessage(LogLevel::kError, c, "smfi_chgheader failed removing " + name + "; answering tempfail");
        return SMFIS_TEMPFAIL;
      }
    }
    logMessage(LogLevel::kInfo, c,
               "removed " + std::to_string(id.instances()) + " " + name + " field(s) sent by the client of <" +
                   c->message.envelopeFrom() + ">" + (id.value().empty() ? "" : " user=" + id.value()));
  }
  if (!id.value().empty()) {
    std::string value = (c->leadingSpace ? " " : "") + id.value();
    if (smfi_addheader(ctx, name.data(), value.data()) != MI_SUCCESS) {
      logMessage(LogLevel::kError, c, "smfi_addheader failed for " + name + "; answering tempfail");
      return SMFIS_TEMPFAIL;
    }
  }
  return SMFIS_CONTINUE;
}

sfsistat onEndOfMessage(SMFICTX* ctx) {
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
      if (smfi_insheader(ctx, 0, const_cast<char*>("DKIM-Signature"), value.data()) != MI_SUCCESS) {
        logMessage(LogLevel::kError, c,
                   "smfi_insheader failed for <" + c->message.envelopeFrom() + ">; answering tempfail");
        return SMFIS_TEMPFAIL;
      }
    }
    if (sfsistat r = applyIdentityHeader(ctx, c); r != SMFIS_CONTINUE) return r;
    if (sfsistat r = applyPolicyExtras(ctx, c, policy); r != SMFIS_CONTINUE) return r;
    if (!fields.empty()) {
      ++gStats.signedMessages;
      gStats.signatures += fields.size();
      logMessage(LogLevel::kInfo, c,
                 "signed message from <" + c->message.envelopeFrom() + "> user=" + c->message.authUser() +
                     " signatures=" + std::to_string(fields.size()));
    }
    return SMFIS_CONTINUE;
  });
}

sfsistat onAbort(SMFICTX* ctx) {
  return guarded("abort", [&] {
    Connection* c = connection(ctx);
    c->message.beginMessage("", "");
    c->deferred.reset();
    c->envelope.abort();
    c->setQueueId("");
    return SMFIS_CONTINUE;
  });
}

sfsistat onClose(SMFICTX* ctx) {
  return guarded("close", [&] {
    delete static_cast<Connection*>(smfi_getpriv(ctx));
    smfi_setpriv(ctx, nullptr);
    return SMFIS_CONTINUE;
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

Status runMilter(const std::string& listen) {
  static struct smfiDesc desc = {};
  desc.xxfi_name = const_cast<char*>("sluice-milter");
  desc.xxfi_version = SMFI_VERSION;
  desc.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE;
  desc.xxfi_connect = onConnect;
  desc.xxfi_helo = onHelo;
  desc.xxfi_envfrom = onEnvFrom;
  desc.xxfi_envrcpt = onEnvRcpt;
  desc.xxfi_header = onHeader;
  desc.xxfi_eoh = onEndOfHeaders;
  desc.xxfi_body = onBody;
  desc.xxfi_eom = onEndOfMessage;
  desc.xxfi_abort = onAbort;
  desc.xxfi_close = onClose;
  desc.xxfi_negotiate = onNegotiate;
  if (!currentState()) return makeError("runMilter: no state installed");
  if (Status st = prepareSocket(listen); !st) return st;
  if (smfi_setconn(const_cast<char*>(listen.c_str())) != MI_SUCCESS) {
    return makeError("milter.listen: libmilter refused \"" + listen + "\"");
  }
  if (smfi_register(desc) != MI_SUCCESS) return makeError("smfi_register failed");
  mode_t old = ::umask(0);  // the socket must be writable by the MTA's user; guard the directory
  int rc = smfi_opensocket(1);
  ::umask(old);
  if (rc != MI_SUCCESS) return makeError("cannot open milter socket " + listen);
  auto st = currentState();
  logInfo("listening on " + listen + ", " + std::to_string(st->signing->keyCount()) + " DKIM keys" +
          (st->policy ? ", envelope checks by sluice-policyd at " + st->config->milter.policyService : ""));
  if (smfi_main() != MI_SUCCESS) return makeError("smfi_main failed");
  return okStatus();
}

}  // namespace sluice::milter
