// strings.h - small string helpers shared by every module: trimming, case folding, splitting,
// and the parsers for the human units used in the config ("10s", "1h", "64k", "10M").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

std::string_view trim(std::string_view s);
std::string toLower(std::string_view s);
void toLowerInPlace(std::string& s);
bool iequals(std::string_view a, std::string_view b);
bool startsWith(std::string_view s, std::string_view prefix);
bool endsWith(std::string_view s, std::string_view suffix);
bool istartsWith(std::string_view s, std::string_view prefix);
std::vector<std::string_view> split(std::string_view s, char sep);

// Unsigned decimal with no sign, no spaces, no overflow.
std::optional<uint64_t> parseUint(std::string_view s);

// "250ms", "10s", "5m", "1h", "2d", "1w"; a bare number means seconds. Result in milliseconds.
std::optional<int64_t> parseDurationMs(std::string_view s);
std::string formatDurationMs(int64_t ms);

// "512", "64k", "10M", "1G" (binary multiples; "kb"/"mb"/"gb" accepted too). Result in bytes.
std::optional<uint64_t> parseSize(std::string_view s);

// Glob match where '*' matches any run of characters (including none); case-insensitive.
bool globMatch(std::string_view pattern, std::string_view text);

}  // namespace sluice
