// mime.cc - the lenient, bounded MIME reader of mime.h (headers, multipart, nested messages,
// transfer decodings, RFC 2047 words, mbox splitting).
#include "mime/mime.h"

#include <iconv.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "base/strings.h"

namespace sluice::mime {

namespace {

#if defined(__SSE2__)
// The byte masks of four 16-byte comparisons as one 64-bit mask, the first block's lowest.
uint64_t mask64(__m128i a, __m128i b, __m128i c, __m128i d) {
  return static_cast<uint64_t>(static_cast<unsigned>(_mm_movemask_epi8(a))) |
         static_cast<uint64_t>(static_cast<unsigned>(_mm_movemask_epi8(b))) << 16 |
         static_cast<uint64_t>(static_cast<unsigned>(_mm_movemask_epi8(c))) << 32 |
         static_cast<uint64_t>(static_cast<unsigned>(_mm_movemask_epi8(d))) << 48;
}
#endif

bool isWsp(char c) { return c == ' ' || c == '\t'; }
char lowerAscii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

std::string_view lineAt(std::string_view s, size_t pos, size_t* next) {
  const char* hit = pos < s.size() ? findNear(s.data() + pos, s.size() - pos, '\n') : nullptr;
  if (hit == nullptr) {
    *next = s.size();
    return s.substr(std::min(pos, s.size()));
  }
  size_t e = static_cast<size_t>(hit - s.data());
  *next = e + 1;
  return s.substr(pos, e - pos);
}

// Field name: printable ASCII without ':' or space, WSP allowed before the colon. The colon
// with findNear (within the first 129 bytes), the name checked 8 bytes at a time; *nameEnd gets
// the end of the name (before the WSP).
size_t fieldColon(std::string_view line, size_t* nameEnd) {
  const char* hit = findNear(line.data(), std::min<size_t>(line.size(), 129), ':');
  if (!hit || hit == line.data()) return std::string_view::npos;
  size_t colon = static_cast<size_t>(hit - line.data());
  size_t end = colon;
  while (end > 0 && isWsp(line[end - 1])) --end;
  if (end == 0) return std::string_view::npos;
  size_t i = 0;
  if constexpr (std::endian::native == std::endian::little) {
    constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull, kLow7 = 0x7f7f7f7f7f7f7f7full;
    for (; i + 8 <= end; i += 8) {
      uint64_t w;
      std::memcpy(&w, line.data() + i, 8);
      uint64_t low = w & kLow7;
      // High bit per byte: >= 0x21 (from the low 7 bits, for ASCII bytes), >= 0x7f.
      uint64_t ok = (low + kOnes * (0x80 - 0x21)) & ~w;
      uint64_t high = (low + kOnes) | w;
      if (((ok & ~high) & kHigh) != kHigh) return std::string_view::npos;
    }
  }
  for (; i < end; ++i) {
    if (static_cast<unsigned char>(line[i] - 33) > 126 - 33) return std::string_view::npos;
  }
  *nameEnd = end;
  return colon;
}

// trim() inline: the blanks and line ends around a value.
bool blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
std::string_view trimmed(std::string_view s) {
  size_t b = 0, e = s.size();
  if (e > 1 && s[0] == ' ' && !blank(s[1]) && !blank(s[e - 1])) return s.substr(1);  // "Name: value"
#if defined(__SSE2__)
  if (e >= 16) {  // a continuation line's indent ("\t", 8 spaces) found in one load
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data()));
    __m128i sp = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\t')));
    __m128i nl = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\r')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\n')));
    auto lead = static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(sp, nl)));
    b = static_cast<size_t>(std::countr_zero(~lead));  // 16 when all are blank
  }
#endif
  while (b < e && blank(s[b])) ++b;
  while (e > b && blank(s[e - 1])) --e;
  return s.substr(b, e - b);
}

// Hex digit values, -1 for other bytes.
struct HexTable {
  signed char v[256];
  constexpr HexTable() : v() {
    for (int c = 0; c < 256; ++c)
      v[c] = static_cast<signed char>(c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                      : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1);
  }
};
constexpr HexTable kHex;
int hexVal(char c) { return kHex.v[static_cast<unsigned char>(c)]; }

constexpr size_t kMaxConvertBytes = 1u << 20;

bool needsConversion(const std::string& cs) {
  return !cs.empty() && cs != "utf-8" && cs != "utf8" && cs != "us-ascii" && cs != "ascii";
}

