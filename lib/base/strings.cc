// strings.cc - see strings.h.
#include "base/strings.h"

#include <cstdlib>
#include <cstring>
#include <limits>

namespace sluice {

std::string_view trim(std::string_view s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r' || s[b] == '\n')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n')) --e;
  return s.substr(b, e - b);
}

static char lowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

std::string toLower(std::string_view s) {
  std::string out(s);
  toLowerInPlace(out);
  return out;
}

void toLowerInPlace(std::string& s) {
  char* p = s.data();
  size_t n = s.size(), i = 0;
  for (; i + 8 <= n; i += 8) {  // lowerAscii8 works byte by byte: any byte order
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    w = lowerAscii8(w);
    std::memcpy(p + i, &w, 8);
  }
  for (; i < n; ++i) p[i] = lowerAscii(p[i]);
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

std::optional<uint64_t> parseUint(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

// Splits "123abc" into the number and the lower-cased unit.
static bool splitNumberUnit(std::string_view s, uint64_t* num, std::string* unit) {
  s = trim(s);
  size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  auto n = parseUint(s.substr(0, i));
  if (!n) return false;
  *num = *n;
  *unit = toLower(trim(s.substr(i)));
  return true;
}

std::optional<int64_t> parseDurationMs(std::string_view s) {
  uint64_t n = 0;
  std::string unit;
  if (!splitNumberUnit(s, &n, &unit)) return std::nullopt;
  uint64_t mult = 0;
  if (unit.empty() || unit == "s") mult = 1000;
  else if (unit == "ms") mult = 1;
  else if (unit == "m" || unit == "min") mult = 60'000;
  else if (unit == "h") mult = 3'600'000;
  else if (unit == "d") mult = 86'400'000;
  else if (unit == "w") mult = 7 * 86'400'000ULL;
  else return std::nullopt;
  if (n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / mult) return std::nullopt;
  return static_cast<int64_t>(n * mult);
}

std::optional<double> parseRatePerSecond(std::string_view s) {
  std::string t(trim(s));
  double per = 1;
  if (size_t slash = t.find('/'); slash != std::string::npos) {
    std::string unit(trim(std::string_view(t).substr(slash + 1)));
    t = std::string(trim(std::string_view(t).substr(0, slash)));
    if (unit == "s") per = 1;
    else if (unit == "m" || unit == "min") per = 60;
    else if (unit == "h") per = 3600;
    else if (unit == "d") per = 86400;
    else return std::nullopt;
  }
  // digits [. digits]: checked here, so strtod sees nothing it could read differently.
  size_t dots = 0, digits = 0;
  for (char c : t) {
    if (c == '.') ++dots;
    else if (c >= '0' && c <= '9') ++digits;
    else return std::nullopt;
  }
  if (digits == 0 || dots > 1 || digits > 15) return std::nullopt;
  return std::strtod(t.c_str(), nullptr) / per;
}

std::string formatDurationMs(int64_t ms) {
  struct U { int64_t ms; const char* name; };
  static const U kUnits[] = {{7 * 86'400'000LL, "w"}, {86'400'000, "d"}, {3'600'000, "h"},
                             {60'000, "m"}, {1000, "s"}};
  if (ms == 0) return "0s";
  for (const auto& u : kUnits) {
    if (ms % u.ms == 0) return std::to_string(ms / u.ms) + u.name;
  }
  return std::to_string(ms) + "ms";
}

std::optional<uint64_t> parseSize(std::string_view s) {
  uint64_t n = 0;
  std::string unit;
  if (!splitNumberUnit(s, &n, &unit)) return std::nullopt;
  uint64_t mult = 0;
  if (unit.empty() || unit == "b") mult = 1;
  else if (unit == "k" || unit == "kb" || unit == "kib") mult = 1ULL << 10;
  else if (unit == "m" || unit == "mb" || unit == "mib") mult = 1ULL << 20;
  else if (unit == "g" || unit == "gb" || unit == "gib") mult = 1ULL << 30;
  else return std::nullopt;
  if (n > std::numeric_limits<uint64_t>::max() / mult) return std::nullopt;
  return n * mult;
}

bool globMatch(std::string_view pattern, std::string_view text) {
  // Iterative wildcard match with backtracking to the last '*': O(n*m) worst case, no recursion.
  size_t p = 0, t = 0, starP = std::string_view::npos, starT = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      starP = p++;
      starT = t;
    } else if (p < pattern.size() && lowerAscii(pattern[p]) == lowerAscii(text[t])) {
      ++p;
      ++t;
    } else if (starP != std::string_view::npos) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace sluice
