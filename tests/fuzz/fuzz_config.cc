// fuzz_config.cc - libFuzzer target for the YAML config loader (yaml-cpp + our validation):
// any input must give either a Config or an error message, never a crash or an exception.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  std::string yaml(reinterpret_cast<const char*>(data), size);
  try {
    auto cfg = sluice::config::loadConfigString(yaml, "fuzz.yaml");
    if (!cfg && cfg.message().empty()) std::abort();
  } catch (...) {
    std::abort();  // the loader must turn every failure into an error message
  }
  return 0;
}
