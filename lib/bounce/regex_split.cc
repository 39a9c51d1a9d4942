// regex_split.cc - splitAlternatives(): a small recursive-descent reader of the RE2 subset in
// regex_split.h; each syntax element becomes its list of alternatives, a sequence their product.
#include "bounce/regex_split.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace sluice::bounce::detail {

namespace {

struct Piece {
  bool literal = false;
  std::string text;  // literal characters (lower-case), or RE2 source
};
using Seq = std::vector<Piece>;
using Alts = std::vector<Seq>;  // alternatives; {{}} is the empty string

bool isAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c; }

class Splitter {
 public:
  explicit Splitter(std::string_view p) : p_(p) {}

  bool run(Alts* out) { return alternation(0, out) && i_ == p_.size(); }

 private:
  bool at(char c) const { return i_ < p_.size() && p_[i_] == c; }

  bool alternation(size_t depth, Alts* out) {
    out->clear();
    for (;;) {
      Alts s;
      if (!sequence(depth, &s) || out->size() + s.size() > kMaxBranches) return false;
      out->insert(out->end(), s.begin(), s.end());
      if (!at('|')) return true;
      ++i_;
    }
  }

  bool sequence(size_t depth, Alts* out) {
    *out = Alts{Seq{}};
    while (i_ < p_.size() && !at('|') && !at(')')) {
      size_t start = i_;
      Alts item;
      if (!atom(depth, &item) || !quantifier(p_.substr(start, i_ - start), &item)) return false;
      if (out->size() * item.size() > kMaxBranches) return false;
      if (item.size() == 1) {  // most items (a character): appended in place, nothing copied
        for (Seq& a : *out) append(a, item[0]);
        continue;
      }
      Alts next;
      for (const Seq& a : *out) {
        for (const Seq& b : item) {
          Seq s = a;
          append(s, b);
          next.push_back(std::move(s));
        }
      }
      *out = std::move(next);
    }
    return true;
  }

  // Adjacent literal pieces merge into one: a sequence stays a few pieces long, not one piece a
  // character (toBranch() reads literal runs the same either way).
  static void append(Seq& s, const Seq& b) {
    for (const Piece& p : b) {
      if (p.literal && !s.empty() && s.back().literal) s.back().text += p.text;
      else s.push_back(p);
    }
  }

  static Alts opaque(std::string_view src) { return Alts{Seq{Piece{false, std::string(src)}}}; }
  static Alts literal(char c) { return Alts{Seq{Piece{true, std::string(1, lower(c))}}}; }

  bool atom(size_t depth, Alts* out) {
    char c = p_[i_];
    if (c == '(') {
      ++i_;
      if (p_.substr(i_, 2) == "?:") i_ += 2;
      else if (at('?')) return false;  // flags, named groups
      if (depth + 1 > kMaxDepth || !alternation(depth + 1, out) || !at(')')) return false;
      ++i_;
      return true;
    }
    if (c == '[') return charClass(out);
    if (c == '\\') return escape(out);
    if (c == '.' || c == '^' || c == '$') {
      *out = opaque(p_.substr(i_++, 1));
      return true;
    }
    if (c == '*' || c == '+' || c == '?' || c == '{' || c == ')' || c == '|') return false;
    *out = literal(c);
    ++i_;
    return true;
  }

  bool escape(Alts* out) {
    if (i_ + 1 >= p_.size()) return false;
    char c = p_[i_ + 1];
    size_t start = i_;
    if (!isAlnum(c)) {
      *out = literal(c);
      i_ += 2;
      return true;
    }
    i_ += 2;
    if (c == 'x' || c == 'p' || c == 'P') {
      if (at('{')) {
        size_t close = p_.find('}', i_);
        if (close == std::string_view::npos) return false;
        i_ = close + 1;
      } else {
        i_ += c == 'x' ? 2 : 1;
        if (i_ > p_.size()) return false;
      }
    } else if (std::string_view("dDwWsSbBAzntrfv").find(c) == std::string_view::npos) {
      return false;  // \Q...\E, \C, back-references: not read here
    }
    *out = opaque(p_.substr(start, i_ - start));
    return true;
  }