// iconv from charset to UTF-8; "" when the charset is unknown or the text does not convert.
// One converter per charset and thread (iconv_open loads a gconv module: too slow per part).
iconv_t converter(const std::string& charset, bool* owned) {
  *owned = false;
  struct Cache {
    std::vector<std::pair<std::string, iconv_t>> items;
    ~Cache() {
      for (auto& i : items)
        if (i.second != reinterpret_cast<iconv_t>(-1)) iconv_close(i.second);
    }
  };
  thread_local Cache cache;
  for (auto& i : cache.items)
    if (i.first == charset) return i.second;
  iconv_t cd = iconv_open("UTF-8//IGNORE", charset.c_str());
  if (cache.items.size() < 32) cache.items.emplace_back(charset, cd);  // unknown ones too
  else *owned = cd != reinterpret_cast<iconv_t>(-1);
  return cd;
}

void appendLatin1AsUtf8(std::string& out, std::string_view s);

// Charsets whose initial state reads bytes 0x00-0x7F (but ESC, SO, SI) as ASCII, one byte each:
// a text's prefix of such bytes converts to itself, and leaves the converter's state unchanged.
bool asciiCompatible(const std::string& cs) {
  return cs.rfind("iso-8859-", 0) == 0 || cs.rfind("windows-125", 0) == 0 || cs == "iso-2022-jp";
}

// Bytes before the first one >= 0x80, or also ESC, SO or SI when stopAtShifts.
size_t asciiRun(std::string_view s, bool stopAtShifts) {
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i esc = _mm_set1_epi8(0x1b), so = _mm_set1_epi8(0x0e), si = _mm_set1_epi8(0x0f);
  for (; i + 16 <= s.size(); i += 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
    if (stopAtShifts)
      v = _mm_or_si128(v, _mm_or_si128(_mm_cmpeq_epi8(v, esc), _mm_or_si128(_mm_cmpeq_epi8(v, so), _mm_cmpeq_epi8(v, si))));
    auto m = static_cast<unsigned>(_mm_movemask_epi8(v));  // the high bits
    if (m != 0) return i + static_cast<size_t>(std::countr_zero(m));
  }
#endif
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80 || (stopAtShifts && (c == 0x1b || c == 0x0e || c == 0x0f))) break;
    ++i;
  }
  return i;
}

size_t asciiPrefix(std::string_view s) { return asciiRun(s, true); }

std::string toUtf8(std::string_view in, const std::string& charset) {
  bool owned = false;
  iconv_t cd = converter(charset, &owned);
  if (cd == reinterpret_cast<iconv_t>(-1)) return "";
  std::string out;
  if (charset == "iso-8859-1" || charset == "latin1") {  // byte = code point: no iconv call
    if (owned) iconv_close(cd);
    out.reserve(in.size() + in.size() / 4 + 16);
    appendLatin1AsUtf8(out, in);
    return out;
  }
  // The ASCII prefix (often all of a bounce's text) copied as it is; iconv for the rest.
  size_t prefix = asciiCompatible(charset) ? asciiPrefix(in) : 0;
  out.assign(in.substr(0, prefix));
  in.remove_prefix(prefix);
  iconv(cd, nullptr, nullptr, nullptr, nullptr);  // reset the shift state
  size_t used = out.size();
  out.resize(used + in.size() + in.size() / 2 + 16);
  char* src = const_cast<char*>(in.data());
  size_t srcLeft = in.size();
  while (srcLeft > 0) {
    char* dst = out.data() + used;
    size_t dstLeft = out.size() - used;
    size_t r = iconv(cd, &src, &srcLeft, &dst, &dstLeft);
    used = out.size() - dstLeft;
    if (r != static_cast<size_t>(-1)) break;
    if (errno == E2BIG) {
      out.resize(out.size() * 2);
      continue;
    }
    if (errno == EILSEQ && srcLeft > 0) {  // skip one bad byte
      ++src;
      --srcLeft;
      continue;
    }
    break;  // EINVAL: a truncated sequence at the end; keep what converted
  }
  if (owned) iconv_close(cd);
  out.resize(used);
  return out;
}

void appendLatin1AsUtf8(std::string& out, std::string_view s) {
  // ASCII runs (most of a text) appended whole; each other byte as its two UTF-8 bytes.
  while (!s.empty()) {
    size_t run = asciiRun(s, false);
    out.append(s.data(), run);
    if (run == s.size()) break;
    auto c = static_cast<unsigned char>(s[run]);
    const char two[2] = {static_cast<char>(0xC0 | (c >> 6)), static_cast<char>(0x80 | (c & 0x3F))};
    out.append(two, 2);
    s.remove_prefix(run + 1);
  }
}

}  // namespace

Fields& Fields::operator=(const Fields& o) {
  if (this == &o) return *this;
  items_.clear();
  storage_.clear();
  used_ = 0;
  items_.reserve(o.items_.size());
  for (const Field& f : o.items_) {
    if (f.owned) add(f.name, f.value);
    else items_.push_back(f);
  }
  return *this;
}

