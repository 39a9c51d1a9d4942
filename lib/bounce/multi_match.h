// multi_match.h - all-patterns-at-once matching for the rules: a hand-built Aho-Corasick
// automaton over the required literal "atoms" of every pattern (RE2's FilteredRE2 computes
// them), then RE2 runs only the patterns whose atoms all occurred.
//
// Why not RE2::Set alone: with ~600 bounce patterns, many holding ".*" or "[^ ]+", its lazy DFA
// builds new states for nearly every new diagnostic text (state explosion): ~10 us for a
// 175-byte text. The automaton is linear in the text with one table lookup per byte, and the
// patterns that survive the prefilter are one or two. Same results as RE2::Set (tests check).
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
  // The automaton: delta_[state * classes_ + cls_[byte]] is the next state; outStart_[s] ..
  // outStart_[s+1] indexes out_, the atoms ending at state s (fail-link outputs merged in).
  uint8_t cls_[256] = {};
  uint32_t classes_ = 1;
  std::vector<int32_t> delta_;
  std::vector<uint32_t> outStart_;
  std::vector<int32_t> out_;
};

}  // namespace sluice::bounce
