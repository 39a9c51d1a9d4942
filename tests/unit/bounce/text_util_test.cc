// text_util_test.cc - the text scanners of lib/bounce/text_util.cc against plain byte-by-byte
// reference versions, over random texts made of the bytes that matter to them (whitespace runs,
// letters of both cases, digits, dots, '@', bytes >= 0x80, control bytes) and every output bound.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>

#include "base/strings.h"
#include "bounce/bounce.h"
#include "bounce/extract.h"

namespace sluice::bounce {
namespace {

// The reference: one byte at a time.
std::string collapseRef(std::string_view text, size_t max, bool lower) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      space = !out.empty();
      continue;
    }
    if (space) {
      if (out.size() == max) break;
      out.push_back(' ');
      space = false;
    }
    if (out.size() == max) break;
    if (lower && c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    out.push_back(c);
  }
  return out;
}

bool digit(char c) { return c >= '0' && c <= '9'; }
bool alnum(char c) { return digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// findStatusCode as two plain passes over every position (4.x.x/5.x.x, then 2.x.x).
std::string findStatusCodeRef(std::string_view t) {
  std::string loose;
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i + 5 <= t.size(); ++i) {
      char c = t[i];
      if (pass == 0 ? (c != '4' && c != '5') : c != '2') continue;
      if (!digit(t[i]) || t[i + 1] != '.' || !digit(t[i + 2]) || t[i + 3] != '.') continue;
      size_t j = i + 4, n = 0;
      while (j < t.size() && digit(t[j]) && n < 4) ++j, ++n;
      if (n == 0 || n > 3) continue;
      size_t len = j - i, e = j;
      if (i > 0 && (alnum(t[i - 1]) || t[i - 1] == '.' || (t[i - 1] == '-' && i > 1 && alpha(t[i - 2])))) continue;
      if (e < t.size() && (alnum(t[e]) || t[e] == '@')) continue;
      if (e + 1 < t.size() && t[e] == '.' && digit(t[e + 1])) continue;
      if (pass == 1 && (t[i + 2] > '7' || len != 5 || t[i + 4] > '7')) continue;
      size_t k = i >= 1 && (t[i - 1] == '\'' || t[i - 1] == '"') ? i - 1 : i;  // 550-'5.2.2
      bool anchored = (k >= 4 && digit(t[k - 2]) && digit(t[k - 3]) && digit(t[k - 4]) &&
                       (t[k - 1] == ' ' || t[k - 1] == '-')) || (i >= 1 && t[i - 1] == '#');
      if (anchored) return std::string(t.substr(i, len));
      if (loose.empty()) loose = std::string(t.substr(i, len));
    }
    if (!loose.empty()) return loose;
  }
  return loose;
}

std::string findReplyCodeRef(std::string_view t) {
  for (size_t i = 0; i + 3 <= t.size(); ++i) {
    char c = t[i];
    if (c != '4' && c != '5') continue;
    if (!digit(t[i + 1]) || !digit(t[i + 2]) || t[i + 1] > '5') continue;
    bool labelled = false;  // "error_code :421" (Zoho)
    if (i > 0 && t[i - 1] == ':') {
      std::string before(t.substr(0, i - 1));
      while (!before.empty() && before.back() == ' ') before.pop_back();
      labelled = before.size() >= 10 && before.compare(before.size() - 10, 10, "error_code") == 0;
    }
    if (i > 0 && !labelled && (alnum(t[i - 1]) || t[i - 1] == '.' || t[i - 1] == '-' || t[i - 1] == ':' ||
                               t[i - 1] == '#' || t[i - 1] == '/' || t[i - 1] == '=' || t[i - 1] == '+')) continue;
    size_t e = i + 3;
    if (e < t.size() && t[e] != ' ' && t[e] != '-' && t[e] != '\n' && t[e] != '\t' && !(labelled && t[e] == ',')) continue;
    if (e + 1 < t.size() && t[e] == '-' && !digit(t[e + 1]) && !alpha(t[e + 1])) continue;
    return std::string(t.substr(i, 3));
  }
  return "";
}