std::string_view Fields::store(std::string_view v) {
  char* at;
  if (v.size() > kChunk / 2) {
    if (storage_.empty()) {
      at = storage_.emplace_front(new char[v.size()]).get();
      used_ = kChunk;  // full: the next small value starts a chunk
    } else {
      at = storage_.emplace_after(storage_.begin(), new char[v.size()])->get();  // the front chunk stays the current one
    }
  } else {
    if (storage_.empty() || kChunk - used_ < v.size()) {
      storage_.emplace_front(new char[kChunk]);
      used_ = 0;
    }
    at = storage_.front().get() + used_;
    used_ += v.size();
  }
  if (!v.empty()) std::memcpy(at, v.data(), v.size());
  return std::string_view(at, v.size());
}

void Fields::add(std::string_view name, std::string_view value) {
  std::string_view n = store(name);
  items_.push_back({n, store(value), true});
}

void Fields::addValue(std::string_view name, std::string_view value) {
  items_.push_back({name, store(value), true});
}

const std::string_view* Fields::find(std::string_view name) const {
  // The length and the first byte (| 0x20: equal for two bytes that are equal ignoring ASCII
  // case) sort out nearly every other field before a whole comparison.
  if (name.empty()) {
    for (const Field& f : items_)
      if (f.name.empty()) return &f.value;
    return nullptr;
  }
  const size_t n = name.size();
  const char c0 = static_cast<char>(name[0] | 0x20);
  for (const Field& f : items_) {
    if (f.name.size() != n || static_cast<char>(f.name[0] | 0x20) != c0) continue;
    size_t i = 1;
    while (i < n && lowerAscii(f.name[i]) == lowerAscii(name[i])) ++i;
    if (i == n && lowerAscii(f.name[0]) == lowerAscii(name[0])) return &f.value;
  }
  return nullptr;
}

std::string_view Fields::get(std::string_view name) const {
  const std::string_view* v = find(name);
  return v ? std::string_view(*v) : std::string_view();
}

namespace {

// normalizeNewlines() into out, which has room for s.size() bytes (the output is never longer);
// returns the length written.
size_t normalizeInto(std::string_view s, char* const out) {
  char* o = out;
  const char* p = s.data();
  const char* const end = p + s.size();
#if defined(__SSE2__)
  // 16 bytes at a time: each block is stored whole (the output never runs ahead of the input, so
  // it fits) and kept up to its first CR, which becomes a LF (dropping a LF after it). Lines are
  // short: one library call a line for memchr and one for memcpy cost more than the bytes.
  const __m128i CR = _mm_set1_epi8('\r');
  while (end - p >= 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o), v);
    auto m = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, CR)));
    if (m == 0) {
      o += 16, p += 16;
      continue;
    }
    auto k = static_cast<size_t>(std::countr_zero(m));
    o += k, p += k;
    *o++ = '\n';
    ++p;
    if (p < end && *p == '\n') ++p;
  }
#endif
  while (p < end) {
    const auto* cr = static_cast<const char*>(std::memchr(p, '\r', static_cast<size_t>(end - p)));
    const char* stop = cr ? cr : end;
    std::memcpy(o, p, static_cast<size_t>(stop - p));
    o += stop - p;
    if (!cr) break;
    *o++ = '\n';
    p = cr + 1;
    if (p < end && *p == '\n') ++p;
  }
  return static_cast<size_t>(o - out);
}

}  // namespace

std::string normalizeNewlines(std::string_view s) {
  std::string out(s.size(), '\0');
  out.resize(normalizeInto(s, out.data()));
  return out;
}

