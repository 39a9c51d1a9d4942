// multi_match.cc - MultiMatcher: the patterns' branches (regex_split.h), their literals found by
// a hashed-key prefilter, RE2 for the regex branches whose required literal occurred.
#include "bounce/multi_match.h"

#include <re2/re2.h>
#include <re2/set.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <map>

#include "base/log.h"
#include "bounce/literal_gate.h"
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
      // Literals of 4 bytes or more go into the prefilter; shorter ones too only when there is
      // no longer one (else they are looked for in the text when the long ones occurred): so
      // the prefilter needs no 3-byte key in most rule sets, one bit test a position.
      std::vector<std::string> indexed, later;
      for (const std::string& r : br.required) (r.size() >= 4 ? indexed : later).push_back(r);
      if (indexed.empty()) indexed.swap(later);
      regexes_.push_back(Regex{pattern, static_cast<uint32_t>(indexed.size()), br.prefix, br.text, later});
      if (!br.prefix.empty()) anchored_.push_back(id);
      else if (indexed.empty()) always_.push_back(id);
      for (const std::string& r : indexed) addAtom(r, Target{pattern, id});
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

namespace {

// Bits set in w (no POPCNT instruction in the baseline x86-64 the library is built for).
inline uint32_t popcount64(uint64_t w) {
  w -= (w >> 1) & 0x5555555555555555ull;
  w = (w & 0x3333333333333333ull) + ((w >> 2) & 0x3333333333333333ull);
  w = (w + (w >> 4)) & 0x0f0f0f0f0f0f0f0full;
  return static_cast<uint32_t>((w * 0x0101010101010101ull) >> 56);
}

constexpr double kSharedCost = 3.0;  // per other atom sharing the key: one more to confirm

}  // namespace

// Each atom of 4 bytes or more is indexed by one of its 4-byte substrings: the one fewest atoms
// contain (the atoms are phrases of the texts' language, so a 4-gram many of them share, "mess",
// "the ", is also frequent in the texts). A prefilter hit then means "this rare 4-gram is here"
// and has few atoms to confirm, instead of every atom starting with "mess".
void MultiMatcher::buildIndex() {
  std::map<uint32_t, uint32_t> shared;  // 4-gram -> how many atoms contain it
  auto gram = [&](const std::string& a, size_t o) { return key4(reinterpret_cast<const unsigned char*>(a.data()) + o, 4); };
  for (const std::string& a : atoms_) {
    std::vector<uint32_t> grams;
    for (size_t o = 0; o + 4 <= a.size(); ++o) grams.push_back(gram(a, o));
    std::sort(grams.begin(), grams.end());
    grams.erase(std::unique(grams.begin(), grams.end()), grams.end());
    for (uint32_t g : grams) ++shared[g];
  }
  std::vector<std::pair<uint32_t, Entry>> keys4, keys3;  // (hash, entry)
  std::vector<int32_t> long4;                            // atoms of 4 bytes or more
  for (size_t i = 0; i < atoms_.size(); ++i) {
    const std::string& a = atoms_[i];
    auto atom = static_cast<int32_t>(i);
    if (a.size() < 3) {
      short_.push_back(atom);
    } else if (a.size() == 3) {
      uint32_t k = key4(reinterpret_cast<const unsigned char*>(a.data()), 3);
      keys3.push_back({keyHash(k), Entry{k, atom, 0, 3, 0}});
    } else {
      long4.push_back(atom);
    }
  }
  // The probe step: every position, or every 2nd or 4th when all these atoms are long enough
  // to hold step consecutive 4-byte keys (5 or 7 bytes): an occurrence then spans exactly one
  // probed position among the offsets of its keys, all of which are indexed.
  size_t minLong = SIZE_MAX;
  for (int32_t atom : long4) minLong = std::min(minLong, atoms_[static_cast<size_t>(atom)].size());
  step_ = minLong == SIZE_MAX || minLong < 5 ? 1 : minLong < 7 ? 2 : 4;
  for (int32_t atom : long4) {
    const std::string& a = atoms_[static_cast<size_t>(atom)];
    auto score = [&](size_t o) {
      double sc = static_cast<double>(shared[gram(a, o)] - 1) * kSharedCost;
      for (size_t k = o; k < o + 4; ++k) sc += detail::byteCommonness(static_cast<unsigned char>(a[k]));
      return sc;
    };
    size_t best = 0;
    double bestScore = 0;
    for (size_t o = 0; o + 4 + (step_ - 1) <= a.size(); ++o) {  // the window of step_ keys
      double sc = 0;
      for (size_t j = 0; j < step_; ++j) sc += score(o + j);
      if (o == 0 || sc < bestScore) best = o, bestScore = sc;
    }
    for (size_t o = best; o < best + step_; ++o) {
      uint32_t k = gram(a, o);
      keys4.push_back({keyHash(k), Entry{k, atom, static_cast<uint32_t>(o), static_cast<uint32_t>(a.size()), 0}});
    }
  }
  auto fill = [this](KeyIndex& ix, std::vector<std::pair<uint32_t, Entry>>& keys) {
    if (keys.empty()) return;
    std::sort(keys.begin(), keys.end(), [](const auto& x, const auto& y) {
      return x.first != y.first ? x.first < y.first : x.second.atom < y.second.atom;
    });
    ix.bits.assign(kWords, 0);
    ix.rank.assign(kWords, 0);
    for (const auto& [h, e] : keys) {
      if (!(ix.bits[h / 64] & (uint64_t{1} << (h % 64)))) ix.start.push_back(static_cast<uint32_t>(ix.entries.size()));
      ix.bits[h / 64] |= uint64_t{1} << (h % 64);
      ix.entries.push_back(e);
      ix.entries.back().bytes = static_cast<uint32_t>(ix.pool.size());
      ix.pool += atoms_[static_cast<size_t>(e.atom)];
    }
    ix.start.push_back(static_cast<uint32_t>(ix.entries.size()));
    uint32_t before = 0;
    for (size_t w = 0; w < kWords; ++w) {
      ix.rank[w] = before;
      before += popcount64(ix.bits[w]);
    }
  };
  fill(key4_, keys4);
  fill(key3_, keys3);
}

