// policy_request_test.cc - tests for the policy protocol codec: framing, parsing, bad input.
#include "decision/policy_request.h"

#include <gtest/gtest.h>

namespace sluice::decision {
namespace {

using namespace std::string_literals;

TEST(PolicyRequest, ParsesPostfixRequest) {
  std::string block =
      "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=192.0.2.1\n"
      "sasl_username=app1\nsender=a@example.com\nrecipient=b@dest.example\ninstance=123.456.7\n"
      "size=4096\nsome_future_attribute=x\n";
  PolicyRequest r;
  ASSERT_TRUE(parsePolicyRequest(block, &r));
  EXPECT_EQ(r.get(Attr::kProtocolState), "RCPT");
  EXPECT_EQ(r.get(Attr::kSaslUsername), "app1");
  EXPECT_EQ(r.get(Attr::kInstance), "123.456.7");
  EXPECT_EQ(r.get(Attr::kSize), "4096");
  EXPECT_EQ(r.get(Attr::kEtrnDomain), "");
  EXPECT_EQ(r.unknownCount(), 1u) << "unknown attributes are ignored, not errors";
}

TEST(PolicyRequest, ValueMayContainEqualsAndCr) {
  PolicyRequest r;
  ASSERT_TRUE(parsePolicyRequest("request=smtpd_access_policy\r\nccert_subject=CN=a=b\r\n", &r));
  EXPECT_EQ(r.get(Attr::kCcertSubject), "CN=a=b");
}

TEST(PolicyRequest, BadInputTable) {
  struct Case { std::string block; const char* want; };
  std::string many = "request=smtpd_access_policy\n";
  for (int i = 0; i < 300; ++i) many += "x" + std::to_string(i) + "=1\n";
  const Case cases[] = {
      {"request=smtpd_access_policy\ngarbage line\n", "malformed line"},
      {"request=smtpd_access_policy\n=value\n", "bad attribute name"},
      {"request=smtpd_access_policy\nna me=v\n", "bad attribute name"},
      {"request=smtpd_access_policy\nsender=a\0b\n"s, "NUL byte"},
      {"protocol_state=RCPT\n", "request attribute missing"},
      {"request=junk\n", "unsupported request"},
      {many, "more than 256 attributes"},
  };
  for (const auto& c : cases) {
    PolicyRequest r;
    Status st = parsePolicyRequest(c.block, &r);
    ASSERT_FALSE(st) << "want error for: " << c.block.substr(0, 60);
    EXPECT_NE(st.message().find(c.want), std::string::npos) << "got: " << st.message() << " want: " << c.want;
  }
}

TEST(PolicyRequest, FramingAcrossChunks) {
  std::string buf = "request=smtpd_access_policy\nsender=a@b";
  size_t scan = 0, blockEnd = 0;
  EXPECT_EQ(findRequestEnd(buf, &scan, &blockEnd), std::string::npos);
  buf += "\n";
  EXPECT_EQ(findRequestEnd(buf, &scan, &blockEnd), std::string::npos);
  buf += "\nrequest=smtpd_access_policy\n\n";
  size_t end = findRequestEnd(buf, &scan, &blockEnd);
  ASSERT_NE(end, std::string::npos);
  EXPECT_EQ(buf.substr(0, blockEnd), "request=smtpd_access_policy\nsender=a@b\n");
  EXPECT_EQ(buf.substr(end), "request=smtpd_access_policy\n\n") << "the pipelined next request stays";
}

TEST(PolicyRequest, FramingCrLf) {
  std::string buf = "request=smtpd_access_policy\r\n\r\n";
  size_t scan = 0, blockEnd = 0;
  EXPECT_EQ(findRequestEnd(buf, &scan, &blockEnd), buf.size());
}

TEST(PolicyReply, Parse) {
  EXPECT_EQ(parsePolicyReply("action=DUNNO\n").value(), "DUNNO");
  EXPECT_EQ(parsePolicyReply("foo=bar\naction=450 4.7.1 x y\n").value(), "450 4.7.1 x y");
  EXPECT_FALSE(parsePolicyReply("nothing=here\n"));
  EXPECT_FALSE(parsePolicyReply("action=\n"));
}

TEST(PolicyRequest, AppendAttributeRefusesLineFeeds) {
  std::string out;
  EXPECT_TRUE(appendAttribute(&out, "sender", "a@b"));
  EXPECT_EQ(out, "sender=a@b\n");
  EXPECT_FALSE(appendAttribute(&out, "sender", "a\nb"));
}

}  // namespace
}  // namespace sluice::decision
