// dkim_sign_tool_main.cpp - a small CLI over lib/dkim for the end-to-end cross-verification test
// (tests/e2e/test_dkim_crossverify.sh) and for measuring signing cost. Not installed. (.cpp, so the
// unit-test glob leaves it out; built as its own executable.)
//
//   dkim_sign_tool keygen rsa|ed25519 FILE [BITS]   new key (mode 0600); prints its DNS TXT record
//   dkim_sign_tool record KEYFILE                   prints the DNS TXT record of a key
//   dkim_sign_tool sign [--chunk N] [--user U] [--rule PATTERN] --sig SPEC... < MSG > SIGNED
//       prepends the DKIM-Signature fields to MSG. Without --rule every --sig is made; with
//       --rule, each --sig belongs to the rule before it and a SigningTable picks by the From:
//       domain and --user. Prints nothing to stdout and exits 3 when no rule matches.
//   dkim_sign_tool bench [--n N] --sig SPEC... < MSG
//       microseconds per signature of each spec: a whole Signer pass and signData alone.
// SPEC: comma-separated d=DOMAIN,s=SELECTOR,key=FILE[,c=HDR/BODY][,h=a:b:c][,i=ID][,t=T][,x=SECS]
// ("d=%" = the From: domain). Keys are loaded once per file; --allow-1024 and --no-perm-check
// relax loading for test keys. A message with LF line ends gets LF-folded fields.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/strings.h"
#include "dkim/signer.h"

namespace {

using namespace sluice;
using namespace sluice::dkim;

struct Options {
  std::string command;
  size_t chunk = 0;
  int n = 2000;
  std::string user;
  KeyLoadOptions keyOptions;
  std::vector<std::pair<std::string, std::vector<std::string>>> rules;  // pattern -> sig specs
  std::vector<std::string> args;
};

int fail(const std::string& msg) {
  std::fprintf(stderr, "dkim_sign_tool: %s\n", msg.c_str());
  return 2;
}

class KeyCache {
 public:
  explicit KeyCache(KeyLoadOptions o) : options_(o) {}
  Result<const DkimKey*> get(const std::string& path) {
    auto it = keys_.find(path);
    if (it != keys_.end()) return it->second.get();
    auto key = loadKey(path, options_);
    if (!key) return key.error();
    auto owned = std::make_unique<DkimKey>(std::move(*key));
    const DkimKey* p = owned.get();
    keys_[path] = std::move(owned);
    return p;
  }

 private:
  KeyLoadOptions options_;
  std::map<std::string, std::unique_ptr<DkimKey>> keys_;
};

Status applyTag(SignatureSpec& s, std::string_view name, std::string_view value, KeyCache& keys) {
  if (name == "d") s.domain = std::string(value);
  else if (name == "s") s.selector = std::string(value);
  else if (name == "i") s.identity = std::string(value);
  else if (name == "t") s.timestamp = static_cast<int64_t>(parseUint(value).value_or(0));
  else if (name == "x") s.expiration = static_cast<int64_t>(parseUint(value).value_or(0));
  else if (name == "h") for (auto h : split(value, ':')) s.headers.emplace_back(h);
  else if (name == "c") {
    size_t slash = value.find('/');
    auto hc = parseHeaderCanon(value.substr(0, slash));
    auto bc = parseBodyCanon(slash == std::string_view::npos ? value : value.substr(slash + 1));
    if (!hc || !bc) return makeError("bad c=" + std::string(value));
    s.headerCanon = *hc;
    s.bodyCanon = *bc;
  } else if (name == "key") {
    auto k = keys.get(std::string(value));
    if (!k) return k.error();
    s.key = *k;
  } else {
    return makeError("unknown spec tag " + std::string(name));
  }
  return okStatus();
}

Result<SignatureSpec> parseSpec(const std::string& text, KeyCache& keys) {
  SignatureSpec s;
  for (auto part : split(text, ',')) {
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) return makeError("bad spec part \"" + std::string(part) + "\"");
    if (Status st = applyTag(s, part.substr(0, eq), part.substr(eq + 1), keys); !st) return st.error();
  }
  return s;
}

// The domain of the first From: address (enough for tests: "Name <a@b>" or "a@b").
std::string fromDomain(const MessageHeaders& h) {
  auto from = h.findAll("from");
  if (from.empty()) return "";
  std::string v(from[0]->value());
  size_t lt = v.rfind('<');
  if (lt != std::string::npos) v = v.substr(lt + 1, v.find('>', lt) - lt - 1);
  size_t at = v.rfind('@');
  return at == std::string::npos ? "" : std::string(trim(v.substr(at + 1)));
}

Result<std::vector<SignatureSpec>> chooseSpecs(const Options& o, const MessageHeaders& h, KeyCache& keys) {
  SigningTable table;
  std::vector<SignatureSpec> direct;
  for (const auto& [pattern, specs] : o.rules) {
    std::vector<SignatureSpec> parsed;
    for (const auto& text : specs) {
      auto s = parseSpec(text, keys);
      if (!s) return s.error();
      parsed.push_back(std::move(*s));
    }
    if (pattern.empty()) {
      direct.insert(direct.end(), parsed.begin(), parsed.end());
    } else if (Status st = table.add({pattern, "", std::move(parsed)}); !st) {
      return st.error();
    }
  }
  if (table.size() == 0) return direct;
  return table.lookup(fromDomain(h), o.user);
}

