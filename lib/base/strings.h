// strings.h - small string helpers shared by every module: trimming, case folding, splitting,
// and the parsers for the human units used in the config ("10s", "1h", "64k", "10M").
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sluice {

// memchr for a byte that is usually near (a line end, the next '=' of quoted-printable): the first
// 64 bytes compared inline, 16 at a time, the rest by memchr. On short distances the call and
// set-up of the library's memchr cost more than the bytes. Returns nullptr if c is not there.
inline const char* findNear(const char* p, size_t n, char c) {
#if defined(__SSE2__)
  const __m128i want = _mm_set1_epi8(c);
  size_t i = 0;
  for (; i + 16 <= n && i < 64; i += 16) {
    auto m = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i)), want)));
    if (m != 0) return p + i + std::countr_zero(m);
  }
  p += i;
  n -= i;
#endif
  return n == 0 ? nullptr : static_cast<const char*>(std::memchr(p, c, n));
}

// ASCII 'A'..'Z' lower-cased in each byte of w (SWAR); other bytes (>= 0x80 too) unchanged.
inline uint64_t lowerAscii8(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull, kLow7 = 0x7f7f7f7f7f7f7f7full;
  uint64_t h = w & kLow7;
  uint64_t geA = h + kOnes * (0x80 - 'A'), gtZ = h + kOnes * (0x7f - 'Z');
  return w | (((geA ^ gtZ) & ~w & kHigh) >> 2);
}

std::string_view trim(std::string_view s);
// ASCII letters lower-cased, 8 bytes at a time (the bounce parser lower-cases reports of KBs).
std::string toLower(std::string_view s);
void toLowerInPlace(std::string& s);
// Equal ignoring ASCII case. Inline: the parsers call it on every header line they look at.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x != y && ((x | 0x20) != (y | 0x20) || static_cast<unsigned char>((x | 0x20) - 'a') > 'z' - 'a')) return false;
  }
  return true;
}
bool startsWith(std::string_view s, std::string_view prefix);
bool endsWith(std::string_view s, std::string_view suffix);
inline bool istartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}
std::vector<std::string_view> split(std::string_view s, char sep);

// Unsigned decimal with no sign, no spaces, no overflow.
std::optional<uint64_t> parseUint(std::string_view s);

// "250ms", "10s", "5m", "1h", "2d", "1w"; a bare number means seconds. Result in milliseconds.
std::optional<int64_t> parseDurationMs(std::string_view s);
std::string formatDurationMs(int64_t ms);
// A rate: "<number>[/s|/m|/h|/d]" - "50", "2.5/s", "30/m", "100/h" - as events per second (a bare
// number is per second). The number is a plain decimal (no sign, no exponent).
std::optional<double> parseRatePerSecond(std::string_view s);

// "512", "64k", "10M", "1G" (binary multiples; "kb"/"mb"/"gb" accepted too). Result in bytes.
std::optional<uint64_t> parseSize(std::string_view s);

// Glob match where '*' matches any run of characters (including none); case-insensitive.
bool globMatch(std::string_view pattern, std::string_view text);

}  // namespace sluice
