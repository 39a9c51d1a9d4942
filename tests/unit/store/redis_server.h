// redis_server.h - a throw-away redis-server for tests that need a real Redis: started on a free
// loopback port in its own temporary directory, without persistence, and stopped by its PID.
//
//   RedisServer redis;
//   if (!RedisServer::installed()) GTEST_SKIP() << "redis-server is not installed";
//   ASSERT_TRUE(redis.start()) << redis.log();
//   auto cfg = redis.config();  // a config::RedisConfig pointing at it
//
// start() picks a port by binding port 0, then launches redis-server on it and waits until it
// answers PING (a port taken in between makes it retry with another). The destructor stops the
// server and removes the directory. Header-only so that any test can include it.
#pragma once

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"

namespace sluice::testing {

class RedisServer {
 public:
  RedisServer() = default;
  ~RedisServer() { stop(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  static bool installed() { return !findProgram().empty(); }

  // A loopback port nothing listens on right now.
  static int freePort() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port = ntohs(a.sin_port);
    }
    ::close(fd);
    return port;
  }

  // extraArgs go to redis-server as they are, e.g. {"--requirepass", "secret"}.
  bool start(const std::vector<std::string>& extraArgs = {}) {
    if (dir_.empty()) {
      std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-redis-XXXXXX").string();
      if (mkdtemp(tmpl.data()) == nullptr) return false;
      dir_ = tmpl;
    }
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = freePort();
      if (port_ != 0 && launch(extraArgs) && waitReady(extraArgs)) return true;
      stopProcess();
    }
    return false;
  }

  void stop() {
    stopProcess();
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
      dir_.clear();
    }
  }

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  config::RedisConfig config(const std::string& prefix = "sluice:") const {
    config::RedisConfig c;
    c.address = address();
    c.keyPrefix = prefix;
    c.timeoutMs = 50;
    c.connections = 1;
    c.reconnectMs = 500;
    return c;
  }

  std::string log() const {
    std::ifstream in(dir_ + "/redis.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return "redis-server log:\n" + ss.str();
  }

 private:
  static std::string findProgram() {
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path != nullptr ? path : "/usr/bin:/usr/local/bin");
    std::string d;
    while (std::getline(dirs, d, ':')) {
      std::string p = (d.empty() ? std::string(".") : d) + "/redis-server";
      if (::access(p.c_str(), X_OK) == 0) return p;
    }
    return "";
  }

  bool launch(const std::vector<std::string>& extraArgs) {
    std::string program = findProgram();
    std::vector<std::string> args = {program, "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", "no", "--daemonize", "no", "--dir", dir_, "--logfile",
                                     dir_ + "/redis.log"};
    args.insert(args.end(), extraArgs.begin(), extraArgs.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      // The server must not outlive a test that crashes, nor hold its stdout/stderr: ctest
      // waits for those pipes to close.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      int devnull = ::open("/dev/null", O_RDWR);
      if (devnull >= 0) {
        ::dup2(devnull, 0);
        ::dup2(devnull, 1);
        ::dup2(devnull, 2);
      }
      ::execv(program.c_str(), argv.data());
      ::_exit(127);
    }
    return pid_ > 0;
  }

  // Up when INFO (after AUTH if --requirepass is among extraArgs) names our process: another
  // test's server that took the port first does not count.
  bool waitReady(const std::vector<std::string>& extraArgs) {
    std::string password;
    for (size_t i = 0; i + 1 < extraArgs.size(); ++i) {
      if (extraArgs[i] == "--requirepass") password = extraArgs[i + 1];
    }
    std::string want = "process_id:" + std::to_string(pid_) + "\r\n";
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      timeval tv{0, 200'000};
      redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
      bool ours = false;
      if (c != nullptr && c->err == 0) {
        if (!password.empty()) freeReplyObject(redisCommand(c, "AUTH %s", password.c_str()));
        auto* r = static_cast<redisReply*>(redisCommand(c, "INFO server"));
        ours = r != nullptr && r->type == REDIS_REPLY_STRING && std::string(r->str, r->len).find(want) != std::string::npos;
        if (r != nullptr) freeReplyObject(r);
      }
      if (c != nullptr) redisFree(c);
      if (ours) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  void stopProcess() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 500 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (i == 300) ::kill(pid_, SIGKILL);
    }
    pid_ = -1;
  }

  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace sluice::testing
