// bounce_bench.cc - parses every file of a directory N times in one process with lib/bounce
// (files read into memory first, mbox files split per pass as in production) and prints one
// line: "sluice messages=M recipients=R seconds=S msgs_per_s=X". Used by bench/bounce/run.sh.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bounce/bounce.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s RULES DIR N\n", argv[0]);
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
  for (const auto& p : paths) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    files.push_back(ss.str());
  }
  int n = std::atoi(argv[3]);
  size_t messages = 0, recipients = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    for (const auto& f : files) {
      for (const auto& r : (*parser)->parseFile(f)) {
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
