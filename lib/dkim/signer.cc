// signer.cc - DKIM signatures in one pass, and the signing table (see signer.h).
#include "dkim/signer.h"

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <ctime>
#include <memory>
#include <unordered_map>

#include "base/strings.h"

namespace sluice::dkim {
namespace {

constexpr size_t kFoldWidth = 78;
constexpr size_t kTabWidth = 8;  // a folded line starts with one TAB; count it as 8 columns
constexpr size_t kMaxDomainLength = 253;
constexpr std::string_view kPlaceholderDomain = "%";

bool isFws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trimFws(std::string_view s) {
  while (!s.empty() && isFws(s.front())) s.remove_prefix(1);
  while (!s.empty() && isFws(s.back())) s.remove_suffix(1);
  return s;
}

// Domain names and selectors: letters, digits, '-', '_', dot-separated, no empty label.
bool validDomain(std::string_view s) {
  if (s.empty() || s.size() > kMaxDomainLength || s.front() == '.' || s.back() == '.') return false;
  char prev = 0;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.';
    if (!ok || (c == '.' && prev == '.')) return false;
    prev = c;
  }
  return true;
}

bool validHeaderName(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 33 || u > 126 || c == ':' || c == ';') return false;
  }
  return true;
}

bool namesFrom(const std::vector<std::string>& names) {
  return std::any_of(names.begin(), names.end(), [](const std::string& n) { return iequals(n, "from"); });
}

// dkim-quoted-printable (RFC 6376 2.11) for the i= value.
std::string quotedPrintable(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if ((u >= 0x21 && u <= 0x3A) || u == 0x3C || (u >= 0x3E && u <= 0x7E)) {
      out += c;
    } else {
      out += '=';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

// Appends the canonical header fields that hList selects (RFC 6376 5.4.2).
void appendSelected(const MessageHeaders& headers, const std::vector<std::string>& hList, HeaderCanon canon,
                    std::string& out) {
  std::unordered_map<std::string, size_t> used;
  for (const auto& name : hList) {
    std::string key = toLower(trimFws(name));
    size_t& k = used[key];
    auto instances = headers.findAll(key);
    if (k < instances.size()) canonHeader(canon, instances[instances.size() - 1 - k]->raw, out);
    ++k;
  }
}

// Builds a header field folded at kFoldWidth with CRLF+TAB.
class Folder {
 public:
  explicit Folder(std::string_view name) : out_(std::string(name) + ":"), col_(out_.size()) {}

  void token(std::string_view t) {
    if (col_ + 1 + t.size() > kFoldWidth) newLine(); else append(" ");
    append(t);
  }
  // h=a:b:c; - may break after any colon.
  void list(std::string_view tagEq, const std::vector<std::string>& items) {
    for (size_t i = 0; i < items.size(); ++i) {
      std::string piece = items[i] + (i + 1 == items.size() ? ";" : ":");
      if (i == 0) {
        token(std::string(tagEq) + piece);
      } else {
        if (col_ + piece.size() > kFoldWidth) newLine();
        append(piece);
      }
    }
  }
  // The start of a tag whose value may break anywhere (b=); fill() adds the value.
  void open(std::string_view tagEq) {
    if (col_ + 1 + tagEq.size() + 16 > kFoldWidth) newLine(); else append(" ");
    append(tagEq);
  }
  void fill(std::string_view value) {
    while (!value.empty()) {
      if (col_ >= kFoldWidth) newLine();
      size_t n = std::min(value.size(), kFoldWidth - col_);
      append(value.substr(0, n));
      value.remove_prefix(n);
    }
  }
  const std::string& str() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void newLine() {
    out_ += "\r\n\t";
    col_ = kTabWidth;
  }
  void append(std::string_view t) {
    out_ += t;
    col_ += t.size();
  }

  std::string out_;
  size_t col_;
};

Result<std::string> rsaSign(const DkimKey& key, const Sha256Digest& digest) {
  using CtxPtr = std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)>;
  CtxPtr ctx(nullptr, &EVP_PKEY_CTX_free);
  if (const EVP_PKEY_CTX* tmpl = key.rsaSignTemplate()) {
    ctx.reset(EVP_PKEY_CTX_dup(tmpl));
  } else {
    ctx.reset(EVP_PKEY_CTX_new(key.pkey(), nullptr));
    if (ctx && (EVP_PKEY_sign_init(ctx.get()) <= 0 || EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) <= 0 ||
                EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) <= 0)) {
      ctx.reset();
    }
  }
  size_t len = 0;
  if (!ctx || EVP_PKEY_sign(ctx.get(), nullptr, &len, digest.data(), digest.size()) <= 0) {
    return makeError("dkim: RSA signing set-up failed (OpenSSL)");
  }
  std::string sig(len, '\0');
  if (EVP_PKEY_sign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, digest.data(),
                    digest.size()) <= 0) {
    return makeError("dkim: RSA signing failed (OpenSSL)");
  }
  sig.resize(len);
  return sig;
}

