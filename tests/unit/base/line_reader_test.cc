// line_reader_test.cc - tests for lib/base/line_reader.h: framing across chunks and the bound.
#include "base/line_reader.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice {
namespace {

std::vector<std::string> drain(LineReader& r) {
  std::vector<std::string> out;
  std::string_view line;
  while (r.nextLine(&line) == LineReader::Status::kLine) out.emplace_back(line);
  return out;
}

TEST(LineReader, SplitsAcrossChunks) {
  LineReader r(100);
  r.append("ab");
  EXPECT_TRUE(drain(r).empty());
  r.append("c\r\nde\nf");
  EXPECT_EQ(drain(r), (std::vector<std::string>{"abc", "de"}));
  r.append("\n");
  EXPECT_EQ(drain(r), (std::vector<std::string>{"f"}));
  EXPECT_EQ(r.buffered(), 0u);
}

TEST(LineReader, TooLongWithoutNewline) {
  LineReader r(8);
  r.append("123456789");
  std::string_view line;
  EXPECT_EQ(r.nextLine(&line), LineReader::Status::kTooLong);
}

TEST(LineReader, TooLongWithNewline) {
  LineReader r(4);
  r.append("12345\n");
  std::string_view line;
  EXPECT_EQ(r.nextLine(&line), LineReader::Status::kTooLong);
}

TEST(LineReader, ExactlyAtBound) {
  LineReader r(4);
  r.append("1234\n");
  std::string_view line;
  ASSERT_EQ(r.nextLine(&line), LineReader::Status::kLine);
  EXPECT_EQ(line, "1234");
}

}  // namespace
}  // namespace sluice
