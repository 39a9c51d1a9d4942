// cli_util.h - small helpers the sluicectl subcommands share: local time for listings, and
// flag lookup in an argument list.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <vector>

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

}  // namespace sluice::ctl
