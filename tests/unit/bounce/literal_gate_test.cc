// literal_gate_test.cc - LiteralGate may only close on texts none of its patterns matches (RE2,
// Latin-1, case-insensitive, as the rules are compiled), neither as they are nor whitespace-
// collapsed and lower-cased: the shipped headline and mda rules and own ones with Latin-1
// letters, over samples in mixed case and line breaks, with random bytes spliced in.
#include "bounce/literal_gate.h"

#include "bounce/extract.h"
#include "re2_reference.h"

#include <gtest/gtest.h>
#include <re2/re2.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

namespace sluice::bounce::detail {
namespace {

bool anyRe2(const std::vector<std::unique_ptr<re2::RE2>>& res, const std::string& t) {
  for (const auto& re : res)
    if (re2::RE2::PartialMatch(t, *re)) return true;
  return false;
}

TEST(LiteralGate, ClosedOnlyWhenNoPatternMatches) {
  std::vector<std::string> pats = {
      "the user\\(s\\) account is (?:disabled|temporarily limited)\\.",
      "the user\\(s\\) account is temporarily over quota",
      "your message to [^ ]+ was automatically rejected:", "mail\\.local: ", "procmail: ",
      "caf\xe9 ferm\xe9", "^x-gate: [0-9]+"};
  LiteralGate gate;
  gate.build(pats, 8);
  auto res = testing::referenceRegexes(pats);
  std::vector<std::string> texts = {
      "", "550 user unknown", "The User(s) Account Is Disabled.", "the user(s) account is temporarily over quota",
      "Your message to <a@b.example> was automatically REJECTED: quota", "MAIL.LOCAL: x", "procmail:",
      "CAF\xc9 FERM\xc9", "caf\xc9 ferm\xe9", "cafe ferme", "X-Gate: 12", "y x-gate: 12", "the user(s) account",
      "The user(s)\n   account\tis\r\ndisabled.", "your  message to x was\n automatically rejected:", "procmail:\n"};
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> byte(0, 255);
  for (size_t i = 0, n = texts.size(); i < 400; ++i) {
    std::string t = texts[i % n];
    for (int j = 0; j < 3; ++j) t += static_cast<char>(byte(rng));
    t += texts[(i * 7 + 3) % n];
    if (i % 2) t.insert(t.begin() + static_cast<ptrdiff_t>(static_cast<size_t>(byte(rng)) % (t.size() + 1)), '\n');
    texts.push_back(t);
  }
  size_t closed = 0;
  for (const auto& t : texts) {
    bool may = gate.mayMatch(t);
    if (anyRe2(res, t) || anyRe2(res, collapseLower(t))) {  // the raw text or the parser's form
      EXPECT_TRUE(may) << t;
    }
    closed += may ? 0 : 1;
  }
  EXPECT_GT(closed, 0u);
  EXPECT_FALSE(gate.mayMatch("550 5.1.1 user unknown"));
}

TEST(LiteralGate, OpenWithoutLiterals) {
  LiteralGate gate;
  gate.build({"abc", "[0-9]+x"});  // the second branch has no literal to look for
  EXPECT_TRUE(gate.mayMatch("nothing here"));
  LiteralGate costly;
  costly.build({"one", "two", "six", "ten"}, 1);  // more passes than allowed
  EXPECT_TRUE(costly.mayMatch("nothing here"));
}

}  // namespace
}  // namespace sluice::bounce::detail
