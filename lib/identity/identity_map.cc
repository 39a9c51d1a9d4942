// identity_map.cc - see identity_map.h.
#include "identity/identity_map.h"

#include "base/strings.h"

namespace sluice {

std::string domainOf(std::string_view address) {
  size_t at = address.rfind('@');
  if (at == std::string_view::npos) return "";
  std::string d = toLower(address.substr(at + 1));
  while (!d.empty() && d.back() == '.') d.pop_back();  // "user@example.com." is example.com
  return d;
}

IdentityMap::IdentityMap(const std::vector<config::IdentityConfig>& identities) : identities_(identities) {
  for (size_t i = 0; i < identities_.size(); ++i) {
    for (const auto& u : identities_[i].saslUsernames) byUser_[u].push_back(i);
    for (const auto& p : identities_[i].senders) {
      std::string domain = domainOf(p.find('@') == std::string::npos ? "@" + p : p);
      if (startsWith(domain, "*.")) {
        wildcardSuffixes_.push_back(domain.substr(1));
      } else {
        exactDomains_.insert(domain);
      }
    }
  }
}

std::vector<const config::IdentityConfig*> IdentityMap::forSaslUser(std::string_view user) const {
  std::vector<const config::IdentityConfig*> out;
  auto it = byUser_.find(std::string(user));
  if (it == byUser_.end()) return out;
  for (size_t i : it->second) out.push_back(&identities_[i]);
  return out;
}

std::vector<const config::IdentityConfig*> IdentityMap::forClient(const IpAddr& addr) const {
  std::vector<const config::IdentityConfig*> out;
  for (const auto& id : identities_) {
    for (const auto& net : id.clientNetworks) {
      if (net.contains(addr)) {
        out.push_back(&id);
        break;
      }
    }
  }
  return out;
}

static bool domainMatches(std::string_view pattern, std::string_view domain) {
  if (startsWith(pattern, "*.")) {
    std::string_view suffix = pattern.substr(1);  // ".example.com"
    return domain.size() > suffix.size() && endsWith(domain, suffix);
  }
  return pattern == domain;
}

bool IdentityMap::owns(const config::IdentityConfig& id, std::string_view senderAddress) {
  size_t at = senderAddress.rfind('@');
  if (at == std::string_view::npos || at == 0) return false;
  std::string domain = domainOf(senderAddress);
  std::string_view local = senderAddress.substr(0, at);
  for (const auto& p : id.senders) {  // patterns are lower-cased at load
    size_t pat = p.rfind('@');
    if (pat == std::string::npos) {
      if (domainMatches(p, domain)) return true;
    } else if (pat == 0) {
      if (domainMatches(std::string_view(p).substr(1), domain)) return true;
    } else if (domainMatches(std::string_view(p).substr(pat + 1), domain) &&
               globMatch(std::string_view(p).substr(0, pat), local)) {
      return true;
    }
  }
  return false;
}

bool IdentityMap::isProtectedDomain(std::string_view domain) const {
  std::string d = toLower(domain);
  if (exactDomains_.count(d) != 0) return true;
  for (const auto& s : wildcardSuffixes_) {
    if (d.size() > s.size() && endsWith(d, s)) return true;
  }
  return false;
}

}  // namespace sluice
