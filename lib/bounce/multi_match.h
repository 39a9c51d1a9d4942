// multi_match.h - all-patterns-at-once matching for the rules: a prefilter finds the required
// literal "atoms" of every pattern (RE2's FilteredRE2 computes them) in the text, then RE2 runs
// only the patterns whose atoms all occurred.
//
// Why not RE2::Set alone: with ~600 bounce patterns, many holding ".*" or "[^ ]+", its lazy DFA
// builds new states for nearly every new diagnostic text (state explosion): ~10 us for a
// 175-byte text. Why not an Aho-Corasick automaton over the atoms (the previous design): its
// table (~4,000 states x 58 byte classes) does not stay in cache between two messages, and every
// byte is a dependent load: ~10 ns a byte inside the parser. The prefilter here reads, at every
// position, the next 2, 3 and 4 bytes as keys (an atom's key is its first 4 bytes, or all of a
// shorter one), hashes each into one of 2^16 bits (8 KB a key length, L1-resident), and only
// where a bit is set finds the atoms of that hash (a rank count, O(1)) and compares them whole. The positions
// are independent, so the loop runs at the CPU's throughput, not its load latency; the ~1-2% of
// positions that hit a bit by chance cost a popcount. Patterns that are plain literals (most
// of them) are decided by the prefilter alone, without RE2; FilteredRE2 is not called at all
// when no regex atom occurred. Same results as RE2 (tests check).
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
  static constexpr size_t kMaxKey = 4;
  static constexpr unsigned kHashBits = 16;
  static constexpr size_t kWords = (size_t{1} << kHashBits) / 64;
  // The atoms whose key has one length: a bit per key hash; the atoms grouped by hash, in hash
  // order (atoms[start[g]] .. atoms[start[g+1]] for the g-th set bit); rank[w] = set bits
  // before word w, so a bit's group is found in O(1).
  struct KeyIndex {
    std::vector<uint64_t> bits;
    std::vector<uint32_t> rank;
    std::vector<uint32_t> start;
    std::vector<int32_t> atoms;
  };
  static uint32_t keyHash(uint32_t key) { return (key * 0x9E3779B1u) >> (32 - kHashBits); }
  void buildIndex();
  void confirm(const KeyIndex& ix, uint32_t h, std::string_view text, size_t pos, std::vector<int>& found) const;

  std::unique_ptr<re2::FilteredRE2> filter_;
  size_t patternCount_ = 0;
  KeyIndex index_[kMaxKey + 1];         // by key length; 2, 3 and 4 are used
  std::vector<std::string> atoms_;      // FilteredRE2 atoms, then the plain-literal patterns
  size_t filterAtoms_ = 0;              // atoms_[0, filterAtoms_) belong to FilteredRE2
  std::vector<int> literalPattern_;     // atoms_[filterAtoms_ + j] is pattern literalPattern_[j]
  std::vector<int> filterPattern_;      // FilteredRE2 id -> pattern index
  size_t regexCount_ = 0;
  bool unfiltered_ = false;             // some regex has no atom (FilteredRE2 always runs it)
};

}  // namespace sluice::bounce
