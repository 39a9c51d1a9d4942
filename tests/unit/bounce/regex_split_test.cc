// regex_split_test.cc - splitAlternatives(): which branches a pattern becomes (literal or regex,
// prefix, required literals), and the patterns it leaves whole (unknown syntax, too many
// branches). That the union of the branches matches what the pattern matches is checked against
// RE2 in multi_match_test.cc.
#include "bounce/regex_split.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::bounce::detail {
namespace {

std::string show(const std::vector<Branch>& bs) {
  std::string s;
  for (const Branch& b : bs) {
    s += b.literal ? "L:" : "R:";
    s += b.text;
    if (!b.prefix.empty()) s += " ^" + b.prefix;
    for (const std::string& r : b.required) s += " +" + r;
    s += "; ";
  }
  return s;
}

TEST(RegexSplit, Branches) {
  struct Case {
    const char* pattern;
    const char* want;
  } cases[] = {
      {"user unknown", "L:user unknown; "},
      {"User[ ](?:not[ ](?:active|exist)|unknown)", "L:user not active; L:user not exist; L:user unknown; "},
      {"a(?:bc)?d", "L:abcd; L:ad; "},
      {"colou?r", "L:colour; L:color; "},
      {"[Aa]bc|x\\.y", "L:abc; L:x.y; "},
      {"bad[-_ \\t]rcpt", "L:bad\trcpt; L:bad rcpt; L:bad-rcpt; L:bad_rcpt; "},
      {"^50[0-7][ -]", "R:^50[0-7]  ^50; R:^50[0-7]\\- ^50; "},
      {"\\Aunknown user", "R:\\Aunknown user ^unknown user; "},
      {"\\bdmarc\\b.*reject", "R:\\bdmarc\\b.*reject +dmarc +reject; "},
      {"user[ ][^ ]+[ ]was[ ]not[ ]found", "R:user [^ ]+ was not found +user  + was not found; "},
      {"a{2}bc", "R:a{2}bc +bc; "},
      {"(x|y)+z", "R:(x|y)+z; "},
      {"(?i)abc", "R:(?i)abc; "},
      {"a\\Qb\\E", "R:a\\Qb\\E; "},
      {"(?:a|b|c|d|e|f|g|h)(?:a|b|c|d|e|f|g|h)(?:a|b)", "R:(?:a|b|c|d|e|f|g|h)(?:a|b|c|d|e|f|g|h)(?:a|b); "},
  };
  for (const Case& c : cases) EXPECT_EQ(show(splitAlternatives(c.pattern)), c.want) << c.pattern;
}

}  // namespace
}  // namespace sluice::bounce::detail
