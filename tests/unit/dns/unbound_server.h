// unbound_server.h - a throw-away unbound for tests that need a real DNS server: on a free
// loopback port, answering only from the given local-zone/local-data lines (everything else
// REFUSED: nothing is ever asked of the internet or of the machine's resolver), stopped by its PID.
//
//   UnboundServer dns;
//   ASSERT_TRUE(dns.start("local-zone: \"a.test.\" static\nlocal-data: \"a.test. MX 10 mx.a.test.\"\n")) << dns.log();
//   options.servers = {dns.address()};   // "127.0.0.1@PORT"
#pragma once

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "store/redis_server.h"  // RedisServer::freePort

namespace sluice::testing {

class UnboundServer {
 public:
  ~UnboundServer() { stop(); }
  bool start(const std::string& zoneLines) {
    char tmpl[] = "/tmp/sluice-unbound.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return false;
    dir_ = tmpl;
    port_ = RedisServer::freePort();
    std::ofstream(dir_ + "/unbound.conf")
        << "server:\n  interface: 127.0.0.1@" << port_ << "\n  port: " << port_
        << "\n  do-ip6: no\n  chroot: \"\"\n  username: \"\"\n  directory: \"" << dir_
        << "\"\n  pidfile: \"\"\n  use-syslog: no\n  logfile: \"\"\n  verbosity: 1\n"
        << "  module-config: \"iterator\"\n  access-control: 127.0.0.0/8 allow\n"
        << "  local-zone: \".\" refuse\n" << indent(zoneLines) << "remote-control:\n  control-enable: no\n";
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      std::string log = dir_ + "/unbound.log", conf = dir_ + "/unbound.conf";
      FILE* f = std::freopen(log.c_str(), "w", stderr);
      (void)f;
      std::freopen("/dev/null", "w", stdout);
      ::execlp("unbound", "unbound", "-d", "-c", conf.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    // Ready when something answers on the port: unbound logs "start of service".
    for (int i = 0; i < 100; ++i) {
      if (log().find("start of service") != std::string::npos) return true;
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int st = 0;
      ::waitpid(pid_, &st, 0);
      pid_ = -1;
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
    dir_.clear();
  }
  std::string address() const { return "127.0.0.1@" + std::to_string(port_); }
  std::string log() const {
    std::ifstream in(dir_ + "/unbound.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  static std::string indent(const std::string& lines) {
    std::string out, line;
    std::istringstream in(lines);
    while (std::getline(in, line)) out += "  " + line + "\n";
    return out;
  }
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace sluice::testing
