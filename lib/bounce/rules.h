// rules.h - the bounce rules file, read once into an immutable RuleSet whose text patterns are
// all matched in one pass (MultiMatcher, multi_match.h; the small groups with RE2::Set).
//
// Format (one directive a line; '#' starts a comment line; fields separated by blanks; a
// PATTERN is the rest of the line, RE2 syntax, matched case-insensitively and unanchored against
// text whose whitespace runs are collapsed to one space):
//   reasons  NAME...               every reason name a rule may use (Sisimai 4.25 + 5.x names)
//   order    REASON...             priority when several reasons match, highest first
//   weak     REASON...             a reason taken from the status code only loses to any text match
//   yield    REASON OTHER...       a status-derived REASON loses to a text match of an OTHER;
//                                  OTHER@CMD: only when the failed SMTP command is CMD
//   prefer   REASON OTHER...       a status-derived REASON beats a text match of an OTHER
//   hard     REASON...             hard bounces; notaccept is hard unless the code is 4xx
//   none     REASON...             neither hard nor soft (feedback, vacation, delivered)
//   status   X.Y.Z REASON          the reason an enhanced status code means by itself
//   pseudo   REASON PERM TEMP      status code reported when the message gives none
//   rule     [!|!!]REASON NAME PATTERN  wording of a reason ('!' = decisive: wins over order;
//                                  '!!' = decisive in the reports of "generic" lhosts as well: a
//                                  provider's own code or a delivery agent's words)
//   rule5    REASON5 NAME PATTERN     wording that gives a Sisimai 5.x name (else reason5 = reason)
//   sender   NAME PATTERN          a From: address/display name that sends bounces
//   subject  NAME PATTERN          a Subject: of bounces
//   autoreply NAME PATTERN         a Subject: of auto-replies (RFC 3834 messages lacking headers)
//   cut      NAME PATTERN          a line where the returned original message begins
//   cut0     NAME PATTERN          the same, but only at column 0 (not indented or '>'-quoted)
//   temporary NAME PATTERN         wording that shows a temporary condition (retries ran out):
//                                  the pseudo code is 4.x.x when the message gives no code
//   headline REASON NAME PATTERN   a report's own statement of why (EZweb's "The user(s) account
//                                  is disabled."): matched in the text outside the recipients'
//                                  lines, it names the reason of every recipient
//   mda      NAME PATTERN          a line (column 0) where a delivery agent's own refusal begins
//                                  (dovecot, mail.local, procmail...): in a DSN from a bounce
//                                  sender, the reason its lines name wins over the DSN's fields
//   skip     NAME PATTERN          an address that is never a failed recipient (mailer-daemon@)
//   complaint NAME PATTERN         a Subject: of complaints sent without an ARF part (JMRP)
//   command  CMD NAME PATTERN      wording that shows which SMTP command failed (RCPT, DATA...)
//   demote   REASON OTHER CMD...   a text match of REASON counts as OTHER when the failed command
//                                  is known and not one of CMD, unless the status code says REASON
//   category FIELD VALUE REASON    a per-recipient field of a DSN in which the sending MTA states
//                                  its own category of the failure (PowerMTA's X-PowerMTA-
//                                  BounceCategory: bad-mailbox): VALUE (whole, any case) is REASON
//   lhost    NAME FIELD PATTERN    the report was written by NAME (an MTA or a mail service, named
//                                  as Sisimai's Lhost modules) when a header FIELD of the report
//                                  matches PATTERN; several lines of one NAME are alternatives, and
//                                  the first line (file order) whose conditions hold names it
//   and      FIELD PATTERN         one more condition of the lhost line above (all must hold)
//   rhost    NAME PATTERN          a recipient's mail provider (Sisimai's Rhost modules): PATTERN
//                                  matches the remote MTA's name or the recipient's domain; a rule
//                                  "!REASON@NAME" is decisive for that provider's recipients only
//                                  (in any report) and an ordinary rule for everyone else's
//   generic  NAME...               reports of these lhosts carry no reason table of their own: a
//                                  decisive rule counts as an ordinary one in them (a wording that
//                                  is decisive in, say, MessageLabs' reports is only a wording in
//                                  Postfix's, where the failed command decides userunknown/filtered)
// Rules are read in file order; among several text matches for one reason the first names it.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/result.h"
#include "mime/mime.h"

namespace sluice::bounce {

// Lookups by name (a reason, a status code, an lhost) with a string_view, no std::string made:
// hashed, as classification asks several of them for every rule hit.
struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <class V>
using NameMap = std::unordered_map<std::string, V, NameHash, std::equal_to<>>;
using NameSet = std::unordered_set<std::string, NameHash, std::equal_to<>>;

struct Rule {
  std::string reason;
  std::string name;
  std::string pattern;
  bool decisive = false;
  bool everywhere = false;  // "!!": decisive in "generic" lhosts' reports too
  std::string rhost;        // "!REASON@RHOST": decisive only for a recipient at that rhost
  int line = 0;
};

class RuleSet {
 public:
  static Result<std::unique_ptr<RuleSet>> parse(std::string_view text, const std::string& source);
  ~RuleSet();