Result<std::string> ed25519Sign(EVP_PKEY* pkey, const Sha256Digest& digest) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  std::string sig(64, '\0');
  size_t len = sig.size();
  if (!md || EVP_DigestSignInit(md.get(), nullptr, nullptr, nullptr, pkey) != 1 ||
      EVP_DigestSign(md.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, digest.data(),
                     digest.size()) != 1) {
    return makeError("dkim: Ed25519 signing failed (OpenSSL)");
  }
  sig.resize(len);
  return sig;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// header selection and spec checks

HeaderPolicy defaultHeaderPolicy() {
  HeaderPolicy p;
  p.sign.assign(kDefaultSignedHeaders.begin(), kDefaultSignedHeaders.end());
  p.oversign.assign(kDefaultOversignedHeaders.begin(), kDefaultOversignedHeaders.end());
  return p;
}

std::vector<std::string> expandHeaderList(const HeaderPolicy& policy, const MessageHeaders& headers) {
  std::vector<std::string> names;
  auto addName = [&](const std::string& n) {
    std::string l = toLower(trimFws(n));
    if (!l.empty() && std::find(names.begin(), names.end(), l) == names.end()) names.push_back(l);
  };
  for (const auto& n : policy.sign) addName(n);
  for (const auto& n : policy.oversign) addName(n);
  std::vector<std::string> out;
  for (const auto& n : names) {
    bool over = std::any_of(policy.oversign.begin(), policy.oversign.end(),
                            [&](const std::string& o) { return iequals(trimFws(o), n); });
    size_t reps = headers.count(n) + (over ? 1 : 0);
    out.insert(out.end(), reps, n);
  }
  return out;
}

Status validateSpec(const SignatureSpec& s) {
  std::string who = "DKIM signature d=" + s.domain + " s=" + s.selector + ": ";
  if (s.key == nullptr) return makeError(who + "no key");
  if (!validDomain(s.domain)) return makeError(who + "bad domain for d=");
  if (!validDomain(s.selector)) return makeError(who + "bad selector for s=");
  for (const auto& n : s.headers) {
    if (!validHeaderName(trimFws(n))) return makeError(who + "bad header name \"" + n + "\" in h=");
  }
  bool signsFrom = s.headers.empty() ? namesFrom(s.policy.sign) || namesFrom(s.policy.oversign)
                                     : namesFrom(s.headers);
  if (!signsFrom) return makeError(who + "the signed header list must include From (RFC 6376 5.4)");
  if (s.timestamp && *s.timestamp < 0) return makeError(who + "negative t=");
  if (s.expiration && *s.expiration <= 0) return makeError(who + "x= must be later than t=");
  if (!s.identity.empty()) {
    size_t at = s.identity.rfind('@');
    std::string idDomain = at == std::string::npos ? std::string() : toLower(s.identity.substr(at + 1));
    std::string d = toLower(s.domain);
    if (idDomain != d && !endsWith(idDomain, "." + d)) {
      return makeError(who + "i= must be an address at d= or one of its subdomains");
    }
  }
  return okStatus();
}

