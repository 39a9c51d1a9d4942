// fuzz_smtp_address.cc - libFuzzer target for the RFC 5321/6531 mailbox parser alone (quoted local
// parts, address literals, UTF-8). Accepted addresses must re-parse to themselves.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "smtp/smtp_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string s(reinterpret_cast<const char*>(data), size);
  for (bool utf8 : {false, true}) {
    auto a = sluice::smtp::parseMailbox(s, utf8);
    if (!a) continue;
    auto again = sluice::smtp::parseMailbox(a->str(), utf8);
    if (!again || again->str() != a->str()) std::abort();
  }
  return 0;
}
