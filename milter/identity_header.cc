// identity_header.cc - see identity_header.h.
#include "identity_header.h"

#include "base/strings.h"

namespace sluice::milter {

bool IdentityHeader::matches(std::string_view fieldName) const {
  return enabled() && iequals(trim(fieldName), name_);
}

void IdentityHeader::begin(std::string_view authUser) {
  instances_ = 0;
  value_.clear();
  if (!enabled()) return;
  for (char c : trim(authUser)) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) value_ += c;  // never a control character in a header field
  }
}

}  // namespace sluice::milter