std::string randomText(std::mt19937& rng, size_t n) {
  static const std::string kBytes = "  \t\n\r\f\vaAzZmM09.5@-_\x01\x7f\x80\xc3\xa9\xff[{";
  std::string t;
  std::uniform_int_distribution<size_t> pick(0, kBytes.size() - 1), runLen(1, 12);
  while (t.size() < n) {
    // Runs of ordinary letters, so that the 8-byte fast path is taken too.
    if (rng() % 3 == 0) t.append(runLen(rng), static_cast<char>('a' + rng() % 26 - (rng() % 2) * 32));
    else t.push_back(kBytes[pick(rng)]);
  }
  return t;
}

TEST(TextUtil, CollapseSameAsByteByByte) {
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string t = randomText(rng, rng() % 80);
    size_t max = rng() % 4 == 0 ? rng() % 40 : kMaxDiagnostic;
    ASSERT_EQ(collapseSpace(t, max), collapseRef(t, max, false)) << i;
    ASSERT_EQ(detail::collapseLower(t, max), collapseRef(t, max, true)) << i;
  }
  // Prose: words and single spaces, now and then a line end, a double space or a control
  // byte, so that the 16- and 8-byte fast paths stop at every offset of their block.
  static const std::string kBreaks[] = {" ", " ", " ", " ", "\n", "  ", " \r\n", "\x01", "\t ", "\xc3\xa9 "};
  for (int i = 0; i < 5000; ++i) {
    std::string t;
    size_t n = rng() % 600;
    while (t.size() < n) {
      size_t len = 1 + rng() % 12;
      for (size_t j = 0; j < len; ++j) t.push_back(static_cast<char>((rng() % 2 ? 'a' : 'A') + rng() % 26));
      t += kBreaks[rng() % std::size(kBreaks)];
    }
    size_t max = rng() % 4 == 0 ? rng() % 300 : kMaxDiagnostic;
    ASSERT_EQ(collapseSpace(t, max), collapseRef(t, max, false)) << i;
    ASSERT_EQ(detail::collapseLower(t, max), collapseRef(t, max, true)) << i;
  }
  EXPECT_EQ(collapseSpace("  Hello   World\t\n"), "Hello World");
  EXPECT_EQ(detail::collapseLower(" ABCDEFGH IJKLMNOP  QRSTUVWXYZ \xc3\x89"), "abcdefgh ijklmnop qrstuvwxyz \xc3\x89");
}

TEST(TextUtil, ToLowerChangesAsciiLettersOnly) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  for (size_t off = 0; off < 9; ++off) {  // every alignment of the 8-byte blocks and the tail
    std::string t = all.substr(off), want = t;
    for (char& c : want)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    EXPECT_EQ(toLower(t), want) << off;
  }
}

TEST(TextUtil, FindReplyCodeSameAsEveryPosition) {
  std::mt19937 rng(13);
  static const std::string kBytes = "0123455554444 -:\n\tabc#.";
  for (int i = 0; i < 50000; ++i) {
    std::string t;
    size_t n = rng() % 40;
    while (t.size() < n) t.push_back(kBytes[rng() % kBytes.size()]);
    ASSERT_EQ(findReplyCode(t), findReplyCodeRef(t)) << t;
  }
  EXPECT_EQ(findReplyCode("remote host said: 550 5.1.1 unknown"), "550");
  EXPECT_EQ(findReplyCode("id 4512 x; 421-try later"), "421");
  // Zoho Mail's labelled code; a bare "x:550" stays no reply code.
  EXPECT_EQ(findReplyCode("x@y error, error_code :421, error_code :, host not reachable."), "421");
  EXPECT_EQ(findReplyCode("port:550 x"), "");
}

TEST(TextUtil, FindStatusCodeSameAsTwoPasses) {
  std::mt19937 rng(11);
  static const std::string kBytes = "0123455542789..... -#a@";
  for (int i = 0; i < 50000; ++i) {
    std::string t;
    size_t n = rng() % 40;
    while (t.size() < n) t.push_back(kBytes[rng() % kBytes.size()]);
    ASSERT_EQ(findStatusCode(t), findStatusCodeRef(t)) << t;
  }
  EXPECT_EQ(findStatusCode("host said: 550 5.1.1 user unknown (2.0.0)"), "5.1.1");
  EXPECT_EQ(findStatusCode("ok 2.1.5 then 4.4.7"), "4.4.7");
  EXPECT_EQ(findStatusCode("ok 2.1.5 then #2.0.0"), "2.0.0");
  EXPECT_EQ(findStatusCode("ip 10.5.1.1 and 5.1.10"), "5.1.10");
  // Amazon SES: its own vague code first, the remote server's reply quoted after it.
  EXPECT_EQ(findStatusCode("5.1.0 - unknown address error 550-'5.2.2 <x@y>... mailbox full'"), "5.2.2");
}

}  // namespace
}  // namespace sluice::bounce