size_t parseFields(std::string_view text, Fields& out, const Limits& limits) {
  out.reserve(24);
  size_t pos = 0;
  std::string_view name, first;  // the field's name and its first line's value (views)
  // The unfolded value once a continuation line appears; one buffer per thread, kept.
  thread_local std::string folded;
  if (folded.capacity() > (64u << 10)) std::string().swap(folded);  // not a huge one
  bool open = false, isFolded = false;
  auto flush = [&]() __attribute__((always_inline)) {  // (inlined: called on every field)
    if (open && out.items().size() < limits.maxHeaders) {
      if (isFolded) out.addValue(name, trimmed(folded));
      else out.addView(name, trimmed(first));
    }
    open = isFolded = false;
  };
  while (pos < text.size()) {
    if (pos > limits.maxHeaderBytes) break;
#if defined(__SSE2__)
    // Most lines are "Name: value" with the colon in their first 16 bytes: one load finds the
    // colon, checks the name's bytes (fieldColon's rules) and the line end if it is near.
    // Anything else (a continuation, a long name, the last 15 bytes of the text) takes the
    // general path below, which decides the same way.
    if (text.size() - pos >= 16 && !isWsp(text[pos])) {
      const char* l = text.data() + pos;
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(l));
      auto colons = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(':'))));
      auto lfs = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\n'))));
      unsigned c = colons ? static_cast<unsigned>(std::countr_zero(colons)) : 16;
      unsigned before = (1u << c) - 1;  // the bytes before the colon
      if (c > 0 && c < 16 && (lfs & before) == 0) {
        // Name bytes: 0x21-0x7e (as signed bytes: > 0x20 and < 0x7f), then maybe WSP.
        __m128i ok = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(0x20)), _mm_cmplt_epi8(v, _mm_set1_epi8(0x7f)));
        unsigned bad = ~static_cast<unsigned>(_mm_movemask_epi8(ok)) & before;
        unsigned nameEnd = c;
        if (bad != 0) {
          nameEnd = static_cast<unsigned>(std::countr_zero(bad));
          auto wsp = static_cast<unsigned>(_mm_movemask_epi8(
              _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\t')))));
          unsigned tail = before & ~((1u << nameEnd) - 1);
          if (nameEnd == 0 || (wsp & tail) != tail) nameEnd = 0;
        }
        if (nameEnd > 0) {
          size_t eol;
          if (lfs != 0) {
            eol = pos + static_cast<size_t>(std::countr_zero(lfs));
          } else {
            const char* nl = findNear(l + 16, text.size() - pos - 16, '\n');
            eol = nl ? static_cast<size_t>(nl - text.data()) : text.size();
          }
          flush();
          name = text.substr(pos, nameEnd);
          first = text.substr(pos + c + 1, eol - pos - c - 1);
          open = true;
          pos = eol < text.size() ? eol + 1 : eol;
          continue;
        }
      }
    }
#endif
    const char* nl = findNear(text.data() + pos, text.size() - pos, '\n');
    size_t eol = nl ? static_cast<size_t>(nl - text.data()) : text.size();
    size_t next = nl ? eol + 1 : eol;
    std::string_view line = text.substr(pos, eol - pos);
    if (line.empty()) {
      flush();
      return next;
    }
    if (isWsp(line[0])) {
      if (!open) break;  // continuation before any field: not a header block
      if (!isFolded) {
        if (folded.capacity() < 256) folded.reserve(256);  // one allocation for most values
        folded.assign(first);
        isFolded = true;
      }
      if (folded.size() < limits.maxHeaderBytes) {
        folded.push_back(' ');
        folded.append(trimmed(line));
      }
      pos = next;
      continue;
    }
    size_t nameEnd = 0;
    size_t colon = fieldColon(line, &nameEnd);
    if (colon == std::string_view::npos) {
      // An mbox "From " line before the first field is skipped; anything else ends the block.
      if (pos == 0 && startsWith(line, "From ")) {
        pos = next;
        continue;
      }
      break;
    }
    flush();
    name = line.substr(0, nameEnd);  // no blanks around it (fieldColon)
    first = line.substr(colon + 1);
    open = true;
    pos = next;
  }
  flush();
  return pos;
}

std::vector<Fields> parseFieldGroups(std::string_view body, const Limits& limits) {
  std::vector<Fields> groups;
  size_t pos = 0;
  while (pos < body.size() && groups.size() < limits.maxParts) {
    // Skip empty lines (also lines holding only blanks) between groups.
    size_t next;
    std::string_view line = lineAt(body, pos, &next);
    if (trim(line).empty()) {
      pos = next;
      continue;
    }
    Fields f;
    size_t used = parseFields(body.substr(pos), f, limits);
    if (f.empty()) {
      // Not a field line: skip it (some MTAs put prose inside delivery-status).
      pos = next;
      continue;
    }
    groups.push_back(std::move(f));
    pos += std::max<size_t>(used, 1);
  }
  return groups;
}

namespace {

// The values of several parameters in one pass (param() for each name: the first occurrence,
// unquoted); outs[i] is left unchanged when names[i] is absent.
template <size_t N>
void params(std::string_view v, const std::string_view (&names)[N], std::string* (&&outs)[N]) {
  bool found[N] = {};
  size_t left = N;
  size_t pos = 0;
  while (pos < v.size()) {
    size_t semi = v.find(';', pos);
    if (semi == std::string_view::npos) return;
    pos = semi + 1;
    while (pos < v.size() && (isWsp(v[pos]) || v[pos] == '\n')) ++pos;
    size_t eq = v.find('=', pos);
    if (eq == std::string_view::npos) return;
    std::string_view key = trim(v.substr(pos, eq - pos));
    size_t vstart = eq + 1;
    while (vstart < v.size() && isWsp(v[vstart])) ++vstart;
    // The value is built only for a parameter asked for; the others are skipped over.
    std::string* val = nullptr;
    for (size_t k = 0; k < N; ++k) {
      if (!found[k] && iequals(key, names[k])) {
        found[k] = true;
        val = outs[k];
        val->clear();
        break;
      }
    }
    size_t vend = vstart;
    if (vstart < v.size() && v[vstart] == '"') {
      vend = vstart + 1;
      while (vend < v.size() && v[vend] != '"') {
        if (v[vend] == '\\' && vend + 1 < v.size()) ++vend;
        if (val) val->push_back(v[vend]);
        ++vend;
      }
      if (vend < v.size()) ++vend;
    } else {
      while (vend < v.size() && v[vend] != ';' && !isWsp(v[vend])) ++vend;
      if (val) val->assign(v.substr(vstart, vend - vstart));
    }
    if (val && --left == 0) return;
    pos = vend;
  }
}

}  // namespace

