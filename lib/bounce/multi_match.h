// multi_match.h - all-patterns-at-once matching for the rules. Each pattern is split into its
// alternatives (regex_split.h): plain literals, and smaller regexes each with the literals it
// requires. A prefilter finds every such literal in the text; a literal branch decides its
// pattern at once, a regex branch runs in RE2 only when all its required literals occurred.
//
// Why not RE2::Set alone: with ~600 bounce patterns, many holding ".*" or "[^ ]+", its lazy DFA
// builds new states for nearly every new diagnostic text (state explosion): ~10 us for a
// 175-byte text. Why not FilteredRE2 (the previous design): its prefilter tree costs ~0.4 us a
// call even when nothing matches, and it runs a whole pattern ("user (?:[^ ]+ was not
// found|...|unknown)") whenever one of its atoms ("user ") occurs. Why not an Aho-Corasick
// automaton over the literals: its table (~4,000 states x 58 byte classes) does not stay in cache
// between two messages, and every byte is a dependent load: ~10 ns a byte inside the parser.
// Why not Hyperscan (Debian's libhyperscan-dev, not tried): a second regex engine whose dialect
// is PCRE's, not RE2's (each rule would have to mean the same in both, and RE2 still confirms
// what needs a position), that runs only on CPUs with SSSE3, and whose start-of-match mode
// costs extra; this prefilter over RE2 meets the speed target without it (bench/README.md).
// The prefilter here indexes each literal of 4 bytes or more by one 4-byte substring, its key:
// the one fewest other literals share, made of the rarest bytes (so a key seldom occurs in a
// text without its literal). At every position it hashes the next 4 bytes into one of 2^16 bits
// (8 KB, L1-resident) and only where a bit is set finds the literals of that hash (a rank count,
// O(1)) and compares them whole around the key. The bit tests are branch-free (a hit's position
// is kept in a small buffer, confirmed after each chunk of the text): a branch per position
// would be mispredicted at every hit, and about one position in 14 hits. When every such
// literal is 5 (7) bytes or more - the command rules - each is indexed by 2 (4) consecutive
// keys and only every 2nd (4th) position is probed: an occurrence covers exactly one of them. A regex branch's literals shorter than 4 bytes
// are looked for (string find) only once its longer ones occurred; a 3-byte literal with no
// longer one beside it gets a second, 3-byte key probe (none in the shipped rules). The
// positions are independent, so the loop runs at the CPU's throughput, not its load latency.
// build() checks every pattern's syntax (RE2 parses it) but compiles no regex: a regex branch is
// compiled the first time a text holds its required literals (once, whichever thread gets there
// first), so loading ~700 patterns costs a few ms, not the ~40 ms of compiling them all. A branch
// that parses but does not compile (RE2's memory budget) is replaced by its whole pattern; one
// that still fails matches nothing and is logged.
// Same results as RE2 on the whole patterns (tests check). Immutable after build() but for the
// lazily compiled branches; match() may be called from many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace sluice::bounce {

class MultiMatcher {
 public:
  MultiMatcher();
  ~MultiMatcher();
  MultiMatcher(const MultiMatcher&) = delete;
  MultiMatcher& operator=(const MultiMatcher&) = delete;

  // Patterns: RE2 syntax, Latin-1, case-insensitive. Error names the pattern's index (also in
  // *bad when given).
  Status build(const std::vector<std::string>& patterns, size_t* bad = nullptr);
  // Indices of every pattern that matches somewhere in text, ascending (text must be lower-case
  // ASCII letters where it matters: the literals are lower-case).
  std::vector<int> match(std::string_view text) const;
  size_t size() const { return patternCount_; }

 private:
  // The prefilter's index of one key length (3 or 4 bytes): a bit per key hash; the atoms grouped
  // by hash, in hash order (entries[start[g]] .. entries[start[g+1]] for the g-th set bit);
  // rank[w] = set bits before word w, so a bit's group is found in O(1).
  static constexpr unsigned kHashBits = 16;
  static constexpr size_t kWords = (size_t{1} << kHashBits) / 64;
  struct Entry {
    uint32_t key;     // the key's bytes (little-endian)
    int32_t atom;
    uint32_t offset;  // of the key in the atom
    uint32_t size;    // of the atom
    uint32_t bytes;   // where the atom's bytes start in KeyIndex::pool
  };
  struct KeyIndex {
    std::vector<uint64_t> bits;
    std::vector<uint32_t> rank;
    std::vector<uint32_t> start;
    std::vector<Entry> entries;
    std::string pool;  // the atoms' bytes, in entries' order (one cache-friendly block)
  };
  static uint32_t keyHash(uint32_t key) { return (key * 0x9E3779B1u) >> (32 - kHashBits); }
  void buildIndex();
  void confirm(const KeyIndex& ix, uint32_t h, uint32_t key, std::string_view text, size_t pos,
               std::vector<int>& found) const;

  // A literal's meaning: its pattern matches (regex < 0), or regex branch `regex` must run.
  struct Target {
    int32_t pattern;
    int32_t regex;
  };
  struct Regex {
    int32_t pattern;
    uint32_t required;   // how many distinct literals of the prefilter it requires (all of them)
    std::string prefix;  // or: the literal the text must start with
    std::string text;    // the branch's RE2 source, compiled when a text first needs it
    std::vector<std::string> alsoRequired;  // short literals, checked once the others occurred
  };
  // A regex branch compiled on first use (build() only parses): most never run for a given
  // message, and a short-lived process (the MTA's pipe to `sluicectl bounce receive`) parses one.
  struct Lazy {
    std::once_flag once;
    std::unique_ptr<re2::RE2> re;
  };
  const re2::RE2& compiled(int32_t id) const;
  size_t patternCount_ = 0;
  KeyIndex key4_;                       // atoms of 4 bytes or more, by their rarest 4 bytes
  size_t step_ = 1;                     // key4_ is probed at every step_-th position (1, 2, 4)
  KeyIndex key3_;                       // atoms of 3 bytes (whole); shorter ones by shortKeys_
  std::vector<int32_t> short_;          // atoms of 1 or 2 bytes (searched for one by one)
  std::vector<std::string> atoms_;      // the distinct literals
  std::vector<uint32_t> targetStart_;   // targets_[targetStart_[a] .. targetStart_[a+1]] of atom a
  std::vector<Target> targets_;
  std::vector<Regex> regexes_;          // regex branches; those of one pattern are adjacent
  std::vector<std::string> patterns_;   // the whole patterns (a branch RE2 cannot compile falls back)
  std::unique_ptr<Lazy[]> lazy_;        // one per regexes_ entry
  std::vector<int32_t> anchored_;       // regex branches anchored at the text's start
  std::vector<int32_t> always_;         // regex branches with nothing to filter on
};

}  // namespace sluice::bounce
