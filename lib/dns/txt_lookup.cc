// txt_lookup.cc - see txt_lookup.h.
#include "dns/txt_lookup.h"

#include <poll.h>
#include <unbound.h>

#include <chrono>
#include <memory>

namespace sluice::dns {
namespace {

constexpr int kTypeTxt = 16;
constexpr int kClassIn = 1;

struct CtxFree {
  void operator()(ub_ctx* c) const { ub_ctx_delete(c); }
};

struct Pending {
  bool done = false;
  TxtAnswer answer;
};

// RDATA of a TXT record: one or more <length><bytes> strings.
std::string joinStrings(const char* data, int len) {
  std::string out;
  int i = 0;
  while (i < len) {
    int n = static_cast<unsigned char>(data[i]);
    ++i;
    if (n > len - i) n = len - i;
    out.append(data + i, static_cast<size_t>(n));
    i += n;
  }
  return out;
}

void onResult(void* arg, int err, ub_result* result) {
  auto* p = static_cast<Pending*>(arg);
  p->done = true;
  if (err != 0) {
    p->answer.status = TxtAnswer::Status::kFailure;
    p->answer.error = ub_strerror(err);
    return;
  }
  std::unique_ptr<ub_result, void (*)(ub_result*)> r(result, ub_resolve_free);
  if (r->rcode == 3) {
    p->answer.status = TxtAnswer::Status::kNxDomain;
  } else if (r->rcode != 0) {
    p->answer.status = TxtAnswer::Status::kFailure;
    p->answer.error = r->rcode == 2 ? "SERVFAIL" : r->rcode == 5 ? "REFUSED" : "rcode " + std::to_string(r->rcode);
  } else if (!r->havedata) {
    p->answer.status = TxtAnswer::Status::kNoData;
  } else {
    p->answer.status = TxtAnswer::Status::kOk;
    for (int i = 0; r->data[i] != nullptr; ++i) p->answer.records.push_back(joinStrings(r->data[i], r->len[i]));
  }
}

}  // namespace

TxtAnswer lookupTxt(const std::string& name, const ResolverOptions& options) {
  TxtAnswer fail;
  std::unique_ptr<ub_ctx, CtxFree> ctx(ub_ctx_create());
  if (!ctx) {
    fail.error = "cannot create a libunbound context";
    return fail;
  }
  int rc = 0;
  if (options.servers.empty()) {
    rc = ub_ctx_resolvconf(ctx.get(), nullptr);
  } else {
    // A forwarder on loopback (a test's unbound, a local cache) must be allowed.
    ub_ctx_set_option(ctx.get(), "do-not-query-localhost:", "no");
    for (const auto& s : options.servers) {
      if ((rc = ub_ctx_set_fwd(ctx.get(), s.c_str())) != 0) break;
    }
  }
  if (rc != 0) {
    fail.error = std::string("resolver set-up: ") + ub_strerror(rc);
    return fail;
  }
  ub_ctx_async(ctx.get(), 1);
  Pending p;
  int id = 0;
  if ((rc = ub_resolve_async(ctx.get(), name.c_str(), kTypeTxt, kClassIn, &p, onResult, &id)) != 0) {
    fail.error = std::string("query: ") + ub_strerror(rc);
    return fail;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options.timeoutMs);
  while (!p.done) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      ub_cancel(ctx.get(), id);
      fail.error = "timed out after " + std::to_string(options.timeoutMs) + " ms";
      return fail;
    }
    pollfd pf{ub_fd(ctx.get()), POLLIN, 0};
    if (::poll(&pf, 1, static_cast<int>(left)) > 0) ub_process(ctx.get());
  }
  return p.answer;
}

}  // namespace sluice::dns
