// fuzz_dkim_headers.cc - libFuzzer target for lib/dkim: header-block parsing, header
// canonicalization and signing. The input is a whole message (headers, empty line, body). Any
// input must give a parse error or fields; never a crash, a hang or a leak. Invariants checked:
//   - every error has a message;
//   - both canonical forms of each field end with CRLF;
//   - a field rebuilt with add(name, value) (the milter path) is byte-identical to the parsed one;
//   - a message with exactly one From: signs (Ed25519 key generated once, in-process), and each
//     signature verifies over the signed header data recomputed from its own field (so folding
//     and canonicalization agree, whatever the headers hold).
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "dkim/signer.h"

namespace {

using namespace sluice::dkim;

const DkimKey& testKey() {
  static const DkimKey* key = [] {
    auto pem = generateKey(KeyType::kEd25519);
    if (!pem) std::abort();
    auto k = parseKey(*pem, {}, "fuzz-ed25519");
    if (!k) std::abort();
    return new DkimKey(std::move(*k));
  }();
  return *key;
}

void check(bool ok) {
  if (!ok) std::abort();
}

void checkCanonAndAdd(const MessageHeaders& headers) {
  MessageHeaders rebuilt(HeaderLimits{.maxHeaders = 100000, .maxLineLength = 1 << 20, .maxTotal = 1 << 24});
  for (const auto& f : headers.fields()) {
    std::string relaxed = canonHeader(HeaderCanon::kRelaxed, f.raw);
    std::string simple = canonHeader(HeaderCanon::kSimple, f.raw);
    check(relaxed.size() >= 3 && relaxed.compare(relaxed.size() - 2, 2, "\r\n") == 0);
    check(simple == f.raw + "\r\n");
    if (f.raw.compare(0, f.name.size() + 1, f.name + ":") != 0) continue;  // "Name :" (obsolete)
    auto st = rebuilt.add(f.name, f.value());
    check(st.ok() && rebuilt.fields().back().raw == f.raw);
  }
}

// Verifies one of our fields with the key, over data recomputed from the field itself.
bool verifies(const std::string& field, const MessageHeaders& headers, const std::vector<std::string>& hList,
              HeaderCanon canon) {
  std::string tmpl = withoutSignatureValue(field);
  auto b = base64Decode(std::string_view(field).substr(tmpl.size()));
  auto digest = sha256(signedHeaderData(headers, hList, canon, tmpl));
  if (!b || !digest) return false;
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  bool ok = EVP_DigestVerifyInit(md, nullptr, nullptr, nullptr, testKey().pkey()) == 1 &&
            EVP_DigestVerify(md, reinterpret_cast<const unsigned char*>(b->data()), b->size(), digest->data(),
                             digest->size()) == 1;
  EVP_MD_CTX_free(md);
  return ok;
}

void checkSigning(const MessageHeaders& headers, std::string_view body) {
  SignatureSpec relaxed;
  relaxed.domain = "example.com";
  relaxed.selector = "fuzz";
  relaxed.key = &testKey();
  relaxed.timestamp = 1700000000;
  SignatureSpec simple = relaxed;
  simple.headerCanon = HeaderCanon::kSimple;
  simple.bodyCanon = BodyCanon::kSimple;
  simple.headers = {"from"};
  for (const auto& f : headers.fields()) {
    if (simple.headers.size() < 8 && f.name.find(';') == std::string::npos) simple.headers.push_back(f.name);
  }
  Signer signer({relaxed, simple});
  signer.headers(headers);
  for (size_t i = 0; i < body.size(); i += 1000) signer.body(body.substr(i, 1000));
  auto sigs = signer.finish();
  if (headers.fromCount() != 1) {
    check(!sigs.ok() && !sigs.message().empty());
    return;
  }
  check(sigs.ok() && sigs->size() == 2);
  check(verifies((*sigs)[0], headers, expandHeaderList(relaxed.policy, headers), HeaderCanon::kRelaxed));
  check(verifies((*sigs)[1], headers, simple.headers, HeaderCanon::kSimple));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 256 * 1024) return 0;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  HeaderLimits limits{.maxHeaders = 300, .maxLineLength = 8192, .maxTotal = 128 * 1024};
  auto headers = MessageHeaders::parse(in, limits);
  if (!headers) {
    check(!headers.message().empty());
    return 0;
  }
  check(headers->bodyOffset() <= in.size());
  checkCanonAndAdd(*headers);
  checkSigning(*headers, in.substr(headers->bodyOffset()));
  return 0;
}
