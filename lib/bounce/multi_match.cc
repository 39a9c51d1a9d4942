// multi_match.cc - MultiMatcher: FilteredRE2 atoms in a dense Aho-Corasick DFA (see the header).
#include "bounce/multi_match.h"

#include <re2/filtered_re2.h>
#include <re2/re2.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <deque>

namespace sluice::bounce {

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
  for (size_t i = 0; i < patterns.size(); ++i) {
    int id = 0;
    if (filter_->Add(patterns[i], o, &id) != re2::RE2::NoError) {
      return makeError("pattern " + std::to_string(i) + " does not compile: " + patterns[i]);
    }
  }
  std::vector<std::string> atoms;
  filter_->Compile(&atoms);
  // Byte classes: every byte used by an atom gets its own class, all others share class 0.
  for (auto& a : atoms) {
    for (char& c : a) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (unsigned char c : a) {
      if (cls_[c] == 0) {
        if (classes_ == 255) return makeError("too many distinct bytes in rule atoms");
        cls_[c] = static_cast<uint8_t>(classes_++);
      }
    }
  }
  // Trie.
  std::vector<std::vector<int32_t>> next(1, std::vector<int32_t>(classes_, -1));
  std::vector<std::vector<int32_t>> outs(1);
  for (size_t i = 0; i < atoms.size(); ++i) {
    int32_t s = 0;
    for (unsigned char c : atoms[i]) {
      int32_t& t = next[static_cast<size_t>(s)][cls_[c]];
      if (t < 0) {
        t = static_cast<int32_t>(next.size());
        next.emplace_back(classes_, -1);
        outs.emplace_back();
      }
      s = t;
    }
    outs[static_cast<size_t>(s)].push_back(static_cast<int32_t>(i));
  }
  // BFS: failure links, full transition table, merged outputs.
  size_t n = next.size();
  std::vector<int32_t> fail(n, 0);
  delta_.assign(n * classes_, 0);
  std::deque<int32_t> q;
  for (uint32_t c = 0; c < classes_; ++c) {
    int32_t t = next[0][c];
    delta_[c] = t < 0 ? 0 : t;
    if (t > 0) q.push_back(t);
  }
  while (!q.empty()) {
    int32_t s = q.front();
    q.pop_front();
    auto su = static_cast<size_t>(s);
    auto& own = outs[su];
    const auto& fo = outs[static_cast<size_t>(fail[su])];
    own.insert(own.end(), fo.begin(), fo.end());
    for (uint32_t c = 0; c < classes_; ++c) {
      int32_t t = next[su][c];
      int32_t viaFail = delta_[static_cast<size_t>(fail[su]) * classes_ + c];
      if (t < 0) {
        delta_[su * classes_ + c] = viaFail;
      } else {
        delta_[su * classes_ + c] = t;
        fail[static_cast<size_t>(t)] = viaFail;
        q.push_back(t);
      }
    }
  }
  // Mark transitions into states that have outputs with the sign bit, so that the scan loop
  // touches outStart_ only where an atom ends.
  for (auto& t : delta_) {
    if (!outs[static_cast<size_t>(t)].empty()) t = static_cast<int32_t>(static_cast<uint32_t>(t) | 0x80000000u);
  }
  outStart_.assign(n + 1, 0);
  for (size_t s = 0; s < n; ++s) {
    outStart_[s + 1] = outStart_[s] + static_cast<uint32_t>(outs[s].size());
    out_.insert(out_.end(), outs[s].begin(), outs[s].end());
  }
  return okStatus();
}

std::vector<int> MultiMatcher::match(std::string_view text) const {
  std::vector<int> result;
  if (!filter_) return result;
  std::vector<int> atoms;
  size_t s = 0;
  const int32_t* delta = delta_.data();
  const size_t k = classes_;
  for (unsigned char c : text) {
    auto t = static_cast<uint32_t>(delta[s * k + cls_[c]]);
    s = t & 0x7fffffffu;
    if (t & 0x80000000u) {
      for (uint32_t i = outStart_[s]; i < outStart_[s + 1]; ++i) atoms.push_back(out_[i]);
    }
  }
  std::sort(atoms.begin(), atoms.end());
  atoms.erase(std::unique(atoms.begin(), atoms.end()), atoms.end());
  filter_->AllMatches(re2::StringPiece(text.data(), text.size()), atoms, &result);
  return result;
}

}  // namespace sluice::bounce
