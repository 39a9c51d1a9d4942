// listener.cc - see listener.h.
#include "net/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/strings.h"

namespace sluice::net {

bool parseTcpAddress(const std::string& address, asio::ip::tcp::endpoint* out) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = address.substr(0, colon);
  auto port = parseUint(std::string_view(address).substr(colon + 1));
  if (!port || *port > 65535) return false;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  asio::error_code ec;
  auto ip = asio::ip::make_address(host, ec);
  if (ec) return false;
  *out = asio::ip::tcp::endpoint(ip, static_cast<unsigned short>(*port));
  return true;
}

static Result<Acceptor> openUnix(asio::io_context& io, const std::string& path, unsigned mode, int backlog) {
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return makeError(path + ": exists and is not a socket; refusing to replace it");
    ::unlink(path.c_str());
  }
  asio::local::stream_protocol::endpoint ep(path);
  Acceptor acc(io);
  asio::error_code ec;
  acc.open(asio::generic::stream_protocol(AF_UNIX, 0), ec);
  if (!ec) acc.bind(asio::generic::stream_protocol::endpoint(ep), ec);
  if (!ec) acc.listen(backlog, ec);
  if (ec) return makeError("unix:" + path + ": " + ec.message());
  if (::chmod(path.c_str(), mode) != 0) return makeError(path + ": chmod: " + std::strerror(errno));
  return acc;
}

Result<Acceptor> openListener(asio::io_context& io, const std::string& address, unsigned unixMode, int backlog) {
  if (startsWith(address, "unix:")) return openUnix(io, address.substr(5), unixMode, backlog);
  asio::ip::tcp::endpoint tcp;
  if (!parseTcpAddress(address, &tcp)) return makeError("bad listen address \"" + address + "\"");
  Acceptor acc(io);
  asio::error_code ec;
  acc.open(asio::generic::stream_protocol(tcp.protocol().family(), IPPROTO_TCP), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(asio::generic::stream_protocol::endpoint(tcp), ec);
  if (!ec) acc.listen(backlog, ec);
  if (ec) return makeError(address + ": " + ec.message());
  return acc;
}

void setNoDelay(Socket& s) {
  if (s.local_endpoint().protocol().family() == AF_UNIX) return;
  int one = 1;
  ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

std::string peerName(const Socket& s) {
  asio::error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) return "unknown";
  const sockaddr* sa = ep.data();
  char host[INET6_ADDRSTRLEN] = {0};
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  return "unix";
}

}  // namespace sluice::net