// The first address of a text: quoting around it dropped ("='user@", "'user@"), the domain
// lower-cased, the local part kept as written, an RFC 2047 word as the local part kept whole.
TEST(TextUtil, ControlByteCountSameAsByteByByte) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> byte(0, 255), len(0, 5000);
  for (int k = 0; k < 300; ++k) {
    std::string t(static_cast<size_t>(len(rng)), '\0');
    int mode = k % 3;  // random bytes; mostly text; control bytes only
    for (char& c : t) {
      int b = byte(rng);
      c = static_cast<char>(mode == 0 ? b : mode == 1 ? (b < 200 ? 'a' + b % 26 : b % 40) : b % 32);
    }
    size_t want = 0;
    for (unsigned char c : t) want += c < 32 && c != '\t' && c != '\n' && c != '\r';
    EXPECT_EQ(sluice::bounce::detail::controlByteCount(t), want) << "length " << t.size();
  }
  EXPECT_EQ(sluice::bounce::detail::controlByteCount(""), 0u);
}

TEST(TextUtil, FindRareSameAsStringFind) {
  using sluice::bounce::detail::findRare;
  // Small alphabets make partial matches (the anchor byte without the rest) common.
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> len(0, 300), nlen(1, 8), pick(0, 3);
  const std::string alphabet = "tkw ";
  for (int k = 0; k < 3000; ++k) {
    std::string hay(static_cast<size_t>(len(rng)), ' '), needle(static_cast<size_t>(nlen(rng)), ' ');
    for (char& c : hay) c = alphabet[static_cast<size_t>(pick(rng))];
    for (char& c : needle) c = alphabet[static_cast<size_t>(pick(rng))];
    EXPECT_EQ(findRare(hay, needle), std::string_view(hay).find(needle)) << "hay '" << hay << "' needle '" << needle << "'";
  }
  std::string_view t = "while talking to mx.example.org.:";
  EXPECT_EQ(findRare(t, "while talking to "), 0u);                       // at the start
  EXPECT_EQ(findRare(t, "org.:"), t.size() - 5);                         // at the end
  EXPECT_EQ(findRare(t, "transcript of session follows"), std::string_view::npos);
  EXPECT_EQ(findRare("talk", "talking"), std::string_view::npos);        // longer than the text
  EXPECT_EQ(findRare("abc", ""), 0u);
}

TEST(TextUtil, ExtractAddress) {
  EXPECT_EQ(sluice::bounce::extractAddress("RCPT To:<User@Example.ORG>"), "User@example.org");
  EXPECT_EQ(sluice::bounce::extractAddress("address ='kiji@example.jp' failed"), "kiji@example.jp");
  EXPECT_EQ(sluice::bounce::extractAddress("rfc822; =?utf-8?Q?neko+=F0=9F=90=88?=@Gmail.com"),
            "=?utf-8?Q?neko+=F0=9F=90=88?=@gmail.com");
  EXPECT_EQ(sluice::bounce::extractAddress("no address here @ all"), "");
  // Punctuation of a non-Latin script written against an ASCII domain is not part of it; an IDN
  // top-level domain stays whole.
  EXPECT_EQ(sluice::bounce::extractAddress("\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd9\x8b\xd8\xa7 kijitora@example.jp\xd8\x8c text"), "kijitora@example.jp");
  EXPECT_EQ(sluice::bounce::extractAddress("neko@example.\xd1\x80\xd1\x84 is"), "neko@example.\xd1\x80\xd1\x84");
  EXPECT_EQ(sluice::bounce::extractAddress("neko@b\xc3\xbc" "cher.de."), "neko@b\xc3\xbc" "cher.de");
}
