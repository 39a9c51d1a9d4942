// mx_resolver.h - where mail for a domain goes (RFC 5321 5.1), asynchronously, for sluice-relayd's
// delivery: MX records by preference (random order among equal preferences), each MX host's A and
// AAAA addresses; no MX -> the domain itself (implicit MX); a null MX (RFC 7505: one MX "." with
// preference 0) and NXDOMAIN -> a permanent failure; SERVFAIL and timeouts -> a temporary one.
//
// libunbound does the DNS work; its file descriptor is watched by the caller's Asio io_context, so
// lookups never block the event loop. The upstream is configurable (dns.servers: tests point it at
// a local unbound on loopback, never at the machine's resolver). One MxResolver per io_context;
// callbacks run on that io_context. Not thread-safe.
#pragma once

#include <asio.hpp>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "base/net_addr.h"
#include "dns/txt_lookup.h"

struct ub_ctx;
struct ub_result;

namespace sluice::dns {

struct MxHost {
  std::string name;        // the MX target (or the domain itself for an implicit MX), no final dot
  int preference = 0;
  std::vector<IpAddr> addresses;  // IPv6 first when the host has both (as Postfix does by default)
  std::string error;       // why it has none (for the delivery log)
};

struct MxResult {
  enum class Status { kOk, kNullMx, kNxDomain, kNoAddress, kTempFail };
  Status status = Status::kTempFail;
  bool implicit = false;        // no MX record: the domain's own A/AAAA
  std::vector<MxHost> hosts;    // kOk: in the order to try (hosts without addresses left out)
  std::string error;            // for the log and the DSN's Diagnostic-Code
  bool permanent() const {
    return status == Status::kNullMx || status == Status::kNxDomain || status == Status::kNoAddress;
  }
};

const char* toString(MxResult::Status s);

class MxResolver {
 public:
  using Callback = std::function<void(MxResult)>;
  MxResolver(asio::io_context& io, ResolverOptions options);
  ~MxResolver();
  MxResolver(const MxResolver&) = delete;
  MxResolver& operator=(const MxResolver&) = delete;

  // Set-up errors (bad dns.servers) are reported here rather than in every lookup.
  Status init();
  void resolve(const std::string& domain, Callback done);
  size_t pending() const { return queries_; }

  // Raw single-type lookup (used by resolve, public for tests): rcode/answer data via callback.
  struct Answer {
    int err = 0;        // libunbound error (0 = none)
    int rcode = 0;
    bool haveData = false;
    bool timedOut = false;
    std::vector<std::string> rdata;
  };
  void query(const std::string& name, int type, std::function<void(Answer)> done);

 private:
  struct Lookup;
  void watch();
  static void onResult(void* arg, int err, ::ub_result* result);
  void resolveHosts(std::shared_ptr<Lookup> l);

  asio::io_context& io_;
  ResolverOptions options_;
  ub_ctx* ctx_ = nullptr;
  std::unique_ptr<asio::posix::stream_descriptor> fd_;
  bool watching_ = false;
  size_t queries_ = 0;
  std::mt19937 rng_{std::random_device{}()};
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Parses the RDATA of an MX record (preference + uncompressed domain name).
bool parseMxRdata(const std::string& rdata, int* preference, std::string* host);

}  // namespace sluice::dns
