// dkim_cmd.cc - see dkim_cmd.h.
#include "dkim_cmd.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>

#include "base/strings.h"
#include "cli_util.h"
#include "config/params.h"
#include "dkim/dkim_key.h"
#include "dkim/key_record.h"
#include "dns/txt_lookup.h"
#include "file_owner.h"

namespace sluice::ctl {
namespace {

const char* kUsage =
    "Usage: sluicectl dkim keygen --domain DOMAIN --selector SELECTOR [--type rsa|ed25519]\n"
    "                             [--bits 2048] [--out FILE] [--force]\n"
    "       sluicectl dkim check DOMAIN SELECTOR [--key FILE]\n"
    "\n"
    "keygen  writes a new private key (PEM, mode 0600; default FILE /etc/sluice/dkim/DOMAIN.SELECTOR.pem,\n"
    "        never overwritten without --force) and prints the DNS TXT record to publish at\n"
    "        SELECTOR._domainkey.DOMAIN and the dkim.signing_table entry that uses it.\n"
    "        RSA keys are 2048 bits unless --bits says more (up to 8192); Ed25519 keys (RFC 8463)\n"
    "        are small and fast, but many receivers verify only RSA: publish both and sign with both.\n"
    "        Run as root, it gives the key (and the directory it creates) to run_as_user of the\n"
    "        config, the user sluice-milter reads keys as; without a config to `sluice` if that user\n"
    "        exists, else the key stays root's (chown it). It prints whose the key is.\n"
    "check   looks the record up in DNS (dns.servers of the config, else /etc/resolv.conf), checks\n"
    "        its syntax as verifiers read it (v=, k=, p=, h=, s=, t=) and compares it with the\n"
    "        private key: --key FILE, or the key the config's signing table uses for that\n"
    "        domain and selector. Exit 0 when the record is usable and matches, 1 otherwise.\n";

bool takeValue(const std::vector<std::string>& a, size_t* i, const char* name, std::string* out) {
  if (a[*i] == name && *i + 1 < a.size()) {
    *out = a[++*i];
    return true;
  }
  std::string prefix = std::string(name) + "=";
  if (startsWith(a[*i], prefix)) {
    *out = a[*i].substr(prefix.size());
    return true;
  }
  return false;
}

bool validDomain(const std::string& d) {
  if (d.empty() || d.size() > 253 || d.front() == '.' || d.back() == '.') return false;
  for (auto label : split(d, '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
    }
  }
  return true;
}

// The record as a zone-file line, split into strings of at most 255 bytes (RFC 1035 3.3.14).
std::string zoneLine(const std::string& selector, const std::string& domain, const std::string& record) {
  std::string out = selector + "._domainkey." + domain + ". IN TXT (";
  for (size_t i = 0; i < record.size(); i += 250) out += " \"" + record.substr(i, 250) + "\"";
  return out + " )";
}

// Whose a key keygen writes becomes. sluice-milter and sluice-relayd read keys as run_as_user
// after they give up root, and refuse keys readable by group or others: a key left to root
// (mode 0600) is unreadable to them, and every message would be tempfailed.
struct KeyOwner {
  std::optional<RunAs> who;  // chown to it; nullopt: leave the file to whoever runs keygen
  std::string why;           // for the output: why this owner
  bool unknownReader = false;  // root's for want of a user to give it to: the note says to chown
};

// The default of run_as_user, from the parameter table, for keygen without a configuration.
std::string defaultRunAsUser() { return config::findParam("run_as_user")->defaultValue; }

Result<KeyOwner> keyOwner(const config::Config* cfg) {
  KeyOwner o;
  if (::geteuid() != 0) {
    o.why = "not run as root: the key is its caller's; the daemons read it as run_as_user";
    return o;
  }
  if (cfg != nullptr) {
    auto who = ownerOfNewFiles(cfg->runAsUser);
    if (!who) return who.error();
    o.who = who.value();
    o.why = o.who ? "run_as_user of " + cfg->file + ", the user sluice-milter reads keys as"
                  : "run_as_user is \"\" in " + cfg->file + ": the daemons keep the user they are started as";
    return o;
  }
  auto who = ownerOfNewFiles(defaultRunAsUser());
  if (who && who.value()) {
    o.who = who.value();
    o.why = "no configuration loaded; " + defaultRunAsUser() + " is run_as_user's default";
    return o;
  }
  o.why = "no configuration loaded, and no user " + defaultRunAsUser() + ", run_as_user's default";
  o.unknownReader = true;
  return o;
}

int keygen(const std::vector<std::string>& a, const config::Config* cfg, std::ostream& out, std::ostream& err) {
  std::string domain, selector, type = "rsa", bitsText = "2048", file;
  bool force = false;
  for (size_t i = 1; i < a.size(); ++i) {
    if (takeValue(a, &i, "--domain", &domain) || takeValue(a, &i, "--selector", &selector) ||
        takeValue(a, &i, "--type", &type) || takeValue(a, &i, "--bits", &bitsText) ||
        takeValue(a, &i, "--out", &file)) {
      continue;
    }
    if (a[i] == "--force") {
      force = true;
      continue;
    }
    if (a[i] == "--domain" || a[i] == "--selector" || a[i] == "--type" || a[i] == "--bits" || a[i] == "--out") {
      err << "sluicectl dkim keygen: option " << a[i] << " needs a value\n" << kUsage;
      return 2;
    }
    err << "sluicectl dkim keygen: unexpected \"" << a[i] << "\"\n" << kUsage;
    return 2;
  }
  domain = toLower(domain);
  if (!validDomain(domain) || !validDomain(selector)) {
    err << "sluicectl dkim keygen: --domain and --selector are required and must be DNS names\n" << kUsage;
    return 2;
  }
  auto kt = dkim::parseKeyType(type);
  if (!kt) {
    err << "sluicectl dkim keygen: --type is rsa or ed25519\n";
    return 2;
  }
  // The range (2048..8192 for RSA) is generateKey's to check; this keeps the number an int.
  auto bits = parseNumberArg("--bits", bitsText, 0, std::numeric_limits<int>::max());
  if (!bits) {
    err << "sluicectl dkim keygen: " << bits.message() << "\n";
    return 2;
  }
  auto owner = keyOwner(cfg);  // before anything is written: an unknown run_as_user stops here
  if (!owner) {
    err << "sluicectl dkim keygen: " << owner.message() << "\n";
    return 1;
  }
  const std::optional<RunAs>& who = owner->who;
  std::string madeDir;  // the directory created here, if any
  if (file.empty()) {
    const std::string dir = "/etc/sluice/dkim";
    file = dir + "/" + domain + "." + selector + ".pem";
    ::mkdir("/etc/sluice", 0755);
    if (::mkdir(dir.c_str(), 0700) == 0) {
      madeDir = dir;
      if (who) {  // made here: the milter's, as sluice-setup makes it (mode 0700 stays)
        if (auto st = giveTo(dir, *who); !st) {
          err << "sluicectl dkim keygen: " << st.message() << "\n";
          return 1;
        }
      }
    } else if (errno != EEXIST) {
      err << "sluicectl dkim keygen: cannot create " << dir << ": " << std::strerror(errno) << "\n";
      return 1;
    }
  }
  auto pem = dkim::generateKey(*kt, static_cast<int>(*bits));
  if (!pem) {
    err << "sluicectl dkim keygen: " << pem.message() << "\n";
    return 1;
  }
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (force ? O_TRUNC : O_EXCL);
  int fd = ::open(file.c_str(), flags, 0600);
  if (fd < 0) {
    err << "sluicectl dkim keygen: " << file << ": " << std::strerror(errno)
        << (errno == EEXIST ? " (a key is never overwritten; use --force, or another selector)" : "") << "\n";
    return 1;
  }
  const std::string& text = pem.value();
  // Given away before a byte is written; the mode stays 0600 (fchown never widens it).
  bool ok = ::fchmod(fd, 0600) == 0;
  if (ok && who && ::fchown(fd, who->uid, who->gid) != 0) {
    err << "sluicectl dkim keygen: cannot give " << file << " to " << who->name << ": " << std::strerror(errno) << "\n";
    ::close(fd);
    ::unlink(file.c_str());
    return 1;
  }
  ok = ok && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ok = ::close(fd) == 0 && ok;
  if (!ok) {
    err << "sluicectl dkim keygen: writing " << file << ": " << std::strerror(errno) << "\n";
    ::unlink(file.c_str());
    return 1;
  }
  auto key = dkim::parseKey(text, {}, file);
  auto record = key ? dkim::publicKeyRecord(key.value()) : Result<std::string>(key.error());
  if (!record) {
    err << "sluicectl dkim keygen: " << record.message() << "\n";
    return 1;
  }
  struct stat st {};
  std::string ownerName = ::stat(file.c_str(), &st) == 0 ? userName(st.st_uid) : "?";
  out << "wrote " << file << " (" << dkim::toString(*kt) << (*kt == dkim::KeyType::kRsa ? " " + bitsText + " bits" : "")
      << ", mode 0600; the daemons refuse keys readable by group or others)\n"
      << "owner " << ownerName << " (" << owner->why << ")\n\n"
      << "Publish this DNS record:\n" << zoneLine(selector, domain, record.value()) << "\n\n"
      << "Sign with it (sluice.yaml):\n"
      << "dkim:\n  signing_table:\n    - domain: " << domain << "\n      signatures:\n"
      << "        - { selector: " << selector << ", key_file: " << file << " }\n\n"
      << "Then: sluicectl dkim check " << domain << " " << selector << "\n";
  if (owner->unknownReader) {
    err << "sluicectl dkim keygen: note: the key belongs to root: no configuration was loaded and there is no user "
        << defaultRunAsUser() << " (run_as_user's default). sluice-milter reads keys as its run_as_user and cannot "
        << "read this one: chown it to that user (chown USER: " << (madeDir.empty() ? file : madeDir + " " + file)
        << "), or run keygen with --config.\n";
  }
  // A key the milter's user owns is still unreadable in a directory it cannot enter.
  std::string dir = file.find('/') == std::string::npos ? "." : file.substr(0, file.rfind('/'));
  if (dir.empty()) dir = "/";
  if (who && !canEnter(dir, *who)) {
    struct stat ds {};
    ::stat(dir.c_str(), &ds);
    err << "sluicectl dkim keygen: warning: " << who->name << " cannot enter " << dir << " (owner "
        << userName(ds.st_uid) << ", mode " << modeString(ds.st_mode) << "), so sluice-milter cannot read the key: chown "
        << who->name << ": " << dir << "\n";
  }
  return 0;
}

// The key file the signing table uses for DOMAIN + SELECTOR, if any.
std::string keyFromConfig(const config::Config& cfg, const std::string& domain, const std::string& selector) {
  for (const auto& rule : cfg.dkim.signingTable) {
    for (const auto& sig : rule.signatures) {
      if (sig.selector != selector) continue;
      bool same = sig.domain == domain;
      if (sig.domain == "%" || sig.domain.empty()) {
        same = rule.domain == domain || rule.domain == "*" ||
               (startsWith(rule.domain, "*.") && endsWith(domain, rule.domain.substr(1)));
      }
      if (same) return sig.keyFile;
    }
  }
  return "";
}

int check(const std::vector<std::string>& a, const config::Config* cfg, std::ostream& out, std::ostream& err) {
  std::vector<std::string> pos;
  std::string keyFile;
  for (size_t i = 1; i < a.size(); ++i) {
    if (takeValue(a, &i, "--key", &keyFile)) continue;
    if (startsWith(a[i], "-")) {
      err << "sluicectl dkim check: unknown option \"" << a[i] << "\"\n" << kUsage;
      return 2;
    }
    pos.push_back(a[i]);
  }
  if (pos.size() != 2 || !validDomain(toLower(pos[0])) || !validDomain(pos[1])) {
    err << "sluicectl dkim check: needs DOMAIN and SELECTOR\n" << kUsage;
    return 2;
  }
  std::string domain = toLower(pos[0]), selector = pos[1];
  std::string name = selector + "._domainkey." + domain;
  if (keyFile.empty() && cfg != nullptr) keyFile = keyFromConfig(*cfg, domain, selector);
  dns::ResolverOptions ro;
  if (cfg != nullptr) {
    ro.servers = cfg->dns.servers;
    ro.timeoutMs = static_cast<int>(cfg->dns.timeoutMs);
  }
  dns::TxtAnswer ans = dns::lookupTxt(name, ro);
  int problems = 0;
  auto problem = [&](const std::string& m) {
    out << "PROBLEM " << m << "\n";
    ++problems;
  };
  switch (ans.status) {
    case dns::TxtAnswer::Status::kNxDomain:
      problem(name + ": no such name (NXDOMAIN): publish the record `sluicectl dkim keygen` printed");
      return 1;
    case dns::TxtAnswer::Status::kNoData:
      problem(name + ": the name exists but has no TXT record");
      return 1;
    case dns::TxtAnswer::Status::kFailure:
      err << "sluicectl dkim check: DNS lookup of " << name << " failed: " << ans.error
          << " (check dns.servers; this says nothing about the record)\n";
      return 1;
    case dns::TxtAnswer::Status::kOk: break;
  }
  std::vector<std::string> dkimRecords;
  for (const auto& r : ans.records) {
    if (startsWith(trim(r), "v=DKIM1") || r.find("p=") != std::string::npos) dkimRecords.push_back(r);
  }
  if (dkimRecords.empty()) {
    problem(name + ": TXT record(s) found, none a DKIM key record");
    return 1;
  }
  if (dkimRecords.size() > 1) {
    problem(name + ": " + std::to_string(dkimRecords.size()) + " key records; verifiers pick one at random: keep one");
  }
  out << "record  " << name << " TXT \"" << dkimRecords[0] << "\"\n";
  auto rc = dkim::checkKeyRecord(dkimRecords[0]);
  for (const auto& p : rc.problems) problem(p);
  for (const auto& n : rc.notes) out << "NOTE    " << n << "\n";
  if (rc.problems.empty()) {
    out << "OK      syntax: k=" << rc.keyType << ", " << rc.bits << "-bit public key\n";
  }
  if (keyFile.empty()) {
    out << "NOTE    no key file to compare with (give --key FILE, or sign with it in dkim.signing_table)\n";
  } else if (!rc.publicKey.empty()) {
    auto key = dkim::loadKey(keyFile);
    if (!key) {
      problem(key.message());
    } else if (std::string diff = dkim::compareWithKey(rc, key.value()); !diff.empty()) {
      problem(diff);
    } else {
      out << "OK      matches " << keyFile << "\n";
    }
  }
  out << (problems == 0 ? "result: " + name + " is ready to verify Sluice's signatures\n"
                        : "result: " + std::to_string(problems) + " problem(s)\n");
  return problems == 0 ? 0 : 1;
}

}  // namespace

int runDkimCommand(const std::vector<std::string>& args, const config::Config* cfg, std::ostream& out,
                   std::ostream& err) {
  if (auto done = helpOrNoSubcommand(args, kUsage, out, err)) return *done;
  if (args[0] == "keygen") return keygen(args, cfg, out, err);
  if (args[0] == "check") return check(args, cfg, out, err);
  err << "sluicectl dkim: unknown command \"" << args[0] << "\"\n" << kUsage;
  return 2;
}

}  // namespace sluice::ctl
