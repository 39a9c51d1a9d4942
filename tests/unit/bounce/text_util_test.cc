// text_util_test.cc - the text scanners of lib/bounce/text_util.cc against plain byte-by-byte
// reference versions, over random texts made of the bytes that matter to them (whitespace runs,
// letters of both cases, digits, dots, '@', bytes >= 0x80) and every output bound.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>

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
  EXPECT_EQ(collapseSpace("  Hello   World\t\n"), "Hello World");
  EXPECT_EQ(detail::collapseLower(" ABCDEFGH IJKLMNOP  QRSTUVWXYZ \xc3\x89"), "abcdefgh ijklmnop qrstuvwxyz \xc3\x89");
}

}  // namespace
}  // namespace sluice::bounce
