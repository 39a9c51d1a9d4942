// extract.cc - the readers of extract.h: find the failed recipients of a report and the raw
// facts about each (status, reply code, diagnostic, remote MTA). Classification is not done
// here (BounceParser::classify does it from the rules), so these readers only know formats:
//   DSN  (RFC 3464): a message/delivery-status part, or the same fields written in the text;
//   ARF  (RFC 5965): a message/feedback-report part;
//   text: a human-readable bounce (qmail, Exim, Sendmail, Exchange, webmail providers...):
//         the addresses in the text before the returned message, each with the text around it;
//   auto-reply (RFC 3834): Auto-Submitted/X-Autoreply headers or an auto-reply subject; one
//         its headers declare (declaredAutoReply) is read before the text heuristics.
#include "bounce/extract.h"

#include <algorithm>
#include <cstring>
#include <initializer_list>

#include <nlohmann/json.hpp>

#include "base/strings.h"

namespace sluice::bounce::detail {

namespace {

std::string firstAddress(std::string_view v) {
  size_t at, end;
  return addressAt(v, 0, &at, &end);
}

// The value without its type (a view into v).
std::string_view stripType(std::string_view v, std::string* type = nullptr) {
  // "rfc822; user@example.jp", "smtp; 550 ...", "dns; mx.example.jp"
  size_t semi = v.find(';');
  if (semi != std::string_view::npos && semi < 24) {
    std::string_view t = trim(v.substr(0, semi));
    bool token = !t.empty() && t.find(' ') == std::string_view::npos;
    if (token) {
      if (type) *type = toLower(t);
      return trim(v.substr(semi + 1));
    }
  }
  return trim(v);
}

// Text outside <...> tags, each tag replaced by one space (a '>' outside a tag too). The next
// '<' and the next '>' are found with memchr (HTML parts run to hundreds of KB).
std::string stripTags(std::string_view html) {
  std::string out;
  out.reserve(html.size());
  auto next = [&](char c, size_t from) -> size_t {
    if (from >= html.size()) return std::string_view::npos;
    const void* hit = std::memchr(html.data() + from, c, html.size() - from);
    return hit ? static_cast<size_t>(static_cast<const char*>(hit) - html.data()) : std::string_view::npos;
  };
  bool inTag = false;
  size_t run = 0;  // start of the current run of text outside tags
  size_t lt = next('<', 0), gt = next('>', 0);
  while (lt != std::string_view::npos || gt != std::string_view::npos) {
    size_t i = std::min(lt, gt);
    if (!inTag) out.append(html.substr(run, i - run));
    if (i == lt) {
      inTag = true;
      lt = next('<', i + 1);
    } else {
      inTag = false;
      out.push_back(' ');
      gt = next('>', i + 1);
    }
    run = i + 1;
  }
  if (!inTag) out.append(html.substr(run));
  return out;
}

// The first human-readable text part outside a returned message (views into the message).
void findText(const mime::Part& p, std::string_view& plain, const mime::Part*& html, size_t depth) {
  if (depth > 16) return;
  if (p.isMessage()) return;
  if (p.isMultipart()) {
    if (p.children.empty() && plain.empty()) plain = p.body;  // multipart without boundary
    for (const auto& c : p.children) findText(c, plain, html, depth + 1);
    return;
  }
  if (p.type == "text/plain" && plain.empty() && !trim(p.body).empty()) plain = p.body;
  if (p.type == "text/html" && !html) html = &p;
}

void findParts(const mime::Part& p, Envelope& env, size_t depth) {
  if (depth > 16) return;
  if ((p.type == "message/delivery-status" || p.type == "message/global-delivery-status") && !env.deliveryStatus) {
    env.deliveryStatus = &p;
  }
  if (p.type == "message/feedback-report" && !env.feedback) env.feedback = &p;
  if (p.isMessage()) {
    if (env.original().empty() && !p.children.empty()) env.originalPart = &p.children.front().headers;
    return;
  }
  for (const auto& c : p.children) findParts(c, env, depth + 1);
}

// Headers of a returned message written inline after the cut line (qmail, Exim, ...).
void inlineOriginal(std::string_view rest, mime::Fields& out) {
  static const char* kStarts[] = {"return-path:", "received:", "from:", "message-id:", "date:",
                                  "to:", "subject:", "mime-version:", "delivered-to:", "x-"};
  size_t pos = 0;
  int lines = 0;
  while (pos < rest.size() && lines < 200) {
    size_t eol = rest.find('\n', pos);
    if (eol == std::string_view::npos) eol = rest.size();
    std::string_view line = rest.substr(pos, eol - pos);
    for (const char* s : kStarts) {
      if (istartsWith(line, s)) {
        mime::parseFields(rest.substr(pos), out);
        return;
      }
    }
    pos = eol + 1;
    ++lines;
  }
}

// The first line that starts with each of fields (lower-case; case-insensitive), in one pass
// over the lines: at[i] for fields[i], npos for one no line starts with.
void findFieldLines(std::string_view t, std::initializer_list<std::string_view> fields, size_t* at) {
  size_t left = fields.size();
  for (size_t i = 0; i < fields.size(); ++i) at[i] = std::string_view::npos;
  size_t pos = 0;
  while (pos < t.size()) {
    size_t i = 0;
    for (std::string_view field : fields) {
      bool letter = !field.empty() && field[0] >= 'a' && field[0] <= 'z';
      if (at[i] == std::string_view::npos && (!letter || (t[pos] | 0x20) == field[0]) &&
          istartsWith(t.substr(pos), field)) {
        at[i] = pos;
        if (--left == 0) return;
      }
      ++i;
    }
    const char* nl = findNear(t.data() + pos, t.size() - pos, '\n');
    if (nl == nullptr) break;
    pos = static_cast<size_t>(nl - t.data()) + 1;
  }
}

// Offset of the first line that starts with field (case-insensitive), or npos.
size_t findFieldLine(std::string_view t, std::string_view field) {
  size_t at;
  findFieldLines(t, {field}, &at);
  return at;
}

size_t lineStart(std::string_view t, size_t off) {
  size_t nl = off == 0 ? std::string_view::npos : t.rfind('\n', off - 1);
  return nl == std::string_view::npos ? 0 : nl + 1;
}

// A mention of an address that is not a failed recipient: a sender, a header of the original.
bool senderContext(std::string_view lowerText, size_t at) {
  size_t ls = lineStart(lowerText, at);
  std::string_view before = lowerText.substr(ls, at - ls);
  // The address is a Message-ID's value ("Message-ID: <x@y>", "message-id=<x@y>"), not one named
  // in a sentence about a message id ("Duplicated Message-ID in <x@y>").
  if (size_t m = before.rfind("message-id"); m != std::string_view::npos &&
      before.find_first_not_of(" \t:=<\"'", m + 10) == std::string_view::npos) {
    return true;
  }
  for (std::string_view w : {"mail from", "from:", "reply-to", "sender", "envelope-from",
                             "return-path", "in-reply-to", "references", "x-", "smtp.mailfrom", "by ",
                             "contact", "write to", "questions to"}) {
    size_t f = before.find(w);
    if (f != std::string_view::npos && (w != "x-" || f == 0) && (w != "by " || f < 2)) return true;
  }
  return false;
}

}  // namespace

std::string_view Envelope::text() const {
  if (!cut) {
    cut = true;
    size_t at = rules ? rules->findCut(fullText) : std::string_view::npos;
    text_ = fullText.substr(0, std::min<size_t>(at, 64 * 1024));
  }
  return text_;
}

const std::string& Envelope::lowerText() const {
  if (!lowered) {
    lowered = true;
    lower_ = toLower(text());
  }
  return lower_;
}

Envelope inspect(const mime::Message& msg, const RuleSet& rules) {
  Envelope env;
  env.msg = &msg;
  const mime::Fields& h = msg.root().headers;
  env.fromRaw = mime::decodeWords(h.get("from"));
  env.from = firstAddress(env.fromRaw);
  env.to = firstAddress(h.get("to"));
  env.subject = mime::decodeWords(h.get("subject"));
  findParts(msg.root(), env, 0);
  std::string_view plain;
  const mime::Part* html = nullptr;
  findText(msg.root(), plain, html, 0);
  std::string_view text = plain;
  if (text.empty() && html) {
    env.ownedText = stripTags(html->body);
    text = env.ownedText;
  }
  if (text.empty() && !msg.root().isMultipart() && !msg.root().isMessage()) text = msg.root().body;
  text = text.substr(0, 256 * 1024);
  env.fullText = text;
  env.rules = &rules;
  if (env.original().empty()) {
    // No returned message part: its headers may be written inline after the cut line.
    size_t cut = rules.findCut(text);
    env.cut = true;
    if (cut != std::string::npos) {
      env.originalPart = nullptr;
      inlineOriginal(text.substr(cut), env.originalInline);
      text = text.substr(0, cut);
    }
    env.text_ = text.substr(0, 64 * 1024);
  }
  env.originalFrom = firstAddress(env.original().get("from"));
  env.originalReturnPath = firstAddress(env.original().get("return-path"));
  for (std::string a : {env.originalFrom, env.originalReturnPath, firstAddress(env.original().get("sender")),
                        firstAddress(env.original().get("reply-to"))}) {
    if (!a.empty()) {
      toLowerInPlace(a);
      env.notRecipients.insert(std::move(a));
    }
  }
  if (!env.from.empty()) env.notRecipients.insert(toLower(env.from));
  return env;
}

bool looksLikeBounce(const Envelope& env, const RuleSet& rules) {
  const mime::Fields& h = env.msg->root().headers;
  if (h.find("x-failed-recipients")) return true;
  if (rules.matchSender(env.fromRaw)) return true;
  if (rules.matchSubject(env.subject)) return true;
  return false;
}

std::string blockFor(std::string_view text, std::string_view lower, std::string_view addr,
                     const std::vector<std::string>& others) {
  std::string la = toLower(addr);
  size_t at = lower.find(la);
  if (at == std::string::npos) return "";
  size_t start = lineStart(lower, at);
  size_t end = lower.size();
  for (const std::string& o : others) {
    std::string lo = toLower(o);
    if (lo == la || lo.find(la) != std::string::npos || la.find(lo) != std::string::npos) continue;
    size_t f = lower.find(lo, at);
    if (f != std::string::npos) end = std::min(end, lineStart(lower, f));
  }
  if (end <= start) end = std::min(lower.size(), lower.find('\n', at) == std::string::npos ? lower.size() : lower.find('\n', at));
  return std::string(text.substr(start, end - start));
}

bool readArf(const Envelope& env, const RuleSet& rules, Report& out) {
  if (!env.feedback) {
    // A complaint without the ARF part (Microsoft JMRP): the reported message is attached.
    if (env.original().empty() || !rules.matchComplaint(env.subject)) return false;
    std::string a = firstAddress(env.original().get("x-hmxmroriginalrecipient"));
    if (a.empty()) a = firstAddress(env.original().get("to"));
    if (a.empty()) return false;
    out.kind = Kind::kComplaint;
    out.format = "complaint";
    Recipient r;
    r.recipient = a;
    r.feedbackType = "abuse";
    r.diagnostic = collapseSpace(env.text());
    out.recipients.push_back(std::move(r));
    return true;
  }
  auto groups = mime::parseFieldGroups(env.feedback->body);
  mime::Fields all;
  for (const auto& g : groups)
    for (const auto& f : g.items()) all.addView(f.name, f.value);  // groups outlive all
  out.kind = Kind::kComplaint;
  out.format = "arf";
  std::string type = toLower(trim(all.get("feedback-type")));
  std::string diag = collapseSpace(env.text());
  std::vector<std::string> rcpts;
  for (const auto& f : all.items()) {
    if (iequals(f.name, "original-rcpt-to") || iequals(f.name, "removal-recipient")) {
      std::string a = firstAddress(f.value);
      if (!a.empty()) rcpts.push_back(a);
    }
  }
  if (rcpts.empty()) {
    std::string a = firstAddress(env.original().get("to"));
    if (!a.empty()) rcpts.push_back(a);
  }
  std::string mailFrom = firstAddress(all.get("original-mail-from"));
  if (!mailFrom.empty()) out.originalReturnPath = mailFrom;
  for (const std::string& a : rcpts) {
    Recipient r;
    r.recipient = a;
    r.feedbackType = type.empty() ? "abuse" : type;
    r.diagnostic = diag;
    r.reportingMta = stripType(all.get("reporting-mta"));
    out.recipients.push_back(std::move(r));
  }
  if (out.recipients.empty()) {
    Recipient r;
    r.feedbackType = type.empty() ? "abuse" : type;
    r.diagnostic = diag;
    out.recipients.push_back(std::move(r));
  }
  return true;
}

namespace {

bool isRecipientGroup(const mime::Fields& g) {
  return g.find("final-recipient") || g.find("original-recipient") || g.find("x-actual-recipient");
}

void dsnRecipient(const mime::Fields& g, const mime::Fields& perMessage, const RuleSet& rules, Recipient& r) {
  std::string rcpt = firstAddress(stripType(g.get("final-recipient")));
  std::string orcpt = firstAddress(stripType(g.get("original-recipient")));
  if (rcpt.empty()) rcpt = firstAddress(stripType(g.get("x-actual-recipient")));
  r.recipient = rcpt.empty() ? orcpt : rcpt;
  r.originalRecipient = orcpt;
  r.action = toLower(trim(g.get("action")));
  if (size_t sp = r.action.find_first_of(" ("); sp != std::string::npos) r.action.resize(sp);
  r.status = findStatusCode(g.get("status"));
  if (r.status.empty()) r.status = std::string(trim(g.get("status")).substr(0, 9));
  if (!r.status.empty() && !(r.status[0] >= '2' && r.status[0] <= '5')) r.status.clear();
  std::string dtype;
  r.diagnostic = collapseSpace(stripType(g.get("diagnostic-code"), &dtype));
  r.remoteMta = stripType(g.get("remote-mta"));
  r.reportingMta = stripType(perMessage.get("reporting-mta"));
  if (dtype == "x-unix" || dtype == "x-postfix") r.rule = "type:" + dtype;  // hint for classify
  if (const RuleSet::Category* c = rules.category(g)) {  // the sender's own verdict decides
    r.reason = c->reason;
    r.rule = "category:" + c->value;
  }
}

}  // namespace

bool readDsn(const Envelope& env, const RuleSet& rules, Report& out) {
  std::vector<mime::Fields> groups;
  std::string unquoted;  // backs `t` for a quoted report
  if (env.deliveryStatus) {
    groups = mime::parseFieldGroups(env.deliveryStatus->body);
  } else {
    // DSN fields written in the text part (some gateways flatten the report), or quoted in a
    // forwarded bounce ("Begin forwarded message:" / "> Final-Recipient: RFC822; ...").
    std::string_view t = env.fullText;
    size_t at[4];
    findFieldLines(t, {"final-recipient:", "original-recipient:", "> final-recipient:", ">final-recipient:"}, at);
    size_t f = at[0];
    if (f == std::string_view::npos) f = at[1];
    if (f == std::string_view::npos && (at[2] != std::string_view::npos || at[3] != std::string_view::npos)) {
      unquoted = unquote(t);
      t = unquoted;
      f = findFieldLine(t, "final-recipient:");
    }
    if (f == std::string_view::npos) return false;
    size_t from = f;
    size_t rep = findFieldLine(t.substr(0, f), "reporting-mta:");
    if (rep != std::string_view::npos) from = rep;
    groups = mime::parseFieldGroups(t.substr(from));
  }
  mime::Fields perMessage;
  std::vector<Recipient> rs;
  for (const auto& g : groups) {
    if (!isRecipientGroup(g)) {
      for (const auto& f : g.items()) perMessage.addView(f.name, f.value);  // groups outlive it
      continue;
    }
    Recipient r;
    dsnRecipient(g, perMessage, rules, r);
    if (r.recipient.empty()) continue;
    rs.push_back(std::move(r));
    if (rs.size() >= kMaxRecipients) break;
  }
  if (rs.empty()) return false;
  std::vector<std::string> all;
  for (const auto& r : rs) all.push_back(r.recipient);
  for (auto& r : rs) {
    if (!r.diagnostic.empty()) continue;
    std::string b = blockFor(env.text(), env.lowerText(), r.recipient, all);
    r.diagnostic = collapseSpace(b);
  }
  out.kind = Kind::kBounce;
  out.format = "rfc3464";
  out.recipients = std::move(rs);
  return true;
}

namespace {

// The address at [at, end) is a line's only content, maybe in <> and followed by ':' or ','
// (a list of failed addresses: Exim's "  user@example.org", qmail's "<user@example.org>:").
bool aloneOnLine(std::string_view t, size_t at, size_t end) {
  std::string_view before = trim(t.substr(lineStart(t, at), at - lineStart(t, at)));
  size_t eol = t.find('\n', end);
  std::string_view after = trim(t.substr(end, (eol == std::string_view::npos ? t.size() : eol) - end));
  if (!before.empty() && before != "<") return false;
  if (!after.empty() && after.front() == '>') after.remove_prefix(1);
  return after.empty() || after == ":" || after == ",";
}

}  // namespace

bool readText(const Envelope& env, const RuleSet& rules, Report& out) {
  const std::string& lower = env.lowerText();
  std::vector<std::string> rcpts;
  std::vector<size_t> where;
  auto add = [&](const std::string& a, size_t off) {
    for (const auto& x : rcpts)
      if (x == a) return;
    rcpts.push_back(a);
    where.push_back(off);
  };
  const mime::Fields& h = env.msg->root().headers;
  if (const std::string_view* xf = h.find("x-failed-recipients")) {
    for (std::string_view piece : split(*xf, ',')) {
      std::string a = firstAddress(piece);
      toLowerInPlace(a);
      if (!a.empty()) add(a, lower.find(a));
    }
  }
  // X-Failed-Recipients names addresses the text does not: the text's own list decides when it
  // lists some address other than the report's To: at a line's start (the header may hold a
  // rewritten form of the address the text reports on). Google Groups' text names only the
  // sender, in a sentence: the header stands.
  bool headerOnly = !rcpts.empty() && std::all_of(where.begin(), where.end(), [](size_t w) { return w == std::string::npos; });
  std::vector<std::string> fromHeader;
  if (headerOnly) {
    fromHeader.swap(rcpts);
    where.clear();
  }
  // The report's own To: is the original sender, unless it is the only address named.
  std::string reportTo = toLower(env.to);
  for (int pass = 0; pass < (headerOnly ? 1 : 2) && rcpts.empty(); ++pass) {
    size_t pos = 0, at = 0, end = 0;
    while (rcpts.size() < kMaxRecipients) {
      std::string a = addressAt(lower, pos, &at, &end);
      if (a.empty()) break;
      pos = end;
      if (env.notRecipients.count(a) || rules.skipAddress(a) || senderContext(lower, at)) continue;
      if (pass == 0 && a == reportTo) continue;
      // Against the header, only an address listed on a line of its own (Exim's list), not
      // one named in a sentence.
      if (headerOnly && !aloneOnLine(lower, at, end)) continue;
      add(a, at);
    }
  }
  if (rcpts.empty() && headerOnly) {
    for (auto& a : fromHeader) add(a, std::string::npos);
  }
  if (rcpts.empty()) {
    std::string a = firstAddress(env.original().get("to"));
    toLowerInPlace(a);
    if (a.empty() || env.notRecipients.count(a) || a == reportTo) return false;
    add(a, std::string::npos);
  }
  out.kind = Kind::kBounce;
  out.format = "text";
  std::vector<Recipient> found;
  std::vector<bool> informative, prose;
  bool transcript = sendmailTranscript(lower);
  for (size_t i = 0; i < rcpts.size(); ++i) {
    Recipient r;
    r.recipient = rcpts[i];
    std::string b = where[i] == std::string::npos || !transcript ? std::string() : sendmailPart(env.text(), lower, rcpts[i]);
    if (b.empty() && where[i] != std::string::npos) b = blockFor(env.text(), lower, rcpts[i], rcpts);
    if (transcript) {
      // Sendmail's lines about a host carry its own code, not a reply ("421 example.org
      // (smtp)... Deferred: ..." while the message was returned days later): the code goes.
      // A recipient the transcript does not name (V5 Sendmail's, taken from the returned
      // message's To:) failed as those lines say.
      if (b.empty() && where[i] == std::string::npos) b = sendmailHostLines(env.text());
      b = withoutHostCodes(b.empty() ? env.text() : std::string_view(b));
    }
    r.diagnostic = collapseSpace(b.empty() ? env.text() : std::string_view(b));
    if (where[i] != std::string::npos) {
      // The recipient's lines say nothing of why: the reply stated above the list does.
      std::string lb = toLower(r.diagnostic);
      if (findReplyCode(lb).empty() && findStatusCode(lb).empty() && rules.scan(lb).reasons.empty()) {
        std::string above = replyAbove(env.text(), lineStart(lower, where[i]));
        if (!above.empty()) r.diagnostic = above + " " + r.diagnostic;
      }
    }
    size_t ls = where[i] == std::string::npos ? 0 : lineStart(lower, where[i]);
    prose.push_back(where[i] != std::string::npos && trim(std::string_view(lower).substr(ls, where[i] - ls)).size() > 15);
    // Only needed when some candidate is prose-like (rare): codes first, the rules if need be.
    bool info = true;
    if (rcpts.size() > 1) {
      std::string lb = toLower(r.diagnostic);
      info = !findReplyCode(lb).empty() || !findStatusCode(lb).empty() || !rules.scan(lb).reasons.empty();
    }
    informative.push_back(info);
    found.push_back(std::move(r));
  }
  // A DSN part whose only recipient is no address (Exim's delivery to a file or a pipe:
  // "Final-Recipient: rfc822;/mail/spool/..." while the text says "generated by <addr>"): its
  // Status and Action belong to the one address the text names.
  if (env.deliveryStatus && found.size() == 1) {
    int n = 0;
    Recipient d;
    for (const auto& g : mime::parseFieldGroups(env.deliveryStatus->body)) {
      if (!isRecipientGroup(g)) continue;
      ++n;
      dsnRecipient(g, mime::Fields(), rules, d);
    }
    if (n == 1 && d.recipient.empty()) {
      found[0].status = d.status;
      found[0].action = d.action;
    }
  }
  // An address named in a sentence ("please contact <support@...>") whose own block says
  // nothing about a failure is not a failed recipient when another address's block does.
  bool any = std::find(informative.begin(), informative.end(), true) != informative.end();
  for (size_t i = 0; i < found.size(); ++i) {
    if (any && found.size() > 1 && !informative[i] && prose[i]) continue;
    out.recipients.push_back(std::move(found[i]));
  }
  return !out.recipients.empty();
}

namespace {

// The JSON object that starts at t's first byte: SNS's line wraps ("!\n " in some relays, bare
// line ends) undone, cut after the brace that closes it (a footer follows). Discarded on error.
nlohmann::json jsonObjectAt(std::string_view t) {
  std::string js;
  for (size_t i = 0; i < t.size() && js.size() < (4u << 20); ++i) {
    if (t[i] == '!' && i + 1 < t.size() && t[i + 1] == '\n') { i += (i + 2 < t.size() && t[i + 2] == ' ') ? 2 : 1; continue; }
    if (t[i] == '\n' || t[i] == '\r') continue;
    js.push_back(t[i]);
  }
  int depth = 0;
  bool inStr = false;
  for (size_t i = 0; i < js.size(); ++i) {
    char c = js[i];
    if (inStr) {
      if (c == '\\') ++i;
      else if (c == '"') inStr = false;
    } else if (c == '"') {
      inStr = true;
    } else if (c == '{') {
      ++depth;
    } else if (c == '}' && --depth == 0) {
      js.resize(i + 1);
      break;
    }
  }
  return nlohmann::json::parse(js, nullptr, false);
}

}  // namespace

bool readSesJson(const Envelope& env, Report& out) {
  nlohmann::json j;
  if (size_t open = env.text().find("{\"notificationType\""); open != std::string::npos) {
    j = jsonObjectAt(env.text().substr(open));
  } else if (size_t sns = env.text().find("\"Type\" : \"Notification\""); sns != std::string::npos) {
    // The whole SNS envelope, with the notification as a JSON string in its "Message".
    size_t brace = env.text().rfind('{', sns);
    if (brace == std::string::npos) return false;
    nlohmann::json outer = jsonObjectAt(env.text().substr(brace));
    if (outer.is_discarded() || !outer.is_object() || !outer.contains("Message") || !outer["Message"].is_string()) return false;
    j = nlohmann::json::parse(outer["Message"].get<std::string>(), nullptr, false);
  } else {
    return false;
  }
  if (j.is_discarded() || !j.is_object()) return false;
  std::string type = j.value("notificationType", "");
  auto str = [](const nlohmann::json& o, const char* k) {
    auto it = o.find(k);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (type == "Bounce" && j.contains("bounce") && j["bounce"].contains("bouncedRecipients")) {
    out.kind = Kind::kBounce;
    for (const auto& b : j["bounce"]["bouncedRecipients"]) {
      if (!b.is_object()) continue;
      Recipient r;
      r.recipient = firstAddress(str(b, "emailAddress"));
      r.action = str(b, "action");
      r.status = findStatusCode(str(b, "status"));
      r.diagnostic = collapseSpace(stripType(str(b, "diagnosticCode")));
      r.reportingMta = stripType(str(j["bounce"], "reportingMTA"));
      if (!r.recipient.empty()) out.recipients.push_back(std::move(r));
    }
  } else if (type == "Complaint" && j.contains("complaint") && j["complaint"].contains("complainedRecipients")) {
    out.kind = Kind::kComplaint;
    for (const auto& b : j["complaint"]["complainedRecipients"]) {
      if (!b.is_object()) continue;
      Recipient r;
      r.recipient = firstAddress(str(b, "emailAddress"));
      r.feedbackType = str(j["complaint"], "complaintFeedbackType");
      if (r.feedbackType.empty()) r.feedbackType = "abuse";
      if (!r.recipient.empty()) out.recipients.push_back(std::move(r));
    }
  } else if (type == "Delivery" && j.contains("delivery") && j["delivery"].contains("recipients")) {
    out.kind = Kind::kBounce;  // a delivery notice: recipients carry reason "delivered"
    for (const auto& b : j["delivery"]["recipients"]) {
      if (!b.is_string()) continue;
      Recipient r;
      r.recipient = firstAddress(b.get<std::string>());
      r.status = "2.6.0";
      r.diagnostic = collapseSpace(str(j["delivery"], "smtpResponse"));
      if (!r.recipient.empty()) out.recipients.push_back(std::move(r));
    }
  }
  if (out.recipients.empty()) return false;
  out.format = "ses-json";
  if (j.contains("mail") && j["mail"].is_object()) {
    out.originalReturnPath = str(j["mail"], "source");
    // The original's Message-ID header (what relayd matches on); SES's own id only without it.
    const auto& m = j["mail"];
    std::string id;
    if (m.contains("commonHeaders") && m["commonHeaders"].is_object()) id = str(m["commonHeaders"], "messageId");
    if (id.empty() && m.contains("headers") && m["headers"].is_array()) {
      for (const auto& h : m["headers"]) {
        if (h.is_object() && iequals(str(h, "name"), "message-id")) id = str(h, "value");
      }
    }
    id = std::string(trim(id));
    if (id.size() > 2 && id.front() == '<' && id.back() == '>') id = id.substr(1, id.size() - 2);
    out.originalMessageId = id.empty() ? str(m, "messageId") : id;
  }
  return true;
}

namespace {

// The headers RFC 3834 (Auto-Submitted) and vacation programs (X-Autoreply, Precedence:
// auto_reply, ...) mark automatic replies with: 2 for Auto-Submitted, 1 for another, 0 none.
int autoReplyHeaders(const mime::Fields& h) {
  std::string as = toLower(trim(h.get("auto-submitted")));
  if (startsWith(as, "auto-replied") || startsWith(as, "auto-notified")) return 2;
  bool other = h.find("x-autoreply") || h.find("x-autorespond") || h.find("x-autoreply-from") ||
               h.find("x-mail-autoreply") || iequals(trim(h.get("precedence")), "auto_reply");
  return other ? 1 : 0;
}

}  // namespace

bool declaredAutoReply(const Envelope& env, const RuleSet& rules) {
  if (autoReplyHeaders(env.msg->root().headers) == 0) return false;
  if (env.deliveryStatus || env.feedback || startsWith(env.msg->root().type, "multipart/report")) return false;
  // MTAs mark their own bounces "Auto-Submitted: auto-replied" too (Exim, Google Groups,
  // mail.ru): a bounce sender or X-Failed-Recipients makes it a bounce after all.
  return !rules.matchSender(env.fromRaw) && !env.msg->root().headers.find("x-failed-recipients");
}

bool readAutoReply(const Envelope& env, const RuleSet& rules, Report& out) {
  int marked = autoReplyHeaders(env.msg->root().headers);
  bool subject = rules.matchAutoReply(env.subject);
  if (marked == 0 && !subject) return false;
  if (env.from.empty()) return false;
  out.kind = Kind::kAutoReply;
  out.format = "rfc3834";
  Recipient r;
  r.recipient = env.from;
  r.diagnostic = collapseSpace(env.text(), 500);
  r.reason = "vacation";
  r.reason5 = "vacation";
  r.rule = marked == 2 ? "rfc3834:auto-submitted" : marked == 1 ? "rfc3834:header" : "rfc3834:subject";
  out.recipients.push_back(std::move(r));
  return true;
}

}  // namespace sluice::bounce::detail
