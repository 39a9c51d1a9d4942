// bounce_bench.cc - parses every file of a directory N times in one process with lib/bounce and
// prints one line: "sluice messages=M recipients=R seconds=S msgs_per_s=X". Each pass reads each
// file again (as Sisimai->make does on the Perl side of bench/bounce/run.sh) and splits mbox
// files; --preload reads them once before timing instead.
#include <algorithm>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "bounce/bounce.h"

int main(int argc, char** argv) {
  bool preload = argc == 5 && std::string(argv[4]) == "--preload";
  if (argc != 4 && !preload) {
    std::fprintf(stderr, "usage: %s RULES DIR N [--preload]\n", argv[0]);
    return 2;
  }
  auto parser = sluice::bounce::BounceParser::load(argv[1]);
  if (!parser) {
    std::fprintf(stderr, "%s\n", parser.message().c_str());
    return 1;
  }
  std::vector<std::string> files;
  std::vector<std::filesystem::path> paths;
  for (const auto& e : std::filesystem::directory_iterator(argv[2]))
    if (e.is_regular_file()) paths.push_back(e.path());
  std::sort(paths.begin(), paths.end());
  auto read = [](const std::filesystem::path& p) {
    std::string data;
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return data;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_size > 0) {
      data.resize(static_cast<size_t>(st.st_size));
      ssize_t got = ::read(fd, data.data(), data.size());
      data.resize(got > 0 ? static_cast<size_t>(got) : 0);
    }
    ::close(fd);
    return data;
  };
  if (preload)
    for (const auto& p : paths) files.push_back(read(p));
  int n = std::atoi(argv[3]);
  size_t messages = 0, recipients = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    for (size_t k = 0; k < paths.size(); ++k) {
      std::string fresh = preload ? std::string() : read(paths[k]);
      for (const auto& r : (*parser)->parseFile(preload ? files[k] : fresh)) {
        ++messages;
        recipients += r.recipients.size();
      }
    }
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("sluice messages=%zu recipients=%zu seconds=%.3f msgs_per_s=%.1f\n", messages, recipients, s,
              s > 0 ? static_cast<double>(messages) / s : 0.0);
  return 0;
}
