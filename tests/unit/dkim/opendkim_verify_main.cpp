// opendkim_verify_main.cpp - verifies every DKIM-Signature of a message with libopendkim
// (Debian's libopendkim 2.11), the third independent verifier of lib/dkim's signatures beside
// dkimpy and Mail::DKIM. Offline: the keys come from a RECORDS file ("selector TXT-value" lines,
// as tests/e2e/dkim_verify.py reads), turned into libopendkim's DKIM_QUERY_FILE format for every
// d= the message names. Not installed; built beside unit_tests. (.cpp: the unit-test glob skips it.)
//
//   opendkim_verify RECORDS MESSAGE [WANT]   exit 0 if exactly WANT (default: at least one)
//                                            signatures were found and all of them pass
#include <unistd.h>

#include <cstdio>
#include <cstring>
// dkim.h is C: it uses _Bool and declares no C linkage of its own.
#define _Bool bool
extern "C" {
#include <opendkim/dkim.h>
}
#undef _Bool
#include <fstream>
#include <iostream>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: opendkim_verify RECORDS MESSAGE [WANT]\n";
    return 2;
  }
  std::ifstream rf(argv[1]), mf(argv[2], std::ios::binary);
  if (!rf || !mf) {
    std::cerr << "opendkim_verify: cannot read the records or the message\n";
    return 2;
  }
  std::string msg((std::istreambuf_iterator<char>(mf)), std::istreambuf_iterator<char>());
  int want = argc > 3 ? std::atoi(argv[3]) : -1;

  // Every d= of a DKIM-Signature field (folded lines included, up to the next field).
  std::set<std::string> domains;
  std::regex dtag(R"((?:^|[;\s])d=\s*([A-Za-z0-9._-]+))");
  size_t pos = 0;
  while ((pos = msg.find("DKIM-Signature:", pos)) != std::string::npos) {
    size_t end = pos;
    while ((end = msg.find('\n', end + 1)) != std::string::npos && end + 1 < msg.size() &&
           (msg[end + 1] == ' ' || msg[end + 1] == '\t')) {
    }
    std::string field = msg.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    for (std::sregex_iterator it(field.begin(), field.end(), dtag), e; it != e; ++it) domains.insert((*it)[1]);
    pos = end == std::string::npos ? msg.size() : end;
  }
  char keyFile[] = "/tmp/opendkim_verify.XXXXXX";
  int fd = mkstemp(keyFile);
  if (fd < 0) return 2;
  std::string keys, line;
  while (std::getline(rf, line)) {
    size_t sp = line.find(' ');
    if (sp == std::string::npos) continue;
    for (const auto& d : domains) keys += line.substr(0, sp) + "._domainkey." + d + " " + line.substr(sp + 1) + "\n";
  }
  if (write(fd, keys.data(), keys.size()) != static_cast<ssize_t>(keys.size())) return 2;
  close(fd);

  DKIM_STAT st;
  DKIM_LIB* lib = dkim_init(nullptr, nullptr);
  int method = DKIM_QUERY_FILE;
  dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD, &method, sizeof method);
  dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO, keyFile, strlen(keyFile));
  // Messages saved by smtp-sink have bare LF line ends: let libopendkim make them CRLF.
  unsigned int libFlags = 0;
  dkim_options(lib, DKIM_OP_GETOPT, DKIM_OPTS_FLAGS, &libFlags, sizeof libFlags);
  libFlags |= DKIM_LIBFLAGS_FIXCRLF;
  dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &libFlags, sizeof libFlags);
  DKIM* d = dkim_verify(lib, reinterpret_cast<const u_char*>("opendkim_verify"), nullptr, &st);
  if (d == nullptr) {
    std::cerr << "opendkim_verify: dkim_verify: " << dkim_getresultstr(st) << "\n";
    return 2;
  }
  dkim_chunk(d, reinterpret_cast<u_char*>(msg.data()), msg.size());
  dkim_chunk(d, nullptr, 0);
  st = dkim_eom(d, nullptr);
  DKIM_SIGINFO** sigs = nullptr;
  int nsigs = 0;
  dkim_getsiglist(d, &sigs, &nsigs);
  int passed = 0;
  for (int i = 0; i < nsigs; ++i) {
    unsigned int flags = dkim_sig_getflags(sigs[i]);
    bool ok = (flags & DKIM_SIGFLAG_PASSED) != 0 && dkim_sig_getbh(sigs[i]) == DKIM_SIGBH_MATCH;
    dkim_alg_t alg = DKIM_SIGN_UNKNOWN;
    dkim_sig_getsignalg(sigs[i], &alg);
    const char* algName = alg == DKIM_SIGN_RSASHA256 ? "rsa-sha256" : alg == DKIM_SIGN_ED25519SHA256 ? "ed25519-sha256" : "other";
    std::cout << "libopendkim: sig " << i << " d=" << dkim_sig_getdomain(sigs[i]) << " s="
              << dkim_sig_getselector(sigs[i]) << " a=" << algName << ": "
              << (ok ? "PASS" : std::string("FAIL (") + dkim_sig_geterrorstr(dkim_sig_geterror(sigs[i])) + ")")
              << "\n";
    passed += ok ? 1 : 0;
  }
  std::cout << "libopendkim: " << passed << " of " << nsigs << " passed (dkim_eom: " << dkim_getresultstr(st) << ")\n";
  dkim_free(d);
  dkim_close(lib);
  unlink(keyFile);
  bool good = nsigs > 0 && passed == nsigs && (want < 0 || nsigs == want);
  return good ? 0 : 1;
}
