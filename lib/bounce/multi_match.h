// multi_match.h - all-patterns-at-once matching for the rules: a hand-built Aho-Corasick
// automaton over the required literal "atoms" of every pattern (RE2's FilteredRE2 computes
// them), then RE2 runs only the patterns whose atoms all occurred.
//
// Why not RE2::Set alone: with ~600 bounce patterns, many holding ".*" or "[^ ]+", its lazy DFA
// builds new states for nearly every new diagnostic text (state explosion): ~10 us for a
// 175-byte text. The automaton is linear in the text with one table lookup per byte, and the
// patterns that survive the prefilter are one or two. Patterns that are plain literals (most of
// them) are matched by the automaton alone, without RE2. Same results as RE2 (tests check).
// Immutable after build(); match() may be called from many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace re2 {
class FilteredRE2;
}  // namespace re2

namespace sluice::bounce {

class MultiMatcher {
 public:
  MultiMatcher();
  ~MultiMatcher();
  MultiMatcher(const MultiMatcher&) = delete;
  MultiMatcher& operator=(const MultiMatcher&) = delete;

  // Patterns: RE2 syntax, Latin-1, case-insensitive. Error names the pattern's index.
  Status build(const std::vector<std::string>& patterns);
  // Indices of every pattern that matches somewhere in text (text must be lower-case ASCII
  // letters where it matters: atoms are lower-case).
  std::vector<int> match(std::string_view text) const;
  size_t size() const { return patternCount_; }

 private:
  std::unique_ptr<re2::FilteredRE2> filter_;
  size_t patternCount_ = 0;
  // The automaton runs over "keys": the first keyLen_ bytes of each atom (10, shorter when the
  // trie would exceed kMaxStates), with all bytes >= 0x80 in one class (keeps the table small
  // enough for the cache); a key hit is confirmed by comparing the whole atom at that position.
  // delta_[(state << rowShift_) + cls_[byte]] is the next state, kOutputBit set when outputs end
  // there; outStart_[s] .. outStart_[s+1] index out_, the atoms whose key ends at state s
  // (fail-link outputs merged in). States are numbered in BFS order (shallow states first).
  bool buildAutomaton(size_t keyLen);
  static constexpr size_t kMaxStates = 1u << 15;
  static constexpr uint16_t kOutputBit = 0x8000;
  size_t keyLen_ = 10;
  uint8_t cls_[256] = {};
  unsigned rowShift_ = 0;
  std::vector<uint16_t> delta_;
  std::vector<uint32_t> outStart_;
  std::vector<int32_t> out_;
  std::vector<std::string> atoms_;      // FilteredRE2 atoms, then the plain-literal patterns
  size_t filterAtoms_ = 0;              // atoms_[0, filterAtoms_) belong to FilteredRE2
  std::vector<int> literalPattern_;     // atoms_[filterAtoms_ + j] is pattern literalPattern_[j]
  std::vector<int> filterPattern_;      // FilteredRE2 id -> pattern index
  size_t regexCount_ = 0;
};

}  // namespace sluice::bounce
