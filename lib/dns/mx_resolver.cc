// mx_resolver.cc - see mx_resolver.h.
#include "dns/mx_resolver.h"

#include <unbound.h>

#include <algorithm>
#include <cstring>

#include "base/strings.h"

namespace sluice::dns {
namespace {

constexpr int kTypeA = 1;
constexpr int kTypeMx = 15;
constexpr int kTypeAaaa = 28;
constexpr int kClassIn = 1;

std::string rcodeName(int rcode) {
  switch (rcode) {
    case 2: return "SERVFAIL";
    case 3: return "NXDOMAIN";
    case 5: return "REFUSED";
    default: return "rcode " + std::to_string(rcode);
  }
}

}  // namespace

const char* toString(MxResult::Status s) {
  switch (s) {
    case MxResult::Status::kOk: return "ok";
    case MxResult::Status::kNullMx: return "null-mx";
    case MxResult::Status::kNxDomain: return "nxdomain";
    case MxResult::Status::kNoAddress: return "no-address";
    case MxResult::Status::kTempFail: return "tempfail";
  }
  return "?";
}

bool parseMxRdata(const std::string& rdata, int* preference, std::string* host) {
  if (rdata.size() < 3) return false;
  *preference = (static_cast<unsigned char>(rdata[0]) << 8) | static_cast<unsigned char>(rdata[1]);
  host->clear();
  size_t i = 2;
  while (i < rdata.size()) {
    size_t len = static_cast<unsigned char>(rdata[i]);
    if (len == 0) return i + 1 == rdata.size();
    if (len > 63 || i + 1 + len > rdata.size()) return false;  // no compression inside RDATA here
    if (!host->empty()) *host += '.';
    host->append(rdata, i + 1, len);
    i += 1 + len;
  }
  return false;
}

struct MxResolver::Lookup {
  std::string domain;
  Callback done;
  MxResult result;
  size_t outstanding = 0;
  bool tempError = false;
  std::string firstError;
};

MxResolver::MxResolver(asio::io_context& io, ResolverOptions options) : io_(io), options_(std::move(options)) {}

MxResolver::~MxResolver() {
  *alive_ = false;
  if (fd_) {
    fd_->cancel();
    fd_->release();  // the descriptor belongs to libunbound
  }
  if (ctx_ != nullptr) ub_ctx_delete(ctx_);
}

Status MxResolver::init() {
  ctx_ = ub_ctx_create();
  if (ctx_ == nullptr) return makeError("cannot create a libunbound context");
  int rc = 0;
  if (options_.servers.empty()) {
    rc = ub_ctx_resolvconf(ctx_, nullptr);
  } else {
    ub_ctx_set_option(ctx_, "do-not-query-localhost:", "no");
    for (const auto& s : options_.servers) {
      if ((rc = ub_ctx_set_fwd(ctx_, s.c_str())) != 0) break;
    }
  }
  if (rc == 0) rc = ub_ctx_async(ctx_, 1);  // a worker thread (not a forked process); results via ub_fd
  if (rc != 0) return makeError(std::string("dns: ") + ub_strerror(rc));
  int fd = ub_fd(ctx_);
  if (fd < 0) return makeError("dns: libunbound has no file descriptor");
  fd_ = std::make_unique<asio::posix::stream_descriptor>(io_, fd);
  return okStatus();
}

void MxResolver::watch() {
  if (watching_ || queries_ == 0 || !fd_) return;
  watching_ = true;
  std::weak_ptr<bool> alive = alive_;
  fd_->async_wait(asio::posix::stream_descriptor::wait_read, [this, alive](const asio::error_code& ec) {
    if (alive.expired()) return;
    watching_ = false;
    if (ec) return;
    ub_process(ctx_);
    watch();
  });
}

namespace {
struct QueryState {
  std::function<void(MxResolver::Answer)> done;
  std::unique_ptr<asio::steady_timer> timer;
  int id = 0;
  bool finished = false;
  size_t* counter = nullptr;
  std::weak_ptr<bool> alive;
};
}  // namespace

void MxResolver::onResult(void* arg, int err, ::ub_result* result) {
  auto* qs = static_cast<QueryState*>(arg);
  Answer a;
  a.err = err;
  if (result != nullptr) {
    a.rcode = result->rcode;
    a.haveData = result->havedata != 0;
    for (int i = 0; result->havedata && result->data[i] != nullptr; ++i) a.rdata.emplace_back(result->data[i], static_cast<size_t>(result->len[i]));
    ub_resolve_free(result);
  }
  if (qs->finished || qs->alive.expired()) {  // the resolver is gone
    delete qs;
    return;
  }
  qs->finished = true;
  --*qs->counter;
  qs->timer->cancel();
  auto done = std::move(qs->done);
  delete qs;
  done(std::move(a));
}

void MxResolver::query(const std::string& name, int type, std::function<void(Answer)> done) {
  auto* qs = new QueryState;
  qs->done = std::move(done);
  qs->counter = &queries_;
  qs->alive = alive_;
  qs->timer = std::make_unique<asio::steady_timer>(io_, std::chrono::milliseconds(options_.timeoutMs));
  ++queries_;
  int rc = ub_resolve_async(ctx_, name.c_str(), type, kClassIn, qs, &MxResolver::onResult, &qs->id);
  if (rc != 0) {
    --queries_;
    Answer a;
    a.err = rc;
    auto d = std::move(qs->done);
    delete qs;
    asio::post(io_, [d = std::move(d), a]() mutable { d(std::move(a)); });
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  qs->timer->async_wait([this, qs, alive](const asio::error_code& ec) {
    if (ec || alive.expired() || qs->finished) return;
    qs->finished = true;  // onResult frees qs when libunbound answers the cancelled query, or never
    --queries_;
    ub_cancel(ctx_, qs->id);
    if (queries_ == 0 && fd_) fd_->cancel();  // nothing left to wait for: let the io_context idle
    Answer a;
    a.timedOut = true;
    auto d = std::move(qs->done);
    delete qs;  // ub_cancel guarantees the callback is not called for this id
    d(std::move(a));
  });
  watch();
}

void MxResolver::resolve(const std::string& domainIn, Callback done) {
  auto l = std::make_shared<Lookup>();
  l->domain = toLower(domainIn);
  while (!l->domain.empty() && l->domain.back() == '.') l->domain.pop_back();
  l->done = std::move(done);
  if (l->domain.empty()) {
    l->result.status = MxResult::Status::kNxDomain;
    l->result.error = "empty domain";
    asio::post(io_, [l] { l->done(std::move(l->result)); });
    return;
  }
  query(l->domain, kTypeMx, [this, l](Answer a) {
    auto& r = l->result;
    if (a.timedOut || a.err != 0 || (a.rcode != 0 && a.rcode != 3)) {
      r.status = MxResult::Status::kTempFail;
      r.error = "MX lookup for " + l->domain + ": " +
                (a.timedOut ? "timed out" : a.err != 0 ? std::string(ub_strerror(a.err)) : rcodeName(a.rcode));
      l->done(std::move(r));
      return;
    }
    if (a.rcode == 3) {
      r.status = MxResult::Status::kNxDomain;
      r.error = "Host or domain name not found: " + l->domain + " (NXDOMAIN)";
      l->done(std::move(r));
      return;
    }
    if (!a.haveData) {  // no MX: the domain itself is the implicit MX (RFC 5321 5.1)
      r.implicit = true;
      r.hosts.push_back({l->domain, 0, {}, ""});
    } else {
      for (const auto& rd : a.rdata) {
        MxHost h;
        if (!parseMxRdata(rd, &h.preference, &h.name)) continue;
        if (h.name.empty()) {  // "." : a null MX when it is the only one (RFC 7505 3)
          if (a.rdata.size() == 1) {
            r.status = MxResult::Status::kNullMx;
            r.error = l->domain + " does not accept mail (null MX, RFC 7505)";
            l->done(std::move(r));
            return;
          }
          continue;
        }
        r.hosts.push_back(std::move(h));
      }
      if (r.hosts.empty()) {
        r.status = MxResult::Status::kTempFail;
        r.error = "MX records of " + l->domain + " are malformed";
        l->done(std::move(r));
        return;
      }
      std::shuffle(r.hosts.begin(), r.hosts.end(), rng_);
      std::stable_sort(r.hosts.begin(), r.hosts.end(),
                       [](const MxHost& x, const MxHost& y) { return x.preference < y.preference; });
    }
    resolveHosts(l);
  });
}

void MxResolver::resolveHosts(std::shared_ptr<Lookup> l) {
  l->outstanding = l->result.hosts.size() * 2;
  for (size_t i = 0; i < l->result.hosts.size(); ++i) {
    for (int type : {kTypeAaaa, kTypeA}) {
      query(l->result.hosts[i].name, type, [l, i, type](Answer a) {
        auto& h = l->result.hosts[i];
        if (a.timedOut || a.err != 0 || (a.rcode != 0 && a.rcode != 3)) {
          l->tempError = true;
          std::string e = (type == kTypeA ? "A" : "AAAA") + std::string(" lookup for ") + h.name + ": " +
                          (a.timedOut ? "timed out" : a.err != 0 ? std::string(ub_strerror(a.err)) : rcodeName(a.rcode));
          if (h.error.empty()) h.error = e;
          if (l->firstError.empty()) l->firstError = e;
        } else {
          for (const auto& rd : a.rdata) {
            IpAddr ip;
            if (type == kTypeA && rd.size() == 4) {
              ip.bytes[10] = ip.bytes[11] = 0xff;
              std::memcpy(ip.bytes.data() + 12, rd.data(), 4);
            } else if (type == kTypeAaaa && rd.size() == 16) {
              std::memcpy(ip.bytes.data(), rd.data(), 16);
            } else {
              continue;
            }
            // AAAA answers first (its query was sent first, but answers may come in any order).
            if (type == kTypeAaaa) h.addresses.insert(h.addresses.begin(), ip);
            else h.addresses.push_back(ip);
          }
          if (a.rcode == 3 && h.error.empty()) h.error = h.name + ": NXDOMAIN";
        }
        if (--l->outstanding > 0) return;
        auto& r = l->result;
        std::vector<MxHost> usable;
        for (auto& host : r.hosts) {
          if (!host.addresses.empty()) usable.push_back(std::move(host));
        }
        if (!usable.empty()) {
          r.hosts = std::move(usable);
          r.status = MxResult::Status::kOk;
        } else if (l->tempError) {
          r.status = MxResult::Status::kTempFail;
          r.error = l->firstError;
        } else {
          r.status = MxResult::Status::kNoAddress;
          r.error = r.implicit ? "Host or domain name not found: " + l->domain + " has no MX and no A/AAAA"
                               : "none of the MX hosts of " + l->domain + " has an address";
          r.hosts.clear();
        }
        l->done(std::move(r));
      });
    }
  }
}

}  // namespace sluice::dns