std::string param(std::string_view v, std::string_view name) {
  size_t pos = 0;
  while (pos < v.size()) {
    size_t semi = v.find(';', pos);
    if (semi == std::string_view::npos) return "";
    pos = semi + 1;
    while (pos < v.size() && (isWsp(v[pos]) || v[pos] == '\n')) ++pos;
    size_t eq = v.find('=', pos);
    if (eq == std::string_view::npos) return "";
    std::string_view key = trim(v.substr(pos, eq - pos));
    size_t vstart = eq + 1;
    while (vstart < v.size() && isWsp(v[vstart])) ++vstart;
    // The value is built only for the parameter asked for; the others are skipped over.
    bool wanted = iequals(key, name);
    std::string val;
    size_t vend = vstart;
    if (vstart < v.size() && v[vstart] == '"') {
      vend = vstart + 1;
      while (vend < v.size() && v[vend] != '"') {
        if (v[vend] == '\\' && vend + 1 < v.size()) ++vend;
        if (wanted) val.push_back(v[vend]);
        ++vend;
      }
      if (vend < v.size()) ++vend;
    } else {
      while (vend < v.size() && v[vend] != ';' && !isWsp(v[vend])) ++vend;
      if (wanted) val.assign(v.substr(vstart, vend - vstart));
    }
    if (wanted) return val;
    pos = vend;
  }
  return "";
}

namespace {

// Base64 digit values (both alphabets: "+/" and URL-safe "-_"); kB64Pad for '=', kB64Skip for
// any other byte (line ends, junk).
constexpr unsigned char kB64Pad = 64, kB64Skip = 65;
struct Base64Table {
  unsigned char v[256];
  constexpr Base64Table() : v() {
    for (int c = 0; c < 256; ++c)
      v[c] = static_cast<unsigned char>(c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26
                                        : c >= '0' && c <= '9' ? c - '0' + 52 : c == '+' || c == '-' ? 62
                                        : c == '/' || c == '_' ? 63 : c == '=' ? kB64Pad : kB64Skip);
  }
};
constexpr Base64Table kBase64;

}  // namespace

std::string decodeBase64(std::string_view s) {
  // One table lookup a byte (a chain of range tests mispredicts on base64's random letters).
  std::string out;
  out.reserve(s.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : s) {
    unsigned v = kBase64.v[static_cast<unsigned char>(ch)];
    if (v >= kB64Pad) {
      if (v == kB64Pad) break;
      continue;
    }
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

namespace {

// decodeQuotedPrintable() into out, which has room for s.size() bytes (the output is never
// longer); returns the length written. Bytes up to the next '=' are copied 16 at a time (each
// block stored whole, kept up to its first '='; the output never runs ahead of the input, so it
// fits), "=XX" decoded, "=\n" (soft line break) dropped, any other '=' kept.
size_t decodeQpInto(std::string_view s, char* const out) {
  char* o = out;
  const char* const base = s.data();
  size_t i = 0, n = s.size();
  // The '=' at i: a soft line break dropped, "=XX" decoded, any other '=' kept.
  auto escape = [&] {
    if (i + 1 < n && s[i + 1] == '\n') {  // soft line break
      i += 2;
      return;
    }
    int hi = i + 2 < n ? hexVal(s[i + 1]) : -1, lo = hi >= 0 ? hexVal(s[i + 2]) : -1;
    if (lo >= 0) {
      *o++ = static_cast<char>(hi * 16 + lo);
      i += 3;
      return;
    }
    *o++ = '=';
    ++i;
  };
#if defined(__SSE2__)
  // Each step stores a block and keeps it up to its first '=', then decodes that '=' (no test of
  // the byte at i first: in "=3D" and soft-break text that branch is a coin toss).
  const __m128i EQ = _mm_set1_epi8('=');
  while (n - i >= 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + i));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o), v);
    auto m = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, EQ)));
    if (m == 0) {
      o += 16;
      i += 16;
      continue;
    }
    auto k = static_cast<size_t>(std::countr_zero(m));
    o += k;
    i += k;
    escape();
  }
