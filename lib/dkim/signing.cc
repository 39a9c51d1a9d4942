// signing.cc - the signing table of sluice-milter and sluice-relayd: config entries -> DKIM specs and keys.
#include "dkim/signing.h"

#include <sys/stat.h>

#include "base/log.h"
#include "base/strings.h"

namespace sluice::dkim {

bool domainPatternMatches(std::string_view pattern, std::string_view domain) {
  if (pattern == "*") return true;
  if (startsWith(pattern, "*.")) {
    std::string_view suffix = pattern.substr(1);  // ".example.com"
    return domain.size() > suffix.size() && endsWith(domain, suffix);
  }
  return pattern == domain;
}

HeaderPolicy headerPolicyFromConfig(const config::DkimConfig& cfg) {
  HeaderPolicy p = defaultHeaderPolicy();
  if (!cfg.signedHeaders.empty()) p.sign = cfg.signedHeaders;
  if (cfg.oversignedHeaders.size() == 1 && cfg.oversignedHeaders[0] == "none") {
    p.oversign.clear();
  } else if (!cfg.oversignedHeaders.empty()) {
    p.oversign = cfg.oversignedHeaders;
  }
  return p;
}

Result<SignatureSpec> specFromConfig(const config::DkimSignatureConfig& sc) {
  SignatureSpec spec;
  spec.domain = sc.domain.empty() ? std::string("%") : sc.domain;
  spec.selector = sc.selector;
  auto hc = parseHeaderCanon(sc.headerCanonicalization);
  auto bc = parseBodyCanon(sc.bodyCanonicalization);
  if (!hc || !bc) {
    return makeError("signature s=" + sc.selector + ": bad canonicalization \"" +
                     sc.headerCanonicalization + "/" + sc.bodyCanonicalization + "\"");
  }
  spec.headerCanon = *hc;
  spec.bodyCanon = *bc;
  if (sc.expirationMs > 0) spec.expiration = std::max<int64_t>(1, sc.expirationMs / 1000);
  return spec;
}

// The key of `path`, loaded on first use; nullptr (and the path in *broken) when it is missing or
// unusable. A key readable by group or others is an error: the daemon must not start with it.
Result<const DkimKey*> Signing::key(const std::string& path, const KeyLoadOptions& options,
                                          std::vector<std::string>* broken) {
  for (size_t i = 0; i < keyPaths_.size(); ++i) {
    if (keyPaths_[i] != path) continue;
    if (!keys_[i]) broken->push_back(path);
    return static_cast<const DkimKey*>(keys_[i].get());
  }
  auto loaded = loadKey(path, options);
  keyPaths_.push_back(path);
  if (loaded) {
    keys_.push_back(std::make_unique<DkimKey>(std::move(loaded.value())));
    return static_cast<const DkimKey*>(keys_.back().get());
  }
  struct stat st {};
  if (options.checkPermissions && ::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    return makeError(loaded.message());
  }
  logWarning("dkim: " + loaded.message() + " (messages needing it: dkim.key_error_action)");
  keys_.push_back(nullptr);
  broken->push_back(path);
  return static_cast<const DkimKey*>(nullptr);
}

Status Signing::addRule(const config::DkimRuleConfig& rc, const KeyLoadOptions& options) {
  Rule rule;
  rule.domain = toLower(rc.domain);
  rule.saslUser = rc.saslUsername;
  SigningRule good{rule.domain, rule.saslUser, {}};
  for (const auto& sc : rc.signatures) {
    auto spec = specFromConfig(sc);
    if (!spec) return makeError(spec.message());
    auto k = key(sc.keyFile, options, &rule.brokenKeys);
    if (!k) return makeError(k.message());
    if (k.value() == nullptr) continue;
    spec->key = k.value();
    spec->policy = headerPolicy_;
    good.signatures.push_back(std::move(spec.value()));
  }
  if (!good.signatures.empty()) {
    rule.table.emplace();
    if (Status st = rule.table->add(std::move(good)); !st) return st;
  } else if (rule.domain != "*" && !rule.domain.empty()) {
    std::string_view bare = rule.domain;
    if (startsWith(bare, "*.")) bare.remove_prefix(2);
    if (bare.empty() || bare.find('*') != std::string_view::npos) {
      return makeError("signing rule \"" + rule.domain + "\": bad domain pattern");
    }
  }
  rules_.push_back(std::move(rule));
  return okStatus();
}

Result<std::unique_ptr<Signing>> Signing::build(const config::DkimConfig& cfg,
                                               const KeyLoadOptions& options) {
  std::unique_ptr<Signing> s(new Signing());
  s->keyErrorTempfail_ = cfg.keyErrorTempfail;
  s->signUnauthenticated_ = cfg.signUnauthenticated;
  s->trustedNetworks_ = cfg.trustedNetworks;
  s->headerPolicy_ = headerPolicyFromConfig(cfg);
  for (const auto& rc : cfg.signingTable) {
    if (Status st = s->addRule(rc, options); !st) {
      return makeError("dkim.signing_table (line " + std::to_string(rc.line) + "): " + st.message());
    }
  }
  return s;
}

bool Signing::trustedClient(const std::optional<IpAddr>& client) const {
  if (!client) return false;
  for (const auto& net : trustedNetworks_) {
    if (net.contains(*client)) return true;
  }
  return false;
}

SigningPlan Signing::lookup(std::string_view fromDomain, std::string_view saslUser) const {
  std::string dom = toLower(fromDomain);
  while (!dom.empty() && dom.back() == '.') dom.pop_back();
  for (const auto& rule : rules_) {
    if (!rule.saslUser.empty() && rule.saslUser != saslUser) continue;
    if (!rule.domain.empty() && !domainPatternMatches(rule.domain, dom)) continue;
    SigningPlan plan;
    if (rule.table) plan.specs = rule.table->lookup(dom, saslUser);
    plan.brokenKeys = rule.brokenKeys;
    return plan;
  }
  return {};
}

Result<std::string> signatureFields(std::vector<SignatureSpec> specs, const MessageHeaders& headers,
                                    std::string_view message) {
  size_t bodyAt = message.find("\r\n\r\n");
  bodyAt = bodyAt == std::string_view::npos ? message.size() : bodyAt + 4;
  Signer signer(std::move(specs));
  signer.headers(headers);
  signer.body(message.substr(bodyAt));
  auto sigs = signer.finish();
  if (!sigs) return sigs.error();
  std::string fields;
  for (const auto& f : sigs.value()) fields += f + "\r\n";
  return fields;
}

}  // namespace sluice::dkim
