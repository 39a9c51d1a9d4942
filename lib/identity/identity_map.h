// identity_map.h - who may send as what, from the `identities` section of sluice.yaml.
//
// An identity is reached by SASL login name or by client network, and owns sender patterns:
//   "example.com" or "@example.com"  any address at exactly that domain
//   "*.example.com"                  any address at any subdomain (not example.com itself)
//   "alerts@example.net"             that address; '*' in the local part matches any run
// Matching is case-insensitive. A domain named by any pattern is "protected": only identities
// that own a matching pattern may use it. Lookups are O(1) per user and O(networks) per client.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/net_addr.h"
#include "config/config.h"

namespace sluice {

class IdentityMap {
 public:
  explicit IdentityMap(const std::vector<config::IdentityConfig>& identities);

  // Identities of a SASL user (empty when none).
  std::vector<const config::IdentityConfig*> forSaslUser(std::string_view user) const;
  // Identities whose client_networks contain the address (empty when none).
  std::vector<const config::IdentityConfig*> forClient(const IpAddr& addr) const;

  static bool owns(const config::IdentityConfig& id, std::string_view senderAddress);
  bool isProtectedDomain(std::string_view domain) const;

 private:
  std::vector<config::IdentityConfig> identities_;
  std::unordered_map<std::string, std::vector<size_t>> byUser_;
  std::unordered_set<std::string> exactDomains_;
  std::vector<std::string> wildcardSuffixes_;  // ".example.com" for "*.example.com"
};

// "User@Example.COM" -> "example.com"; "" for the null sender or an address without '@'.
std::string domainOf(std::string_view address);

}  // namespace sluice
