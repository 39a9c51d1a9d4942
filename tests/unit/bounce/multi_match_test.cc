// multi_match_test.cc - MultiMatcher (patterns split into branches, a hashed-key prefilter over
// their literals, then RE2) must report exactly the patterns that RE2 alone finds, for the
// shipped rules over many texts: samples, random splices, the shared corpus' bounces; including
// bytes >= 0x80, literals longer than their 4-byte key or in the last three bytes of a text, and
// own patterns with literals shorter than a key.
#include "bounce/multi_match.h"
#include "re2_reference.h"

#include <gtest/gtest.h>
#include <re2/re2.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <random>
#include <string>
#include <vector>

namespace sluice::bounce {
namespace {

std::vector<std::string> shippedPatterns() {
  std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/contrib/bounce-rules.conf");
  std::vector<std::string> pats;
  std::string line;
  while (std::getline(in, line)) {
    size_t skip = line.rfind("rule ", 0) == 0 || line.rfind("rule5 ", 0) == 0 || line.rfind("command ", 0) == 0 ? 3 : 0;
    if (!skip) continue;
    size_t pos = 0;
    for (size_t i = 0; i < skip && pos != std::string::npos; ++i) pos = line.find(' ', pos + 1);
    if (pos != std::string::npos) pats.push_back(line.substr(pos + 1));
  }
  return pats;
}

TEST(MultiMatcher, SameAnswersAsRe2) {
  auto pats = shippedPatterns();
  ASSERT_GT(pats.size(), 500u);
  MultiMatcher m;
  ASSERT_TRUE(m.build(pats).ok());
  auto res = testing::referenceRegexes(pats);
  std::vector<std::string> texts = {
      "550 5.1.1 <a@example.org>: recipient address rejected: user unknown in local recipient table",
      "552 5.2.2 mailbox full", "sorry, i couldn't find any host named example.invalid. (#5.1.2)",
      "this message has been in the queue too long", "host or domain name not found",
      "550 : user unknown", "<x@ezweb.ne.jp>: user unknown", "aup#in-1310 too many connections",
      "domino ディレクトリには見つかりません", "sent by", "no spf", "rejected by", "envelope blocked \xe2\x80\x93 user entry", "", "x",
      "550-5.7.1 [192.0.2.1] our system has detected that this message is likely unsolicited mail"};
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> pick(0, static_cast<int>(texts.size()) - 1), byte(0, 255);
  for (int i = 0; i < 300; ++i) {  // splices of the samples with random bytes in between
    std::string t = texts[static_cast<size_t>(pick(rng))];
    for (int j = 0; j < 3; ++j) {
      int b = byte(rng);  // texts are lower-cased before matching (match()'s contract)
      t += static_cast<char>(b >= 'A' && b <= 'Z' ? b + 32 : b);
    }
    t += texts[static_cast<size_t>(pick(rng))];
    texts.push_back(t);
  }
  for (const auto& t : texts) {
    std::vector<int> want;
    for (size_t i = 0; i < res.size(); ++i)
      if (re2::RE2::PartialMatch(t, *res[i])) want.push_back(static_cast<int>(i));
    std::vector<int> got = m.match(t);
    EXPECT_EQ(got, want) << t;  // sorted
  }
}

// Real report texts as the parser scans them: lower-cased, whitespace collapsed, bounded.
TEST(MultiMatcher, SameAnswersAsRe2OnCorpus) {
  std::string dir = std::string(SLUICE_SHARED_DIR) + "/corpus/bounces/messages";
  if (!std::filesystem::is_directory(dir)) GTEST_SKIP() << "no corpus at " << dir;
  auto pats = shippedPatterns();
  MultiMatcher m;
  ASSERT_TRUE(m.build(pats).ok());
  auto res = testing::referenceRegexes(pats);
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (size_t k = 0; k < files.size(); k += 3) {
    std::ifstream in(files[k], std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string t;
    for (char c : ss.str().substr(0, 6000)) {
      if (c == '\n' || c == '\r' || c == '\t') c = ' ';
      if (c == ' ' && !t.empty() && t.back() == ' ') continue;
      t.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    std::vector<int> want;
    for (size_t i = 0; i < res.size(); ++i)
      if (re2::RE2::PartialMatch(t, *res[i])) want.push_back(static_cast<int>(i));
    std::vector<int> got = m.match(t);
    EXPECT_EQ(got, want) << files[k];
  }
}

// The prefilter's less common paths: literals of 1 to 3 bytes (no 4-byte key), a key in the
// middle or at the end of its literal, regex branches whose short literals are checked after
// their long ones, atoms at the text's very start and end.
TEST(MultiMatcher, ShortLiteralsAndInnerKeys) {
  std::vector<std::string> pats = {"x", "ab", "not", "spf", "\\bspf\\b.*fail", "\\bofr\\d*_103\\b", "zzqx",
                                   "mess(?:age|ages) rejected", "a.b", "qu?x+", "the user\\(s\\) account"};
  MultiMatcher m;
  ASSERT_TRUE(m.build(pats).ok());
  auto res = testing::referenceRegexes(pats);
  std::vector<std::string> texts = {"", "x", "ab", "not", "no", "sp", "spf", "spf fail", "fail spf", "spf: soft fail",
                                    "ofr_103", "ofr12_103 x", "ofr_1034", "zzq", "zzqx", "azzqx", "message rejected",
                                    "messages rejected!", "message rejecte", "a-b", "qxxx", "the user(s) account is",
                                    "he user(s) account", "xx notspf fail zzqx ab"};
  for (const auto& t : texts) {
    std::vector<int> want;
    for (size_t i = 0; i < res.size(); ++i)
      if (re2::RE2::PartialMatch(t, *res[i])) want.push_back(static_cast<int>(i));
    EXPECT_EQ(m.match(t), want) << t;
  }
}

// Patterns whose literals are all 5 bytes or more (probed at every 2nd position) or 7 (every
// 4th): every occurrence found, at every offset, near both ends of the text.
TEST(MultiMatcher, SampledProbesFindEveryOffset) {
  for (const std::vector<std::string>& pats : std::vector<std::vector<std::string>>{
           {"<<< 5\\d\\d", "after data\\b", "in reply to (?:rcpt|mail) to command", "abcde"},
           {"abcdefg", "xyzzy plugh", "after end of data", "dmarc policy.*rejected"}}) {
    MultiMatcher m;
    ASSERT_TRUE(m.build(pats).ok());
    auto res = testing::referenceRegexes(pats);
    std::vector<std::string> pieces = {"<<< 550", "after data", "in reply to rcpt to command", "abcde", "abcdefg",
                                       "xyzzy plugh", "after end of data", "dmarc policy rejected", "x", " "};
    std::mt19937 rng(3);
    for (int i = 0; i < 2000; ++i) {
      std::string t(rng() % 9, 'q');  // every offset
      for (int j = 0; j < 3; ++j) {
        t += pieces[rng() % pieces.size()];
        t += std::string(rng() % 6, ' ');
      }
      if (rng() % 2) t.resize(t.size() - std::min<size_t>(t.size(), rng() % 4));  // cut near the end
      std::vector<int> want;
      for (size_t k = 0; k < res.size(); ++k)
        if (re2::RE2::PartialMatch(t, *res[k])) want.push_back(static_cast<int>(k));
      EXPECT_EQ(m.match(t), want) << t;
    }
  }
}

TEST(MultiMatcher, EmptyAndBadPatterns) {
  MultiMatcher m;
  ASSERT_TRUE(m.build({}).ok());
  EXPECT_TRUE(m.match("anything").empty());
  MultiMatcher bad;
  EXPECT_FALSE(bad.build({"ok", "(unclosed"}).ok());
}

}  // namespace
}  // namespace sluice::bounce
