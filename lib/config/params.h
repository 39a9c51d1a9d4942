// params.h - the one table of every sluice.yaml key: its type, default, bounds and a one-line
// doc (Postfix's mail_params.h is the model). The loader (config.cc) refuses any key that is not
// in this table; the man page sluice.yaml(5) and `sluicectl config params` are generated from it,
// and a unit test fails when the shipped contrib/sluice.yaml or the loader drifts from it.
//
// Paths: "policyd.listen" for a key in a map; "rate_limits[].windows[].limit" for a key in an
// item of a list. A default of nullptr marks a key that must be given.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace sluice::config {

enum class ParamType {
  kString,
  kBool,
  kInt,
  kDuration,   // "10s"; bounds in milliseconds
  kSize,       // "64k"; bounds in bytes
  kRate,       // "50", "2.5/s", "30/m", "100/h"; bounds in events per second
  kEnum,       // one of `choices` ("a|b|c")
  kAction,     // a Postfix access(5) action
  kListen,     // HOST:PORT, [IPv6]:PORT or unix:/PATH
  kStringList,
  kCidrList,
  kList,       // a list of maps whose keys are "<path>[].<key>"
  kMap,        // a map whose keys are "<path>.<key>"
};

struct ParamSpec {
  const char* path;
  ParamType type;
  const char* defaultValue;  // as it is written in YAML; nullptr = required
  int64_t min;
  int64_t max;
  const char* choices;       // kEnum only
  const char* doc;
};

const std::vector<ParamSpec>& allParams();
// nullptr when the path is not a known key.
const ParamSpec* findParam(std::string_view path);
const char* paramTypeName(ParamType type);

}  // namespace sluice::config
