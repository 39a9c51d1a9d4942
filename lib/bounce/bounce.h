// bounce.h - bounce, complaint and auto-reply parsing with data-driven classification.
//
// A BounceParser is built once from a rules file (contrib/bounce-rules.conf; format in
// rules.h) and is immutable afterwards, so one instance serves every thread. parse() takes one
// raw message (LF, CRLF or CR line ends) and returns a Report: what kind of message it is and one
// Recipient per failed address, each classified with a reason (Sisimai 4.25 names; reason5 holds
// the Sisimai 5.x name), hard/soft, enhanced status, reply code, diagnostic text, remote MTA and
// the name of the rule that decided. parseFile() also splits mbox files.
//
// Message kinds: RFC 3464 DSNs (message/delivery-status), RFC 5965 ARF complaints
// (message/feedback-report), RFC 3834 auto-replies (vacation, never a bounce), and the
// non-standard, human-readable bounces of MTAs and providers (Sendmail, qmail, Exim, Exchange,
// Gmail, ...), read from their text with format-independent heuristics plus the rules' wording.
// Bounds: the MIME limits of mime.h (input cut at Limits::maxBytes), diagnostic texts cut at
// kMaxDiagnostic, at most kMaxRecipients recipients per message.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "mime/mime.h"

namespace sluice::bounce {

class RuleSet;
namespace detail {
struct Envelope;
}  // namespace detail

inline constexpr size_t kMaxDiagnostic = 2000;
inline constexpr size_t kMaxRecipients = 1000;

enum class Kind { kBounce, kComplaint, kAutoReply, kNotBounce, kUnparseable };
const char* toString(Kind k);

struct Recipient {
  std::string recipient;          // the failed address (Final-Recipient, or found in the text)
  std::string originalRecipient;  // Original-Recipient / ORCPT when given
  std::string action;             // failed, delayed, delivered, ... ("" when not stated)
  std::string status;             // enhanced status code, e.g. 5.1.1 (derived when not stated)
  bool statusDerived = false;     // true when status was not in the message (Sisimai's 5.0.9xx)
  std::string replyCode;          // SMTP reply code, e.g. 550
  std::string diagnostic;         // diagnostic text, whitespace collapsed
  std::string remoteMta;          // Remote-MTA or the host named in the text
  std::string reportingMta;
  std::string smtpCommand;        // the SMTP command that failed, when the text says (RCPT, DATA...)
  std::string reason;             // Sisimai 4.25 reason name
  std::string reason5;            // Sisimai 5.x reason name
  int hard = -1;                  // 1 hard bounce, 0 soft, -1 not applicable
  std::string rule;               // name of the rule (or status:X.Y.Z, or fallback:...) that decided
  std::string feedbackType;       // ARF only: abuse, fraud, ...
};

struct Report {
  Kind kind = Kind::kNotBounce;
  std::string format;             // rfc3464, arf, rfc3834, text
  std::string mta;                // which MTA or service wrote it (rules "lhost"), "" if unknown
                                  // or not asked for (parse(raw, nameMta))
  std::string problem;            // why unparseable / not a bounce
  std::vector<Recipient> recipients;
  std::string subject;            // of the report itself (decoded)
  std::string from;               // address of the report's sender
  // About the original message, as far as the report includes it:
  std::string originalMessageId;  // without angle brackets
  std::string originalFrom;       // the original sender (addresser)
  std::string originalReturnPath; // the envelope sender = our VERP address when we sent it
  std::string originalTo;
  bool truncated = false;         // input longer than the MIME limit
};

class BounceParser {
 public:
  // Loads and compiles the rules file; errors name FILE:LINE.
  static Result<std::shared_ptr<const BounceParser>> load(const std::string& path);
  static Result<std::shared_ptr<const BounceParser>> fromText(std::string_view text,
                                                              const std::string& sourceName);
  ~BounceParser();

  // nameMta: always fill Report::mta (else only when the classification needed to know it).
  Report parse(std::string_view raw, bool nameMta = false) const;
  // One Report per message; splits mbox files ("From " separators).
  std::vector<Report> parseFile(std::string_view raw, bool nameMta = false) const;

  // The classification step alone: reason, rule, hard/soft, derived status for a diagnostic.
  void classify(Recipient& r, std::string_view context = {}) const;

  const RuleSet& rules() const { return *rules_; }
  mime::Limits limits;  // set before sharing

 private:
  // The report's human-readable text, lower-cased, collapsed and scanned once for all its
  // recipients, and only when a recipient's own diagnostic is not enough (lazily).
  struct Context {
    std::string_view raw;                       // the report's text (classify())
    const detail::Envelope* env = nullptr;      // or the report, whose text() is cut when asked
    std::string_view text() const;
    const mime::Fields* headers = nullptr;  // the report's own, for its lhost
    mutable bool lowered = false, scanned = false, commanded = false, named = false;
    mutable std::string mta;           // the lhost, once named
    const std::string& lhost(const RuleSet& rs) const;
    // Written by a "generic" lhost: no rule but "!!" ones is decisive.
    bool generic(const RuleSet& rs) const;
    mutable std::string lower;
    mutable std::vector<int> reasons;  // rule hits in the whole text
    mutable std::string command;       // the SMTP command the whole text names
    const std::string& lowerText() const;
    const std::vector<int>& reasonHits(const RuleSet& rs) const;
    const std::string& smtpCommand(const RuleSet& rs) const;
  };
  static constexpr size_t kMaxContext = 2 * kMaxDiagnostic;

  explicit BounceParser(std::unique_ptr<RuleSet> rules);
  Report parseDepth(std::string_view raw, int depth, bool nameMta) const;
  void classifyIn(Recipient& r, const Context& context) const;
  bool helloRefused(Recipient& r, const Context& context, const RuleSet& rs) const;
  std::unique_ptr<RuleSet> rules_;
};

// The default rules path: $SLUICE_BOUNCE_RULES, else the installed file, else the source tree's.
std::string defaultRulesPath();

// Helpers shared by the extractors (exposed for tests).
std::string findStatusCode(std::string_view text);  // "5.1.1" or ""
std::string findReplyCode(std::string_view text);   // "550" or ""
std::string extractAddress(std::string_view text);  // first addr-spec, lower-cased domain
std::string collapseSpace(std::string_view text, size_t max = kMaxDiagnostic);

}  // namespace sluice::bounce
