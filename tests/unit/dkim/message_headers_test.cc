// message_headers_test.cc - tests for lib/dkim/message_headers.h: the parsed fields keep order and
// bytes (folding as CRLF), lookups, milter-style add(), and the bad-input table (no colon, 10,000
// headers, a 1 MB line, NUL bytes, ...): each is a clean error, never a crash.
#include "dkim/message_headers.h"

#include <gtest/gtest.h>

#include <chrono>

namespace sluice::dkim {
namespace {

TEST(MessageHeaders, ParsesFieldsInOrder) {
  std::string msg =
      "Received: from a\r\n\tby b;\r\n  Fri, 1 Jan 2021\r\nFrom: A <a@example.com>\r\n"
      "Subject : spaced\r\nX-8bit: caf\xc3\xa9\r\n\r\nbody\r\n";
  auto h = MessageHeaders::parse(msg);
  ASSERT_TRUE(h) << h.message();
  ASSERT_EQ(h->size(), 4u);
  EXPECT_EQ(h->fields()[0].name, "Received");
  EXPECT_EQ(h->fields()[0].raw, "Received: from a\r\n\tby b;\r\n  Fri, 1 Jan 2021");
  EXPECT_EQ(h->fields()[2].name, "Subject");
  EXPECT_EQ(h->fields()[2].value(), " spaced");
  EXPECT_EQ(msg.substr(h->bodyOffset()), "body\r\n");
  EXPECT_EQ(h->fromCount(), 1u);
}

TEST(MessageHeaders, BareLfBecomesCrlf) {
  auto h = MessageHeaders::parse("From: a@b\nTo: x,\n\ty\n\nbody\n");
  ASSERT_TRUE(h) << h.message();
  ASSERT_EQ(h->size(), 2u);
  EXPECT_EQ(h->fields()[1].raw, "To: x,\r\n\ty");
  EXPECT_EQ(h->bodyOffset(), 21u);
}

TEST(MessageHeaders, HeadersOnlyAndNoFinalNewline) {
  auto h = MessageHeaders::parse("From: a@b\r\nSubject: x");
  ASSERT_TRUE(h) << h.message();
  EXPECT_EQ(h->size(), 2u);
  EXPECT_EQ(h->bodyOffset(), 21u);
  auto empty = MessageHeaders::parse("");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  auto onlyBody = MessageHeaders::parse("\r\nbody");
  ASSERT_TRUE(onlyBody);
  EXPECT_EQ(onlyBody->bodyOffset(), 2u);
}

TEST(MessageHeaders, FindAllIsCaseInsensitive) {
  auto h = MessageHeaders::parse("from: a@b\r\nTo: 1\r\nTO: 2\r\nFROM: c@d\r\n\r\n");
  ASSERT_TRUE(h);
  auto to = h->findAll("to");
  ASSERT_EQ(to.size(), 2u);
  EXPECT_EQ(to[1]->raw, "TO: 2");
  EXPECT_EQ(h->fromCount(), 2u);
  EXPECT_EQ(h->count("cc"), 0u);
}

TEST(MessageHeaders, BadInputTable) {
  struct Case { std::string name; std::string input; std::string wantError; };
  std::string tenThousand;
  for (int i = 0; i < 10000; ++i) tenThousand += "X-H" + std::to_string(i) + ": v\r\n";
  std::string bigTotal;
  for (int i = 0; i < 20; ++i) bigTotal += "X-Big: " + std::string(60000, 'a') + "\r\n";
  const Case cases[] = {
      {"no colon", "From: a@b\r\nThis line has no colon\r\n\r\n", "header line 2: header field without a colon"},
      {"mbox From_ line", "From someone Fri Jan  1 00:00:00 2021\r\n", "malformed field name"},
      {"continuation first", " folded: x\r\n", "header line 1: continuation line before any field"},
      {"NUL in value", std::string("From: a\0b\r\n", 11), "header line 1: contains a NUL byte"},
      {"NUL in name", std::string("Fr\0m: a\r\n", 9), "contains a NUL byte"},
      {"10,000 headers", tenThousand, "more than 1000 header fields"},
      {"1 MB line", "Subject: " + std::string(1 << 20, 'x') + "\r\n\r\n", "header line 1: longer than 65536 bytes"},
      {"1 MB line, no line end", "Subject: " + std::string(1 << 20, 'x'), "longer than 65536 bytes"},
      {"total over 1 MiB", bigTotal, "header block longer than 1048576 bytes"},
      {"space in name", "Bad Name: x\r\n", "malformed field name"},
      {"empty name", ": x\r\n", "malformed field name"},
      {"8-bit name", "Caf\xc3\xa9: x\r\n", "malformed field name"},
  };
  for (const auto& c : cases) {
    auto h = MessageHeaders::parse(c.input);
    ASSERT_FALSE(h) << c.name << ": parsed, want error containing \"" << c.wantError << "\"";
    EXPECT_NE(h.message().find(c.wantError), std::string::npos)
        << c.name << ": got \"" << h.message() << "\", want it to contain \"" << c.wantError << "\"";
  }
}

TEST(MessageHeaders, LimitsAreParameters) {
  HeaderLimits small{.maxHeaders = 2, .maxLineLength = 20, .maxTotal = 100};
  EXPECT_TRUE(MessageHeaders::parse("A: 1\r\nB: 2\r\n\r\n", small));
  EXPECT_FALSE(MessageHeaders::parse("A: 1\r\nB: 2\r\nC: 3\r\n\r\n", small));
  EXPECT_FALSE(MessageHeaders::parse("A: 123456789012345678901234\r\n\r\n", small));
  EXPECT_TRUE(MessageHeaders::parse("A: 12345678901234567\r\n\r\n", small));  // exactly 20
  // The body does not count: the block ends at the empty line.
  EXPECT_TRUE(MessageHeaders::parse("A: 1\r\n\r\n" + std::string(1000, 'b'), small));
}

TEST(MessageHeaders, HugeInputIsRejectedQuickly) {
  std::string huge(64 << 20, 'x');  // 64 MB without a line end
  auto start = std::chrono::steady_clock::now();
  auto h = MessageHeaders::parse(huge);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  EXPECT_FALSE(h);
  EXPECT_LT(ms.count(), 50) << "the parser must stop at the line limit, not scan the whole input";
}

TEST(MessageHeaders, AddLikeAMilter) {
  MessageHeaders h;
  ASSERT_TRUE(h.add("From", " a@example.com"));
  ASSERT_TRUE(h.add("To", " x,\n\ty"));
  ASSERT_TRUE(h.add("Cc", " x,\r\n y"));
  EXPECT_EQ(h.fields()[1].raw, "To: x,\r\n\ty");
  EXPECT_EQ(h.fields()[2].raw, "Cc: x,\r\n y");
  EXPECT_FALSE(h.add("Bad Name", "x"));
  EXPECT_FALSE(h.add("X", "a\nb"));  // a line break must be followed by WSP
  EXPECT_FALSE(h.add("X", "a\n"));
  EXPECT_FALSE(h.add("X", std::string("a\0b", 3)));
  MessageHeaders small(HeaderLimits{.maxHeaders = 1, .maxLineLength = 10, .maxTotal = 1000});
  EXPECT_FALSE(small.add("Subject", " this is longer than ten"));
  EXPECT_TRUE(small.add("A", " 1"));
  auto st = small.add("B", " 2");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.message(), "more than 1 header fields");
}

}  // namespace
}  // namespace sluice::dkim