  // One pass over text with the reason, reason5 and command patterns together.
  struct Hits {
    std::vector<int> reasons;   // indices into reasonRules()
    std::vector<int> reasons5;  // indices into reason5Rules()
    std::string command;        // the SMTP command named (first command rule in file order)
  };
  Hits scan(std::string_view text) const;
  // Indices into reasonRules() / reason5Rules() of every rule whose pattern occurs in text.
  std::vector<int> matchReasons(std::string_view text) const;
  std::vector<int> matchReasons5(std::string_view text) const;
  bool matchSender(std::string_view from) const;
  bool matchSubject(std::string_view subject) const;
  bool matchAutoReply(std::string_view subject) const;
  bool skipAddress(std::string_view addr) const;
  bool matchComplaint(std::string_view subject) const;
  bool matchTemporary(std::string_view lowerText) const;
  // The first headline rule (file order) that matches text, or nullptr.
  const Rule* headline(std::string_view text) const;
  // false when no headline rule can match rawText, lower-cased and collapsed or not (a quick
  // test: the collapsed text need not be made).
  bool mayHaveHeadline(std::string_view rawText) const;
  // The SMTP command the text says failed ("" when unknown).
  std::string smtpCommand(std::string_view text) const;
  // The reason a text match of `reason` counts as, given the failed command and status reason.
  bool canDemote(const std::string& reason) const { return demote_.count(reason) != 0; }
  std::string demoted(const std::string& reason, std::string_view command, std::string_view statusReason) const;
  // A recipient group's own category of the failure ("category"): the rule, or nullptr.
  struct Category {
    std::string field;  // lower-case
    std::string value;  // lower-case
    std::string reason;
    int line = 0;
  };
  const Category* category(const mime::Fields& group) const;
  // Offset of the first line matching a cut rule, or npos.
  size_t findCut(std::string_view text) const;
  // false: no mda rule can match text (a quick test; findMda() decides).
  bool mayHaveMda(std::string_view text) const;
  // The first line matching an mda rule: its offset (npos if none) and the rule's name.
  size_t findMda(std::string_view text, std::string* name) const;

  const std::vector<Rule>& reasonRules() const { return reasonRules_; }
  const std::vector<Rule>& reason5Rules() const { return reason5Rules_; }
  std::string statusReason(std::string_view code) const;
  int priority(std::string_view reason) const;  // lower is stronger; unknown = large
  bool isWeak(std::string_view reason) const { return weak_.count(reason) != 0; }
  bool yields(std::string_view statusReason, std::string_view textReason, std::string_view command) const;
  bool prefers(std::string_view statusReason, std::string_view textReason) const;
  bool isHard(std::string_view reason) const { return hard_.count(reason) != 0; }
  bool isNone(std::string_view reason) const { return none_.count(reason) != 0; }
  std::string pseudoStatus(std::string_view reason, bool temporary) const;
  size_t patternCount() const;
  // The lhost whose conditions a report's headers meet first (file order), or "".
  std::string lhost(const mime::Fields& headers) const;
  bool isGeneric(std::string_view lhost) const { return generic_.find(lhost) != generic_.end(); }
  // The first rhost (file order) whose pattern matches the remote MTA or the domain, or "".
  std::string rhost(std::string_view remoteMta, std::string_view domain) const;

 private:
  RuleSet() = default;
  Status compile(const std::string& source);

  std::vector<Rule> reasonRules_, reason5Rules_, senderRules_, subjectRules_, autoReplyRules_,
      cutRules_, cut0Rules_, skipRules_, complaintRules_, commandRules_, mdaRules_, temporaryRules_, headlineRules_;
  struct Demotion {
    std::string to;
    NameSet commands;
  };
  NameMap<Demotion> demote_;
  std::vector<Category> categories_;
  struct LhostCond {
    std::string field;  // lower-case header name
    std::string pattern;
    int line = 0;
  };
  struct Lhost {
    std::string name;
    std::vector<LhostCond> conds;  // all must hold
  };
  std::vector<Lhost> lhosts_;
  NameSet generic_;
  std::vector<Rule> rhosts_;  // name, pattern
  NameSet reasons_, weak_, hard_, none_;
  NameMap<int> order_;
  NameMap<NameSet> yield_, prefer_;
  NameMap<std::string> status_;
  NameMap<std::pair<std::string, std::string>> pseudo_;
  struct Compiled;  // the RE2 sets (rules.cc)
  std::unique_ptr<Compiled> re_;
};

}  // namespace sluice::bounce
