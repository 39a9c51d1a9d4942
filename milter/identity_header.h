// identity_header.h - the identity header (relayd.identity_header, default X-Sluice-Auth) as
// sluice-milter owns it. sluice-relayd's relay listener believes that header from the local MTA
// (relayd.trusted_networks) and records it as the submitting customer, so the header is only
// safe because the milter, sitting in the MTA's smtpd_milters (or Sendmail's INPUT_MAIL_FILTER),
// removes every instance a client sent and adds its own with the SASL login of the session.
//
// Per message: begin() at MAIL FROM with {auth_authen}; seen() for each header field whose name
// matches (matches(): case-insensitive, blanks before the colon ignored - relayd trims them too);
// at end of message, the milter deletes instances() fields (smfi_chgheader NULL, highest index
// first) and, when value() is not empty, adds one field with it.
// Invariants: off (enabled() false) when the configured name is ""; value() never holds a CR, LF
// or other control character, so the added field is always one line.
#pragma once

#include <string>
#include <string_view>

namespace sluice::milter {

class IdentityHeader {
 public:
  explicit IdentityHeader(std::string name = "") : name_(std::move(name)) {}
  // A reloaded configuration, at the start of a message.
  void rename(std::string name) { name_ = std::move(name); }

  bool enabled() const { return !name_.empty(); }
  const std::string& name() const { return name_; }
  bool matches(std::string_view fieldName) const;

  void begin(std::string_view authUser);
  void seen() { ++instances_; }
  int instances() const { return instances_; }
  // The value to add ("" when the session did not authenticate or the header is off).
  const std::string& value() const { return value_; }

 private:
  std::string name_;
  std::string value_;
  int instances_ = 0;
};

}  // namespace sluice::milter
