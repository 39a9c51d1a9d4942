// cli_util.cc - see cli_util.h.
#include "cli_util.h"

#include <algorithm>
#include <cstdio>
#include <ostream>
#include <optional>

namespace sluice::ctl {

bool wantsHelp(const std::vector<std::string>& a) {
  if (!a.empty() && a[0] == "help") return true;
  for (const auto& w : a) {
    if (w == "--") return false;
    if (w == "--help" || w == "-h") return true;
  }
  return false;
}

std::optional<int> helpOrNoSubcommand(const std::vector<std::string>& a, std::string_view usage, std::ostream& out,
                                      std::ostream& err) {
  if (wantsHelp(a)) {
    out << usage;
    return 0;
  }
  if (a.empty()) {
    err << usage;
    return 2;
  }
  return std::nullopt;
}

std::string printableArg(std::string_view s) {
  std::string o;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) {
      o += c;
      continue;
    }
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", u);
    o += buf;
  }
  return o;
}

Result<uint64_t> parseNumberArg(std::string_view what, std::string_view text, uint64_t min, uint64_t max) {
  std::string range = max == std::numeric_limits<uint64_t>::max()
                          ? (min == 0 ? "0 or more" : std::to_string(min) + " or more")
                          : "from " + std::to_string(min) + " to " + std::to_string(max);
  std::string head = "invalid " + std::string(what) + " \"" + printableArg(text) + "\": ";
  bool digits = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) return makeError(head + "not a whole number (want " + range + ")");
  uint64_t v = 0;
  for (char c : text) {
    auto d = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return makeError(head + "too large (want " + range + ")");
    v = v * 10 + d;
  }
  if (v > max) return makeError(head + "too large (want " + range + ")");
  if (v < min) return makeError(head + "too small (want " + range + ")");
  return v;
}

std::string parseArgs(const std::vector<std::string>& a, size_t from, const std::vector<OptSpec>& specs,
                      ParsedArgs* out) {
  bool optionsEnded = false;
  for (size_t i = from; i < a.size(); ++i) {
    const std::string& w = a[i];
    if (optionsEnded || w.size() < 2 || w[0] != '-') {
      out->positional.push_back(w);
      continue;
    }
    if (w == "--") {
      optionsEnded = true;
      continue;
    }
    size_t eq = w.find('=');
    std::string name = w.substr(0, eq);
    auto spec = std::find_if(specs.begin(), specs.end(),
                             [&](const OptSpec& s) { return s.name == name || (!s.alias.empty() && s.alias == name); });
    if (spec == specs.end()) return "unknown option " + printableArg(name);
    std::optional<std::string> value;
    if (eq != std::string::npos) value = w.substr(eq + 1);
    if (spec->takesValue && !value) {
      if (i + 1 >= a.size()) return "option " + name + " needs a value";
      value = a[++i];
    } else if (!spec->takesValue && value) {
      return "option " + name + " takes no value";
    }
    out->options.emplace_back(std::string(spec->name), value.value_or(""));
  }
  return "";
}

}  // namespace sluice::ctl
