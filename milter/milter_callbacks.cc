// milter_callbacks.cc - libmilter callbacks: each turns the event into a MessageContext call and
// its Verdict into an SMFIS_* code. libmilter gives callbacks no user pointer, so the runtime is
// one file-local pointer, set once before smfi_main() and read-only afterwards.
#include "milter_callbacks.h"

#include <libmilter/mfapi.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <vector>

#include "base/log.h"
#include "base/strings.h"
#include "message_context.h"

namespace sluice::milter {
namespace {

const MilterRuntime* gRuntime = nullptr;

struct Connection {
  explicit Connection(const MilterRuntime& rt) : message(*rt.signing, *rt.identities) {}
  MessageContext message;
  bool leadingSpace = false;  // SMFIP_HDR_LEADSPC negotiated: header values keep their first byte
};

Connection* connection(SMFICTX* ctx) {
  auto* c = static_cast<Connection*>(smfi_getpriv(ctx));
  if (c == nullptr) {
    c = new Connection(*gRuntime);
    smfi_setpriv(ctx, c);
  }
  return c;
}

std::string escapePercent(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '%' ? std::string("%%") : std::string(1, c);
  return out;
}

sfsistat answer(SMFICTX* ctx, const Verdict& v) {
  switch (v.kind) {
    case Verdict::Kind::kContinue: return SMFIS_CONTINUE;
    case Verdict::Kind::kAccept: return SMFIS_ACCEPT;
    case Verdict::Kind::kReject:
    case Verdict::Kind::kTempfail: break;
  }
  if (!v.rcode.empty()) {
    std::string text = escapePercent(v.text);
    smfi_setreply(ctx, const_cast<char*>(v.rcode.c_str()), const_cast<char*>(v.xcode.c_str()), text.data());
  }
  return v.kind == Verdict::Kind::kReject ? SMFIS_REJECT : SMFIS_TEMPFAIL;
}

// The one catch-all of every callback.
template <class F>
sfsistat guarded(const char* where, F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    logError(std::string("milter ") + where + ": " + e.what() + "; answering tempfail");
  } catch (...) {
    logError(std::string("milter ") + where + ": unknown exception; answering tempfail");
  }
  return SMFIS_TEMPFAIL;
}

sfsistat onNegotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                     unsigned long* pf0, unsigned long* pf1, unsigned long* pf2, unsigned long* pf3) {
  return guarded("negotiate", [&] {
    if ((f0 & SMFIF_ADDHDRS) == 0) return SMFIS_REJECT;  // cannot sign without adding headers
    *pf0 = SMFIF_ADDHDRS | (f0 & SMFIF_SETSYMLIST);
    unsigned long want = SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NORCPT | SMFIP_NODATA | SMFIP_NOUNKNOWN |
                         SMFIP_HDR_LEADSPC;
    *pf1 = f1 & want;
    *pf2 = 0;
    *pf3 = 0;
    Connection* c = connection(ctx);
    c->leadingSpace = (*pf1 & SMFIP_HDR_LEADSPC) != 0;
    if (f0 & SMFIF_SETSYMLIST) smfi_setsymlist(ctx, SMFIM_ENVFROM, const_cast<char*>("{auth_authen}"));
    return SMFIS_CONTINUE;
  });
}

sfsistat onEnvFrom(SMFICTX* ctx, char** argv) {
  return guarded("MAIL FROM", [&] {
    const char* user = smfi_getsymval(ctx, const_cast<char*>("{auth_authen}"));
    std::string from = argv && argv[0] ? argv[0] : "";
    if (from.size() >= 2 && from.front() == '<' && from.back() == '>') from = from.substr(1, from.size() - 2);
    return answer(ctx, connection(ctx)->message.beginMessage(user ? user : "", from));
  });
}

sfsistat onHeader(SMFICTX* ctx, char* name, char* value) {
  return guarded("header", [&] {
    Connection* c = connection(ctx);
    std::string v = value ? value : "";
    if (!c->leadingSpace) v.insert(0, " ");  // the MTA dropped the usual space after the colon
    return answer(ctx, c->message.header(name ? name : "", v));
  });
}

sfsistat onEndOfHeaders(SMFICTX* ctx) {
  return guarded("end of headers", [&] { return answer(ctx, connection(ctx)->message.endOfHeaders()); });
}

