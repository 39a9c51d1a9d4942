// canon.cc - DKIM header and body canonicalization (RFC 6376 3.4) and the body hasher.
#include "dkim/canon.h"

#include <openssl/evp.h>

#include <cstdint>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "base/strings.h"

namespace sluice::dkim {
namespace {

constexpr size_t kFlushBytes = 8192;

bool isWsp(char c) { return c == ' ' || c == '\t'; }
// The bytes relaxed body canonicalization may change: line ends and WSP.
bool isRelaxedSpecial(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Whether any byte of the 8 in `w` equals `b` (the classic SWAR zero-byte test on w ^ b*0x01..01).
bool hasByte(uint64_t w, unsigned char b) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHighs = 0x8080808080808080ULL;
  uint64_t v = w ^ (kOnes * b);
  return ((v - kOnes) & ~v & kHighs) != 0;
}

// The length of the prefix of p[0..n) that canonicalization keeps as it is: no CR or LF, and for
// relaxed no SP or HTAB either. Eight bytes at a time while none of them is special.
size_t ordinaryRun(const char* p, size_t n, bool relaxed) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (hasByte(w, '\r') || hasByte(w, '\n') || (relaxed && (hasByte(w, ' ') || hasByte(w, '\t')))) break;
  }
  if (relaxed) {
    while (i < n && !isRelaxedSpecial(p[i])) ++i;
  } else {
    while (i < n && p[i] != '\r' && p[i] != '\n') ++i;
  }
  return i;
}

#if defined(__SSE2__)
// The length of a prefix of p[0..n), in whole 16-byte blocks, that canonicalization keeps as it
// is and that ends in an ordinary byte, given that p[-1] (readable) is ordinary content. Inside
// such a block only a bare LF (it becomes CRLF) and, for relaxed, a TAB or a SP before WSP or a
// line end change anything: empty lines and lone CRs stay as they are when content follows, and
// the block's last byte is content. SSE2, with the bytes before and after each byte loaded at
// offsets -1 and +1; the byte-wise path takes over at the first block that holds any of these.
size_t unchangedBlocks(const char* p, size_t n, bool relaxed) {
  const __m128i sp = _mm_set1_epi8(' '), tab = _mm_set1_epi8('\t'), cr = _mm_set1_epi8('\r'),
                lf = _mm_set1_epi8('\n');
  size_t k = 0;
  for (; k + 17 <= n; k += 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k));
    __m128i prev = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k - 1));
    __m128i bad = _mm_andnot_si128(_mm_cmpeq_epi8(prev, cr), _mm_cmpeq_epi8(v, lf));  // bare LF
    if (relaxed) {
      __m128i next = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k + 1));
      __m128i nSpecial = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(next, sp), _mm_cmpeq_epi8(next, tab)),
                                      _mm_or_si128(_mm_cmpeq_epi8(next, cr), _mm_cmpeq_epi8(next, lf)));
      bad = _mm_or_si128(bad, _mm_cmpeq_epi8(v, tab));
      bad = _mm_or_si128(bad, _mm_and_si128(_mm_cmpeq_epi8(v, sp), nSpecial));
    }
    char last = p[k + 15];
    if (_mm_movemask_epi8(bad) != 0 || last == '\r' || last == '\n' || (relaxed && isWsp(last))) break;
  }
  return k;
}
#else
size_t unchangedBlocks(const char*, size_t, bool) { return 0; }
#endif

// RFC 6376 3.4.2: lowercase name, no WSP around the colon, value unfolded, WSP runs -> one SP,
// no WSP at the start or end of the value.
void relaxedHeader(std::string_view field, std::string& out) {
  size_t colon = field.find(':');
  if (colon == std::string_view::npos) colon = field.size();  // not a field: treat all as name
  std::string_view name = field.substr(0, colon);
  while (!name.empty() && isWsp(name.back())) name.remove_suffix(1);
  while (!name.empty() && isWsp(name.front())) name.remove_prefix(1);
  for (char c : name) out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  out += ':';
  std::string_view value = colon < field.size() ? field.substr(colon + 1) : std::string_view();
  bool wsp = false;
  bool started = false;
  for (size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c == '\r' && i + 1 < value.size() && value[i + 1] == '\n') {
      ++i;  // unfold: the CRLF of a continuation line goes, its WSP stays
      continue;
    }
    if (c == '\n' || isWsp(c)) {
      wsp = true;
      continue;
    }
    if (wsp && started) out += ' ';
    wsp = false;
    started = true;
    out += c;
  }
  out += "\r\n";
}

}  // namespace

const char* toString(HeaderCanon c) { return c == HeaderCanon::kSimple ? "simple" : "relaxed"; }
const char* toString(BodyCanon c) { return c == BodyCanon::kSimple ? "simple" : "relaxed"; }

std::optional<HeaderCanon> parseHeaderCanon(std::string_view s) {
  if (iequals(s, "simple")) return HeaderCanon::kSimple;
  if (iequals(s, "relaxed")) return HeaderCanon::kRelaxed;
  return std::nullopt;
}

std::optional<BodyCanon> parseBodyCanon(std::string_view s) {
  if (iequals(s, "simple")) return BodyCanon::kSimple;
  if (iequals(s, "relaxed")) return BodyCanon::kRelaxed;
  return std::nullopt;
}

void canonHeader(HeaderCanon canon, std::string_view field, std::string& out) {
  if (canon == HeaderCanon::kSimple) {
    out.append(field);
    out += "\r\n";
    return;
  }
  relaxedHeader(field, out);
}

