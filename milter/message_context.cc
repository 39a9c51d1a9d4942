// message_context.cc - per-message decisions of sluice-milter (see message_context.h).
#include "message_context.h"

#include "base/log.h"
#include "base/strings.h"

namespace sluice::milter {
namespace {

// One mailbox: the part in <...> if any, else the text without comments and quotes.
std::string mailboxAddress(std::string_view m) {
  size_t lt = m.find('<');
  if (lt != std::string_view::npos) {
    size_t gt = m.find('>', lt);
    return std::string(trim(m.substr(lt + 1, gt == std::string_view::npos ? gt : gt - lt - 1)));
  }
  std::string out;
  int depth = 0;
  for (char c : m) {
    if (c == '(') ++depth;
    else if (c == ')' && depth > 0) --depth;
    else if (depth == 0 && c != '"' && c != ' ' && c != '\t' && c != '\r' && c != '\n') out += c;
  }
  return out;
}

}  // namespace

std::vector<std::string> headerAddresses(std::string_view value) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false, angle = false;
  int comment = 0;
  auto flush = [&] {
    std::string a = mailboxAddress(cur);
    if (!a.empty()) out.push_back(a);
    cur.clear();
  };
  for (size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (quoted) {
      if (c == '\\' && i + 1 < value.size()) ++i;
      else if (c == '"') quoted = false;
      continue;  // quoted text is never an address
    }
    if (comment > 0) {
      if (c == '(') ++comment;
      if (c == ')') --comment;
      continue;
    }
    if (c == '"') quoted = true;
    else if (c == '(') ++comment;
    else if (c == '<') angle = true, cur += c;
    else if (c == '>') angle = false, cur += c;
    else if (!angle && c == ':') cur.clear();  // "group:" - drop the display name
    else if (!angle && (c == ',' || c == ';')) flush();
    else cur += c;
  }
  flush();
  return out;
}

std::string milterHeaderValue(std::string_view field, bool leadingSpace) {
  size_t colon = field.find(':');
  std::string_view v = colon == std::string_view::npos ? field : field.substr(colon + 1);
  if (!leadingSpace) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  }
  std::string out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\r' && i + 1 < v.size() && v[i + 1] == '\n') continue;
    out += v[i];
  }
  return out;
}

Verdict MessageContext::beginMessage(std::string authUser, std::string envelopeFrom, bool trustedClient,
                                     bool mustSeeAll) {
  authUser_ = std::move(authUser);
  envelopeFrom_ = std::move(envelopeFrom);
  trusted_ = trustedClient;
  mustSeeAll_ = mustSeeAll;
  headers_ = dkim::MessageHeaders();
  headerError_.clear();
  signer_.reset();
  if (authUser_.empty() && !trusted_ && !signing_->signUnauthenticated()) return pass();
  return Verdict::next();
}

Verdict MessageContext::header(std::string_view name, std::string_view value) {
  if (!headerError_.empty()) return Verdict::next();
  if (Status st = headers_.add(name, value); !st) headerError_ = st.message();
  return Verdict::next();
}

Verdict MessageContext::checkOwnership() const {
  size_t from = headers_.fromCount();
  if (from != 1) {
    return Verdict::reject("550", "5.6.0",
                           from == 0 ? "Message has no From: header field (RFC 5322 requires one)"
                                     : "Message has " + std::to_string(from) +
                                           " From: header fields (RFC 5322 requires exactly one)");
  }
  auto ids = identities_->forSaslUser(authUser_);
  for (const char* name : {"from", "sender"}) {
    for (const auto* f : headers_.findAll(name)) {
      for (const auto& addr : headerAddresses(f->value())) {
        bool owned = false;
        for (const auto* id : ids) owned = owned || IdentityMap::owns(*id, addr);
        if (!owned) {
          std::string label = std::string(name) == "from" ? "From:" : "Sender:";
          return Verdict::reject("550", "5.7.1", label + " <" + addr + "> is not owned by user " + authUser_);
        }
      }
    }
  }
  return Verdict::next();
}

Verdict MessageContext::keyError(const std::string& why) const {
  if (signing_->keyErrorTempfail()) {
    logQueueLine(LogLevel::kWarning, queueId_, "dkim: " + why + "; message from <" + envelopeFrom_ + "> tempfailed");
    return Verdict::tempfail("DKIM signing is temporarily unavailable, try again later");
  }
  logQueueLine(LogLevel::kWarning, queueId_,
               "dkim: " + why + "; message from <" + envelopeFrom_ + "> sent with fewer signatures");
  return Verdict::next();
}

Verdict MessageContext::prepareSigner() {
  std::string fromDomain;
  auto from = headers_.findAll("from");
  if (from.size() == 1) {
    auto addrs = headerAddresses(from[0]->value());
    if (!addrs.empty()) fromDomain = domainOf(addrs.front());
  }
  SigningPlan plan = signing_->lookup(fromDomain, authUser_);
  if (!plan.brokenKeys.empty()) {
    Verdict v = keyError("key " + plan.brokenKeys.front() + " is unavailable");
    if (v.kind != Verdict::Kind::kContinue) return v;
  }
  if (plan.specs.empty()) return pass();  // nothing to sign: skip the body
  signer_.emplace(std::move(plan.specs));
  signer_->headers(headers_);
  return Verdict::next();
}

Verdict MessageContext::endOfHeaders() {
  if (authUser_.empty() && !trusted_ && !signing_->signUnauthenticated()) {
    return pass();  // unauthenticated, not trusted: passed unsigned, not ours to judge
  }
  if (!headerError_.empty()) {
    logQueueLine(LogLevel::kWarning, queueId_, "message from <" + envelopeFrom_ + ">: " + headerError_);
    if (authUser_.empty()) return pass();  // trusted client: sent unsigned
    return Verdict::reject("550", "5.6.0", "Malformed message header: " + headerError_);
  }
  if (!authUser_.empty()) {
    if (Verdict v = checkOwnership(); v.kind != Verdict::Kind::kContinue) return v;
  } else if (headers_.fromCount() != 1) {
    return pass();  // not signable (RFC 6376 5.4 needs exactly one From:)
  }
  return prepareSigner();
}

void MessageContext::body(std::string_view chunk) {
  if (signer_) signer_->body(chunk);
}

Verdict MessageContext::endOfMessage(std::vector<std::string>* fields) {
  fields->clear();
  if (!signer_) return Verdict::next();
  auto sigs = signer_->finish();
  signer_.reset();
  if (!sigs) return keyError("signing failed: " + sigs.message());
  *fields = std::move(sigs.value());
  return Verdict::next();
}

}  // namespace sluice::milter
