// listener.h - opens the listening sockets every daemon uses, from the config's address syntax:
//   "127.0.0.1:10045", "[::1]:10045" (TCP)  or  "unix:/var/spool/postfix/sluice/policy.sock".
// One generic acceptor type serves both, so servers are written once. A stale unix socket file
// left by a crash is removed before bind (but never a file that is not a socket); a unix socket
// gets the given mode. TCP sockets accepted later get TCP_NODELAY (setNoDelay): policy and milter
// replies are small and must not wait for Nagle or delayed ACKs.
#pragma once

#include <asio.hpp>
#include <string>

#include "base/result.h"

namespace sluice::net {

using Acceptor = asio::basic_socket_acceptor<asio::generic::stream_protocol>;
using Socket = asio::generic::stream_protocol::socket;

Result<Acceptor> openListener(asio::io_context& io, const std::string& address, unsigned unixMode = 0666,
                              int backlog = 4096);
// For TCP sockets: TCP_NODELAY; unix sockets: nothing.
void setNoDelay(Socket& s);
// "127.0.0.1:43210" or "unix" for log lines.
std::string peerName(const Socket& s);

// Parses "HOST:PORT" / "[V6]:PORT" into a TCP endpoint; false if it is not one.
bool parseTcpAddress(const std::string& address, asio::ip::tcp::endpoint* out);

}  // namespace sluice::net