std::string canonHeader(HeaderCanon canon, std::string_view field) {
  std::string out;
  out.reserve(field.size() + 2);
  canonHeader(canon, field, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// BodyCanonicalizer

void BodyCanonicalizer::content(char c, std::string& out) {
  if (!lineHasContent_) {
    for (; emptyLines_ > 0; --emptyLines_) out += "\r\n";
    lineHasContent_ = true;
    wroteAny_ = true;
  }
  if (pendingWsp_) {
    out += ' ';
    pendingWsp_ = false;
  }
  out += c;
}

void BodyCanonicalizer::endLine(std::string& out) {
  pendingWsp_ = false;  // relaxed: WSP at the end of a line is ignored
  if (lineHasContent_) {
    out += "\r\n";
    lineHasContent_ = false;
  } else {
    ++emptyLines_;
  }
}

void BodyCanonicalizer::feed(std::string_view in, std::string& out) {
  const bool relaxed = canon_ == BodyCanon::kRelaxed;
  size_t i = 0;
  while (i < in.size()) {
    char c = in[i];
    if (pendingCr_) {
      pendingCr_ = false;
      if (c == '\n') {
        endLine(out);
        ++i;
        continue;
      }
      content('\r', out);  // a CR not followed by LF is an ordinary byte
    }
    if (c == '\r') {
      pendingCr_ = true;
      ++i;
    } else if (c == '\n') {
      endLine(out);  // bare LF: a line end, as if it were CRLF
      ++i;
    } else if (relaxed && isWsp(c)) {
      pendingWsp_ = true;
      ++i;
    } else {
      content(c, out);  // first byte of a run: flushes held-back lines and WSP
      size_t j = i + 1;
      // The run goes on through what canonicalization keeps as it is between two content bytes:
      // a CRLF (the next line starts with content) and, for relaxed, a single SP. Ordinary text
      // is so appended in pieces of up to a whole chunk, not line by line or word by word.
      auto ordinary = [relaxed](char b) { return relaxed ? !isRelaxedSpecial(b) : b != '\r' && b != '\n'; };
      for (;;) {
        // in[j - 1] is ordinary content here: whole blocks of text that stays as it is first.
        j += unchangedBlocks(in.data() + j, in.size() - j, relaxed);
        j += ordinaryRun(in.data() + j, in.size() - j, relaxed);
        if (relaxed && j + 1 < in.size() && in[j] == ' ' && ordinary(in[j + 1])) {
          j += 2;
        } else if (j + 2 < in.size() && in[j] == '\r' && in[j + 1] == '\n' && ordinary(in[j + 2])) {
          j += 3;
        } else {
          break;
        }
      }
      out.append(in.data() + i + 1, j - i - 1);
      i = j;
    }
  }
}

void BodyCanonicalizer::finish(std::string& out) {
  if (pendingCr_) {
    pendingCr_ = false;
    content('\r', out);
  }
  pendingWsp_ = false;
  if (lineHasContent_) out += "\r\n";  // a last line without a line end gets one
  if (canon_ == BodyCanon::kSimple && !wroteAny_) out += "\r\n";
  lineHasContent_ = false;
  wroteAny_ = false;
  emptyLines_ = 0;
}

// ---------------------------------------------------------------------------------------------
// BodyHasher

struct BodyHasher::Ctx {
  EVP_MD_CTX* md = nullptr;
  bool failed = false;
  Ctx() : md(EVP_MD_CTX_new()) { reset(); }
  ~Ctx() { EVP_MD_CTX_free(md); }
  Ctx(const Ctx&) = delete;
  Ctx& operator=(const Ctx&) = delete;
  void reset() { failed = md == nullptr || EVP_DigestInit_ex(md, EVP_sha256(), nullptr) != 1; }
};

BodyHasher::BodyHasher(BodyCanon canon) : canon_(canon), ctx_(std::make_unique<Ctx>()) {
  buf_.reserve(kFlushBytes + 256);
}
BodyHasher::~BodyHasher() = default;
BodyHasher::BodyHasher(BodyHasher&&) noexcept = default;
BodyHasher& BodyHasher::operator=(BodyHasher&&) noexcept = default;

void BodyHasher::flush() {
  if (buf_.empty()) return;
  length_ += buf_.size();
  if (!ctx_->failed && EVP_DigestUpdate(ctx_->md, buf_.data(), buf_.size()) != 1) ctx_->failed = true;
  buf_.clear();
}

void BodyHasher::update(std::string_view chunk) {
  canon_.feed(chunk, buf_);
  if (buf_.size() >= kFlushBytes) flush();
}

Result<Sha256Digest> BodyHasher::finish() {
  canon_.finish(buf_);
  flush();
  Sha256Digest digest{};
  unsigned int len = 0;
  bool ok = !ctx_->failed && EVP_DigestFinal_ex(ctx_->md, digest.data(), &len) == 1 && len == 32;
  ctx_->reset();
  if (!ok) return makeError("dkim: SHA-256 of the body failed (OpenSSL)");
  return digest;
}

Result<Sha256Digest> sha256(std::string_view data) {
  Sha256Digest digest{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &len, EVP_sha256(), nullptr) != 1 || len != 32) {
    return makeError("dkim: SHA-256 failed (OpenSSL)");
  }
  return digest;
}

}  // namespace sluice::dkim
