// rules.cc - reads the bounce rules file (format in rules.h) and compiles its pattern groups.
//
// The groups a diagnostic text is matched against - reason ("rule"), reason5 ("rule5") and
// "command" patterns, ~680 of them - go into one MultiMatcher (multi_match.h): each pattern is
// split into its alternatives (regex_split.h); the plain literals among them are found in one
// pass of a hashed-key prefilter (no automaton), and a branch that needs a regex runs in RE2 only
// when every literal it requires occurred in the text (it is compiled then, on first use). At
// load, patterns are only parsed (syntax errors name FILE:LINE). Neither RE2::Set (its lazy DFA
// explodes on hundreds of patterns with wildcards) nor Aho-Corasick (a table that does not stay
// in cache) is used for them any more; multi_match.h says why. The small groups (sender,
// subject, autoreply, skip, complaint, temporary, headline) are one RE2::Set each; "cut"/"cut0"
// and "mda" are one RE2 alternation each. The "lhost" conditions are one MultiMatcher per header
// name (RE2 alone for a case-sensitive one); the "rhost" patterns one RE2::Set. The headline, mda, complaint, skip and temporary
// groups (and cut, were its literals less common) run their regex only past a LiteralGate
// (literal_gate.h): a memchr for a rare byte of their literals, which most texts do not hold.
//
// Why RE2 (and not Hyperscan or PCRE2): linear-time matching with a bounded memory budget
// whatever the input (bounces are attacker-controlled), on every Debian architecture (Hyperscan
// is amd64-only, its dialect differs from the RE2/PCRE syntax rule authors know). Patterns are
// compiled in Latin-1 mode: bytes match bytes, invalid UTF-8 cannot fail.
#include "bounce/rules.h"

#include <algorithm>
#include <re2/re2.h>
#include <re2/set.h>

#include "base/strings.h"
#include "bounce/literal_gate.h"
#include "bounce/multi_match.h"

