// main.cc - sluicectl: the whole command line is handled by runSluicectl (dispatch.cc).
#include <iostream>
#include <string>
#include <vector>

#include "dispatch.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return sluice::ctl::runSluicectl(args, std::cin, std::cout, std::cerr);
}
