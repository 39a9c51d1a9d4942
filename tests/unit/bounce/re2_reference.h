// re2_reference.h - the reference the bounce matchers' tests compare with: each pattern compiled
// alone by RE2 as the rules are matched (Latin-1, case-insensitive, unanchored).
#pragma once

#include <re2/re2.h>

#include <memory>
#include <string>
#include <vector>

namespace sluice::bounce::testing {

inline std::vector<std::unique_ptr<re2::RE2>> referenceRegexes(const std::vector<std::string>& pats) {
  re2::RE2::Options o;
  o.set_encoding(re2::RE2::Options::EncodingLatin1);
  o.set_case_sensitive(false);
  std::vector<std::unique_ptr<re2::RE2>> res;
  for (const auto& p : pats) res.push_back(std::make_unique<re2::RE2>(p, o));
  return res;
}

}  // namespace sluice::bounce::testing
