// multi_match.cc - MultiMatcher: the patterns' branches (regex_split.h), their literals found by
// a hashed-key prefilter, RE2 for the regex branches whose required literal occurred.
#include "bounce/multi_match.h"

#include <re2/re2.h>
#include <re2/set.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <map>

#include "base/log.h"
#include "bounce/regex_split.h"

namespace sluice::bounce {

namespace {

// Up to 4 bytes as a little-endian number, zero-padded (one load on little-endian machines).
uint32_t key4(const unsigned char* b, size_t len) {
  if (len >= 4) return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
  uint32_t v = 0;
  for (size_t i = 0; i < len; ++i) v |= uint32_t{b[i]} << (8 * i);
  return v;
}

// Whether folding case cannot change what a regex matches in a text without ASCII capitals
// (match() texts are lower-cased): ASCII only, no capital letter but escapes' (\D, \S, \W,
// \B, \A: classes and anchors), no escape that can spell one (\x41, \Q...\E, \p{Lu}).
// Such a branch is compiled case-sensitive: RE2 then finds a literal prefix with memchr
// instead of stepping a case-folding DFA through every byte.
bool caseFoldIrrelevant(std::string_view re) {
  for (size_t i = 0; i < re.size(); ++i) {
    auto c = static_cast<unsigned char>(re[i]);
    if (c >= 0x80 || (c >= 'A' && c <= 'Z')) return false;
    if (c == '\\') {
      if (++i == re.size()) return false;
      char e = re[i];
      if (e == 'x' || e == 'Q' || e == 'p' || e == 'P' || e == 'C' || (e >= '0' && e <= '9')) return false;
    }
  }
  return true;
}

}  // namespace

MultiMatcher::MultiMatcher() = default;
MultiMatcher::~MultiMatcher() = default;

Status MultiMatcher::build(const std::vector<std::string>& patterns, size_t* bad) {
  patternCount_ = patterns.size();
  re2::RE2::Options o;
  o.set_encoding(re2::RE2::Options::EncodingLatin1);
  o.set_case_sensitive(false);
  o.set_log_errors(false);
  // Every pattern's syntax: RE2::Set::Add only parses (~4x cheaper than compiling). Nothing is
  // compiled here (see compiled()); literal branches never need RE2 at all.
  {
    re2::RE2::Set syntax(o, re2::RE2::UNANCHORED);
    for (size_t i = 0; i < patterns.size(); ++i) {
      std::string err;
      if (syntax.Add(patterns[i], &err) < 0) {
        if (bad) *bad = i;
        return makeError("pattern " + std::to_string(i) + " does not compile: " + err);
      }
    }
  }
  std::map<std::string, int32_t> atomIds;
  std::vector<std::vector<Target>> targets;
  auto addAtom = [&](const std::string& a, Target t) {
    auto [it, fresh] = atomIds.emplace(a, static_cast<int32_t>(atoms_.size()));
    if (fresh) {
      atoms_.push_back(a);
      targets.emplace_back();
    }
    targets[static_cast<size_t>(it->second)].push_back(t);
  };
  patterns_ = patterns;
  for (size_t i = 0; i < patterns.size(); ++i) {
    for (const detail::Branch& br : detail::splitAlternatives(patterns[i])) {
      auto pattern = static_cast<int32_t>(i);
      if (br.literal) {
        addAtom(br.text, Target{pattern, -1});
        continue;
      }
      auto id = static_cast<int32_t>(regexes_.size());
      regexes_.push_back(Regex{pattern, static_cast<uint32_t>(br.required.size()), br.prefix, br.text});
      if (!br.prefix.empty()) anchored_.push_back(id);
      else if (br.required.empty()) always_.push_back(id);
      for (const std::string& r : br.required) addAtom(r, Target{pattern, id});
    }
  }
  lazy_ = std::make_unique<Lazy[]>(regexes_.size());
  targetStart_.assign(1, 0);
  for (const auto& t : targets) {
    targets_.insert(targets_.end(), t.begin(), t.end());
    targetStart_.push_back(static_cast<uint32_t>(targets_.size()));
  }
  buildIndex();
  return okStatus();
}

const re2::RE2& MultiMatcher::compiled(int32_t id) const {
  Lazy& l = lazy_[static_cast<size_t>(id)];
  std::call_once(l.once, [&] {
    const Regex& r = regexes_[static_cast<size_t>(id)];
    re2::RE2::Options o;
    o.set_encoding(re2::RE2::Options::EncodingLatin1);
    o.set_case_sensitive(caseFoldIrrelevant(r.text));  // see caseFoldIrrelevant()
    o.set_log_errors(false);
    l.re = std::make_unique<re2::RE2>(r.text, o);
    if (l.re->ok()) return;
    // A reader bug or RE2's memory budget: the whole pattern matches exactly what its branches
    // together match, so it may stand in for this one.
    o.set_case_sensitive(false);
    l.re = std::make_unique<re2::RE2>(patterns_[static_cast<size_t>(r.pattern)], o);
    if (!l.re->ok()) {
      logError("bounce rules: pattern " + std::to_string(r.pattern) + " does not compile (" + l.re->error() +
               "); it matches nothing");
    }
  });
  return *l.re;
}

void MultiMatcher::buildIndex() {
  std::vector<std::pair<uint32_t, int32_t>> keys[kMaxKey + 1];  // (hash, atom) by key length
  first2_.assign(kFirst2Words, 0);
  for (size_t i = 0; i < atoms_.size(); ++i) {
    const std::string& a = atoms_[i];
    if (a.size() >= 2) {
      uint32_t b2 = key4(reinterpret_cast<const unsigned char*>(a.data()), 2);
      first2_[b2 / 64] |= uint64_t{1} << (b2 % 64);
    }
    size_t len = std::min(a.size(), kMaxKey);
    uint32_t v = key4(reinterpret_cast<const unsigned char*>(a.data()), len);
    keys[len].emplace_back(keyHash(v), static_cast<int32_t>(i));
  }
  for (size_t len = 0; len <= kMaxKey; ++len) {
    if (keys[len].empty()) continue;
    std::sort(keys[len].begin(), keys[len].end());
    KeyIndex& ix = index_[len];
    ix.bits.assign(kWords, 0);
    ix.rank.assign(kWords, 0);
    for (const auto& [h, atom] : keys[len]) {
      if (!(ix.bits[h / 64] & (uint64_t{1} << (h % 64)))) ix.start.push_back(static_cast<uint32_t>(ix.atoms.size()));
      ix.bits[h / 64] |= uint64_t{1} << (h % 64);
      const auto* a = reinterpret_cast<const unsigned char*>(atoms_[static_cast<size_t>(atom)].data());
      size_t size = atoms_[static_cast<size_t>(atom)].size(), more = std::min<size_t>(size - len, 4);
      ix.atoms.push_back(Entry{atom, static_cast<uint32_t>(size), key4(a, len), key4(a + len, more),
                               more == 4 ? ~0u : (1u << (8 * more)) - 1});
    }
    ix.start.push_back(static_cast<uint32_t>(ix.atoms.size()));
    uint32_t before = 0;
    for (size_t w = 0; w < kWords; ++w) {
      ix.rank[w] = before;
      before += static_cast<uint32_t>(std::popcount(ix.bits[w]));
    }
  }
}

// A key whose hash h has its bit set was seen at pos: confirm every atom whose key hashes the
// same. They are the h-th group of ix.atoms, h counted in set bits (rank, then popcount); each is
// checked on its key and next 4 bytes inline before a whole comparison.
void MultiMatcher::confirm(const KeyIndex& ix, uint32_t h, uint32_t key, std::string_view text, size_t pos,
                           std::vector<int>& found) const {
  uint64_t below = ix.bits[h / 64] & ((uint64_t{1} << (h % 64)) - 1);
  size_t group = ix.rank[h / 64] + static_cast<size_t>(std::popcount(below));
  size_t left = text.size() - pos;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data()) + pos;
  uint32_t next = left > kMaxKey ? key4(p + kMaxKey, std::min<size_t>(left - kMaxKey, 4)) : 0;
  for (uint32_t i = ix.start[group]; i < ix.start[group + 1]; ++i) {
    const Entry& e = ix.atoms[i];
    if (e.key != key || (next & e.mask) != e.next || e.size > left) continue;
    if (e.size > 2 * kMaxKey) {  // the rest, byte by byte (short: a memcmp call costs more)
      const char* a = atoms_[static_cast<size_t>(e.atom)].data();
      size_t k = 2 * kMaxKey;
      while (k < e.size && a[k] == text[pos + k]) ++k;
      if (k != e.size) continue;
    }
    found.push_back(e.atom);
  }
}

