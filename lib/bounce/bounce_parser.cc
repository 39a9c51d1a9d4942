// bounce_parser.cc - BounceParser: loads the rules, runs the format readers of extract.h over a
// parsed message and classifies every recipient.
//
// Classification of one recipient (rules.h names the directives):
//  1. the status code: an enhanced code in the diagnostic that names a precise condition
//     (X.Y.Z with Y,Z > 0) replaces a vaguer Status field; "2." means delivered;
//  2. the text: every "rule" pattern is matched at once against the lower-cased diagnostic; a
//     decisive rule wins at once, else the matched reason with the best "order" priority;
//  3. the status reason ("status" table) competes with the text reasons by the same priority,
//     unless it is "weak" (then it is used only without a text match) or must "yield";
//  4. nothing yet: the same text rules over the whole human-readable report; then the status
//     class (X.6 contenterror, X.7 securityerror), the DSN action (delayed: expired), a
//     diagnostic type (x-unix: mailererror); a diagnostic nobody understood is "onhold", no
//     diagnostic at all "undefined".
// hard/soft follows the reason ("hard", "none"; notaccept is soft for 4xx codes). When the
// message gives no status code, a pseudo code ("pseudo") is reported and statusDerived is set.
#include <fstream>
#include <optional>
#include <sstream>

#include "base/strings.h"
#include "bounce/bounce.h"
#include "bounce/extract.h"
#include "bounce/rules.h"

namespace sluice::bounce {

const char* toString(Kind k) {
  switch (k) {
    case Kind::kBounce: return "bounce";
    case Kind::kComplaint: return "complaint";
    case Kind::kAutoReply: return "autoreply";
    case Kind::kNotBounce: return "not-a-bounce";
    case Kind::kUnparseable: return "unparseable";
  }
  return "?";
}

BounceParser::BounceParser(std::unique_ptr<RuleSet> rules) : rules_(std::move(rules)) {
  limits.maxBytes = 16u << 20;  // the report parts come first; returned content is not needed
  limits.parseNestedBodies = false;
  limits.borrowInput = true;  // parseDepth keeps its input alive while the Message lives
}
BounceParser::~BounceParser() = default;

Result<std::shared_ptr<const BounceParser>> BounceParser::fromText(std::string_view text,
                                                                   const std::string& sourceName) {
  auto rs = RuleSet::parse(text, sourceName);
  if (!rs) return rs.error();
  return std::shared_ptr<const BounceParser>(new BounceParser(std::move(rs.value())));
}

Result<std::shared_ptr<const BounceParser>> BounceParser::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return makeError(path + ": cannot read the bounce rules file");
  std::stringstream ss;
  ss << in.rdbuf();
  return fromText(ss.str(), path);
}

std::string defaultRulesPath() {
  if (const char* e = std::getenv("SLUICE_BOUNCE_RULES"); e && *e) return e;
  for (const char* p : {"/etc/sluice/bounce-rules.conf", "/usr/share/sluice/bounce-rules.conf",
                        "/usr/local/share/sluice/bounce-rules.conf"}) {
    if (std::ifstream(p).good()) return p;
  }
#ifdef SLUICE_SOURCE_RULES
  return SLUICE_SOURCE_RULES;
#else
  return "/etc/sluice/bounce-rules.conf";
#endif
}

namespace {

bool preciseCode(std::string_view c) {
  return c.size() >= 5 && (c[0] == '4' || c[0] == '5') && c[2] != '0' && c[4] != '0';
}

// The best reason among the rule hits: a decisive rule first, else by priority, then file order.
// A hit's reason may be demoted (rules "demote") by the failed command and the status reason.
struct Pick {
  const Rule* rule = nullptr;
  std::string reason;
  bool decisive = false;  // the rule is decisive, and the report's lhost lets it be
};

// generic() and rhost() are asked only for a decisive rule that depends on them.
template <typename Generic, typename Rhost>
Pick bestRule(const RuleSet& rs, const std::vector<int>& hits, std::string_view command,
              std::string_view statusReason, const Generic& generic, const Rhost& rhost) {
  Pick best;
  for (int i : hits) {
    const Rule& r = rs.reasonRules()[static_cast<size_t>(i)];
    bool decisive = r.decisive && (r.rhost.empty() ? r.everywhere || !generic() : r.rhost == rhost());
    // A generic wording (not decisive) with no known command counts as "not RCPT" for the
    // demotion: as Sisimai, only an MTA-specific wording, a RCPT failure or the status code
    // itself makes "user unknown" a missing mailbox rather than a filter's refusal.
    std::string_view cmd = command.empty() && !decisive ? std::string_view("?") : command;
    std::string reason = rs.demoted(r.reason, cmd, statusReason);
    bool take = !best.rule;
    if (!take && decisive != best.decisive) {
      take = decisive;
    } else if (!take) {
      int pr = rs.priority(reason), pb = rs.priority(best.reason);
      take = pr < pb || (pr == pb && r.line < best.rule->line);
    }
    if (take) best = Pick{&r, reason, decisive};
  }
  return best;
}

bool temporaryText(const RuleSet& rs, const Recipient& r, std::string_view lower) {
  if (!r.status.empty()) return r.status[0] == '4';
  if (!r.replyCode.empty()) return r.replyCode[0] == '4';
  return lower.find("temporar") != std::string_view::npos || lower.find("persistent") != std::string_view::npos ||
         rs.matchTemporary(lower);
}

}  // namespace