  // [...]: a few single characters expand to alternatives; ranges, negation, escapes for
  // classes (\d) and POSIX classes stay regex text.
  bool charClass(Alts* out) {
    size_t start = i_, j = i_ + 1;
    bool expandable = true;
    if (j < p_.size() && p_[j] == '^') expandable = false, ++j;
    std::set<char> chars;
    for (bool first = true; j < p_.size() && (first || p_[j] != ']'); first = false) {
      if (p_[j] == '\\' && j + 1 < p_.size()) {
        char e = p_[j + 1];
        size_t ctl = std::string_view("tnrfv").find(e);
        if (ctl != std::string_view::npos) chars.insert("\t\n\r\f\v"[ctl]);
        else if (isAlnum(e)) expandable = false;
        else chars.insert(e);
        j += 2;
      } else if (p_[j] == '[' && j + 1 < p_.size() && p_[j + 1] == ':') {
        size_t close = p_.find(":]", j + 2);
        if (close == std::string_view::npos) return false;
        expandable = false;
        j = close + 2;
      } else {
        if (p_[j] == '-' && !first && j + 1 < p_.size() && p_[j + 1] != ']') expandable = false;
        chars.insert(lower(p_[j]));
        ++j;
      }
    }
    if (j >= p_.size()) return false;
    i_ = j + 1;
    if (!expandable || chars.empty() || chars.size() > 8) {
      *out = opaque(p_.substr(start, i_ - start));
      return true;
    }
    out->clear();
    for (char c : chars) out->push_back(Seq{Piece{true, std::string(1, c)}});
    return true;
  }

  // After an atom with source src: '?' adds the empty alternative; '*', '+' and {n,m} turn the
  // atom into regex text. A trailing '?' (non-greedy) changes nothing for a yes/no match.
  bool quantifier(std::string_view src, Alts* item) {
    if (at('?')) {
      ++i_;
      if (at('?')) ++i_;
      item->push_back(Seq{});
      return true;
    }
    size_t start = i_;
    if (at('*') || at('+')) {
      ++i_;
    } else if (at('{')) {
      size_t close = p_.find('}', i_);
      if (close == std::string_view::npos) return false;
      std::string_view spec = p_.substr(i_ + 1, close - i_ - 1);
      if (spec.empty() || spec.find_first_not_of("0123456789,") != std::string_view::npos) return false;
      i_ = close + 1;
    } else {
      return true;
    }
    if (at('?')) ++i_;
    *item = opaque(std::string(src) + std::string(p_.substr(start, i_ - start)));
    return true;
  }

  std::string_view p_;
  size_t i_ = 0;
};

void appendEscaped(std::string& out, char c) {
  auto u = static_cast<unsigned char>(c);
  if (u < 0x20) {
    static const char kHex[] = "0123456789abcdef";
    out += "\\x";
    out.push_back(kHex[u >> 4]);
    out.push_back(kHex[u & 15]);
    return;
  }
  if (!isAlnum(c) && c != ' ' && u < 0x80) out.push_back('\\');
  out.push_back(c);
}

Branch toBranch(const Seq& s) {
  Branch b;
  std::vector<std::string> runs;
  std::string run;
  bool allLiteral = true;
  for (const Piece& p : s) {
    if (p.literal) {
      run += p.text;
      for (char c : p.text) appendEscaped(b.text, c);
      continue;
    }
    allLiteral = false;
    runs.push_back(std::move(run));
    run.clear();
    b.text += p.text;
  }
  runs.push_back(std::move(run));
  if (allLiteral && runs[0].size() >= 2) {
    b.literal = true;
    b.text = runs[0];
    return b;
  }
  bool anchored = !s.empty() && !s[0].literal && (s[0].text == "^" || s[0].text == "\\A");
  if (anchored && runs.size() > 1 && !runs[1].empty()) {
    b.prefix = runs[1];  // "^abc...": the run right after the anchor (runs[0] is empty)
    return b;
  }
  std::string longest;
  for (const std::string& r : runs) {
    if (r.size() > longest.size()) longest = r;
    if (r.size() >= 3 && std::find(b.required.begin(), b.required.end(), r) == b.required.end()) b.required.push_back(r);
  }
  if (b.required.empty() && longest.size() >= 2) b.required.push_back(longest);
  return b;  // no literal to filter on at all: runs on every text
}

}  // namespace

std::vector<Branch> splitAlternatives(std::string_view pattern) {
  Alts alts;
  if (!Splitter(pattern).run(&alts)) return {Branch{false, std::string(pattern), "", {}}};
  std::vector<Branch> out;
  std::set<std::pair<bool, std::string>> seen;
  for (const Seq& s : alts) {
    Branch b = toBranch(s);
    if (seen.emplace(b.literal, b.text).second) out.push_back(std::move(b));
  }
  return out;
}

}  // namespace sluice::bounce::detail
