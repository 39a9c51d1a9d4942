// config_params_man_test.cc - `sluicectl config params --man`, the generator of sluice.yaml(5)'s
// KEYS section: every key of the params table has documentation and appears in the page.
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "config/params.h"
#include "config_cmd.h"

namespace sluice::ctl {
namespace {

TEST(ConfigParamsMan, EveryKeyIsDocumentedInTheManPage) {
  std::ostringstream out, err;
  ASSERT_TRUE(writeParamsRoff(out, err)) << err.str();
  EXPECT_EQ(err.str(), "");
  std::string roff = out.str();
  for (const auto& p : config::allParams()) {
    std::string path = p.path;
    bool asKey = roff.find("\n.B " + path + "\n") != std::string::npos;
    bool asSection = roff.find(".SS " + path + "\n") != std::string::npos;
    EXPECT_TRUE(asKey || asSection) << "sluice.yaml(5) does not document " << path;
    EXPECT_NE(std::string(p.doc), "") << path << " has no documentation";
  }
}

TEST(ConfigParamsMan, RoffIsSafe) {
  std::ostringstream out, err;
  ASSERT_TRUE(writeParamsRoff(out, err));
  std::istringstream lines(out.str());
  std::string line;
  while (std::getline(lines, line)) {
    ASSERT_FALSE(line.empty()) << "blank lines are not roff";
    if (line[0] == '.') {
      std::string macro = line.substr(0, line.find(' '));
      EXPECT_TRUE(macro == ".SS" || macro == ".TP" || macro == ".B" || macro == ".br" || macro == ".PP")
          << "unexpected request " << line;
    }
    EXPECT_NE(line[0], '\'') << line;
  }
}

TEST(ConfigParamsMan, CommandLine) {
  std::ostringstream out, err;
  EXPECT_EQ(runConfigCommand({"params", "--man"}, "/nonexistent", out, err), 0);
  EXPECT_NE(out.str().find(".B run_as_user\n"), std::string::npos);
  std::ostringstream out2, err2;
  EXPECT_EQ(runConfigCommand({"params", "--bogus"}, "/nonexistent", out2, err2), 2);
}

}  // namespace
}  // namespace sluice::ctl