// Refused at the greeting or EHLO/HELO, for reasons nobody wrote down: the client was refused.
bool BounceParser::helloRefused(Recipient& r, const Context& context, const RuleSet& rs) const {
  if (r.smtpCommand.empty() && !context.text().empty()) r.smtpCommand = context.smtpCommand(rs);
  return r.smtpCommand == "HELO" || r.smtpCommand == "EHLO";
}

std::string_view BounceParser::Context::text() const { return env ? env->text() : raw; }

const std::string& BounceParser::Context::lowerText() const {
  if (!lowered) {
    lowered = true;
    lower = detail::collapseLower(text(), kMaxContext);
  }
  return lower;
}

const std::vector<int>& BounceParser::Context::reasonHits(const RuleSet& rs) const {
  if (!scanned) {
    scanned = true;
    reasons = rs.scan(lowerText()).reasons;
  }
  return reasons;
}

const std::string& BounceParser::Context::lhost(const RuleSet& rs) const {
  if (!named) {
    named = true;
    if (headers) mta = rs.lhost(*headers);
  }
  return mta;
}

bool BounceParser::Context::generic(const RuleSet& rs) const { return rs.isGeneric(lhost(rs)); }

const std::string& BounceParser::Context::smtpCommand(const RuleSet& rs) const {
  if (!commanded) {
    commanded = true;
    command = rs.smtpCommand(lowerText());
  }
  return command;
}

void BounceParser::classify(Recipient& r, std::string_view context) const {
  Context ctx;
  ctx.raw = context;
  classifyIn(r, ctx);
}

void BounceParser::classifyIn(Recipient& r, const Context& context) const {
  const RuleSet& rs = *rules_;
  std::string lower = detail::collapseLower(r.diagnostic);
  std::string found = findStatusCode(lower);
  bool vague = r.status.size() >= 5 && r.status[2] == '0' && r.status[4] == '0' && r.status.size() == 5;
  bool better = !found.empty() && found != r.status && (preciseCode(found) || (vague && found[2] != '0'));
  // As Sisimai does: a precise code in the diagnostic wins over the Status field.
  if (r.status.empty() || (better && (preciseCode(found) || !preciseCode(r.status)))) {
    if (!found.empty()) r.status = found;
  }
  if (r.replyCode.empty()) r.replyCode = findReplyCode(lower);
  RuleSet::Hits hits = rs.scan(lower);
  if (r.smtpCommand.empty()) r.smtpCommand = hits.command;
  // The whole text's SMTP command matters only when a matched reason could be demoted.
  if (r.smtpCommand.empty()) {
    bool demotable = false;
    for (int i : hits.reasons) demotable = demotable || rs.canDemote(rs.reasonRules()[static_cast<size_t>(i)].reason);
    if (demotable && !context.text().empty()) r.smtpCommand = context.smtpCommand(rs);
  }
  std::string hint;
  if (r.reason.empty()) hint = std::move(r.rule), r.rule.clear();  // a reader's hint ("type:x-unix")
  auto generic = [&] { return context.generic(rs); };
  std::optional<std::string> rhostName;  // the recipient's provider, once asked
  auto rhost = [&]() -> const std::string& {
    if (!rhostName) {
      size_t at = r.recipient.rfind('@');
      rhostName = rs.rhost(r.remoteMta, at == std::string::npos ? std::string_view() : std::string_view(r.recipient).substr(at + 1));
    }
    return *rhostName;
  };
  if (r.reason.empty() && startsWith(r.status, "2.")) {
    r.reason = "delivered";
    r.rule = "status:" + r.status;
  }
  if (r.reason.empty()) {
    std::string sReason = rs.statusReason(r.status);
    Pick best = bestRule(rs, hits.reasons, r.smtpCommand, sReason, generic, rhost);
    bool useStatus = !sReason.empty() && !(best.rule && rs.isWeak(sReason));
    if (useStatus && best.rule) {
      useStatus = rs.prefers(sReason, best.reason) ||
                  (!best.decisive && !rs.yields(sReason, best.reason, r.smtpCommand) &&
                   rs.priority(sReason) <= rs.priority(best.reason));
    }
    if (useStatus) {
      r.reason = sReason;
      r.rule = "status:" + r.status;
    } else if (best.rule) {
      r.reason = best.reason;
      r.rule = best.rule->name;
    }
  }
  if (r.reason.empty() && !context.text().empty()) {
    Pick best = bestRule(rs, context.reasonHits(rs), r.smtpCommand, "", generic, rhost);
    if (best.rule) {
      r.reason = best.reason;
      r.rule = "context:" + best.rule->name;
    }
  }
  if (r.reason.empty()) {
    if (r.status.size() > 2 && r.status[2] == '6') r.reason = "contenterror", r.rule = "fallback:x.6";
    else if (r.status.size() > 2 && r.status[2] == '7') r.reason = "securityerror", r.rule = "fallback:x.7";
    else if (r.action == "delayed") r.reason = "expired", r.rule = "fallback:delayed";
    else if (helloRefused(r, context, rs)) r.reason = "blocked", r.rule = "fallback:refused-at-hello";
    else if (startsWith(hint, "type:")) r.reason = "mailererror", r.rule = "fallback:" + hint.substr(5);
    else if (!lower.empty()) r.reason = "onhold", r.rule = "fallback:unrecognised";
    else r.reason = "undefined", r.rule = "fallback:empty";
  }
  if (r.reason5.empty()) {
    r.reason5 = r.reason;
    const Rule* best5 = nullptr;
    for (int i : hits.reasons5) {
      const Rule& x = rs.reason5Rules()[static_cast<size_t>(i)];
      if (!best5 || x.line < best5->line) best5 = &x;
    }
    if (best5) r.reason5 = best5->reason;
  }
  if (rs.isNone(r.reason)) {
    r.hard = -1;
  } else if (r.reason == "notaccept") {
    r.hard = (startsWith(r.status, "4") || startsWith(r.replyCode, "4")) ? 0 : 1;
  } else {
    r.hard = rs.isHard(r.reason) ? 1 : 0;
  }
  if (r.status.empty() && !rs.isNone(r.reason)) {
    r.status = rs.pseudoStatus(r.reason, temporaryText(rs, r, lower));
    r.statusDerived = true;
  }
}

