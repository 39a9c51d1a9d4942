// libmilter_glue.cc - the MilterCtx of an SMFICTX and the xxfi_* trampolines into
// filterCallbacks().
#include "libmilter_glue.h"

#include <arpa/inet.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include "base/log.h"
#include "milter_callbacks.h"

namespace sluice::milter {
namespace {

class LibmilterCtx final : public MilterCtx {
 public:
  explicit LibmilterCtx(SMFICTX* ctx) : ctx_(ctx) {}
  const char* symbol(std::string_view name) const override {
    std::string n(name);
    return smfi_getsymval(ctx_, n.data());
  }
  void* priv() const override { return smfi_getpriv(ctx_); }
  void setPriv(void* p) override { smfi_setpriv(ctx_, p); }
  bool setReply(const char* rcode, const char* xcode, const char* text) override {
    return smfi_setreply(ctx_, const_cast<char*>(rcode), const_cast<char*>(xcode), const_cast<char*>(text)) ==
           MI_SUCCESS;
  }
  bool insertHeader(int index, const char* name, const char* value) override {
    return smfi_insheader(ctx_, index, const_cast<char*>(name), const_cast<char*>(value)) == MI_SUCCESS;
  }
  bool changeHeader(const char* name, int index, const char* value) override {
    return smfi_chgheader(ctx_, const_cast<char*>(name), index, const_cast<char*>(value)) == MI_SUCCESS;
  }
  bool addHeader(const char* name, const char* value) override {
    return smfi_addheader(ctx_, const_cast<char*>(name), const_cast<char*>(value)) == MI_SUCCESS;
  }
  bool quarantine(const char* reason) override {
    return smfi_quarantine(ctx_, const_cast<char*>(reason)) == MI_SUCCESS;
  }
  bool setSymbolList(int stage, const char* macros) override {
    return smfi_setsymlist(ctx_, stage, const_cast<char*>(macros)) == MI_SUCCESS;
  }

 private:
  SMFICTX* ctx_;
};

sfsistat code(MilterStatus s) { return static_cast<sfsistat>(s); }

sfsistat xxNegotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                     unsigned long* pf0, unsigned long* pf1, unsigned long* pf2, unsigned long* pf3) {
  LibmilterCtx c(ctx);
  uint32_t a = 0, p = 0;
  MilterStatus st = filterCallbacks().negotiate(c, static_cast<uint32_t>(f0), static_cast<uint32_t>(f1), &a, &p);
  *pf0 = a;
  *pf1 = p;
  *pf2 = 0;
  *pf3 = 0;
  return code(st);
}

sfsistat xxConnect(SMFICTX* ctx, char* hostname, _SOCK_ADDR* addr) {
  LibmilterCtx c(ctx);
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr != nullptr && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6)) {
    const void* raw = addr->sa_family == AF_INET
                          ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(addr)->sin_addr)
                          : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(addr)->sin6_addr);
    if (::inet_ntop(addr->sa_family, raw, buf, sizeof buf) == nullptr) buf[0] = '\0';
  }
  return code(filterCallbacks().connect(c, hostname, buf));
}

sfsistat xxHelo(SMFICTX* ctx, char* helo) {
  LibmilterCtx c(ctx);
  return code(filterCallbacks().helo(c, helo));
}
sfsistat xxEnvFrom(SMFICTX* ctx, char** argv) {
  LibmilterCtx c(ctx);
  return code(filterCallbacks().envFrom(c, argv));
}
sfsistat xxEnvRcpt(SMFICTX* ctx, char** argv) {
  LibmilterCtx c(ctx);
  return code(filterCallbacks().envRcpt(c, argv));
}
sfsistat xxHeader(SMFICTX* ctx, char* name, char* value) {
  LibmilterCtx c(ctx);
  return code(filterCallbacks().header(c, name, value));
}
sfsistat xxEoh(SMFICTX* ctx) {
  LibmilterCtx c(ctx);
  return code(filterCallbacks().endOfHeaders(c));
}
sfsistat xxBody(SMFICTX* ctx, unsigned char* data, size_t len) {
  LibmilterCtx c(ctx);
  return code(filterCallbacks().body(c, data, len));
}
sfsistat xxEom(SMFICTX* ctx) {
  LibmilterCtx c(ctx);
  return code(filterCallbacks().endOfMessage(c));
}
sfsistat xxAbort(SMFICTX* ctx) {
  LibmilterCtx c(ctx);
  return code(filterCallbacks().abort(c));
}
sfsistat xxClose(SMFICTX* ctx) {
  LibmilterCtx c(ctx);
  return code(filterCallbacks().close(c));
}

}  // namespace

Status runLibmilter(const std::string& listen) {
  static struct smfiDesc desc = {};
  desc.xxfi_name = const_cast<char*>("sluice-milter");
  desc.xxfi_version = SMFI_VERSION;
  desc.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE;
  desc.xxfi_connect = xxConnect;
  desc.xxfi_helo = xxHelo;
  desc.xxfi_envfrom = xxEnvFrom;
  desc.xxfi_envrcpt = xxEnvRcpt;
  desc.xxfi_header = xxHeader;
  desc.xxfi_eoh = xxEoh;
  desc.xxfi_body = xxBody;
  desc.xxfi_eom = xxEom;
  desc.xxfi_abort = xxAbort;
  desc.xxfi_close = xxClose;
  desc.xxfi_negotiate = xxNegotiate;
  if (!currentState()) return makeError("runLibmilter: no state installed");
  if (Status s = prepareSocket(listen); !s) return s;
  if (smfi_setconn(const_cast<char*>(listen.c_str())) != MI_SUCCESS) {
    return makeError("milter.listen: libmilter refused \"" + listen + "\"");
  }
  if (smfi_register(desc) != MI_SUCCESS) return makeError("smfi_register failed");
  mode_t old = ::umask(0);  // the socket must be writable by the MTA's user; guard the directory
  int rc = smfi_opensocket(1);
  ::umask(old);
  if (rc != MI_SUCCESS) return makeError("cannot open milter socket " + listen);
  logListening(listen, "libmilter");
  if (smfi_main() != MI_SUCCESS) return makeError("smfi_main failed");
  return okStatus();
}

}  // namespace sluice::milter
