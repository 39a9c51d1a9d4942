// literal_gate.h - internal to lib/bounce: a quick test that a small group of rule patterns
// cannot match a text, so that the group's RE2 (a Set, or one alternation over long texts) need
// not run at all - the common case for the headline, mda, complaint, skip and temporary rules
// (RuleSet builds one for the cut rules too; theirs stays open: common letters only).
//
// Every match of a pattern contains, for one of its branches (regex_split.h), that branch's
// literal (a literal branch) or each of its required literals. The gate keeps one such literal a
// branch and looks for it around the occurrences of one of its bytes, the anchor: the rarest by
// byteCommonness(), found with memchr (branches sharing an anchor byte share the pass). The
// comparison is looser than RE2's case folding (Latin-1, case-insensitive: the rules' options):
// an ASCII letter or a Latin-1 letter matches either case, every other byte itself, and a run of
// spaces in a literal a run of at least as many whitespace bytes; so mayMatch() is false only when
// RE2 cannot match, neither in the text nor in its collapsed, lower-cased form (which is what a
// gate on the raw text can spare: computing that form). A branch with no literal, or a group whose literals need
// too many passes (the cut rules: common letters only), makes the gate always open.
// Work: one memchr pass a distinct anchor byte (two for a letter), a short comparison a hit; no
// allocation.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sluice::bounce::detail {

// How common a byte is in English report text (about log2 of its frequency per mille); used to
// pick the rarest bytes of a literal as a search key.
double byteCommonness(unsigned char c);

class LiteralGate {
 public:
  // Patterns in RE2 syntax, matched case-insensitively in Latin-1 (those of one RuleSet group).
  // When they need more than maxPasses memchr passes (anchor bytes, a letter counting twice),
  // the gate stays open: it would cost more than the regex it spares.
  void build(const std::vector<std::string>& patterns, size_t maxPasses = 3);
  // false: no pattern can match text, nor text with its whitespace collapsed and lower-cased
  // (collapseLower(), truncated or not); true: some may (run the regexes).
  bool mayMatch(std::string_view text) const;

 private:
  struct Need {
    std::string literal;  // lower-case, as regex_split gives it
    std::string other;    // the same with each byte in its other case (== it when none)
    size_t anchor = 0;    // offset of the anchor byte in literal
  };
  struct Anchor {
    unsigned char byte = 0, other = 0;  // other: its other case (== byte when it has none)
    std::vector<Need> needs;
  };
  std::vector<Anchor> anchors_;
  bool open_ = false;  // some branch has no literal: every text may match
};

}  // namespace sluice::bounce::detail