namespace sluice::bounce {

using ReSet = re2::RE2::Set;

struct RuleSet::Compiled {
  MultiMatcher text;
  MultiMatcher command;  // the command rules alone, for long texts
  std::unique_ptr<ReSet> sender, subject, autoReply, skip, complaint, temporary, headline;
  std::unique_ptr<re2::RE2> cut;
  // The same after a "\n" instead of at "^": a pattern that starts with a literal byte, which
  // RE2 finds with memchr (it skips from line end to line end instead of stepping its DFA
  // through every byte).
  std::unique_ptr<re2::RE2> cutAfterNewline;
  std::unique_ptr<re2::RE2> mda;                    // "(?m)^(?:a)|(?:b)..." of the mda rules
  std::vector<std::unique_ptr<re2::RE2>> mdaEach;   // each anchored, to name the one found
  // The lhost conditions grouped by header name: one MultiMatcher per name, so that a report's
  // headers are each matched once against all the conditions on their name.
  struct LhostField {
    std::string name;                 // lower-case header name
    std::unique_ptr<MultiMatcher> set;
    std::vector<std::string> patterns;
    std::vector<size_t> cond;         // pattern index -> condition number (over all lhost lines)
    // Conditions with a case-sensitive part ("(?-i:[A-Z])"): RE2 on the value as written.
    std::vector<std::pair<size_t, std::unique_ptr<re2::RE2>>> exact;
  };
  std::vector<LhostField> lhostFields;
  std::vector<std::pair<size_t, size_t>> lhostConds;  // per lhost line: [first, end) condition numbers
  std::vector<size_t> condField;                      // condition number -> index in lhostFields
  std::unique_ptr<ReSet> rhost;  // the rhost patterns, set index = rhost line
  // Closed when a text holds none of the group's literals: RE2 need not run (literal_gate.h).
  detail::LiteralGate headlineGate, mdaGate, cutGate, complaintGate, skipGate, temporaryGate;
};

namespace {

re2::RE2::Options reOptions() {
  re2::RE2::Options o;
  o.set_encoding(re2::RE2::Options::EncodingLatin1);
  o.set_case_sensitive(false);
  o.set_log_errors(false);
  o.set_max_mem(256 << 20);
  return o;
}

// Splits off the first blank-separated word of s (s keeps the rest, left-trimmed).
std::string_view nextWord(std::string_view& s) {
  s = trim(s);
  size_t e = s.find_first_of(" \t");
  std::string_view w = s.substr(0, e);
  s = e == std::string_view::npos ? std::string_view() : trim(s.substr(e));
  return w;
}

Result<std::unique_ptr<ReSet>> buildSet(const std::vector<Rule>& rules, const std::string& source) {
  auto set = std::make_unique<ReSet>(reOptions(), re2::RE2::UNANCHORED);
  for (const Rule& r : rules) {
    std::string err;
    if (set->Add(r.pattern, &err) < 0) {
      return makeError(source + ":" + std::to_string(r.line) + ": bad pattern for rule " + r.name +
                       ": " + err);
    }
  }
  if (!rules.empty() && !set->Compile()) return makeError(source + ": rule patterns do not compile (memory budget)");
  return set;
}

// The most memchr passes a LiteralGate may make over a short text (a Subject, an address, a
// diagnostic) before the RE2::Set it guards is cheaper.
constexpr size_t kShortTextPasses = 8;

// Whether any pattern of the set matches (no list of which: RE2 stops at the first).
bool anyInSet(const ReSet* set, size_t n, std::string_view text) {
  return set && n > 0 && set->Match(re2::StringPiece(text.data(), text.size()), nullptr);
}

}  // namespace

RuleSet::~RuleSet() = default;

Result<std::unique_ptr<RuleSet>> RuleSet::parse(std::string_view text, const std::string& source) {
  std::unique_ptr<RuleSet> rs(new RuleSet());
  int lineNo = 0;
  size_t pos = 0;
  auto err = [&](const std::string& m) {
    return makeError(source + ":" + std::to_string(lineNo) + ": " + m);
  };
  while (pos <= text.size()) {
    size_t eol = text.find('\n', pos);
    std::string_view line = text.substr(pos, eol == std::string_view::npos ? text.size() - pos : eol - pos);
    pos = eol == std::string_view::npos ? text.size() + 1 : eol + 1;
    ++lineNo;
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    std::string_view rest = line;
    std::string dir(nextWord(rest));
    auto needReason = [&](std::string_view r) { return rs->reasons_.count(r) != 0; };
    if (dir == "reasons") {
      while (!rest.empty()) rs->reasons_.insert(std::string(nextWord(rest)));
    } else if (dir == "order" || dir == "weak" || dir == "hard" || dir == "none") {
      while (!rest.empty()) {
        std::string r(nextWord(rest));
        if (!needReason(r)) return err("unknown reason \"" + r + "\" (declare it in \"reasons\")");
        if (dir == "order") rs->order_.emplace(r, static_cast<int>(rs->order_.size()));
        if (dir == "weak") rs->weak_.insert(r);
        if (dir == "hard") rs->hard_.insert(r);
        if (dir == "none") rs->none_.insert(r);
      }
    } else if (dir == "yield" || dir == "prefer") {
      std::string r(nextWord(rest));
      if (!needReason(r)) return err("unknown reason \"" + r + "\"");
      while (!rest.empty()) {
        std::string o(nextWord(rest));
        size_t at = dir == "yield" ? o.find('@') : std::string::npos;  // "OTHER@CMD"
        if (!needReason(o.substr(0, at))) return err("unknown reason \"" + o.substr(0, at) + "\"");
        if (at != std::string::npos && at + 1 == o.size()) return err("\"" + o + "\" names no command");
        (dir == "yield" ? rs->yield_ : rs->prefer_)[r].insert(o);
      }
    } else if (dir == "status") {
      std::string code(nextWord(rest)), r(nextWord(rest));
      if (!needReason(r)) return err("unknown reason \"" + r + "\"");
      rs->status_[code] = r;
    } else if (dir == "pseudo") {
      std::string r(nextWord(rest)), perm(nextWord(rest)), temp(nextWord(rest));
      if (!needReason(r) || temp.empty()) return err("pseudo needs REASON PERM TEMP");
      rs->pseudo_[r] = {perm, temp};
    } else if (dir == "rule" || dir == "rule5" || dir == "headline") {
      Rule rule;
      std::string r(nextWord(rest));
      if (!r.empty() && r[0] == '!') {
        rule.decisive = true;
        r.erase(0, 1);
        if (!r.empty() && r[0] == '!') {
          rule.everywhere = true;
          r.erase(0, 1);
        }
        if (size_t at = r.find('@'); at != std::string::npos) {
          rule.rhost = r.substr(at + 1);
          r.resize(at);
          bool known = std::any_of(rs->rhosts_.begin(), rs->rhosts_.end(), [&](const Rule& h) { return h.name == rule.rhost; });
          if (!known) return err("unknown rhost \"" + rule.rhost + "\" (declare it with \"rhost\" above)");
        }
      }
      if (!needReason(r)) return err("unknown reason \"" + r + "\"");
      rule.reason = r;
      rule.name = std::string(nextWord(rest));
      rule.pattern = std::string(rest);
      rule.line = lineNo;
      if (rule.name.empty() || rule.pattern.empty()) return err(dir + " needs REASON NAME PATTERN");
      (dir == "rule" ? rs->reasonRules_ : dir == "rule5" ? rs->reason5Rules_ : rs->headlineRules_).push_back(std::move(rule));
    } else if (dir == "command") {
      Rule rule;
      rule.reason = std::string(nextWord(rest));  // the command
      rule.name = std::string(nextWord(rest));
      rule.pattern = std::string(rest);
      rule.line = lineNo;
      if (rule.name.empty() || rule.pattern.empty()) return err("command needs CMD NAME PATTERN");
      rs->commandRules_.push_back(std::move(rule));
    } else if (dir == "demote") {
      std::string r(nextWord(rest)), to(nextWord(rest));
      if (!needReason(r) || !needReason(to)) return err("demote needs REASON OTHER CMD...");
      Demotion d{to, {}};
      while (!rest.empty()) d.commands.insert(std::string(nextWord(rest)));
      rs->demote_[r] = d;
    } else if (dir == "category") {
      Category c{toLower(nextWord(rest)), toLower(nextWord(rest)), std::string(nextWord(rest)), lineNo};
      if (c.field.empty() || c.value.empty() || c.reason.empty() || !rest.empty()) {
        return err("category needs FIELD VALUE REASON");
      }
      if (!needReason(c.reason)) return err("unknown reason \"" + c.reason + "\"");
      rs->categories_.push_back(std::move(c));
    } else if (dir == "lhost" || dir == "and") {
      LhostCond c;
      std::string name = dir == "lhost" ? std::string(nextWord(rest)) : std::string();
      c.field = toLower(nextWord(rest));
      c.pattern = std::string(rest);
      c.line = lineNo;
      if (c.field.empty() || c.pattern.empty() || (dir == "lhost" && name.empty())) {
        return err(dir == "lhost" ? "lhost needs NAME FIELD PATTERN" : "and needs FIELD PATTERN");
      }
      if (dir == "and" && rs->lhosts_.empty()) return err("\"and\" without an lhost line above it");
      if (dir == "lhost") rs->lhosts_.push_back(Lhost{name, {}});
      rs->lhosts_.back().conds.push_back(std::move(c));
    } else if (dir == "generic") {
      while (!rest.empty()) rs->generic_.insert(std::string(nextWord(rest)));
    } else if (dir == "sender" || dir == "complaint" || dir == "cut0" || dir == "subject" || dir == "autoreply" || dir == "cut" || dir == "skip" || dir == "mda" ||
               dir == "temporary" || dir == "rhost") {
      Rule rule;
      rule.name = std::string(nextWord(rest));
      rule.pattern = std::string(rest);
      rule.line = lineNo;
      if (rule.name.empty() || rule.pattern.empty()) return err(dir + " needs NAME PATTERN");
      auto& v = dir == "sender" ? rs->senderRules_ : dir == "subject" ? rs->subjectRules_
              : dir == "autoreply" ? rs->autoReplyRules_ : dir == "cut" ? rs->cutRules_
              : dir == "complaint" ? rs->complaintRules_ : dir == "cut0" ? rs->cut0Rules_
              : dir == "mda" ? rs->mdaRules_ : dir == "temporary" ? rs->temporaryRules_
              : dir == "rhost" ? rs->rhosts_ : rs->skipRules_;
      v.push_back(std::move(rule));
    } else {
      return err("unknown directive \"" + dir + "\"");
    }
  }
  if (rs->reasonRules_.empty()) return makeError(source + ": no \"rule\" lines");
  if (auto s = rs->compile(source); !s) return s.error();
  return rs;
}

Status RuleSet::compile(const std::string& source) {
  struct Job {
    const std::vector<Rule>* rules;
    std::unique_ptr<ReSet>* out;
  };
  re_ = std::make_unique<Compiled>();
  // The three groups a diagnostic is matched against share one MultiMatcher (one pass); indices
  // [0, R) are reason rules, [R, R+R5) reason5 rules, the rest command rules.
  std::vector<Rule> text = reasonRules_;
  text.insert(text.end(), reason5Rules_.begin(), reason5Rules_.end());
  text.insert(text.end(), commandRules_.begin(), commandRules_.end());
  {
    std::vector<std::string> pats;
    for (const Rule& r : text) pats.push_back(r.pattern);
    size_t bad = 0;
    if (auto st = re_->text.build(pats, &bad); !st) {
      const Rule& r = text[bad];
      return makeError(source + ":" + std::to_string(r.line) + ": bad pattern for rule " + r.name + ": " + st.message());
    }
    std::vector<std::string> cmds;
    for (const Rule& r : commandRules_) cmds.push_back(r.pattern);
    if (auto st = re_->command.build(cmds); !st) return makeError(source + ": " + st.message());
  }
  for (Job j : {Job{&senderRules_, &re_->sender}, Job{&subjectRules_, &re_->subject},
                Job{&autoReplyRules_, &re_->autoReply}, Job{&skipRules_, &re_->skip},
                Job{&complaintRules_, &re_->complaint}, Job{&temporaryRules_, &re_->temporary},
                Job{&headlineRules_, &re_->headline}}) {
    auto s = buildSet(*j.rules, source);
    if (!s) return s.error();
    *j.out = std::move(s.value());
  }
  auto patterns = [](std::initializer_list<const std::vector<Rule>*> groups) {
    std::vector<std::string> p;
    for (const auto* g : groups)
      for (const Rule& r : *g) p.push_back(r.pattern);
    return p;
  };
  re_->headlineGate.build(patterns({&headlineRules_}));
  re_->mdaGate.build(patterns({&mdaRules_}));
  re_->cutGate.build(patterns({&cutRules_, &cut0Rules_}));
  // Subjects, addresses and diagnostics are short: more memchr passes still cost less than RE2.
  re_->complaintGate.build(patterns({&complaintRules_}), kShortTextPasses);
  re_->skipGate.build(patterns({&skipRules_}), kShortTextPasses);
  re_->temporaryGate.build(patterns({&temporaryRules_}), kShortTextPasses);
  if (!cutRules_.empty() || !cut0Rules_.empty()) {
    auto alt = [](const std::vector<Rule>& v) {
      std::string a;
      for (size_t i = 0; i < v.size(); ++i) a += (i ? "|(?:" : "(?:") + v[i].pattern + ")";
      return a.empty() ? std::string("[^\\s\\S]") : a;  // an empty class never matches
    };
    std::string body = "(?:[ \\t>]*(?:" + alt(cutRules_) + ")|(?:" + alt(cut0Rules_) + "))";
    re_->cut = std::make_unique<re2::RE2>("(?m)^" + body, reOptions());
    if (!re_->cut->ok()) return makeError(source + ": bad cut pattern: " + re_->cut->error());
    // The "\n" case-sensitive, the rest not: a case-folded prefix makes RE2 step a shift DFA
    // through every byte, a plain one lets it memchr (same matches: "\n" has no case).
    re2::RE2::Options exact = reOptions();
    exact.set_case_sensitive(true);
    re_->cutAfterNewline = std::make_unique<re2::RE2>("\\n(?i:" + body + ")", exact);
    if (!re_->cutAfterNewline->ok()) return makeError(source + ": bad cut pattern: " + re_->cutAfterNewline->error());
  }
  if (!rhosts_.empty()) {
    auto set = buildSet(rhosts_, source);
    if (!set) return set.error();
    re_->rhost = std::move(set.value());
  }
  size_t condNo = 0;
  for (const Lhost& l : lhosts_) {
    re_->lhostConds.emplace_back(condNo, condNo + l.conds.size());
    for (const LhostCond& c : l.conds) {
      auto f = std::find_if(re_->lhostFields.begin(), re_->lhostFields.end(),
                            [&](const Compiled::LhostField& x) { return x.name == c.field; });
      if (f == re_->lhostFields.end()) {
        re_->lhostFields.push_back({c.field, std::make_unique<MultiMatcher>(), {}, {}, {}});
        f = re_->lhostFields.end() - 1;
      }
      auto re = std::make_unique<re2::RE2>(c.pattern, reOptions());  // checks the syntax, names the line
      if (!re->ok()) {
        return makeError(source + ":" + std::to_string(c.line) + ": bad pattern for lhost " + l.name + ": " + re->error());
      }
      if (c.pattern.find("(?-i") != std::string::npos) {
        f->exact.emplace_back(condNo++, std::move(re));
      } else {
        f->patterns.push_back(c.pattern);
        f->cond.push_back(condNo++);
      }
      re_->condField.push_back(static_cast<size_t>(f - re_->lhostFields.begin()));
    }
  }
  for (auto& f : re_->lhostFields) {
    if (auto st = f.set->build(f.patterns); !st) return makeError(source + ": lhost patterns: " + st.message());
  }
  if (!mdaRules_.empty()) {
    std::string a;
    for (const Rule& r : mdaRules_) {
      a += (a.empty() ? "(?:" : "|(?:") + r.pattern + ")";
      re_->mdaEach.push_back(std::make_unique<re2::RE2>(r.pattern, reOptions()));
      if (!re_->mdaEach.back()->ok()) {
        return makeError(source + ":" + std::to_string(r.line) + ": bad pattern for mda " + r.name + ": " +
                         re_->mdaEach.back()->error());
      }
    }
    re_->mda = std::make_unique<re2::RE2>("(?m)^(?:" + a + ")", reOptions());
    if (!re_->mda->ok()) return makeError(source + ": bad mda pattern: " + re_->mda->error());
  }
  return okStatus();
}

RuleSet::Hits RuleSet::scan(std::string_view text) const {
  Hits h;
  int r = static_cast<int>(reasonRules_.size()), r5 = static_cast<int>(reason5Rules_.size());
  const Rule* cmd = nullptr;
  for (int i : re_->text.match(text)) {
    if (i < r) {
      h.reasons.push_back(i);
    } else if (i < r + r5) {
      h.reasons5.push_back(i - r);
    } else {
      const Rule& c = commandRules_[static_cast<size_t>(i - r - r5)];
      if (!cmd || c.line < cmd->line) cmd = &c;
    }
  }
  if (cmd) h.command = cmd->reason;
  return h;
}

std::vector<int> RuleSet::matchReasons(std::string_view text) const { return scan(text).reasons; }
std::vector<int> RuleSet::matchReasons5(std::string_view text) const { return scan(text).reasons5; }
bool RuleSet::matchSender(std::string_view s) const { return anyInSet(re_->sender.get(), senderRules_.size(), s); }
bool RuleSet::matchSubject(std::string_view s) const { return anyInSet(re_->subject.get(), subjectRules_.size(), s); }
bool RuleSet::matchAutoReply(std::string_view s) const { return anyInSet(re_->autoReply.get(), autoReplyRules_.size(), s); }
bool RuleSet::skipAddress(std::string_view s) const {
  return re_->skipGate.mayMatch(s) && anyInSet(re_->skip.get(), skipRules_.size(), s);
}

bool RuleSet::matchComplaint(std::string_view s) const {
  return re_->complaintGate.mayMatch(s) && anyInSet(re_->complaint.get(), complaintRules_.size(), s);
}

bool RuleSet::matchTemporary(std::string_view s) const {
  return re_->temporaryGate.mayMatch(s) && anyInSet(re_->temporary.get(), temporaryRules_.size(), s);
}

const Rule* RuleSet::headline(std::string_view text) const {
  if (!re_->headline || headlineRules_.empty() || !re_->headlineGate.mayMatch(text)) return nullptr;
  std::vector<int> hits;
  if (!re_->headline->Match(re2::StringPiece(text.data(), text.size()), &hits) || hits.empty()) return nullptr;
  return &headlineRules_[static_cast<size_t>(*std::min_element(hits.begin(), hits.end()))];
}

bool RuleSet::mayHaveHeadline(std::string_view rawText) const {
  return re_->headline && !headlineRules_.empty() && re_->headlineGate.mayMatch(rawText);
}

std::string RuleSet::smtpCommand(std::string_view text) const {
  const Rule* best = nullptr;
  for (int i : re_->command.match(text)) {
    const Rule& c = commandRules_[static_cast<size_t>(i)];
    if (!best || c.line < best->line) best = &c;
  }
  return best ? best->reason : std::string();
}

std::string RuleSet::demoted(const std::string& reason, std::string_view command, std::string_view statusReason) const {
  auto it = demote_.find(reason);
  if (it == demote_.end() || statusReason == reason || command.empty()) return reason;  // "?" = unknown
  if (it->second.commands.count(command)) return reason;
  return it->second.to;
}

const RuleSet::Category* RuleSet::category(const mime::Fields& group) const {
  for (const Category& c : categories_) {
    if (const std::string_view* v = group.find(c.field); v && iequals(trim(*v), c.value)) return &c;
  }
  return nullptr;
}

size_t RuleSet::findCut(std::string_view text) const {
  if (!re_->cut || !re_->cutGate.mayMatch(text)) return std::string_view::npos;
  // A line start is the text's start or follows a '\n' (the text has LF line ends): the first
  // anchored there, the others found by the pattern that starts with the "\n".
  re2::StringPiece t(text.data(), text.size()), m;
  if (re_->cut->Match(t, 0, text.size(), re2::RE2::ANCHOR_START, &m, 1)) return 0;
  if (!re_->cutAfterNewline->Match(t, 0, text.size(), re2::RE2::UNANCHORED, &m, 1)) return std::string_view::npos;
  return static_cast<size_t>(m.data() - text.data()) + 1;
}

bool RuleSet::mayHaveMda(std::string_view text) const { return re_->mda && re_->mdaGate.mayMatch(text); }

size_t RuleSet::findMda(std::string_view text, std::string* name) const {
  if (!re_->mda || !re_->mdaGate.mayMatch(text)) return std::string_view::npos;
  re2::StringPiece t(text.data(), text.size()), m;
  if (!re_->mda->Match(t, 0, text.size(), re2::RE2::UNANCHORED, &m, 1)) return std::string_view::npos;
  size_t at = static_cast<size_t>(m.data() - text.data());
  if (name) {
    re2::StringPiece line(text.data() + at, text.size() - at);
    for (size_t i = 0; i < mdaRules_.size(); ++i) {
      if (re_->mdaEach[i]->Match(line, 0, line.size(), re2::RE2::ANCHOR_START, nullptr, 0)) {
        *name = mdaRules_[i].name;
        break;
      }
    }
  }
  return at;
}

std::string RuleSet::statusReason(std::string_view code) const {
  auto it = status_.find(code);
  return it == status_.end() ? std::string() : it->second;
}

int RuleSet::priority(std::string_view reason) const {
  auto it = order_.find(reason);
  return it == order_.end() ? 1000 : it->second;
}

bool RuleSet::yields(std::string_view statusReason, std::string_view textReason, std::string_view command) const {
  auto it = yield_.find(statusReason);
  if (it == yield_.end()) return false;
  if (it->second.count(textReason) != 0) return true;
  return !command.empty() && it->second.count(std::string(textReason) + "@" + std::string(command)) != 0;
}

bool RuleSet::prefers(std::string_view statusReason, std::string_view textReason) const {
  auto it = prefer_.find(statusReason);
  return it != prefer_.end() && it->second.count(textReason) != 0;
}

std::string RuleSet::pseudoStatus(std::string_view reason, bool temporary) const {
  auto it = pseudo_.find(reason);
  if (it == pseudo_.end()) return temporary ? "4.0.0" : "5.0.0";
  return temporary ? it->second.second : it->second.first;
}

size_t RuleSet::patternCount() const {
  return reasonRules_.size() + reason5Rules_.size() + senderRules_.size() + subjectRules_.size() +
         autoReplyRules_.size() + cutRules_.size() + cut0Rules_.size() + skipRules_.size() +
         complaintRules_.size() + commandRules_.size() + mdaRules_.size() + temporaryRules_.size() + headlineRules_.size();
}


std::string RuleSet::lhost(const mime::Fields& headers) const {
  if (lhosts_.empty()) return {};
  // A header name's conditions are matched (one MultiMatcher pass over the lower-cased value) the
  // first time a line needs one of them: most reports are named by their Subject before the long
  // Received lines are looked at. At most kMaxLhostValues fields of a name, kMaxLhostValue bytes each.
  constexpr size_t kMaxLhostValues = 8, kMaxLhostValue = 1024;
  const size_t nConds = re_->lhostConds.back().second;
  const auto& fields = re_->lhostFields;
  // One pass over the headers keeps those with a name some condition looks at.
  std::vector<std::pair<size_t, std::string_view>> values;
  values.reserve(16);
  for (const mime::Field& h : headers.items()) {
    if (h.name.empty()) continue;
    char c0 = static_cast<char>(h.name[0] | 0x20);
    for (size_t fi = 0; fi < fields.size(); ++fi) {
      const std::string& n = fields[fi].name;
      if (n.size() == h.name.size() && n[0] == c0 && iequals(h.name, n)) {
        values.emplace_back(fi, h.value);
        break;
      }
    }
  }
  std::vector<char> held(nConds, 0), fieldDone(fields.size(), 0);
  std::string lower;
  auto matchField = [&](size_t fi) {
    fieldDone[fi] = 1;
    size_t seen = 0;
    for (const auto& [vf, value] : values) {
      if (vf != fi) continue;
      std::string_view v = value.substr(0, kMaxLhostValue);
      lower.assign(v);
      toLowerInPlace(lower);
      for (int k : fields[fi].set->match(lower)) held[fields[fi].cond[static_cast<size_t>(k)]] = 1;
      for (const auto& [cond, re] : fields[fi].exact) {
        if (re2::RE2::PartialMatch(re2::StringPiece(v.data(), v.size()), *re)) held[cond] = 1;
      }
      if (++seen == kMaxLhostValues) break;
    }
  };
  for (size_t i = 0; i < lhosts_.size(); ++i) {
    auto [from, to] = re_->lhostConds[i];
    bool all = true;
    for (size_t c = from; all && c < to; ++c) {
      size_t fi = re_->condField[c];
      if (!fieldDone[fi]) matchField(fi);
      all = held[c] != 0;
    }
    if (all) return lhosts_[i].name;
  }
  return {};
}

std::string RuleSet::rhost(std::string_view remoteMta, std::string_view domain) const {
  if (!re_->rhost) return {};
  std::vector<int> which;
  int best = -1;
  for (std::string_view v : {remoteMta, domain}) {
    which.clear();
    if (v.empty() || !re_->rhost->Match(re2::StringPiece(v.data(), v.size()), &which)) continue;
    for (int k : which) best = best < 0 ? k : std::min(best, k);
  }
  return best < 0 ? std::string() : rhosts_[static_cast<size_t>(best)].name;
}

}  // namespace sluice::bounce