std::string readStdin() {
  std::ios::sync_with_stdio(false);
  return std::string((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
}

int cmdSign(const Options& o) {
  KeyCache keys(o.keyOptions);
  std::string msg = readStdin();
  auto headers = MessageHeaders::parse(msg);
  if (!headers) return fail(headers.message());
  auto specs = chooseSpecs(o, *headers, keys);
  if (!specs) return fail(specs.message());
  if (specs->empty()) {
    fail("no signing rule matches");
    return 3;
  }
  Signer signer(*specs);
  signer.headers(*headers);
  std::string_view body = std::string_view(msg).substr(headers->bodyOffset());
  size_t chunk = o.chunk == 0 ? body.size() + 1 : o.chunk;
  for (size_t i = 0; i < body.size(); i += chunk) signer.body(body.substr(i, chunk));
  auto sigs = signer.finish();
  if (!sigs) return fail(sigs.message());
  bool lf = msg.find('\r') == std::string::npos;
  std::string out;
  for (const auto& f : *sigs) {
    for (char c : f) {
      if (!(lf && c == '\r')) out += c;
    }
    out += lf ? "\n" : "\r\n";
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fwrite(msg.data(), 1, msg.size(), stdout);
  return 0;
}

template <class F>
double microsPer(int n, F&& f) {
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) f();
  std::chrono::duration<double, std::micro> d = std::chrono::steady_clock::now() - start;
  return d.count() / n;
}

int cmdBench(const Options& o) {
  KeyCache keys(o.keyOptions);
  std::string msg = readStdin();
  auto headers = MessageHeaders::parse(msg);
  if (!headers) return fail(headers.message());
  auto specs = chooseSpecs(o, *headers, keys);
  if (!specs) return fail(specs.message());
  std::string_view body = std::string_view(msg).substr(headers->bodyOffset());
  for (const auto& s : *specs) {
    bool ok = true;
    double full = microsPer(o.n, [&] {
      Signer signer({s});
      signer.headers(*headers);
      signer.body(body);
      ok = ok && signer.finish().ok();
    });
    std::string data = signedHeaderData(*headers, {"from", "to", "subject"}, s.headerCanon, "DKIM-Signature: b=");
    double sign = microsPer(o.n, [&] { ok = ok && signData(*s.key, data).ok(); });
    if (!ok) return fail("signing failed");
    std::printf("%s-%d d=%s c=%s/%s message=%zu bytes: %.1f us per signature (Signer pass), %.1f us signData only\n",
                toString(s.key->type()), s.key->bits(), s.domain.c_str(), toString(s.headerCanon),
                toString(s.bodyCanon), msg.size(), full, sign);
  }
  return 0;
}

int printRecord(const std::string& path, const KeyLoadOptions& options) {
  auto key = loadKey(path, options);
  if (!key) return fail(key.message());
  auto r = publicKeyRecord(*key);
  if (!r) return fail(r.message());
  std::printf("%s\n", r->c_str());
  return 0;
}

int cmdKeygen(const Options& o) {
  if (o.args.size() < 2) return fail("usage: keygen rsa|ed25519 FILE [BITS]");
  auto type = parseKeyType(o.args[0]);
  if (!type) return fail("key type must be rsa or ed25519");
  int bits = o.args.size() > 2 ? static_cast<int>(parseUint(o.args[2]).value_or(0)) : 2048;
  auto pem = generateKey(*type, bits);
  if (!pem) return fail(pem.message());
  int fd = ::open(o.args[1].c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return fail("cannot create " + o.args[1]);
  bool ok = ::write(fd, pem->data(), pem->size()) == static_cast<ssize_t>(pem->size());
  ::close(fd);
  if (!ok) return fail("cannot write " + o.args[1]);
  return printRecord(o.args[1], o.keyOptions);
}

Result<Options> parseArgs(int argc, char** argv) {
  Options o;
  if (argc < 2) return makeError("usage: dkim_sign_tool keygen|record|sign|bench ...");
  o.command = argv[1];
  o.rules.emplace_back("", std::vector<std::string>{});
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    bool hasValue = i + 1 < argc;
    if (a == "--sig" && hasValue) o.rules.back().second.push_back(argv[++i]);
    else if (a == "--rule" && hasValue) o.rules.emplace_back(argv[++i], std::vector<std::string>{});
    else if (a == "--user" && hasValue) o.user = argv[++i];
    else if (a == "--chunk" && hasValue) o.chunk = parseUint(argv[++i]).value_or(0);
    else if (a == "--n" && hasValue) o.n = static_cast<int>(parseUint(argv[++i]).value_or(1));
    else if (a == "--allow-1024") o.keyOptions.minRsaBits = 1024;
    else if (a == "--no-perm-check") o.keyOptions.checkPermissions = false;
    else if (startsWith(a, "--")) return makeError("unknown option " + a);
    else o.args.push_back(a);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  auto o = parseArgs(argc, argv);
  if (!o) return fail(o.message());
  if (o->command == "sign") return cmdSign(*o);
  if (o->command == "bench") return cmdBench(*o);
  if (o->command == "keygen") return cmdKeygen(*o);
  if (o->command == "record") {
    if (o->args.empty()) return fail("usage: record KEYFILE");
    return printRecord(o->args[0], o->keyOptions);
  }
  return fail("unknown command " + o->command);
}
