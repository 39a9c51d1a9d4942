// policy_request.cc - see policy_request.h.
#include "decision/policy_request.h"

#include <cstring>

namespace sluice::decision {
namespace {

struct NameEntry {
  std::string_view name;
  Attr attr;
};

constexpr NameEntry kNames[] = {
    {"request", Attr::kRequest},
    {"protocol_state", Attr::kProtocolState},
    {"protocol_name", Attr::kProtocolName},
    {"helo_name", Attr::kHeloName},
    {"queue_id", Attr::kQueueId},
    {"sender", Attr::kSender},
    {"recipient", Attr::kRecipient},
    {"recipient_count", Attr::kRecipientCount},
    {"client_address", Attr::kClientAddress},
    {"client_name", Attr::kClientName},
    {"reverse_client_name", Attr::kReverseClientName},
    {"instance", Attr::kInstance},
    {"sasl_method", Attr::kSaslMethod},
    {"sasl_username", Attr::kSaslUsername},
    {"sasl_sender", Attr::kSaslSender},
    {"size", Attr::kSize},
    {"etrn_domain", Attr::kEtrnDomain},
    {"stress", Attr::kStress},
    {"ccert_subject", Attr::kCcertSubject},
    {"ccert_issuer", Attr::kCcertIssuer},
    {"ccert_fingerprint", Attr::kCcertFingerprint},
    {"ccert_pubkey_fingerprint", Attr::kCcertPubkeyFingerprint},
    {"encryption_protocol", Attr::kEncryptionProtocol},
    {"encryption_cipher", Attr::kEncryptionCipher},
    {"encryption_keysize", Attr::kEncryptionKeysize},
    {"server_address", Attr::kServerAddress},
    {"server_port", Attr::kServerPort},
    {"client_port", Attr::kClientPort},
    {"policy_context", Attr::kPolicyContext},
    {"compatibility_level", Attr::kCompatibilityLevel},
    {"mail_version", Attr::kMailVersion},
};

bool lookupName(std::string_view name, Attr* out) {
  // Linear over 31 short names, length and first character compared first: cheaper than hashing.
  for (const auto& e : kNames) {
    if (e.name.size() == name.size() && e.name[0] == name[0] && e.name == name) {
      *out = e.attr;
      return true;
    }
  }
  return false;
}

bool validName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '{' || c == '}' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

const char* attrName(Attr a) {
  for (const auto& e : kNames) {
    if (e.attr == a) return e.name.data();  // the literals are NUL-terminated
  }
  return "?";
}

Status parsePolicyRequest(std::string_view block, PolicyRequest* out) {
  out->clear();
  if (std::memchr(block.data(), '\0', block.size()) != nullptr) return makeError("NUL byte in request");
  size_t count = 0;
  size_t pos = 0;
  while (pos < block.size()) {
    size_t nl = block.find('\n', pos);
    std::string_view line = block.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? block.size() : nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (++count > kMaxAttributes) return makeError("more than " + std::to_string(kMaxAttributes) + " attributes");
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) return makeError("malformed line (no '='): \"" + std::string(line.substr(0, 60)) + "\"");
    std::string_view name = line.substr(0, eq);
    if (!validName(name)) return makeError("bad attribute name \"" + std::string(name.substr(0, 60)) + "\"");
    Attr a;
    if (lookupName(name, &a)) {
      out->set(a, line.substr(eq + 1));
    } else {
      out->countUnknown();
    }
  }
  std::string_view req = out->get(Attr::kRequest);
  if (req != "smtpd_access_policy") {
    return makeError(req.empty() ? "request attribute missing"
                                 : "unsupported request \"" + std::string(req.substr(0, 60)) + "\"");
  }
  return okStatus();
}

size_t findRequestEnd(std::string_view buf, size_t* scan, size_t* blockEnd) {
  // The request ends at a line that is empty (or just "\r"). *scan is always a line start.
  size_t pos = *scan;
  while (pos < buf.size()) {
    size_t nl = buf.find('\n', pos);
    if (nl == std::string_view::npos) break;
    size_t len = nl - pos;
    if (len == 0 || (len == 1 && buf[pos] == '\r')) {
      *blockEnd = pos;
      *scan = 0;
      return nl + 1;
    }
    pos = nl + 1;
  }
  *scan = pos;
  return std::string_view::npos;
}

Status appendAttribute(std::string* out, std::string_view name, std::string_view value) {
  if (value.find('\n') != std::string_view::npos || value.find('\0') != std::string_view::npos) {
    return makeError(std::string("attribute ") + std::string(name) + " contains a line feed or NUL");
  }
  out->append(name);
  out->push_back('=');
  out->append(value);
  out->push_back('\n');
  return okStatus();
}

Result<std::string> parsePolicyReply(std::string_view block) {
  size_t pos = 0;
  while (pos < block.size()) {
    size_t nl = block.find('\n', pos);
    std::string_view line = block.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? block.size() : nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.substr(0, 7) == "action=") {
      std::string_view v = line.substr(7);
      if (v.empty()) return makeError("empty action in policy reply");
      return std::string(v);
    }
  }
  return makeError("policy reply has no action attribute");
}

}  // namespace sluice::decision
