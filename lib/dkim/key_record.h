// key_record.h - the DKIM key record published in DNS (RFC 6376 3.6.1, RFC 8463 4): its tag list
// parsed and checked the way verifiers read it, for `sluicectl dkim check`.
//
// Tag-list syntax (RFC 6376 3.2): "tag=value" separated by ';', white space around both allowed,
// a trailing ';' allowed; a duplicate tag makes the record invalid; unknown tags are ignored.
// Problems (the record will not verify anything) vs notes (it works, but look at this).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "dkim/dkim_key.h"

namespace sluice::dkim {

struct KeyRecordCheck {
  std::map<std::string, std::string> tags;
  std::string keyType = "rsa";    // k= (default rsa)
  std::string publicKey;          // p= decoded (SubjectPublicKeyInfo for rsa, 32 bytes for ed25519)
  int bits = 0;                   // rsa: modulus size; ed25519: 256
  bool revoked = false;           // p= empty
  bool testing = false;           // t=y
  std::vector<std::string> problems;
  std::vector<std::string> notes;
};

KeyRecordCheck checkKeyRecord(std::string_view record);

// Compares a parsed record with a private key: empty when the record publishes its public half,
// else what differs.
std::string compareWithKey(const KeyRecordCheck& record, const DkimKey& key);

}  // namespace sluice::dkim
