// text_util.cc - scanners the bounce extractors share: enhanced status codes, SMTP reply codes
// and addresses found in free text, whitespace collapsing, control-byte counting. Hand-written
// single passes (no regex), bounded by the input length.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "base/strings.h"
#include "bounce/bounce.h"
#include "bounce/extract.h"
#include "bounce/literal_gate.h"

namespace sluice::bounce {

namespace {

constexpr bool isDigit(char c) { return c >= '0' && c <= '9'; }
// ASCII only, inline (the <cctype> calls showed in profiles; the C locale is ASCII anyway).
constexpr bool isAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool isAlnum(char c) { return isAlpha(c) || isDigit(c); }

// At i: "D.D.DDD" (subject 1-3 digits); returns its length or 0. No check of the surroundings.
size_t codeAt(std::string_view t, size_t i) {
  if (i + 5 > t.size() || !isDigit(t[i]) || t[i + 1] != '.' || !isDigit(t[i + 2]) || t[i + 3] != '.') return 0;
  size_t j = i + 4, n = 0;
  while (j < t.size() && isDigit(t[j]) && n < 4) ++j, ++n;
  if (n == 0 || n > 3) return 0;
  return j - i;
}

// A code standing alone: not inside an IP address, a version number or a longer word.
bool standsAlone(std::string_view t, size_t i, size_t len) {
  if (i > 0 && (isAlnum(t[i - 1]) || t[i - 1] == '.' || (t[i - 1] == '-' && i > 1 && isAlpha(t[i - 2])))) return false;
  size_t e = i + len;
  if (e < t.size() && (isAlnum(t[e]) || t[e] == '@')) return false;
  if (e + 1 < t.size() && t[e] == '.' && isDigit(t[e + 1])) return false;
  return true;
}

// At i, a code written right after a reply code: "550 5.1.1", "550-5.1.1", and a quoted reply
// "550-'5.2.2 ...'" (Amazon SES quotes the remote server's answer after its own vague code:
// "5.1.0 - Unknown address error 550-'5.2.2 <x>... Mailbox Full'").
bool afterReplyCode(std::string_view t, size_t i) {
  if (i >= 1 && (t[i - 1] == '\'' || t[i - 1] == '"')) --i;
  return i >= 4 && isDigit(t[i - 2]) && isDigit(t[i - 3]) && isDigit(t[i - 4]) &&
         (t[i - 1] == ' ' || t[i - 1] == '-');
}

// At i (a ':' before a reply code): a label that names the reply code, "ERROR_CODE :421" (Zoho
// Mail's bounces: "Error, ERROR_CODE :421, ERROR_CODE :, Host not reachable.").
bool codeLabel(std::string_view t, size_t colon) {
  std::string_view before = t.substr(0, colon);
  while (!before.empty() && before.back() == ' ') before.remove_suffix(1);
  return before.size() >= 10 && iequals(before.substr(before.size() - 10), "error_code");
}

}  // namespace


// A code is "D.D.D..." : every candidate position i has t[i + 1] == '.', so only the dots are
// visited (memchr); the first candidate of each kind is kept. Result as two passes would give
// it: pass 1 over 4.x.x/5.x.x codes, the first anchored one (after a reply code or '#') else
// the first one; only when there is none, the same over 2.x.x codes (class and detail <= 7).
std::string findStatusCode(std::string_view t) {
  size_t loose = std::string_view::npos, anchored2 = std::string_view::npos, loose2 = std::string_view::npos;
  size_t looseLen = 0, anchored2Len = 0, loose2Len = 0;
  const char* base = t.data();
  size_t from = 1;  // a dot at 0 has no digit before it
  while (from < t.size()) {
    const char* hit = findNear(base + from, t.size() - from, '.');
    if (!hit) break;
    size_t dot = static_cast<size_t>(hit - base);
    from = dot + 1;
    if (dot == 0) continue;
    size_t i = dot - 1;
    if (i + 5 > t.size()) break;
    char c = t[i];
    bool pass1 = c == '4' || c == '5';
    if (!pass1 && (c != '2' || anchored2 != std::string_view::npos || loose != std::string_view::npos)) continue;
    size_t len = codeAt(t, i);
    if (len == 0 || !standsAlone(t, i, len)) continue;
    if (!pass1 && (t[i + 2] > '7' || len != 5 || t[i + 4] > '7')) continue;
    bool anchored = afterReplyCode(t, i) || (i >= 1 && t[i - 1] == '#');
    if (pass1) {
      if (anchored) return std::string(t.substr(i, len));
      if (loose == std::string_view::npos) loose = i, looseLen = len;
    } else if (anchored) {
      anchored2 = i, anchored2Len = len;
    } else if (loose2 == std::string_view::npos) {
      loose2 = i, loose2Len = len;
    }
  }
  if (loose != std::string_view::npos) return std::string(t.substr(loose, looseLen));
  if (anchored2 != std::string_view::npos) return std::string(t.substr(anchored2, anchored2Len));
  if (loose2 != std::string_view::npos) return std::string(t.substr(loose2, loose2Len));
  return "";
}

namespace {
// Whether any of 8 bytes is '4' or '5' (byte | 1 == '5'), exactly (no carry between bytes).
bool any45(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kLow7 = 0x7f7f7f7f7f7f7f7full;
  uint64_t x = (w | kOnes) ^ (kOnes * '5');
  return ~(((x & kLow7) + kLow7) | x | kLow7) != 0;
}
}  // namespace

std::string findReplyCode(std::string_view t) {
  for (size_t i = 0; i + 3 <= t.size(); ++i) {
    if (i + 8 <= t.size()) {  // 8 bytes without a '4' or '5' hold no candidate
      uint64_t w;
      std::memcpy(&w, t.data() + i, 8);
      if (!any45(w)) {
        i += 7;
        continue;
      }
    }
    char c = t[i];
    if (c != '4' && c != '5') continue;
    if (!isDigit(t[i + 1]) || !isDigit(t[i + 2]) || t[i + 1] > '5') continue;
    bool labelled = i > 0 && t[i - 1] == ':' && codeLabel(t, i - 1);
    if (i > 0 && !labelled && (isAlnum(t[i - 1]) || t[i - 1] == '.' || t[i - 1] == '-' || t[i - 1] == ':' ||
                               t[i - 1] == '#' || t[i - 1] == '/' || t[i - 1] == '=' || t[i - 1] == '+')) continue;
    size_t e = i + 3;
    if (e < t.size() && t[e] != ' ' && t[e] != '-' && t[e] != '\n' && t[e] != '\t' && !(labelled && t[e] == ',')) continue;
    if (e + 1 < t.size() && t[e] == '-' && !isDigit(t[e + 1]) && !isAlpha(t[e + 1]) ) continue;
    // "550 5.1.1", "550-", "550 <addr>", "550 User": a reply, not a count like "451 messages".
    return std::string(t.substr(i, 3));
  }
  return "";
}

namespace {
// The bytes of a local part: letters, digits, RFC 5322 atext specials, '.', bytes >= 0x80.
struct LocalChars {
  bool is[256] = {};
  constexpr LocalChars() {
    for (int c = 0; c < 256; ++c) is[c] = isAlnum(static_cast<char>(c)) || c >= 0x80;
    for (char c : std::string_view("!#$%&'*+/=?^_`{|}~.-")) is[static_cast<unsigned char>(c)] = true;
  }
};
constexpr LocalChars kLocalChars;
bool localChar(char c) { return kLocalChars.is[static_cast<unsigned char>(c)]; }
struct DomainChars {
  bool is[256] = {};
  constexpr DomainChars() {
    for (int c = 0; c < 256; ++c) is[c] = isAlnum(static_cast<char>(c)) || c == '.' || c == '-' || c >= 0x80;
  }
};
constexpr DomainChars kDomainChars;
bool domainChar(char c) { return kDomainChars.is[static_cast<unsigned char>(c)]; }
}  // namespace

namespace detail {
std::string addressAt(std::string_view t, size_t pos, size_t* at, size_t* end) {
  while (pos < t.size()) {
    size_t a = t.find('@', pos);
    if (a == std::string_view::npos) return "";
    size_t s = a;
    while (s > 0 && localChar(t[s - 1]) && a - s < 128) --s;
    size_t e = a + 1;
    while (e < t.size() && domainChar(t[e]) && e - a < 256) ++e;
    // A last label that starts in ASCII ends at its first non-ASCII byte: text punctuation
    // written against the address ("kijitora@example.jp\xd8\x8c", an Arabic comma). A top-level
    // domain is all ASCII or all IDN, never both.
    for (size_t d = e; d > a + 1; --d) {
      if (t[d - 1] != '.') continue;
      size_t k = d;
      while (k < e && static_cast<unsigned char>(t[k]) < 0x80) ++k;
      if (k > d) e = k;
      break;
    }
    // "='user@" in quoted text; but "=?utf-8?Q?...?=@" is an encoded word as the local part.
    while (s < a && (t[s] == '.' || t[s] == '\'' || (t[s] == '=' && !(s + 1 < a && t[s + 1] == '?')))) ++s;
    while (e > a + 1 && (t[e - 1] == '.' || t[e - 1] == '-')) --e;
    std::string_view dom = t.substr(a + 1, e - a - 1);
    if (s < a && !dom.empty() && dom.find('.') != std::string_view::npos && dom.front() != '.') {
      *at = s;
      *end = e;
      std::string out(t.substr(s, e - s));
      for (size_t i = a - s; i < out.size(); ++i)
        if (out[i] >= 'A' && out[i] <= 'Z') out[i] = static_cast<char>(out[i] + ('a' - 'A'));
      return out;
    }
    pos = a + 1;
  }
  return "";
}
}  // namespace detail

std::string extractAddress(std::string_view text) {
  size_t at, end;
  return detail::addressAt(text, 0, &at, &end);
}

namespace {

// SWAR helpers for collapse(): 8 bytes at a time, little-endian byte order (byte 0 lowest).
constexpr uint64_t kOnes = 0x0101010101010101ull, kLow7 = 0x7f7f7f7f7f7f7f7full;
// 0x80 in every byte of w that is zero, 0 elsewhere (exact: no carry between bytes).
inline uint64_t zeroBytes(uint64_t w) { return ~(((w & kLow7) + kLow7) | w | kLow7); }
// 0x80 in every byte of w below 0x20 (control bytes, whitespace other than ' '), exact.
inline uint64_t controlBytes(uint64_t w) { return ~(((w & kLow7) + kOnes * (0x80 - 0x20)) | w | kLow7); }

// Whitespace runs to one space, leading and trailing ones dropped, at most max bytes; ASCII
// letters lower-cased too when lower is set (one pass, one allocation). Fast path: of the next
// 8 bytes, those before the first control byte or second adjacent space are copied as they are
// (a single space between two other bytes stays; one last becomes the pending space),
// lower-cased 8 at a time; that byte goes byte by byte (a line end costs one slow byte, not 8).
std::string collapse(std::string_view text, size_t max, bool lower) {
  std::string out;
  out.resize(std::min(text.size(), max));
  char* o = out.data();
  char* const end = o + out.size();
  bool space = false;
  const char* p = text.data();
  const char* const stop = p + text.size();
  while (p < stop) {
#if defined(__SSE2__)
    // The same 16 bytes at a time: bit i of each mask is byte i.
    if (stop - p >= 16 && end - o >= 17) {
      __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      auto ctl = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(31)), v)));
      auto sp = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(' '))));
      unsigned halt = (ctl | (sp & (sp << 1))) & 0xffffu;
      if ((sp & 1) && (space || o == out.data())) halt |= 1;
      auto k = static_cast<size_t>(halt ? std::countr_zero(halt) : 16);
      if (k > 0) {
        if (space) *o++ = ' ';
        if (lower) {  // 'A'..'Z' (signed compares: bytes >= 0x80 are below 'A') + 0x20
          __m128i upper = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('A' - 1)), _mm_cmpgt_epi8(_mm_set1_epi8('Z' + 1), v));
          v = _mm_add_epi8(v, _mm_and_si128(upper, _mm_set1_epi8(0x20)));
        }
        _mm_storeu_si128(reinterpret_cast<__m128i*>(o), v);
        space = ((sp >> (k - 1)) & 1) != 0;
        o += space ? k - 1 : k;
        p += k;
        continue;
      }
    }