// A key whose hash h has its bit set was seen at pos: confirm every atom whose key hashes the
// same (the h-th group of ix.entries, h counted in set bits: rank, then popcount), where the
// atom would start (pos less the key's offset in it).
void MultiMatcher::confirm(const KeyIndex& ix, uint32_t h, uint32_t key, std::string_view text, size_t pos,
                           std::vector<int>& found) const {
  uint64_t below = ix.bits[h / 64] & ((uint64_t{1} << (h % 64)) - 1);
  size_t group = ix.rank[h / 64] + popcount64(below);
  for (uint32_t i = ix.start[group]; i < ix.start[group + 1]; ++i) {
    const Entry& e = ix.entries[i];
    if (e.key != key || e.offset > pos || text.size() - (pos - e.offset) < e.size) continue;
    const char* a = ix.pool.data() + e.bytes;
    const char* t = text.data() + (pos - e.offset);
    // The bytes around the key (already equal), byte by byte: most atoms are short and differ
    // early, where a memcmp call costs more.
    size_t k = 0;
    while (k < e.offset && a[k] == t[k]) ++k;
    if (k != e.offset) continue;
    k = e.offset + 4 > e.size ? e.size : e.offset + 4;
    while (k < e.size && a[k] == t[k]) ++k;
    if (k == e.size) found.push_back(e.atom);
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
  const size_t n = text.size();
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const bool has4 = !key4_.bits.empty(), has3 = !key3_.bits.empty();
  if (has4) {
    // At every position one hash and one bit test, without a branch: the position is written
    // to `spots` and kept (the count advanced) when its bit is set. The few kept ones are
    // confirmed after each chunk: a branch per position would be mispredicted at every hit.
    const uint64_t* bits = key4_.bits.data();
    constexpr size_t kChunk = 512;
    uint32_t spots[kChunk];
    for (size_t from = 0; from + 4 <= n; from += kChunk) {
      const size_t end = std::min(n - 3, from + kChunk);  // positions with 4 bytes left
      size_t kept = 0, q = from;
      auto probe = [&](uint32_t v, size_t at) {
        uint32_t h = keyHash(v);
        spots[kept] = static_cast<uint32_t>(at - from);
        kept += (bits[h / 64] >> (h % 64)) & 1;
      };
      if constexpr (std::endian::native == std::endian::little) {
        for (; q + 4 <= end && q + 8 <= n; q += 4) {  // 4 positions from one 8-byte load
          uint64_t w;
          std::memcpy(&w, p + q, 8);
          probe(static_cast<uint32_t>(w), q);
          if (step_ == 4) continue;
          probe(static_cast<uint32_t>(w >> 16), q + 2);
          if (step_ == 2) continue;
          probe(static_cast<uint32_t>(w >> 8), q + 1);
          probe(static_cast<uint32_t>(w >> 24), q + 3);
        }
      }
      for (; q < end; q += step_) probe(key4(p + q, 4), q);  // q stays a multiple of step_
      for (size_t i = 0; i < kept; ++i) {
        size_t at = from + spots[i];
        uint32_t v = key4(p + at, 4);
        confirm(key4_, keyHash(v), v, text, at, atoms);
      }
    }
  }
  if (has3) {  // 3-byte atoms with no longer literal beside them (none in the shipped rules)
    const uint64_t* bits = key3_.bits.data();
    for (size_t q = 0; q + 3 <= n; ++q) {
      uint32_t v = key4(p + q, 3), h = keyHash(v);
      if ((bits[h / 64] >> (h % 64)) & 1) confirm(key3_, h, v, text, q, atoms);
    }
  }
  for (int32_t a : short_) {  // none in the shipped rules
    if (text.find(atoms_[static_cast<size_t>(a)]) != std::string_view::npos) atoms.push_back(a);
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
    const Regex& r = regexes_[static_cast<size_t>(hits[i])];
    if (j - i != r.required) continue;
    bool all = true;
    for (const std::string& l : r.alsoRequired) all = all && text.find(l) != std::string_view::npos;
    if (all) candidates.push_back(hits[i]);
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
