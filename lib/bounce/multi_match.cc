// multi_match.cc - MultiMatcher: FilteredRE2 atoms in a dense Aho-Corasick DFA (see the header).
#include "bounce/multi_match.h"

#include <re2/filtered_re2.h>
#include <re2/re2.h>

#include <algorithm>
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
  for (size_t keyLen : {size_t{10}, size_t{8}, size_t{6}, size_t{4}, size_t{3}}) {
    if (buildAutomaton(keyLen)) return okStatus();
  }
  return makeError("too many rule atoms for the automaton");
}

bool MultiMatcher::buildAutomaton(size_t keyLen) {
  keyLen_ = keyLen;
  // Byte classes: each ASCII byte used in a key gets a class; every byte >= 0x80 shares one;
  // all other bytes share class 0. Rows are padded to a power of two (a shift, not a multiply).
  std::fill(std::begin(cls_), std::end(cls_), uint8_t{0});
  uint32_t classes = 1;
  uint8_t high = 0;
  for (const auto& a : atoms_) {
    for (size_t i = 0; i < a.size() && i < keyLen; ++i) {
      auto c = static_cast<unsigned char>(a[i]);
      if (c >= 0x80) {
        if (high == 0) high = static_cast<uint8_t>(classes++);
        continue;
      }
      if (cls_[c] == 0) cls_[c] = static_cast<uint8_t>(classes++);
    }
  }
  if (high != 0)
    for (int c = 0x80; c < 0x100; ++c) cls_[c] = high;
  rowShift_ = 0;
  while ((1u << rowShift_) < classes) ++rowShift_;
  // Trie over the keys.
  std::vector<std::vector<int32_t>> next(1, std::vector<int32_t>(classes, -1));
  std::vector<std::vector<int32_t>> outs(1);
  for (size_t i = 0; i < atoms_.size(); ++i) {
    int32_t s = 0;
    for (size_t j = 0; j < atoms_[i].size() && j < keyLen; ++j) {
      int32_t& t = next[static_cast<size_t>(s)][cls_[static_cast<unsigned char>(atoms_[i][j])]];
      if (t < 0) {
        t = static_cast<int32_t>(next.size());
        next.emplace_back(classes, -1);
        outs.emplace_back();
      }
      s = t;
      if (next.size() > kMaxStates) return false;
    }
    outs[static_cast<size_t>(s)].push_back(static_cast<int32_t>(i));
  }
  // BFS: failure links, full transition table, merged outputs. States are renumbered in BFS
  // order, so that the shallow states, where a scan spends most of its time, share cache lines.
  size_t n = next.size();
  std::vector<uint32_t> fail(n, 0), order, rank(n, 0);
  std::vector<uint32_t> delta(n * classes, 0);
  order.reserve(n);
  order.push_back(0);
  for (uint32_t c = 0; c < classes; ++c) {
    int32_t t = next[0][c];
    delta[c] = t < 0 ? 0 : static_cast<uint32_t>(t);
    if (t > 0) order.push_back(static_cast<uint32_t>(t));
  }
  for (size_t qi = 1; qi < order.size(); ++qi) {
    uint32_t s = order[qi];
    auto& own = outs[s];
    const auto& fo = outs[fail[s]];
    own.insert(own.end(), fo.begin(), fo.end());
    for (uint32_t c = 0; c < classes; ++c) {
      int32_t t = next[s][c];
      uint32_t viaFail = delta[static_cast<size_t>(fail[s]) * classes + c];
      if (t < 0) {
        delta[static_cast<size_t>(s) * classes + c] = viaFail;
      } else {
        delta[static_cast<size_t>(s) * classes + c] = static_cast<uint32_t>(t);
        fail[static_cast<size_t>(t)] = viaFail;
        order.push_back(static_cast<uint32_t>(t));
      }
    }
  }
  for (size_t i = 0; i < n; ++i) rank[order[i]] = static_cast<uint32_t>(i);
  // Final table in BFS numbering; the top bit marks transitions into states where outputs end,
  // so that the scan loop touches outStart_ only where a key ends.
  delta_.assign(n << rowShift_, 0);
  outStart_.assign(n + 1, 0);
  out_.clear();
  for (size_t i = 0; i < n; ++i) {
    uint32_t s = order[i];
    for (uint32_t c = 0; c < classes; ++c) {
      uint32_t t = delta[static_cast<size_t>(s) * classes + c];
      delta_[(i << rowShift_) + c] = static_cast<uint16_t>((outs[t].empty() ? 0u : kOutputBit) | rank[t]);
    }
    outStart_[i + 1] = outStart_[i] + static_cast<uint32_t>(outs[s].size());
    out_.insert(out_.end(), outs[s].begin(), outs[s].end());
  }
  return true;
}

std::vector<int> MultiMatcher::match(std::string_view text) const {
  std::vector<int> result;
  if (!filter_) return result;
  std::vector<int> atoms;
  size_t s = 0;
  const uint16_t* delta = delta_.data();
  const unsigned shift = rowShift_;
  for (size_t pos = 0; pos < text.size(); ++pos) {
    uint16_t t = delta[(s << shift) + cls_[static_cast<unsigned char>(text[pos])]];
    s = t & (kOutputBit - 1);
    if (!(t & kOutputBit)) continue;
    for (uint32_t i = outStart_[s]; i < outStart_[s + 1]; ++i) {
      // The key ends at pos; confirm the whole atom from where its key started.
      const std::string& a = atoms_[static_cast<size_t>(out_[i])];
      size_t keyLen = std::min(a.size(), keyLen_);
      size_t start = pos + 1 - keyLen;
      if (text.size() - start >= a.size() && text.compare(start, a.size(), a) == 0) atoms.push_back(out_[i]);
    }
  }
  std::sort(atoms.begin(), atoms.end());
  atoms.erase(std::unique(atoms.begin(), atoms.end()), atoms.end());
  // Literal patterns matched already; the rest of the atoms feed FilteredRE2.
  auto firstLiteral = std::lower_bound(atoms.begin(), atoms.end(), static_cast<int>(filterAtoms_));
  for (auto it = firstLiteral; it != atoms.end(); ++it) {
    result.push_back(literalPattern_[static_cast<size_t>(*it) - filterAtoms_]);
  }
  atoms.erase(firstLiteral, atoms.end());
  if (regexCount_ > 0) {
    std::vector<int> ids;
    filter_->AllMatches(re2::StringPiece(text.data(), text.size()), atoms, &ids);
    for (int id : ids) result.push_back(filterPattern_[static_cast<size_t>(id)]);
  }
  return result;
}

}  // namespace sluice::bounce
