// cli_util.h - small helpers the sluicectl subcommands share: local time for listings, whether
// help was asked for, the one checked parser of numeric arguments, and option parsing.
#pragma once

#include <cstdint>
#include <ctime>
#include <iosfwd>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace sluice::ctl {

// "2026-12-01 22:30:46" (local time), with ".4" tenths when asked; "-" for no time.
inline std::string localTime(int64_t ms, bool tenths = false) {
  if (ms <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return tenths ? std::string(buf) + "." + std::to_string(ms % 1000 / 100) : std::string(buf);
}

inline bool hasFlag(const std::vector<std::string>& a, const char* f) {
  for (const auto& x : a) {
    if (x == f) return true;
  }
  return false;
}

// Whether the words after a command ask for its help: "help" as the first word, or --help / -h
// anywhere before "--". Every command answers it first, before it reads any file, so that help
// never needs a configuration.
bool wantsHelp(const std::vector<std::string>& a);
// The start of a command with subcommands: for --help its usage on out and 0; with no subcommand
// its usage on err and 2 (a usage error); else nullopt, and the command goes on.
std::optional<int> helpOrNoSubcommand(const std::vector<std::string>& a, std::string_view usage, std::ostream& out,
                                      std::ostream& err);

// Text from the command line, safe to print: control characters as \xNN.
std::string printableArg(std::string_view s);

// The one parser of numeric arguments: a whole number in [min, max], decimal digits only (no
// sign, no spaces, no trailing characters). The error names `what` (the option, e.g. "-n") and
// is meant for a usage error (exit status 2).
Result<uint64_t> parseNumberArg(std::string_view what, std::string_view text, uint64_t min = 0,
                                uint64_t max = std::numeric_limits<uint64_t>::max());

// Options a command takes; `alias` is another spelling ("-f" for "--follow").
struct OptSpec {
  std::string_view name;
  bool takesValue = false;
  std::string_view alias = {};
};

struct ParsedArgs {
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::string>> options;  // by OptSpec::name, in order
  bool has(std::string_view name) const { return get(name) != nullptr; }
  // The last value given to `name`, or nullptr.
  const std::string* get(std::string_view name) const {
    const std::string* found = nullptr;
    for (const auto& [n, v] : options) {
      if (n == name) found = &v;
    }
    return found;
  }
};

// Parses a[from...]: the options of `specs` (--opt VALUE or --opt=VALUE), "--" ending the
// options, every other word positional ("-" too). Returns "" or the usage error, naming the
// option: an unknown option, an option without its value, a value for a flag.
std::string parseArgs(const std::vector<std::string>& a, size_t from, const std::vector<OptSpec>& specs,
                      ParsedArgs* out);

}  // namespace sluice::ctl