#endif
  while (i < n) {
    if (base[i] != '=') {
      const auto* eq = static_cast<const char*>(std::memchr(base + i, '=', n - i));
      size_t e = eq ? static_cast<size_t>(eq - base) : n;
      std::memcpy(o, base + i, e - i);
      o += e - i;
      i = e;
      if (i == n) break;
    }
    escape();
  }
  return static_cast<size_t>(o - out);
}

}  // namespace

std::string decodeQuotedPrintable(std::string_view s) {
  std::string out(s.size(), '\0');
  out.resize(decodeQpInto(s, out.data()));
  return out;
}

std::string decodeWords(std::string_view s) {
  std::string out;
  size_t pos = 0;
  bool lastWasWord = false;
  while (pos < s.size()) {
    size_t start = s.find("=?", pos);
    if (start == std::string_view::npos) break;
    size_t q1 = s.find('?', start + 2);
    size_t q2 = q1 == std::string_view::npos ? q1 : s.find('?', q1 + 1);
    size_t end = q2 == std::string_view::npos ? q2 : s.find("?=", q2 + 1);
    if (end == std::string_view::npos || q2 != q1 + 2) {
      out.append(s.substr(pos, start + 2 - pos));
      pos = start + 2;
      lastWasWord = false;
      continue;
    }
    std::string_view between = s.substr(pos, start - pos);
    if (!(lastWasWord && trim(between).empty())) out.append(between);  // RFC 2047 6.2
    std::string charset = toLower(s.substr(start + 2, q1 - start - 2));
    if (size_t star = charset.find('*'); star != std::string::npos) charset.resize(star);
    char enc = static_cast<char>(s[q1 + 1] | 0x20);
    std::string_view text = s.substr(q2 + 1, end - q2 - 1);
    std::string raw;
    if (enc == 'b') {
      raw = decodeBase64(text);
    } else {
      std::string t(text);
      std::replace(t.begin(), t.end(), '_', ' ');
      raw = decodeQuotedPrintable(t);
    }
    if (charset == "iso-8859-1" || charset == "latin1") {
      appendLatin1AsUtf8(out, raw);
    } else if (needsConversion(charset)) {
      std::string u = toUtf8(raw, charset);
      out.append(u.empty() ? raw : u);
    } else {
      out.append(raw);
    }
    pos = end + 2;
    lastWasWord = true;
  }
  out.append(s.substr(std::min(pos, s.size())));
  return out;
}

namespace {

// An mbox separator: "From SENDER DAY MON DD HH:MM:SS YYYY" (asctime date, maybe a zone). The
// time and the year are required, so that a body line starting with "From " is not taken for one.
bool mboxSeparator(std::string_view line) {
  if (line.compare(0, 5, "From ") != 0 || line.size() > 256) return false;
  size_t colon = line.find(':');
  if (colon < 7 || colon + 6 > line.size()) return false;
  auto digit = [&](size_t i) { return i < line.size() && line[i] >= '0' && line[i] <= '9'; };
  if (!digit(colon - 1) || !digit(colon - 2) || line[colon + 3] != ':' || !digit(colon + 1) || !digit(colon + 4)) return false;
  for (size_t i = colon + 6; i + 4 <= line.size(); ++i) {
    if (digit(i) && digit(i + 1) && digit(i + 2) && digit(i + 3) && (i + 4 == line.size() || !digit(i + 4))) return true;
  }
  return false;
}

}  // namespace

size_t findFromLine(std::string_view text, size_t pos) {
  const char* p = text.data();
  const size_t n = text.size();
  auto at = [&](size_t f) {  // f >= 1 or checked by the caller; "From " fits
    return (p[f - 1] == '\n' || p[f - 1] == '\r') && std::memcmp(p + f, "From ", 5) == 0;
  };
  size_t i = pos;
  if (i == 0) {
    if (n >= 5 && std::memcmp(p, "From ", 5) == 0) return 0;
    i = 1;
  }
  if (n < 5) return std::string_view::npos;
  const size_t last = n - 5;  // the last position where "From " fits
#if defined(__SSE2__)
  // 64 positions at a time: an 'F' with a space 4 bytes on (rare in mail text, absent from
  // base64), one test a block; then each such position checked for a line end before it and
  // "rom" after it. A substring search for "From " stops at every 'F', in a library call each.
  const __m128i F = _mm_set1_epi8('F'), SP = _mm_set1_epi8(' ');
  auto at16 = [&](size_t k) {  // the candidates among positions k..k+15 (k + 20 <= n)
    __m128i f = _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k)), F);
    return _mm_and_si128(f, _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k + 4)), SP));
  };
  for (; i + 68 <= n; i += 64) {
    __m128i a = at16(i), b = at16(i + 16), c = at16(i + 32), d = at16(i + 48);
    if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d))) == 0) continue;
    uint64_t bits = mask64(a, b, c, d);
    for (; bits != 0; bits &= bits - 1) {
      size_t f = i + static_cast<size_t>(std::countr_zero(bits));
      if (at(f)) return f;
    }
  }
  for (; i + 20 <= n; i += 16) {
    for (auto bits = static_cast<unsigned>(_mm_movemask_epi8(at16(i))); bits != 0; bits &= bits - 1) {
      size_t f = i + static_cast<size_t>(std::countr_zero(bits));
      if (at(f)) return f;
    }
  }