namespace {

bool binaryJunk(std::string_view raw) {
  size_t n = std::min<size_t>(raw.size(), 1024);
  size_t bad = detail::controlByteCount(raw.substr(0, n));  // other than TAB, LF and CR
  return n == 0 || bad * 10 > n;
}

std::string messageId(std::string_view v) {
  std::string s(trim(v));
  size_t a = s.find('<'), b = s.find('>', a == std::string::npos ? 0 : a);
  if (a != std::string::npos && b != std::string::npos) return s.substr(a + 1, b - a - 1);
  return s.substr(0, s.find(' '));
}

const mime::Part* attachedMessage(const mime::Part& p, size_t depth) {
  if (depth > 8) return nullptr;
  if (p.type == "message/rfc822") return &p;
  for (const auto& c : p.children) {
    if (const mime::Part* m = attachedMessage(c, depth + 1)) return m;
  }
  return nullptr;
}

// The lines of a delivery agent's refusal: from the line after its marker to the first blank
// line (at most 2 KB), whitespace collapsed.
std::string mdaLines(std::string_view text, size_t at) {
  size_t eol = text.find('\n', at);
  if (eol == std::string_view::npos) return {};
  std::string_view rest = text.substr(eol + 1, 2048);
  size_t end = 0;
  while (end < rest.size()) {
    size_t nl = rest.find('\n', end);
    std::string_view line = rest.substr(end, nl == std::string_view::npos ? std::string_view::npos : nl - end);
    if (trim(line).empty()) break;
    end = nl == std::string_view::npos ? rest.size() : nl + 1;
  }
  return collapseSpace(rest.substr(0, end));
}

}  // namespace

Report BounceParser::parse(std::string_view raw, bool nameMta) const { return parseDepth(raw, 0, nameMta); }

