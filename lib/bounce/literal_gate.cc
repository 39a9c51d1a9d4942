// literal_gate.cc - LiteralGate (literal_gate.h): one literal a branch of the group's patterns,
// looked for around the occurrences of its rarest byte.
#include "bounce/literal_gate.h"

#include <cstring>

#include "bounce/regex_split.h"

namespace sluice::bounce::detail {

namespace {

// The byte RE2 (Latin-1, case-insensitive) also matches for c: its other case, or c itself.
unsigned char otherCase(unsigned char c) {
  bool ascii = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  bool latin1 = c >= 0xc0 && c != 0xd7 && c != 0xdf && c != 0xf7 && c != 0xff;
  return ascii || latin1 ? static_cast<unsigned char>(c ^ 0x20) : c;
}

bool isSpace(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Whether literal occurs in t with its byte `anchor` at h: a byte in either case where it has
// one, a run of k spaces as a run of k or more whitespace bytes (what whitespace collapsing
// makes one space; see mayMatch()).
bool occursAt(std::string_view t, size_t h, const std::string& literal, const std::string& other, size_t anchor) {
  const auto* p = reinterpret_cast<const unsigned char*>(t.data());
  auto same = [&](unsigned char a, size_t i) {
    return a == static_cast<unsigned char>(literal[i]) || a == static_cast<unsigned char>(other[i]);
  };
  size_t j = h + 1;  // forwards from the anchor
  for (size_t i = anchor + 1; i < literal.size();) {
    if (literal[i] != ' ') {
      if (j >= t.size() || !same(p[j], i)) return false;
      ++i, ++j;
      continue;
    }
    size_t k = 0, run = 0;
    while (i < literal.size() && literal[i] == ' ') ++i, ++k;
    while (j < t.size() && isSpace(p[j])) ++j, ++run;
    if (run < k) return false;
  }
  j = h;  // backwards: j is one past the next byte to compare
  for (size_t i = anchor; i > 0;) {
    if (literal[i - 1] != ' ') {
      if (j == 0 || !same(p[j - 1], i - 1)) return false;
      --i, --j;
      continue;
    }
    size_t k = 0, run = 0;
    while (i > 0 && literal[i - 1] == ' ') --i, ++k;
    while (j > 0 && isSpace(p[j - 1])) --j, ++run;
    if (run < k) return false;
  }
  return true;
}

}  // namespace

double byteCommonness(unsigned char c) {
  if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c + 32);
  switch (c) {
    case ' ': return 7.5;
    case 'e': return 6.9;
    case 't': case 'a': case 'o': case 'i': case 'n': return 6.3;
    case 's': case 'r': case 'h': return 5.9;
    case 'l': case 'd': case 'c': case 'u': return 5.2;
    case 'm': case 'f': case 'p': case 'g': case 'w': case 'y': case '.': return 4.5;
    case 'b': case 'v': case 'k': case ':': case '@': case ',': return 3.5;
    default: return (c >= '0' && c <= '9') ? 4.0 : 2.0;
  }
}

void LiteralGate::build(const std::vector<std::string>& patterns, size_t maxPasses) {
  anchors_.clear();
  open_ = false;
  std::vector<std::vector<std::string>> branches;  // the candidate literals of each branch
  for (const std::string& p : patterns) {
    for (const Branch& br : splitAlternatives(p)) {
      std::vector<std::string> c = br.literal ? std::vector<std::string>{br.text} : br.required;
      if (!br.prefix.empty()) c.push_back(br.prefix);
      if (c.empty() || (c.size() == 1 && c[0].empty())) {
        open_ = true;  // a branch with no literal: any text may match
        return;
      }
      branches.push_back(std::move(c));
    }
  }
  // Each branch's rarest byte (a letter costs more: both its cases are searched for), first
  // alone, then again with a bonus for the bytes other branches chose: a shared byte is one
  // memchr pass for all of them.
  std::vector<int> chosen(256, 0);  // branches whose first pick is that byte
  auto pick = [&](const std::vector<std::string>& cands, bool share, const std::string** lit, size_t* at) {
    double bestCost = 0;
    *lit = nullptr;
    for (const std::string& c : cands) {
      for (size_t i = 0; i < c.size(); ++i) {
        auto b = static_cast<unsigned char>(c[i]);
        if (isSpace(b)) continue;  // not an anchor: collapsing changes whitespace
        double cost = byteCommonness(b) + (otherCase(b) != b ? 1.0 : 0.0) - (share && chosen[b] > 0 ? 1.5 : 0.0);
        if (!*lit || cost < bestCost) *lit = &c, *at = i, bestCost = cost;
      }
    }
  };
  std::vector<unsigned char> first;
  for (const auto& c : branches) {
    const std::string* lit;
    size_t at = 0;
    pick(c, false, &lit, &at);
    if (!lit) {  // whitespace only
      open_ = true;
      return;
    }
    first.push_back(static_cast<unsigned char>((*lit)[at]));
    ++chosen[first.back()];
  }
  size_t passes = 0;
  for (size_t k = 0; k < branches.size(); ++k) {
    const std::string* lit;
    size_t at = 0;
    --chosen[first[k]];  // a bonus for the other branches' picks, not its own
    pick(branches[k], true, &lit, &at);
    ++chosen[first[k]];
    auto b = static_cast<unsigned char>((*lit)[at]);
    Anchor* a = nullptr;
    for (Anchor& x : anchors_)
      if (x.byte == b) a = &x;
    if (!a) {
      a = &anchors_.emplace_back(Anchor{b, otherCase(b), {}});
      passes += a->other == b ? 1 : 2;
    }
    std::string other = *lit;
    for (char& c : other) c = static_cast<char>(otherCase(static_cast<unsigned char>(c)));
    a->needs.push_back(Need{*lit, std::move(other), at});
  }
  if (passes > maxPasses) {  // more work than the regex it would spare: stays open
    anchors_.clear();
    open_ = true;
  }
}

// A match in text, or in text with its whitespace runs collapsed to one space, contains a
// branch's literal, each space of it a whitespace run of the text: occursAt() accepts both.
bool LiteralGate::mayMatch(std::string_view text) const {
  if (open_) return true;
  const char* base = text.data();
  const size_t n = text.size();
  for (const Anchor& a : anchors_) {
    const unsigned char bytes[2] = {a.byte, a.other};
    for (size_t k = 0; k < (a.other == a.byte ? 1u : 2u); ++k) {  // the anchor in both cases
      for (size_t from = 0; from < n;) {
        const void* hit = std::memchr(base + from, bytes[k], n - from);
        if (!hit) break;
        size_t h = static_cast<size_t>(static_cast<const char*>(hit) - base);
        for (const Need& need : a.needs)
          if (occursAt(text, h, need.literal, need.other, need.anchor)) return true;
        from = h + 1;
      }
    }
  }
  return false;
}

}  // namespace sluice::bounce::detail
