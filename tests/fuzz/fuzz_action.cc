// fuzz_action.cc - libFuzzer target for Postfix action parsing and template expansion.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "config/action.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto a = sluice::config::parseAction(text);
  if (a) {
    std::string out = sluice::config::expandAction(*a, {{"rule", text}, {"key", "k\r\n"}});
    for (char c : out) {
      if (c == '\n' || c == '\r') std::abort();  // an expanded action must stay one line
    }
  }
  return 0;
}
