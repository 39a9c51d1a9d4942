// multi_match.cc - MultiMatcher: FilteredRE2 atoms found by a hashed-key prefilter, then RE2
// (see the header).
#include "bounce/multi_match.h"

#include <re2/filtered_re2.h>
#include <re2/re2.h>

#include <algorithm>
#include <bit>
#include <cctype>

namespace sluice::bounce {

namespace {

// The literal a pattern stands for, if it is a plain literal: ordinary characters, escaped
// punctuation ("\\."), and one-character classes ("[ ]", "[.]"). Lower-cased. False otherwise.
bool plainLiteral(std::string_view p, std::string* out) {
  out->clear();
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\') {
      if (i + 1 >= p.size() || std::isalnum(static_cast<unsigned char>(p[i + 1]))) return false;
      out->push_back(p[++i]);
    } else if (c == '[') {
      if (i + 2 >= p.size() || p[i + 2] != ']' || p[i + 1] == '^' || p[i + 1] == '\\') return false;
      out->push_back(p[i + 1]);
      i += 2;
    } else if (std::string_view(".*+?()|{}^$]").find(c) != std::string_view::npos) {
      return false;
    } else {
      out->push_back(c);
    }
  }
  for (char& ch : *out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out->size() >= 2;
}

// Up to 4 bytes as a little-endian number, zero-padded (one load on little-endian machines).
uint32_t key4(const unsigned char* b, size_t len) {
  if (len >= 4) return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
  uint32_t v = 0;
  for (size_t i = 0; i < len; ++i) v |= uint32_t{b[i]} << (8 * i);
  return v;
}

}  // namespace

MultiMatcher::MultiMatcher() = default;
MultiMatcher::~MultiMatcher() = default;

Status MultiMatcher::build(const std::vector<std::string>& patterns) {
  patternCount_ = patterns.size();
  if (patterns.empty()) return okStatus();
  filter_ = std::make_unique<re2::FilteredRE2>(3);
  re2::RE2::Options o;
  o.set_encoding(re2::RE2::Options::EncodingLatin1);
  o.set_case_sensitive(false);
  o.set_log_errors(false);
  std::vector<std::string> literals;
  for (size_t i = 0; i < patterns.size(); ++i) {
    std::string lit;
    if (plainLiteral(patterns[i], &lit)) {
      literals.push_back(lit);
      literalPattern_.push_back(static_cast<int>(i));
      continue;
    }
    int id = 0;
    if (filter_->Add(patterns[i], o, &id) != re2::RE2::NoError) {
      return makeError("pattern " + std::to_string(i) + " does not compile: " + patterns[i]);
    }
    filterPattern_.push_back(static_cast<int>(i));
  }
  regexCount_ = filterPattern_.size();
  std::vector<std::string> atoms;
  if (regexCount_ > 0) filter_->Compile(&atoms);
  for (auto& a : atoms)
    for (char& c : a) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  filterAtoms_ = atoms.size();
  atoms.insert(atoms.end(), literals.begin(), literals.end());
  atoms_ = std::move(atoms);
  for (const std::string& a : atoms_) {
    if (a.size() < 2) return makeError("rule atom shorter than 2 bytes: " + a);
  }
  // Patterns without atoms run on every text: skipping FilteredRE2 needs there to be none.
  std::vector<int> always;
  if (regexCount_ > 0) filter_->AllPotentials({}, &always);
  unfiltered_ = !always.empty();
  buildIndex();
  return okStatus();
}

void MultiMatcher::buildIndex() {
  std::vector<std::pair<uint32_t, int32_t>> keys[kMaxKey + 1];  // (hash, atom) by key length
  for (size_t i = 0; i < atoms_.size(); ++i) {
    const std::string& a = atoms_[i];
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
      ix.atoms.push_back(atom);
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
// same. They are the h-th group of ix.atoms, h counted in set bits (rank, then popcount).
void MultiMatcher::confirm(const KeyIndex& ix, uint32_t h, std::string_view text, size_t pos,
                           std::vector<int>& found) const {
  uint64_t below = ix.bits[h / 64] & ((uint64_t{1} << (h % 64)) - 1);
  size_t group = ix.rank[h / 64] + static_cast<size_t>(std::popcount(below));
  for (uint32_t i = ix.start[group]; i < ix.start[group + 1]; ++i) {
    const std::string& a = atoms_[static_cast<size_t>(ix.atoms[i])];
    if (text.size() - pos >= a.size() && text.compare(pos, a.size(), a) == 0) found.push_back(ix.atoms[i]);
  }
}

std::vector<int> MultiMatcher::match(std::string_view text) const {
  std::vector<int> result;
  if (!filter_) return result;
  std::vector<int> atoms;
  const KeyIndex &k2 = index_[2], &k3 = index_[3], &k4 = index_[4];
  const bool has2 = !k2.bits.empty(), has3 = !k3.bits.empty(), has4 = !k4.bits.empty();
  // The bit test inline, the rare look-up out of line.
  auto probe = [&](const KeyIndex& ix, uint32_t key, size_t at) {
    uint32_t h = keyHash(key);
    if (ix.bits[h / 64] & (uint64_t{1} << (h % 64))) confirm(ix, h, text, at, atoms);
  };
  const size_t n = text.size();
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t pos = 0;
  for (; pos + 4 <= n; ++pos) {
    uint32_t v = key4(p + pos, 4);
    if (has4) probe(k4, v, pos);
    if (has3) probe(k3, v & 0xffffffu, pos);
    if (has2) probe(k2, v & 0xffffu, pos);
  }
  for (; pos < n; ++pos) {  // the last three positions: shorter keys only
    uint32_t v = key4(p + pos, n - pos);
    if (has3 && n - pos >= 3) probe(k3, v, pos);
    if (has2 && n - pos >= 2) probe(k2, v & 0xffffu, pos);
  }
  std::sort(atoms.begin(), atoms.end());
  atoms.erase(std::unique(atoms.begin(), atoms.end()), atoms.end());
  // Literal patterns matched already; the rest of the atoms feed FilteredRE2.
  auto firstLiteral = std::lower_bound(atoms.begin(), atoms.end(), static_cast<int>(filterAtoms_));
  for (auto it = firstLiteral; it != atoms.end(); ++it) {
    result.push_back(literalPattern_[static_cast<size_t>(*it) - filterAtoms_]);
  }
  atoms.erase(firstLiteral, atoms.end());
  if (regexCount_ > 0 && (!atoms.empty() || unfiltered_)) {
    std::vector<int> ids;
    filter_->AllMatches(re2::StringPiece(text.data(), text.size()), atoms, &ids);
    for (int id : ids) result.push_back(filterPattern_[static_cast<size_t>(id)]);
  }
  return result;
}

}  // namespace sluice::bounce
