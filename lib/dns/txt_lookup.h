// txt_lookup.h - blocking DNS TXT lookups through libunbound, for the admin tool (sluicectl dkim
// check, domain checks). The daemons' asynchronous MX/A/AAAA resolver belongs beside it.
//
// The upstream is configurable (dns.servers: "IP" or "IP@PORT"; tests point it at a local unbound
// on loopback, never at the machine's resolver); with no servers, /etc/resolv.conf's are used.
// Answers: the TXT strings of each record joined (RFC 7208 3.3 / RFC 6376 3.6.2.2), or a status
// that tells NXDOMAIN and "no TXT record" apart from a failure (SERVFAIL, timeout).
#pragma once

#include <string>
#include <vector>

#include "base/result.h"

namespace sluice::dns {

struct TxtAnswer {
  enum class Status { kOk, kNxDomain, kNoData, kFailure };
  Status status = Status::kFailure;
  std::vector<std::string> records;  // kOk: one entry per TXT record, its strings concatenated
  std::string error;                 // kFailure: why (rcode name or libunbound's message)
};

struct ResolverOptions {
  std::vector<std::string> servers;  // "127.0.0.1", "127.0.0.1@5353", "::1"; empty: resolv.conf
  int timeoutMs = 5000;
};

TxtAnswer lookupTxt(const std::string& name, const ResolverOptions& options);

}  // namespace sluice::dns