#endif
    if constexpr (std::endian::native == std::endian::little) {
      if (stop - p >= 8 && end - o >= 9) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        uint64_t sp = zeroBytes(w ^ (kOnes * ' '));
        // Where the copy must stop: a control byte, the second of two spaces, a space first
        // when one is pending or nothing is written yet. The bytes before it are copied whole.
        uint64_t halt = controlBytes(w) | (sp & (sp << 8));
        if ((sp & 0x80) && (space || o == out.data())) halt |= 0x80;
        auto k = static_cast<size_t>(halt ? std::countr_zero(halt) / 8 : 8);
        if (k > 0) {
          if (space) *o++ = ' ';
          if (lower) w = lowerAscii8(w);
          std::memcpy(o, &w, 8);  // bytes past k are overwritten later or cut
          // A space last is not written yet (the next byte may be whitespace too): pending.
          space = ((sp >> (8 * k - 1)) & 1) != 0;
          o += space ? k - 1 : k;
          p += k;
          continue;
        }
      }
    }
    char c = *p++;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      space = o != out.data();
      continue;
    }
    if (space) {
      if (o == end) break;
      *o++ = ' ';
      space = false;
    }
    if (o == end) break;
    if (lower && c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
    *o++ = c;
  }
  out.resize(static_cast<size_t>(o - out.data()));
  return out;
}

}  // namespace

