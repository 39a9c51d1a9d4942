// signing.h - the DKIM signing set-up of sluice-milter and sluice-relayd, built once (at start and
// on reload) from the `dkim` section of the config.
//
// Every key file named in the signing table is loaded once, at start. A key readable by group or
// others is refused outright (build() fails: the daemon must not start). A key that is missing or
// does not parse is logged and remembered as broken: a message whose matching rule uses it gets
// dkim.key_error_action (tempfail, or signed with the rule's good keys only).
// Invariants: immutable after build(); the keys live as long as the Signing object, and the
// SignatureSpecs handed out point into it, so it must outlive every Signer made from them.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/net_addr.h"
#include "base/result.h"
#include "config/config.h"
#include "dkim/dkim_key.h"
#include "dkim/message_headers.h"
#include "dkim/signer.h"

namespace sluice::dkim {

// What the table says for one message.
struct SigningPlan {
  std::vector<SignatureSpec> specs;  // the usable signatures, d= resolved
  std::vector<std::string> brokenKeys;     // key files of the matching rule that failed to load
};

// The DKIM-Signature fields (each ending in CRLF) for a whole message held in memory (CRLF line
// ends; `headers` parsed from it), to be prepended to it: relayd's direct submissions and DSNs.
Result<std::string> signatureFields(std::vector<SignatureSpec> specs, const MessageHeaders& headers,
                                    std::string_view message);

class Signing {
 public:
  // Loads keys and builds the table. Fails (one line) on a group/world-readable key or a rule
  // the DKIM module refuses (bad domain, selector, ...).
  static Result<std::unique_ptr<Signing>> build(const config::DkimConfig& cfg,
                                                const KeyLoadOptions& options = {});

  SigningPlan lookup(std::string_view fromDomain, std::string_view saslUser) const;
  bool keyErrorTempfail() const { return keyErrorTempfail_; }
  bool signUnauthenticated() const { return signUnauthenticated_; }
  // Whether the client is in dkim.trusted_networks (its mail is signed without SASL).
  bool trustedClient(const std::optional<IpAddr>& client) const;
  size_t keyCount() const { return keys_.size(); }
  bool empty() const { return rules_.empty(); }

 private:
  struct Rule {
    std::string domain;  // pattern, lowercase
    std::string saslUser;
    std::optional<SigningTable> table;  // this rule with its good signatures only
    std::vector<std::string> brokenKeys;
  };
  Signing() = default;
  Result<const DkimKey*> key(const std::string& path, const KeyLoadOptions& options,
                                   std::vector<std::string>* broken);
  Status addRule(const config::DkimRuleConfig& rc, const KeyLoadOptions& options);

  std::vector<std::unique_ptr<DkimKey>> keys_;
  std::vector<std::string> keyPaths_;  // parallel to keys_
  std::vector<Rule> rules_;
  bool keyErrorTempfail_ = true;
  bool signUnauthenticated_ = false;
  std::vector<Cidr> trustedNetworks_;
  HeaderPolicy headerPolicy_ = defaultHeaderPolicy();
};

// dkim.signed_headers / dkim.oversigned_headers over the DKIM module's defaults.
HeaderPolicy headerPolicyFromConfig(const config::DkimConfig& cfg);
// The spec a signature entry of the config describes (key left unset).
Result<SignatureSpec> specFromConfig(const config::DkimSignatureConfig& sc);
// "example.com", "*.example.com", "*" against a From: domain (lowercase).
bool domainPatternMatches(std::string_view pattern, std::string_view domain);

}  // namespace sluice::dkim
