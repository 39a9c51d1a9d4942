// fuzz_policy_request.cc - libFuzzer target for the policy protocol codec: framing of a byte
// stream into requests (as a connection sees it, in arbitrary chunks) and parsing each request.
// Invariants checked: no crash, framing offsets stay inside the buffer, a parsed request's
// values point into the buffer.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "decision/policy_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // Feed the stream in chunks whose sizes come from the first byte, as a socket would.
  size_t chunk = size == 0 ? 1 : (data[0] % 64) + 1;
  std::string buf;
  size_t scan = 0;
  for (size_t off = 0; off < input.size(); off += chunk) {
    buf.append(input.substr(off, chunk));
    while (true) {
      size_t blockEnd = 0;
      size_t end = sluice::decision::findRequestEnd(buf, &scan, &blockEnd);
      if (end == std::string::npos) break;
      if (end > buf.size() || blockEnd > end) std::abort();
      sluice::decision::PolicyRequest req;
      std::string_view block(buf.data(), blockEnd);
      if (sluice::decision::parsePolicyRequest(block, &req)) {
        std::string_view s = req.get(sluice::decision::Attr::kSender);
        if (!s.empty() && (s.data() < block.data() || s.data() + s.size() > block.data() + block.size())) std::abort();
      }
      buf.erase(0, end);
    }
    if (buf.size() > 1 << 20) break;
  }
  (void)sluice::decision::parsePolicyReply(input);
  return 0;
}