#endif
  for (; i <= last; ++i)
    if (p[i] == 'F' && at(i)) return i;
  return std::string_view::npos;
}

std::vector<std::string_view> splitMbox(std::string_view raw) {
  // Messages start at separator lines (see mboxSeparator); text before the first one, if any,
  // is a message too. Every line end style is accepted. Only "From " at a line start is looked
  // at (findFromLine).
  std::vector<std::string_view> out;
  size_t msgStart = 0;
  size_t pos = 0;
  while (pos < raw.size()) {
    size_t f = findFromLine(raw, pos);
    if (f == std::string_view::npos) break;
    pos = f + 5;
    size_t eol = f;
    while (eol < raw.size() && raw[eol] != '\n' && raw[eol] != '\r' && eol - f < 300) ++eol;
    if (!mboxSeparator(raw.substr(f, eol - f))) continue;
    if (f > msgStart) out.push_back(raw.substr(msgStart, f - msgStart));
    size_t next = eol;
    if (next < raw.size()) next += (raw[next] == '\r' && next + 1 < raw.size() && raw[next + 1] == '\n') ? 2 : 1;
    msgStart = next;
    pos = next;
  }
  if (msgStart < raw.size()) out.push_back(raw.substr(msgStart));
  return out;
}

namespace {

// The first delimiter line at or after from: delim ("--boundary") at the start of b or after a
// LF (RFC 2046 5.1.1); npos if none. Such a line is a LF followed by '-', which is rare even in
// text full of "-----" rules: 64 positions are tested for that pair at a time (SSE2), and each
// one found is compared with the whole delimiter. (A substring search for the delimiter walks a
// dependency chain of table lookups; glibc's memmem also builds a table per call.)
size_t findDelimiter(std::string_view b, std::string_view delim, size_t from) {
  const size_t m = delim.size(), n = b.size();
  if (m > n) return std::string_view::npos;
  const size_t last = n - m;  // the last position where delim fits
  const char* p = b.data();
  auto at = [&](size_t f) { return std::memcmp(p + f, delim.data(), m) == 0; };  // f <= last
  size_t i = from;
  if (i == 0) {
    if (at(0)) return 0;
    i = 1;
  }
#if defined(__SSE2__)
  if (m >= 1 && delim[0] == '-') {
    const __m128i LF = _mm_set1_epi8('\n'), DASH = _mm_set1_epi8('-');
    auto line16 = [&](size_t k) {  // positions k..k+15 that start a line with '-' (k >= 1, k + 16 <= n)
      __m128i lf = _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k - 1)), LF);
      return _mm_and_si128(lf, _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k)), DASH));
    };
    for (; i + 64 <= n; i += 64) {
      __m128i a = line16(i), b1 = line16(i + 16), c = line16(i + 32), d = line16(i + 48);
      if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(a, b1), _mm_or_si128(c, d))) == 0) continue;
      uint64_t bits = mask64(a, b1, c, d);
      for (; bits != 0; bits &= bits - 1) {
        size_t f = i + static_cast<size_t>(std::countr_zero(bits));
        if (f > last) return std::string_view::npos;
        if (at(f)) return f;
      }
    }
    for (; i + 16 <= n; i += 16) {
      for (auto bits = static_cast<unsigned>(_mm_movemask_epi8(line16(i))); bits != 0; bits &= bits - 1) {
        size_t f = i + static_cast<size_t>(std::countr_zero(bits));
        if (f > last) return std::string_view::npos;
        if (at(f)) return f;
      }
    }
  }
#endif
  for (; i <= last; ++i)
    if (p[i - 1] == '\n' && p[i] == delim[0] && at(i)) return i;
  return std::string_view::npos;
}

}  // namespace

// The recursive part parser; owns no state beyond the Message it fills.
class Parser {
 public:
  Parser(Message& m, const Limits& l) : m_(m), limits_(l) {}

  void entity(Part& p, std::string_view text, size_t depth) {
    size_t bodyAt = parseFields(text, p.headers, limits_);
    body(p, text.substr(std::min(bodyAt, text.size())), depth);
  }