std::vector<int> MultiMatcher::match(std::string_view text) const {
  std::vector<int> result;
  result.reserve(16);  // one allocation, not one per doubling
  // Scratch lists, one set per thread, kept between calls (no allocation once grown).
  thread_local std::vector<int> atoms;
  thread_local std::vector<int32_t> candidates, hits;
  if (atoms.capacity() > (1u << 16)) std::vector<int>().swap(atoms);  // a huge text's list is not kept
  if (hits.capacity() > (1u << 16)) std::vector<int32_t>().swap(hits);
  atoms.clear();
  const KeyIndex &k2 = index_[2], &k3 = index_[3], &k4 = index_[4];
  const bool has2 = !k2.bits.empty(), has3 = !k3.bits.empty(), has4 = !k4.bits.empty();
  // The bit test inline, the rare look-up out of line.
  auto probe = [&](const KeyIndex& ix, uint32_t key, size_t at) {
    uint32_t h = keyHash(key);
    if (ix.bits[h / 64] & (uint64_t{1} << (h % 64))) confirm(ix, h, key, text, at, atoms);
  };
  const size_t n = text.size();
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const uint64_t* first2 = first2_.data();
  // Every key of length 2 to 4 starts with one of the atoms' first two bytes: positions whose
  // two bytes start no atom (most of them) cost one bit test.
  auto starts = [&](uint32_t v) { uint32_t b2 = v & 0xffffu; return (first2[b2 / 64] >> (b2 % 64)) & 1; };
  auto at = [&](uint32_t v, size_t q) {
    if (!starts(v)) return;
    if (has4) probe(k4, v, q);
    if (has3) probe(k3, v & 0xffffffu, q);
    if (has2) probe(k2, v & 0xffffu, q);
  };
  size_t pos = 0;
  if constexpr (std::endian::native == std::endian::little) {
    for (; pos + 8 <= n; pos += 4) {  // 4 positions from one 8-byte load
      uint64_t w;
      std::memcpy(&w, p + pos, 8);
      at(static_cast<uint32_t>(w), pos);
      at(static_cast<uint32_t>(w >> 8), pos + 1);
      at(static_cast<uint32_t>(w >> 16), pos + 2);
      at(static_cast<uint32_t>(w >> 24), pos + 3);
    }
  }
  for (; pos + 4 <= n; ++pos) at(key4(p + pos, 4), pos);
  for (; pos < n; ++pos) {  // the last three positions: shorter keys only
    uint32_t v = key4(p + pos, n - pos);
    if (n - pos < 2 || !starts(v)) continue;
    if (has3 && n - pos >= 3) probe(k3, v, pos);
    if (has2 && n - pos >= 2) probe(k2, v & 0xffffu, pos);
  }
  std::sort(atoms.begin(), atoms.end());
  atoms.erase(std::unique(atoms.begin(), atoms.end()), atoms.end());
  // Literal branches decide their pattern; a regex branch runs in RE2 when all its required
  // literals occurred (or the text starts with its prefix), unless another branch matched its
  // pattern already.
  candidates.assign(always_.begin(), always_.end());
  hits.clear();
  for (int atom : atoms) {
    for (uint32_t t = targetStart_[static_cast<size_t>(atom)]; t < targetStart_[static_cast<size_t>(atom) + 1]; ++t) {
      if (targets_[t].regex < 0) result.push_back(targets_[t].pattern);
      else hits.push_back(targets_[t].regex);
    }
  }
  std::sort(hits.begin(), hits.end());  // atoms are distinct: a branch's count = its required found
  for (size_t i = 0, j = 0; i < hits.size(); i = j) {
    while (j < hits.size() && hits[j] == hits[i]) ++j;
    if (j - i == regexes_[static_cast<size_t>(hits[i])].required) candidates.push_back(hits[i]);
  }
  for (int32_t id : anchored_) {
    if (text.starts_with(regexes_[static_cast<size_t>(id)].prefix)) candidates.push_back(id);
  }
  if (!candidates.empty()) {
    std::sort(result.begin(), result.end());
    std::sort(candidates.begin(), candidates.end());
    size_t literalHits = result.size();
    for (int32_t c : candidates) {
      const Regex& r = regexes_[static_cast<size_t>(c)];
      if (result.size() > literalHits && result.back() == r.pattern) continue;  // ids of a pattern are adjacent
      if (std::binary_search(result.begin(), result.begin() + static_cast<ptrdiff_t>(literalHits), r.pattern)) continue;
      const re2::RE2& re = compiled(c);
      if (re.ok() && re2::RE2::PartialMatch(re2::StringPiece(text.data(), text.size()), re)) result.push_back(r.pattern);
    }
  }
  std::sort(result.begin(), result.end());
  result.erase(std::unique(result.begin(), result.end()), result.end());
  return result;
}

}  // namespace sluice::bounce
