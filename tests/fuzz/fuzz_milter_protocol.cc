// fuzz_milter_protocol.cc - libFuzzer target for the built-in milter engine's protocol session
// (lib/milter/milter_protocol.h): any byte stream from an "MTA", fed in pieces of the sizes the
// first byte chooses, to a filter that uses every MilterCtx call. The session must end or go on
// without a crash, write only whole reply packets, and run the close callback exactly once per
// filter context (one per negotiation; 'K' starts a new one).
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "milter/milter_protocol.h"

namespace {
using namespace sluice::milter;

bool gOpen = false;  // a filter context is open: negotiated, not yet closed

MilterStatus fNegotiate(MilterCtx& ctx, uint32_t, uint32_t protocol, uint32_t* a, uint32_t* p) {
  if (gOpen) std::abort();  // the previous context was not closed
  gOpen = true;
  *a = proto::kAddHeaders | proto::kChangeHeaders | proto::kQuarantine | proto::kSetSymList;
  *p = protocol & (proto::kNrHeader | proto::kNrBody | proto::kNrEoh | proto::kSkip | proto::kHeaderLeadingSpace);
  ctx.setSymbolList(proto::kStageMail, "i {auth_authen}");
  return MilterStatus::kContinue;
}
MilterStatus fConnect(MilterCtx& ctx, const char*, const char*) { return ctx.symbol("j") ? MilterStatus::kContinue : MilterStatus::kNoReply; }
MilterStatus fHelo(MilterCtx&, const char*) { return MilterStatus::kContinue; }
MilterStatus fMail(MilterCtx& ctx, char** argv) {
  for (char** a = argv; *a; ++a) (void)std::strlen(*a);
  if (ctx.symbol("{auth_authen}") != nullptr && argv[1] != nullptr) {
    ctx.setReply("550", "5.7.1", "refused");
    return MilterStatus::kReject;
  }
  return MilterStatus::kContinue;
}
MilterStatus fRcpt(MilterCtx& ctx, char**) {
  ctx.setReply("451", "4.7.1", "later");
  return MilterStatus::kTempfail;
}
MilterStatus fHeader(MilterCtx& ctx, const char* n, const char* v) {
  ctx.insertHeader(0, n, v);  // refused outside end of message
  return MilterStatus::kNoReply;
}
MilterStatus fEoh(MilterCtx&) { return MilterStatus::kNoReply; }
MilterStatus fBody(MilterCtx&, const unsigned char* d, size_t n) { return n > 0 && d[0] == 's' ? MilterStatus::kSkip : MilterStatus::kNoReply; }
MilterStatus fEom(MilterCtx& ctx) {
  ctx.insertHeader(0, "DKIM-Signature", " v=1");
  ctx.changeHeader("X-A", 1, nullptr);
  ctx.addHeader("X-A", " b");
  ctx.quarantine("q");
  const char* i = ctx.symbol("i");
  return i && *i == 'r' ? MilterStatus::kReject : MilterStatus::kContinue;
}
MilterStatus fAbort(MilterCtx&) { return MilterStatus::kContinue; }
MilterStatus fClose(MilterCtx&) {
  if (!gOpen) std::abort();  // closed twice
  gOpen = false;
  return MilterStatus::kContinue;
}
const MilterCallbacks kCallbacks = {fNegotiate, fConnect, fHelo, fMail, fRcpt, fHeader, fEoh, fBody, fEom, fAbort, fClose};

void checkPackets(const std::string& out) {
  size_t i = 0;
  while (i < out.size()) {
    if (out.size() - i < 5) std::abort();
    uint32_t n;
    std::memcpy(&n, out.data() + i, 4);
    n = ntohl(n);
    if (n == 0 || out.size() - i - 4 < n) std::abort();
    i += 4 + n;
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t step = 1 + data[0] % 64;
  if (data[0] >= 192) step = size;  // sometimes all at once
  gOpen = false;
  {
    MilterSession s(kCallbacks);
    bool ok = true;
    for (size_t i = 1; i < size && ok; i += step) {
      ok = s.feed(reinterpret_cast<const char*>(data) + i, std::min(step, size - i));
      checkPackets(s.output());
      s.output().clear();
    }
    if (!ok && s.state() != MilterSession::SessionState::kClosed) std::abort();
  }
  if (gOpen) std::abort();  // the session ended without closing its filter context
  return 0;
}