std::string collapseSpace(std::string_view text, size_t max) { return collapse(text, max, false); }

namespace detail {
std::string collapseLower(std::string_view text, size_t max) { return collapse(text, max, true); }

size_t rareIndex(std::string_view needle) {
  size_t k = 0;
  for (size_t i = 1; i < needle.size(); ++i)
    if (byteCommonness(static_cast<unsigned char>(needle[i])) < byteCommonness(static_cast<unsigned char>(needle[k]))) k = i;
  return k;
}

size_t findRare(std::string_view hay, std::string_view needle) { return findRare(hay, needle, rareIndex(needle)); }

size_t findRare(std::string_view hay, std::string_view needle, size_t k) {
  const size_t n = needle.size();
  if (n == 0) return 0;
  if (n > hay.size()) return std::string_view::npos;
  // The anchor (needle[k]) of a match at s is at s + k, for s in [0, hay.size() - n].
  const char* p = hay.data();
  size_t from = k, last = hay.size() - n + k;
  while (from <= last) {
    const void* hit = std::memchr(p + from, needle[k], last - from + 1);
    if (!hit) break;
    size_t at = static_cast<size_t>(static_cast<const char*>(hit) - p);
    if (std::memcmp(p + at - k, needle.data(), n) == 0) return at - k;
    from = at + 1;
  }
  return std::string_view::npos;
}

size_t controlByteCount(std::string_view s) {
  size_t count = 0, i = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
#if defined(__SSE2__)
  // 16 bytes a step: a byte <= 31 (unsigned: min(b, 31) == b) and none of TAB, LF, CR counts -1
  // in acc's byte lanes; the lanes are summed (psadbw) before they can wrap (255 steps).
  const __m128i k31 = _mm_set1_epi8(31), tab = _mm_set1_epi8('\t'), lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
  while (i + 16 <= s.size()) {
    __m128i acc = _mm_setzero_si128();
    for (size_t steps = 0; steps < 255 && i + 16 <= s.size(); ++steps, i += 16) {
      __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
      __m128i low = _mm_cmpeq_epi8(_mm_min_epu8(v, k31), v);
      __m128i ok = _mm_or_si128(_mm_cmpeq_epi8(v, tab), _mm_or_si128(_mm_cmpeq_epi8(v, lf), _mm_cmpeq_epi8(v, cr)));
      acc = _mm_sub_epi8(acc, _mm_andnot_si128(ok, low));
    }
    __m128i sums = _mm_sad_epu8(acc, _mm_setzero_si128());
    count += static_cast<size_t>(_mm_cvtsi128_si32(sums)) + static_cast<size_t>(_mm_extract_epi16(sums, 4));
  }
#endif
  for (; i < s.size(); ++i) count += static_cast<size_t>((p[i] < 32) & (p[i] != '\t') & (p[i] != '\n') & (p[i] != '\r'));
  return count;
}
}  // namespace detail

}  // namespace sluice::bounce