// ---------------------------------------------------------------------------------------------
// the steps of one signature

std::string signedHeaderData(const MessageHeaders& headers, const std::vector<std::string>& hList,
                             HeaderCanon canon, std::string_view sigField) {
  std::string out;
  appendSelected(headers, hList, canon, out);
  canonHeader(canon, sigField, out);
  out.resize(out.size() - 2);  // the DKIM-Signature field is hashed without its CRLF
  return out;
}

Result<std::string> signData(const DkimKey& key, std::string_view data) {
  auto digest = sha256(data);
  if (!digest) return digest.error();
  auto sig = key.type() == KeyType::kRsa ? rsaSign(key, *digest) : ed25519Sign(key.pkey(), *digest);
  if (!sig) return sig.error();
  return base64Encode(*sig);
}

std::string withoutSignatureValue(std::string_view field) {
  size_t colon = field.find(':');
  if (colon == std::string_view::npos) return std::string(field);
  size_t pos = colon + 1;
  while (pos <= field.size()) {
    size_t semi = field.find(';', pos);
    size_t end = semi == std::string_view::npos ? field.size() : semi;
    std::string_view tag = field.substr(pos, end - pos);
    size_t eq = tag.find('=');
    if (eq != std::string_view::npos && trimFws(tag.substr(0, eq)) == "b") {
      return std::string(field.substr(0, pos + eq + 1)) + std::string(field.substr(end));
    }
    if (semi == std::string_view::npos) break;
    pos = semi + 1;
  }
  return std::string(field);
}

// ---------------------------------------------------------------------------------------------
// Signer

Signer::Signer(std::vector<SignatureSpec> specs) : specs_(std::move(specs)) {
  for (const auto& s : specs_) {
    if (Status st = validateSpec(s); !st && error_.empty()) error_ = st.message();
    auto idx = static_cast<size_t>(s.bodyCanon);
    if (!hashers_[idx]) hashers_[idx].emplace(s.bodyCanon);
  }
}

void Signer::headers(const MessageHeaders& headers) {
  if (haveHeaders_) {
    if (error_.empty()) error_ = "dkim: headers given twice";
    return;
  }
  haveHeaders_ = true;
  size_t from = headers.fromCount();
  if (from != 1 && error_.empty()) {
    error_ = from == 0 ? "message has no From: header field; not signing"
                       : "message has " + std::to_string(from) + " From: header fields; not signing";
  }
  for (const auto& s : specs_) {
    hLists_.push_back(s.headers.empty() ? expandHeaderList(s.policy, headers) : s.headers);
    headerData_.emplace_back();
    appendSelected(headers, hLists_.back(), s.headerCanon, headerData_.back());
  }
}

void Signer::body(std::string_view chunk) {
  if (finished_) return;
  for (auto& h : hashers_) {
    if (h) h->update(chunk);
  }
}

Result<std::string> Signer::makeSignature(size_t i, const Sha256Digest& bodyHash) const {
  const SignatureSpec& s = specs_[i];
  Folder f("DKIM-Signature");
  f.token("v=1;");
  f.token(std::string("a=") + algorithmName(s.key->type()) + ";");
  f.token(std::string("c=") + toString(s.headerCanon) + "/" + toString(s.bodyCanon) + ";");
  f.token("d=" + s.domain + ";");
  if (!s.identity.empty()) f.token("i=" + quotedPrintable(s.identity) + ";");
  f.token("s=" + s.selector + ";");
  if (s.timestamp || s.expiration) {
    int64_t t = s.timestamp ? *s.timestamp : static_cast<int64_t>(std::time(nullptr));
    f.token("t=" + std::to_string(t) + ";");
    if (s.expiration) f.token("x=" + std::to_string(t + *s.expiration) + ";");
  }
  f.list("h=", hLists_[i]);
  f.token("bh=" + base64Encode(std::string_view(reinterpret_cast<const char*>(bodyHash.data()),
                                                bodyHash.size())) + ";");
  f.open("b=");
  std::string data = headerData_[i];
  canonHeader(s.headerCanon, f.str(), data);
  data.resize(data.size() - 2);
  auto b = signData(*s.key, data);
  if (!b) return b.error();
  f.fill(*b);
  return f.take();
}