sfsistat onBody(SMFICTX* ctx, unsigned char* data, size_t len) {
  return guarded("body", [&] {
    connection(ctx)->message.body(std::string_view(reinterpret_cast<const char*>(data), len));
    return SMFIS_CONTINUE;
  });
}

sfsistat onEndOfMessage(SMFICTX* ctx) {
  return guarded("end of message", [&] {
    Connection* c = connection(ctx);
    std::vector<std::string> fields;
    Verdict v = c->message.endOfMessage(&fields);
    if (v.kind != Verdict::Kind::kContinue) return answer(ctx, v);
    for (auto it = fields.rbegin(); it != fields.rend(); ++it) {  // index 0: spec order, top down
      std::string value = milterHeaderValue(*it, c->leadingSpace);
      if (smfi_insheader(ctx, 0, const_cast<char*>("DKIM-Signature"), value.data()) != MI_SUCCESS) {
        logError("smfi_insheader failed for <" + c->message.envelopeFrom() + ">; answering tempfail");
        return SMFIS_TEMPFAIL;
      }
    }
    if (!fields.empty()) {
      logInfo("signed message from <" + c->message.envelopeFrom() + "> user=" + c->message.authUser() +
              " signatures=" + std::to_string(fields.size()));
    }
    return SMFIS_CONTINUE;
  });
}

sfsistat onAbort(SMFICTX* ctx) {
  return guarded("abort", [&] {
    connection(ctx)->message.beginMessage("", "");
    return SMFIS_CONTINUE;
  });
}

sfsistat onClose(SMFICTX* ctx) {
  return guarded("close", [&] {
    delete static_cast<Connection*>(smfi_getpriv(ctx));
    smfi_setpriv(ctx, nullptr);
    return SMFIS_CONTINUE;
  });
}

}  // namespace

Status prepareSocket(const std::string& listen) {
  std::string path;
  if (startsWith(listen, "unix:")) path = listen.substr(5);
  else if (startsWith(listen, "local:")) path = listen.substr(6);
  else return okStatus();
  size_t slash = path.rfind('/');
  std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i < dir.size() && dir[i] != '/') continue;
    std::string part = dir.substr(0, i);
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) {
      return makeError("milter.listen: cannot create directory " + part + ": " + std::strerror(errno));
    }
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return makeError("milter.listen: " + path + " exists and is not a socket");
    if (::unlink(path.c_str()) != 0) {
      return makeError("milter.listen: cannot remove stale socket " + path + ": " + std::strerror(errno));
    }
  }
  return okStatus();
}

Status runMilter(const MilterRuntime& rt) {
  gRuntime = &rt;
  static struct smfiDesc desc = {};
  desc.xxfi_name = const_cast<char*>("sluice-milter");
  desc.xxfi_version = SMFI_VERSION;
  desc.xxfi_flags = SMFIF_ADDHDRS;
  desc.xxfi_envfrom = onEnvFrom;
  desc.xxfi_header = onHeader;
  desc.xxfi_eoh = onEndOfHeaders;
  desc.xxfi_body = onBody;
  desc.xxfi_eom = onEndOfMessage;
  desc.xxfi_abort = onAbort;
  desc.xxfi_close = onClose;
  desc.xxfi_negotiate = onNegotiate;
  const std::string& listen = rt.config->milter.listen;
  if (Status st = prepareSocket(listen); !st) return st;
  if (smfi_setconn(const_cast<char*>(listen.c_str())) != MI_SUCCESS) {
    return makeError("milter.listen: libmilter refused \"" + listen + "\"");
  }
  if (smfi_register(desc) != MI_SUCCESS) return makeError("smfi_register failed");
  mode_t old = ::umask(0);  // the socket must be writable by the MTA's user; guard the directory
  int rc = smfi_opensocket(1);
  ::umask(old);
  if (rc != MI_SUCCESS) return makeError("cannot open milter socket " + listen);
  logInfo("listening on " + listen + ", " + std::to_string(rt.signing->keyCount()) + " DKIM keys");
  if (smfi_main() != MI_SUCCESS) return makeError("smfi_main failed");
  return okStatus();
}

}  // namespace sluice::milter
