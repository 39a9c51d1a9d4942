// strings_test.cc - tests for lib/base/strings.h: unit parsers and glob matching.
#include "base/strings.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(ParseDurationMs, Table) {
  struct Case { const char* in; std::optional<int64_t> want; };
  const Case cases[] = {
      {"10s", 10'000}, {"250ms", 250}, {"5m", 300'000}, {"1h", 3'600'000}, {"2d", 172'800'000},
      {"1w", 604'800'000}, {"7", 7'000}, {" 3s ", 3'000}, {"3 s", 3'000}, {"", std::nullopt},
      {"s", std::nullopt}, {"-1s", std::nullopt}, {"1.5s", std::nullopt}, {"10x", std::nullopt},
      {"99999999999999999999h", std::nullopt},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(parseDurationMs(c.in), c.want) << "parseDurationMs(\"" << c.in << "\")";
  }
}

TEST(ParseRatePerSecond, Table) {
  struct Case {
    const char* in;
    std::optional<double> want;
  };
  const Case cases[] = {
      {"0", 0.0},       {"50", 50.0},          {"2.5", 2.5},          {"0.5", 0.5},         {"2500/s", 2500.0},
      {"30/m", 0.5},    {"30 / min", 0.5},     {"90/h", 0.025},       {"864/d", 0.01},      {" 7 ", 7.0},
      {"", std::nullopt}, {"/s", std::nullopt}, {"-1", std::nullopt}, {"1e3", std::nullopt}, {"1.2.3", std::nullopt},
      {"5/w", std::nullopt}, {"five", std::nullopt}, {"5/", std::nullopt}, {".", std::nullopt},
  };
  for (const auto& c : cases) {
    auto got = parseRatePerSecond(c.in);
    ASSERT_EQ(got.has_value(), c.want.has_value()) << "parseRatePerSecond(\"" << c.in << "\")";
    if (got) {
      EXPECT_DOUBLE_EQ(*got, *c.want) << "parseRatePerSecond(\"" << c.in << "\")";
    }
  }
}

TEST(ParseSize, Table) {
  struct Case { const char* in; std::optional<uint64_t> want; };
  const Case cases[] = {{"512", 512}, {"64k", 65536}, {"10M", 10 << 20}, {"1G", 1ULL << 30},
                        {"2kb", 2048}, {"k", std::nullopt}, {"1T", std::nullopt}, {"", std::nullopt}};
  for (const auto& c : cases) EXPECT_EQ(parseSize(c.in), c.want) << "parseSize(\"" << c.in << "\")";
}

TEST(FormatDurationMs, RoundTrips) {
  for (int64_t ms : {0LL, 250LL, 1000LL, 60'000LL, 3'600'000LL, 86'400'000LL, 90'000LL}) {
    auto back = parseDurationMs(formatDurationMs(ms));
    ASSERT_TRUE(back) << formatDurationMs(ms);
    EXPECT_EQ(*back, ms) << "format " << formatDurationMs(ms);
  }
}

TEST(GlobMatch, Table) {
  struct Case { const char* pat; const char* text; bool want; };
  const Case cases[] = {
      {"*", "", true},        {"*", "abc", true},          {"app-*", "app-1", true},
      {"app-*", "app", false}, {"a*c", "abbbc", true},      {"a*c", "abbbd", false},
      {"ABC", "abc", true},    {"*x*y*", "aaxbbyc", true},  {"*x*y*", "aaybbxc", false},
      {"", "", true},          {"", "a", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(globMatch(c.pat, c.text), c.want) << "globMatch(\"" << c.pat << "\", \"" << c.text << "\")";
  }
}

TEST(Split, KeepsEmptyFields) {
  auto parts = split("a,,b,", ',');
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(parts[1], "");
  EXPECT_EQ(parts[2], "b");
}

// findNear is memchr: every length 0..200 (inline blocks, the 64-byte hand-over, memchr's part),
// the byte at every position, absent, and repeated.
TEST(FindNear, AgreesWithMemchr) {
  std::string buf(200, 'a');
  for (size_t n = 0; n <= buf.size(); ++n) {
    EXPECT_EQ(findNear(buf.data(), n, 'x'), nullptr) << n;
    for (size_t at = 0; at < n; ++at) {
      buf[at] = 'x';
      if (at + 7 < n) buf[at + 7] = 'x';
      EXPECT_EQ(findNear(buf.data(), n, 'x'), static_cast<const char*>(std::memchr(buf.data(), 'x', n))) << n << " " << at;
      buf[at] = 'a';
      if (at + 7 < n) buf[at + 7] = 'a';
    }
  }
}

TEST(Iequals, EveryBytePairFoldsAsciiLettersOnly) {
  auto lower = [](unsigned char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; };
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      char x = static_cast<char>(a), y = static_cast<char>(b);
      ASSERT_EQ(iequals(std::string_view(&x, 1), std::string_view(&y, 1)), lower(static_cast<unsigned char>(a)) == lower(static_cast<unsigned char>(b)))
          << a << " " << b;
    }
  }
  EXPECT_TRUE(iequals("X-Failed-Recipients", "x-failed-recipients"));
  EXPECT_FALSE(iequals("Subject", "Subjec"));
  EXPECT_TRUE(istartsWith("Final-Recipient: rfc822; a@b", "final-recipient:"));
  EXPECT_FALSE(istartsWith("Final", "final-recipient:"));
}

}  // namespace
}  // namespace sluice
