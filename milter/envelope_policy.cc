// envelope_policy.cc - see envelope_policy.h.
#include "envelope_policy.h"

#include <unistd.h>

#include <atomic>
#include <cctype>

#include "base/log.h"
#include "base/strings.h"

namespace sluice::milter {
namespace {

std::atomic<uint64_t> gInstanceSeq{0};

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool isCode(std::string_view w) {
  return w.size() == 3 && (w[0] == '4' || w[0] == '5') && std::isdigit(static_cast<unsigned char>(w[1])) &&
         std::isdigit(static_cast<unsigned char>(w[2]));
}

// "4.7.1"-style enhanced status code whose class matches the reply code's.
bool isEnhanced(std::string_view w, char cls) {
  if (w.size() < 5 || w[0] != cls || w[1] != '.') return false;
  int dots = 0;
  for (char c : w.substr(2)) {
    if (c == '.') ++dots;
    else if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return dots == 1 && w.back() != '.';
}

std::string_view firstWord(std::string_view s, std::string_view* rest) {
  s = trim(s);
  size_t sp = s.find_first_of(" \t");
  std::string_view w = s.substr(0, sp);
  *rest = sp == std::string_view::npos ? std::string_view() : trim(s.substr(sp));
  return w;
}

Verdict refusal(bool temporary, std::string code, std::string_view text, std::string_view defaultText) {
  std::string_view rest;
  std::string xcode = temporary ? "4.7.1" : "5.7.1";
  std::string_view w = firstWord(text, &rest);
  if (isEnhanced(w, code[0])) {
    xcode = std::string(w);
    text = rest;
  }
  std::string t = trim(text).empty() ? std::string(defaultText) : std::string(trim(text));
  return temporary ? Verdict::tempfail(std::move(code), std::move(xcode), std::move(t))
                   : Verdict::reject(std::move(code), std::move(xcode), std::move(t));
}

}  // namespace

MilterAction milterActionFor(std::string_view action) {
  MilterAction out;
  std::string_view rest;
  std::string word = upper(firstWord(action, &rest));
  if (word == "OK" || word == "DUNNO" || word == "DEFER_IF_REJECT" || word == "PERMIT") return out;
  if (word == "WARN") {
    out.reason = std::string(rest);
    return out;
  }
  if (word == "PREPEND") {
    size_t colon = rest.find(':');
    bool ok = colon != std::string_view::npos && colon > 0;
    for (size_t i = 0; ok && i < colon; ++i) ok = rest[i] > 32 && rest[i] < 127;
    if (!ok) {
      out.verdict = Verdict::tempfail("451", "4.3.5", "Server configuration error");
      out.reason = "bad PREPEND field \"" + std::string(rest) + "\"";
      return out;
    }
    out.prepend = std::string(rest);
    return out;
  }
  if (word == "HOLD") {
    out.hold = true;
    out.reason = rest.empty() ? std::string("held by policy") : std::string(rest);
    return out;
  }
  if (word == "DISCARD") {
    out.verdict = Verdict::discard();
    out.reason = std::string(rest);
    return out;
  }
  if (word == "REJECT") {
    out.verdict = refusal(false, "550", rest, "Access denied");
    return out;
  }
  if (word == "DEFER" || word == "DEFER_IF_PERMIT") {
    out.verdict = refusal(true, "450", rest, "Service unavailable");
    return out;
  }
  if (isCode(word)) {
    out.verdict = refusal(word[0] == '4', word, rest, word[0] == '4' ? "Service unavailable" : "Access denied");
    return out;
  }
  out.verdict = Verdict::tempfail("451", "4.3.5", "Server configuration error");
  out.reason = "unknown policy action \"" + std::string(action) + "\"";
  return out;
}

void EnvelopeChecks::connect(std::string clientAddress, std::string clientName) {
  clientAddress_ = std::move(clientAddress);
  clientName_ = clientName.empty() ? std::string("unknown") : std::move(clientName);
}

void EnvelopeChecks::mail(std::string sender, std::string saslUser, std::string saslMethod, std::string queueId,
                          const std::vector<std::string>& esmtpArgs) {
  sender_ = std::move(sender);
  saslUser_ = std::move(saslUser);
  saslMethod_ = std::move(saslMethod);
  queueId_ = std::move(queueId);
  sizeParam_.clear();
  for (const auto& a : esmtpArgs) {
    if (a.size() > 5 && istartsWith(a, "SIZE=")) sizeParam_ = a.substr(5);
  }
  static const std::string pid = std::to_string(::getpid());
  instance_ = "milter." + pid + "." + std::to_string(++gInstanceSeq);
  accepted_ = 0;
  inTransaction_ = true;
  prepends_.clear();
  hold_ = false;
  holdReason_.clear();
}

PolicyClient::Attributes EnvelopeChecks::attributes(std::string_view state, std::string_view recipient,
                                                    uint64_t size) const {
  PolicyClient::Attributes a;
  a.reserve(16);
  a.emplace_back("protocol_state", std::string(state));
  a.emplace_back("protocol_name", saslUser_.empty() ? "ESMTP" : "ESMTPA");
  a.emplace_back("client_address", clientAddress_);
  a.emplace_back("client_name", clientName_);
  a.emplace_back("helo_name", helo_);
  a.emplace_back("queue_id", queueId_);
  a.emplace_back("sender", sender_);
  a.emplace_back("recipient", std::string(recipient));
  a.emplace_back("recipient_count", std::to_string(accepted_));
  a.emplace_back("instance", instance_);
  a.emplace_back("sasl_method", saslMethod_);
  a.emplace_back("sasl_username", saslUser_);
  a.emplace_back("size", size > 0 ? std::to_string(size) : (sizeParam_.empty() ? "0" : sizeParam_));
  a.emplace_back("policy_context", "sluice-milter");
  return a;
}

MilterAction EnvelopeChecks::rcpt(PolicyClient::Session& session, std::string recipient) {
  if (!inTransaction_) return {};
  std::string answer = session.ask(attributes("RCPT", recipient, 0));
  MilterAction a = milterActionFor(answer);
  if (!a.reason.empty() && a.verdict.kind == Verdict::Kind::kContinue && !a.hold) {
    logQueueLine(LogLevel::kInfo, queueId_, "policy: " + answer + " for <" + sender_ + "> -> <" + recipient + ">");
  }
  if (a.verdict.kind == Verdict::Kind::kContinue) {
    ++accepted_;
    if (!a.prepend.empty()) {
      bool seen = false;
      for (const auto& p : prepends_) seen = seen || p == a.prepend;
      if (!seen) prepends_.push_back(a.prepend);
    }
    if (a.hold) {
      hold_ = true;
      holdReason_ = a.reason;
    }
  } else if (!a.reason.empty()) {
    logQueueLine(LogLevel::kWarning, queueId_, "policy: " + a.reason);
  }
  return a;
}

MilterAction EnvelopeChecks::endOfMessage(PolicyClient::Session& session, uint64_t size) {
  if (!inTransaction_) return {};
  inTransaction_ = false;
  std::string answer = session.ask(attributes("END-OF-MESSAGE", "", size));
  MilterAction a = milterActionFor(answer);
  if (a.verdict.kind != Verdict::Kind::kContinue) return a;
  std::vector<std::string> all = prepends_;
  if (!a.prepend.empty()) all.push_back(a.prepend);
  a.prepend.clear();
  if (hold_ && !a.hold) {
    a.hold = true;
    a.reason = holdReason_;
  }
  // More than one PREPEND: joined with LF, split again by the caller.
  for (size_t i = 0; i < all.size(); ++i) a.prepend += (i ? "\n" : "") + all[i];
  return a;
}

}  // namespace sluice::milter
