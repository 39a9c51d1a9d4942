// fuzz_smtp_command.cc - libFuzzer target for sluice-relayd's command-line parsing: verbs,
// MAIL/RCPT paths with ESMTP parameters (with and without SMTPUTF8), xtext. Any input must parse
// or be refused with a message, within bounded time; a parsed path must round-trip its limits.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "smtp/smtp_parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string line(reinterpret_cast<const char*>(data), size);
  auto cmd = sluice::smtp::parseCommand(line);
  for (bool utf8 : {false, true}) {
    auto m = sluice::smtp::parseMailArg(cmd.arg, utf8);
    auto r = sluice::smtp::parseRcptArg(cmd.arg, utf8);
    for (const auto* p : {&m, &r}) {
      if (!*p) continue;
      const auto& a = (*p)->address;
      if (!a.null() && (a.local.size() > sluice::smtp::kMaxLocalPart || a.domain.size() > sluice::smtp::kMaxDomain)) {
        std::abort();  // a limit the parser promises
      }
      for (const auto& prm : (*p)->params) {
        auto x = sluice::smtp::decodeXtext(prm.value);
        if (x && sluice::smtp::decodeXtext(sluice::smtp::encodeXtext(*x)) != x) std::abort();
      }
    }
  }
  return 0;
}
