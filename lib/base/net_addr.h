// net_addr.h - IPv4/IPv6 addresses and CIDR networks, for client_networks in identities and
// client_network rate-limit keys. Addresses are compared in their 16-byte IPv6 form (IPv4 is
// mapped to ::ffff:a.b.c.d), so "192.0.2.1" and "::ffff:192.0.2.1" are the same client.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

struct IpAddr {
  std::array<uint8_t, 16> bytes{};
  bool isV4() const;
  std::string toString() const;
  bool operator==(const IpAddr&) const = default;
};

std::optional<IpAddr> parseIp(std::string_view text);

struct Cidr {
  IpAddr net;
  int prefixLen = 128;  // in the 128-bit (mapped) space
  std::string text;     // as written in the config, for logs
  bool contains(const IpAddr& a) const;
};

// "192.0.2.0/24", "2001:db8::/32", or a bare address (a /32 or /128).
std::optional<Cidr> parseCidr(std::string_view text);

}  // namespace sluice