Result<std::vector<std::string>> Signer::finish() {
  if (finished_) return makeError("dkim: finish() called twice");
  finished_ = true;
  if (!error_.empty()) return makeError(error_);
  if (!haveHeaders_) return makeError("dkim: no headers given");
  std::array<Sha256Digest, 2> digests{};
  for (size_t idx = 0; idx < hashers_.size(); ++idx) {
    if (!hashers_[idx]) continue;
    auto d = hashers_[idx]->finish();
    if (!d) return d.error();
    digests[idx] = *d;
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < specs_.size(); ++i) {
    auto sig = makeSignature(i, digests[static_cast<size_t>(specs_[i].bodyCanon)]);
    if (!sig) return sig.error();
    out.push_back(std::move(*sig));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// SigningTable

namespace {

bool patternMatches(const std::string& pattern, const std::string& domain) {
  if (pattern.empty()) return true;
  if (domain.empty()) return false;
  if (pattern == "*") return true;
  if (startsWith(pattern, "*.")) {
    std::string_view suffix = std::string_view(pattern).substr(1);  // ".example.com"
    return domain.size() > suffix.size() && endsWith(domain, suffix);
  }
  return pattern == domain;
}

bool isPlaceholder(const std::string& domain) { return domain.empty() || domain == kPlaceholderDomain; }

}  // namespace

Status SigningTable::add(SigningRule rule) {
  rule.domain = toLower(rule.domain);
  std::string who = "signing rule \"" + rule.domain + "\"" +
                    (rule.saslUser.empty() ? "" : " (user " + rule.saslUser + ")") + ": ";
  if (rule.domain.empty() && rule.saslUser.empty()) {
    return makeError(who + "needs a domain pattern or a SASL user");
  }
  std::string_view bare = rule.domain;
  if (startsWith(bare, "*.")) bare.remove_prefix(2);
  if (!rule.domain.empty() && rule.domain != "*" && !validDomain(bare)) {
    return makeError(who + "bad domain pattern (want example.com, *.example.com or *)");
  }
  if (rule.signatures.empty()) return makeError(who + "no signatures");
  for (const auto& s : rule.signatures) {
    SignatureSpec probe = s;
    if (isPlaceholder(probe.domain)) {
      probe.domain = "placeholder.invalid";
      probe.identity.clear();
    }
    if (Status st = validateSpec(probe); !st) return makeError(who + st.message());
  }
  rules_.push_back(std::move(rule));
  return okStatus();
}

std::vector<SignatureSpec> SigningTable::lookup(std::string_view fromDomain, std::string_view saslUser) const {
  std::string dom = toLower(trimFws(fromDomain));
  while (!dom.empty() && dom.back() == '.') dom.pop_back();
  for (const auto& rule : rules_) {
    if (!rule.saslUser.empty() && rule.saslUser != saslUser) continue;
    if (!patternMatches(rule.domain, dom)) continue;
    std::vector<SignatureSpec> out;
    for (const auto& s : rule.signatures) {
      if (isPlaceholder(s.domain) && dom.empty()) continue;  // no From: domain to sign for
      out.push_back(s);
      if (isPlaceholder(out.back().domain)) out.back().domain = dom;
    }
    return out;
  }
  return {};
}

}  // namespace sluice::dkim