 private:
  void body(Part& p, std::string_view raw, size_t depth) {
    ++m_.parts_;
    std::string_view ct = p.headers.get("content-type");
    if (!ct.empty()) {
      std::string_view t = trim(ct.substr(0, ct.find(';')));
      if (t.find('/') != std::string_view::npos) p.type = toLower(t);
      std::string cs;
      params(ct, {"charset", "boundary"}, {&cs, &p.boundary});
      toLowerInPlace(cs);
      p.charset = std::move(cs);
    }
    std::string_view cte = trim(p.headers.get("content-transfer-encoding"));  // compared ignoring case
    bool wanted = std::string_view(p.type).starts_with("text/") || std::string_view(p.type).starts_with("message/") || p.isMultipart();
    if (wanted && iequals(cte, "base64")) {
      p.body = m_.buffers_.emplace_front(normalizeNewlines(decodeBase64(raw)));
    } else if (wanted && iequals(cte, "quoted-printable")) {
      p.body = m_.keep(raw.size(), [&](char* out) { return decodeQpInto(raw, out); });
    } else {
      p.body = raw;
    }
    // Text in a legacy charset (ISO-2022-JP, Shift_JIS, ISO-8859-x...) is converted to UTF-8 so
    // that rules can be written in one encoding. Bounded: at most maxConvertBytes per part.
    if (std::string_view(p.type).starts_with("text/") && needsConversion(p.charset) && !p.body.empty()) {
      std::string u = toUtf8(p.body.substr(0, std::min(p.body.size(), kMaxConvertBytes)), p.charset);
      if (!u.empty()) {
        p.body = m_.buffers_.emplace_front(std::move(u));
      }
    }
    bool canNest = depth + 1 < limits_.maxDepth && m_.parts_ < limits_.maxParts;
    if ((p.isMultipart() || p.isMessage()) && !canNest) {
      m_.depthLimited_ = true;
      return;
    }
    if (p.isMultipart() && !p.boundary.empty()) {
      multipart(p, depth);
    } else if (p.isMessage()) {
      p.children.emplace_back();
      Part& inner = p.children.back();
      if (limits_.parseNestedBodies) {
        entity(inner, p.body, depth + 1);
      } else {
        size_t at = parseFields(p.body, inner.headers, limits_);
        inner.body = p.body.substr(std::min(at, p.body.size()));
        ++m_.parts_;
      }
    }
  }

  void multipart(Part& p, size_t depth) {
    std::string_view b = p.body;
    std::string delim = "--" + p.boundary;
    auto findDelim = [&](size_t from) { return findDelimiter(b, delim, from); };
    size_t d = findDelim(0);
    if (d == std::string_view::npos) return;  // missing boundary: stays a leaf
    p.children.reserve(4);  // a report's three parts without a reallocation
    while (d != std::string_view::npos && m_.parts_ < limits_.maxParts) {
      size_t after = d + delim.size();
      bool closing = b.compare(after, 2, "--") == 0;
      if (closing) break;
      size_t eol = b.find('\n', after);
      if (eol == std::string_view::npos) break;
      size_t start = eol + 1;
      size_t nd = findDelim(start);
      size_t end = nd == std::string_view::npos ? b.size() : nd;
      // The line end before a delimiter belongs to the delimiter (RFC 2046 5.1.1).
      size_t len = end - start;
      if (nd != std::string_view::npos && len > 0 && b[end - 1] == '\n') --len;
      p.children.emplace_back();
      Part& child = p.children.back();
      if (std::string_view(p.type) == "multipart/digest") child.type = "message/rfc822";
      std::string_view chunk = b.substr(start, len);
      size_t bodyAt = parseFields(chunk, child.headers, limits_);
      if (std::string_view(p.type) == "multipart/digest" && child.headers.find("content-type") == nullptr) {
        child.headers.addView("Content-Type", "message/rfc822");
      }
      body(child, chunk.substr(std::min(bodyAt, chunk.size())), depth + 1);
      d = nd;
    }
  }

  Message& m_;
  const Limits& limits_;
};

std::unique_ptr<Message> parse(std::string_view raw, const Limits& limits) {
  std::unique_ptr<Message> m(new Message());
  if (raw.size() > limits.maxBytes) {
    raw = raw.substr(0, limits.maxBytes);
    m->truncated_ = true;
  }
  if (limits.borrowInput && raw.find('\r') == std::string_view::npos) {
    m->view_ = raw;
  } else {
    m->view_ = m->keep(raw.size(), [&](char* out) { return normalizeInto(raw, out); });
  }
  Parser parser(*m, limits);
  parser.entity(m->root_, m->view_, 0);
  return m;
}

}  // namespace sluice::mime
