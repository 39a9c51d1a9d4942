// regex_split.h - internal to lib/bounce: a rule pattern rewritten as the union of its
// alternatives ("branches"), each a plain literal or a smaller regex with the literal it requires,
// so that MultiMatcher can decide most patterns without RE2 and run RE2 only on a branch whose
// required literal occurs in the text.
//
// Reads the subset of RE2 syntax the rules use: literal characters and escaped punctuation,
// groups ((?:...) and (...): captures do not matter for a yes/no match) holding alternations,
// '?' after a character or a group, and classes of a few single characters ("[ ]", "[24]",
// "[-]"); all of these are expanded (P(?:A|B)? -> PA, PB, P). Anything else (".", "*", "+",
// "{n,m}", other classes, \b \d \A \z, ^ $) stays regex text, inside its branch. The union of
// the branches matches exactly the texts the pattern matches (same RE2 options). Literals are
// lower-cased (the rules are case-insensitive; matched texts are lower-case). A regex branch
// lists the literal runs (3 bytes or more; else its longest) that every match contains, all of
// them, so that "\bdmarc\b.*reject" runs only in texts holding both "dmarc" and "reject".
// Bounds: at most kMaxBranches branches and kMaxDepth nested groups; past them, or on syntax
// this reader does not know (flags "(?i)", "\Q", ...), the pattern stays one regex branch.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sluice::bounce::detail {

inline constexpr size_t kMaxBranches = 64;
inline constexpr size_t kMaxDepth = 8;

struct Branch {
  bool literal = false;               // the branch is the plain string `text`
  std::string text;                   // the literal, or the branch as RE2 syntax
  std::string prefix;                 // regex branch anchored by ^ or \A: the literal it starts with
  std::vector<std::string> required;  // other regex branches: literal runs every match contains
};

std::vector<Branch> splitAlternatives(std::string_view pattern);

}  // namespace sluice::bounce::detail
