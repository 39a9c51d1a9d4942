// bounce_bench.cc - parses every file of a directory N times in one process with lib/bounce and
// prints one line: "sluice messages=M recipients=R seconds=S msgs_per_s=X". Each pass reads each
// file again (as Sisimai->make does on the Perl side of bench/bounce/run.sh) and splits mbox
// files; --preload reads them once before timing instead. "allocator=" names the malloc the
// binary runs with (tcmalloc when the build links it, as it does the programs: CMakeLists.txt).
#include <algorithm>
#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
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
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(argv[2]))
    if (e.is_regular_file()) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  int dir = ::open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) {
    std::perror(argv[2]);
    return 1;
  }
  // A file into buf (reused: no allocation once it is large enough): openat() on the directory
  // (no path walk), read() until a short read, which for a regular file is its end.
  std::string buf(1 << 16, '\0');
  auto read = [&](const std::string& name) -> std::string_view {
    int fd = ::openat(dir, name.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {};
    size_t len = 0;
    for (;;) {
      ssize_t got = ::read(fd, buf.data() + len, buf.size() - len);
      if (got <= 0) break;
      len += static_cast<size_t>(got);
      if (len < buf.size()) break;
      buf.resize(buf.size() * 2);
    }
    ::close(fd);
    return std::string_view(buf.data(), len);
  };
  if (preload)
    for (const auto& name : names) files.emplace_back(read(name));
  int n = std::atoi(argv[3]);
  size_t messages = 0, recipients = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    for (size_t k = 0; k < names.size(); ++k) {
      std::string_view raw = preload ? std::string_view(files[k]) : read(names[k]);
      for (const auto& r : (*parser)->parseFile(raw)) {
        ++messages;
        recipients += r.recipients.size();
      }
    }
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const char* allocator = ::dlsym(RTLD_DEFAULT, "tc_version") ? "tcmalloc" : "glibc";
  std::printf("sluice messages=%zu recipients=%zu seconds=%.3f msgs_per_s=%.1f allocator=%s\n", messages, recipients,
              s, s > 0 ? static_cast<double>(messages) / s : 0.0, allocator);
  return 0;
}