Report BounceParser::parseDepth(std::string_view raw, int depth, bool nameMta) const {
  Report rep;
  if (binaryJunk(raw)) {
    rep.kind = Kind::kUnparseable;
    rep.problem = raw.empty() ? "empty input" : "binary data, not a mail message";
    return rep;
  }
  auto msg = mime::parse(raw, limits);
  rep.truncated = msg->truncated();
  if (msg->root().headers.empty()) {
    rep.kind = Kind::kUnparseable;
    rep.problem = "no header block";
    return rep;
  }
  detail::Envelope env = detail::inspect(*msg, *rules_);
  rep.subject = env.subject;
  rep.from = env.from;
  // A DSN or complaint part decides first; then an auto-reply its headers declare (its Subject
  // or quoted text may read like a bounce); then the text-bounce heuristics; last, an auto-reply
  // known by its Subject only.
  bool ok = detail::readArf(env, *rules_, rep) || detail::readDsn(env, *rules_, rep) ||
            detail::readSesJson(env, rep) ||
            (detail::declaredAutoReply(env, *rules_) && detail::readAutoReply(env, *rules_, rep)) ||
            (detail::looksLikeBounce(env, *rules_) && detail::readText(env, *rules_, rep)) ||
            detail::readAutoReply(env, *rules_, rep);
  // A text bounce that names no recipient in its text (the address came from the returned
  // message's To:) may be a wrapper around the real report: Trend Micro's IMSS notice "The
  // following addresses had permanent delivery errors" with an empty list and the MTA's DSN
  // attached as the "original message".
  bool wrapper = ok && rep.format == "text" && depth < 2 && !rep.recipients.empty() &&
                 env.lowerText().find(toLower(rep.recipients[0].recipient)) == std::string::npos;
  if ((!ok || wrapper) && depth < 2) {
    // A forwarded bounce: the report is the attached message.
    const mime::Part* inner = attachedMessage(msg->root(), 0);
    if (inner) {
      Report in = parseDepth(std::string_view(inner->body), depth + 1, nameMta);
      if (in.kind == Kind::kBounce || in.kind == Kind::kComplaint) return in;
    }
  }
  if (!ok) {
    rep.kind = Kind::kNotBounce;
    rep.problem = "no delivery report, complaint or bounce wording found";
    rep.recipients.clear();
  }
  Context ctx;
  if (rep.kind == Kind::kBounce) ctx.env = &env;
  ctx.headers = &msg->root().headers;
  // The report's own statement of why, for all its recipients (EZweb's "The user(s) account is
  // disabled." above a generic "550 user unknown"). The gates look at the uncut text (what
  // cannot match there cannot match in its beginning), so that a DSN is seldom cut at all.
  if (rep.kind == Kind::kBounce && rules_->mayHaveHeadline(env.fullText)) {
    if (const Rule* h = rules_->headline(ctx.lowerText())) {
      for (Recipient& r : rep.recipients) {
        r.reason = h->reason;
        r.rule = "headline:" + h->name;
      }
    }
  }
  // A DSN written around a delivery agent's refusal (dovecot's "Your message to <x> was
  // automatically rejected:"): the agent's words say what happened; the DSN fields are the
  // gateway's guess.
  if (rep.format == "rfc3464" && rules_->matchSender(env.fromRaw)) {
    std::string agent;
    size_t at = rules_->mayHaveMda(env.fullText) ? rules_->findMda(env.text(), &agent) : std::string_view::npos;
    std::string said = at == std::string_view::npos ? std::string() : mdaLines(env.text(), at);
    if (!said.empty() && (rep.recipients.empty() || !startsWith(rep.recipients[0].rule, "headline:"))) {
      Recipient probe;
      probe.diagnostic = said;
      classify(probe, {});
      if (!startsWith(probe.rule, "fallback:") && !startsWith(probe.rule, "status:")) {
        for (Recipient& r : rep.recipients) {
          r.reason = probe.reason;
          r.rule = "mda:" + agent + ":" + probe.rule;
          if (r.replyCode.empty()) r.replyCode = findReplyCode(detail::collapseLower(r.diagnostic));
          r.diagnostic = said;
          r.smtpCommand.clear();
        }
      }
    }
  }
  for (Recipient& r : rep.recipients) {
    if (rep.kind == Kind::kComplaint) {
      r.reason = r.reason5 = "feedback";
      r.rule = "arf:" + r.feedbackType;
    }
    classifyIn(r, ctx);
  }
  if (std::string id = messageId(env.original().get("message-id")); !id.empty() || rep.originalMessageId.empty()) {
    rep.originalMessageId = std::move(id);  // a reader's (SES JSON's mail.messageId) stays when none is attached
  }
  rep.originalFrom = env.originalFrom;
  if (rep.originalReturnPath.empty()) rep.originalReturnPath = env.originalReturnPath;
  rep.originalTo = extractAddress(env.original().get("to"));
  if (rep.originalFrom.empty() && rep.kind == Kind::kBounce) rep.originalFrom = env.to;
  if (nameMta || ctx.named) rep.mta = ctx.lhost(*rules_);
  return rep;
}

std::vector<Report> BounceParser::parseFile(std::string_view raw, bool nameMta) const {
  std::vector<Report> out;
  for (std::string_view m : mime::splitMbox(raw)) out.push_back(parse(m, nameMta));
  if (out.empty()) {
    Report r;
    r.kind = Kind::kUnparseable;
    r.problem = "empty input";
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace sluice::bounce
