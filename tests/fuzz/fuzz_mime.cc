// fuzz_mime.cc - libFuzzer target for lib/mime: parse() with small limits, a walk over every
// part, field groups of each body, mbox splitting and RFC 2047 decoding. Checks the bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "mime/mime.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  sluice::mime::Limits l;
  l.maxBytes = 1 << 20;
  l.maxDepth = 8;
  l.maxParts = 64;
  auto m = sluice::mime::parse(in, l);
  if (m->partCount() > l.maxParts + 1 || m->normalized().size() > l.maxBytes) std::abort();
  size_t parts = 0;
  sluice::mime::walk(m->root(), [&](const sluice::mime::Part& p, size_t depth) {
    ++parts;
    if (depth > l.maxDepth) std::abort();
    (void)sluice::mime::parseFieldGroups(p.body.substr(0, 4096), l);
  });
  for (std::string_view msg : sluice::mime::splitMbox(in)) (void)msg.size();
  (void)sluice::mime::decodeWords(in.substr(0, 2048));
  (void)sluice::mime::param(in.substr(0, 512), "boundary");
  return parts > 0 ? 0 : 0;
}
