// net_addr.cc - see net_addr.h.
#include "base/net_addr.h"

#include <arpa/inet.h>

#include <cstring>

#include "base/strings.h"

namespace sluice {

static const uint8_t kV4MappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool IpAddr::isV4() const { return std::memcmp(bytes.data(), kV4MappedPrefix, 12) == 0; }

std::string IpAddr::toString() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (isV4()) {
    inet_ntop(AF_INET, bytes.data() + 12, buf, sizeof buf);
  } else {
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  }
  return buf;
}

std::optional<IpAddr> parseIp(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddr a;
  in_addr v4{};
  if (inet_pton(AF_INET, buf, &v4) == 1) {
    std::memcpy(a.bytes.data(), kV4MappedPrefix, 12);
    std::memcpy(a.bytes.data() + 12, &v4, 4);
    return a;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, buf, &v6) == 1) {
    std::memcpy(a.bytes.data(), &v6, 16);
    return a;
  }
  return std::nullopt;
}

bool Cidr::contains(const IpAddr& a) const {
  int full = prefixLen / 8;
  if (std::memcmp(net.bytes.data(), a.bytes.data(), static_cast<size_t>(full)) != 0) return false;
  int rest = prefixLen % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (net.bytes[static_cast<size_t>(full)] & mask) == (a.bytes[static_cast<size_t>(full)] & mask);
}

std::optional<Cidr> parseCidr(std::string_view text) {
  text = trim(text);
  size_t slash = text.find('/');
  auto addr = parseIp(text.substr(0, slash));
  if (!addr) return std::nullopt;
  int maxLen = addr->isV4() ? 32 : 128;
  int len = maxLen;
  if (slash != std::string_view::npos) {
    auto n = parseUint(text.substr(slash + 1));
    if (!n || *n > static_cast<uint64_t>(maxLen)) return std::nullopt;
    len = static_cast<int>(*n);
  }
  Cidr c;
  c.prefixLen = addr->isV4() ? len + 96 : len;
  c.text = std::string(text);
  // Normalise the network address: clear host bits so contains() compares cleanly.
  for (int bit = c.prefixLen; bit < 128; ++bit) {
    addr->bytes[static_cast<size_t>(bit / 8)] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  c.net = *addr;
  return c;
}

}  // namespace sluice
