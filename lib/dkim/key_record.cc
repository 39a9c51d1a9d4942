// key_record.cc - see key_record.h.
#include "dkim/key_record.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "base/strings.h"

namespace sluice::dkim {
namespace {

bool validTagName(std::string_view t) {
  if (t.empty() || !std::isalpha(static_cast<unsigned char>(t[0]))) return false;
  for (char c : t) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

std::string withoutSpace(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') out += c;
  }
  return out;
}

}  // namespace

KeyRecordCheck checkKeyRecord(std::string_view record) {
  KeyRecordCheck r;
  size_t index = 0;
  for (auto part : split(record, ';')) {
    std::string_view item = trim(part);
    if (item.empty()) {
      ++index;
      continue;  // a trailing ';' (or an empty item) is tolerated
    }
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      r.problems.push_back("\"" + std::string(item) + "\" is not tag=value");
      continue;
    }
    std::string name(trim(item.substr(0, eq)));
    std::string value(trim(item.substr(eq + 1)));
    if (!validTagName(name)) {
      r.problems.push_back("bad tag name \"" + name + "\"");
      continue;
    }
    if (r.tags.count(name) != 0) r.problems.push_back("tag " + name + "= appears twice (the record is invalid)");
    if (name == "v" && index != 0) r.problems.push_back("v= must be the first tag");
    r.tags[name] = value;
    ++index;
  }
  if (r.tags.count("v") != 0 && r.tags["v"] != "DKIM1") {
    r.problems.push_back("v=" + r.tags["v"] + ": must be DKIM1");
  }
  if (r.tags.count("k") != 0) r.keyType = toLower(r.tags["k"]);
  if (r.keyType != "rsa" && r.keyType != "ed25519") {
    r.problems.push_back("k=" + r.keyType + ": unknown key type (rsa or ed25519)");
  }
  if (r.tags.count("h") != 0) {
    bool sha256 = false;
    for (auto h : split(r.tags["h"], ':')) sha256 = sha256 || trim(h) == "sha256";
    if (!sha256) r.problems.push_back("h=" + r.tags["h"] + " excludes sha256, so no Sluice signature can verify");
  }
  if (r.tags.count("s") != 0) {
    bool email = false;
    for (auto s : split(r.tags["s"], ':')) email = email || trim(s) == "email" || trim(s) == "*";
    if (!email) r.problems.push_back("s=" + r.tags["s"] + " does not allow email");
  }
  if (r.tags.count("t") != 0) {
    for (auto f : split(r.tags["t"], ':')) {
      if (trim(f) == "y") r.testing = true;
    }
    if (r.testing) r.notes.push_back("t=y: testing mode, verifiers may treat signatures as unsigned");
  }
  if (r.tags.count("p") == 0) {
    r.problems.push_back("no p= tag (the public key)");
    return r;
  }
  std::string p = withoutSpace(r.tags["p"]);
  if (p.empty()) {
    r.revoked = true;
    r.problems.push_back("p= is empty: the key is revoked");
    return r;
  }
  auto der = base64Decode(p);
  if (!der) {
    r.problems.push_back("p= is not valid base64");
    return r;
  }
  r.publicKey = *der;
  if (r.keyType == "ed25519") {
    if (der->size() != 32) {
      r.problems.push_back("k=ed25519 needs p= to be 32 bytes (RFC 8463), it has " + std::to_string(der->size()));
    } else {
      r.bits = 256;
    }
  } else if (r.keyType == "rsa") {
    const auto* in = reinterpret_cast<const unsigned char*>(der->data());
    EVP_PKEY* pk = d2i_PUBKEY(nullptr, &in, static_cast<long>(der->size()));
    if (pk == nullptr) {
      r.problems.push_back("p= is not an RSA public key (SubjectPublicKeyInfo)");
    } else {
      r.bits = EVP_PKEY_get_bits(pk);
      bool rsa = EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA;
      EVP_PKEY_free(pk);
      if (!rsa) r.problems.push_back("k=rsa but p= holds another key type");
      else if (r.bits < 1024) r.problems.push_back("RSA key of " + std::to_string(r.bits) + " bits: verifiers ignore keys under 1024 bits (RFC 8301)");
      else if (r.bits < 2048) r.notes.push_back("RSA key of " + std::to_string(r.bits) + " bits: 2048 is the modern minimum");
    }
  }
  return r;
}

std::string compareWithKey(const KeyRecordCheck& record, const DkimKey& key) {
  auto mine = publicKeyRecord(key);
  if (!mine) return mine.message();
  if (record.keyType != toString(key.type())) {
    return "the record is k=" + record.keyType + ", the key file is " + toString(key.type());
  }
  KeyRecordCheck expected = checkKeyRecord(mine.value());
  if (expected.publicKey != record.publicKey) {
    return "the published p= is not the public half of " + key.source() + " (old key still published, or the wrong selector)";
  }
  return "";
}

}  // namespace sluice::dkim
