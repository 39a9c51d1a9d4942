// milter_protocol_test.cc - the built-in milter engine's protocol session (lib/milter/
// milter_protocol.h) against a scripted MTA: option negotiation and faked no-reply flags, macros
// per step, replies and end-of-message changes byte for byte, packets split anywhere, and the
// protocol errors that end a session.
#include "milter/milter_protocol.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace sluice::milter {
namespace {

// --- a scripted filter ----------------------------------------------------------------------------
struct Script {
  uint32_t wantActions = proto::kAddHeaders | proto::kChangeHeaders | proto::kQuarantine | proto::kSetSymList;
  uint32_t wantProtocol = proto::kNrHeader | proto::kNrBody | proto::kNrEoh | proto::kNoHelo | proto::kHeaderLeadingSpace;
  uint32_t offeredProtocol = 0;  // what negotiate() was given
  MilterStatus mailStatus = MilterStatus::kContinue;
  bool eomChanges = false;
  bool eomReject = false;
  std::vector<std::string> events;
  int closes = 0;
  int negotiations = 0;
  bool insertOutsideEom = true;  // what insertHeader() returned during a header callback
  std::vector<bool> changes;     // what the end-of-message changes returned
};
Script* gScript = nullptr;

MilterStatus sNegotiate(MilterCtx& ctx, uint32_t, uint32_t protocol, uint32_t* a, uint32_t* p) {
  ++gScript->negotiations;
  gScript->offeredProtocol = protocol;
  *a = gScript->wantActions;
  *p = gScript->wantProtocol & protocol;  // as a filter does: only what is offered
  EXPECT_TRUE(ctx.setSymbolList(proto::kStageMail, "i {auth_authen}"));
  EXPECT_FALSE(ctx.setSymbolList(proto::kStageMail, "j")) << "one list per stage";
  EXPECT_FALSE(ctx.setSymbolList(9, "j"));
  return MilterStatus::kContinue;
}
MilterStatus sConnect(MilterCtx&, const char* host, const char* addr) {
  gScript->events.push_back(std::string("connect ") + host + " " + addr);
  return MilterStatus::kContinue;
}
MilterStatus sHelo(MilterCtx&, const char* name) {
  gScript->events.push_back(std::string("helo ") + name);
  return MilterStatus::kContinue;
}
MilterStatus sMail(MilterCtx& ctx, char** argv) {
  std::string e = "mail";
  for (char** a = argv; *a; ++a) e += std::string(" ") + *a;
  const char* user = ctx.symbol("{auth_authen}");
  const char* user2 = ctx.symbol("auth_authen");
  e += std::string(" user=") + (user ? user : "-") + "/" + (user2 ? user2 : "-");
  const char* rcptMacro = ctx.symbol("rcpt_addr");
  e += std::string(" rcpt_addr=") + (rcptMacro ? rcptMacro : "-");
  gScript->events.push_back(e);
  if (gScript->mailStatus == MilterStatus::kReject) ctx.setReply("550", "5.7.1", "not you");
  return gScript->mailStatus;
}
MilterStatus sRcpt(MilterCtx& ctx, char** argv) {
  const char* m = ctx.symbol("rcpt_addr");
  gScript->events.push_back(std::string("rcpt ") + argv[0] + " macro=" + (m ? m : "-"));
  return MilterStatus::kContinue;
}
MilterStatus sHeader(MilterCtx& ctx, const char* n, const char* v) {
  gScript->insertOutsideEom = ctx.insertHeader(0, "X", "y");
  gScript->events.push_back(std::string("header ") + n + ":" + v);
  return MilterStatus::kNoReply;
}
MilterStatus sEoh(MilterCtx&) {
  gScript->events.push_back("eoh");
  return MilterStatus::kNoReply;
}
MilterStatus sBody(MilterCtx&, const unsigned char* d, size_t n) {
  gScript->events.push_back("body " + std::string(reinterpret_cast<const char*>(d), n));
  return MilterStatus::kNoReply;
}
MilterStatus sEom(MilterCtx& ctx) {
  const char* i = ctx.symbol("i");
  gScript->events.push_back(std::string("eom i=") + (i ? i : "-"));
  if (gScript->eomReject) {
    EXPECT_FALSE(ctx.setReply("250", nullptr, "ok")) << "only 4xx and 5xx";
    EXPECT_FALSE(ctx.setReply("550", "4.7.1", "mixed")) << "class of code and status differ";
    EXPECT_FALSE(ctx.setReply("550", "5.7.1", "two\r\nlines"));
    EXPECT_TRUE(ctx.setReply("550", "5.7.1", "From: not owned"));
    return MilterStatus::kReject;
  }
  if (gScript->eomChanges) {
    gScript->changes = {ctx.insertHeader(0, "DKIM-Signature", " v=1"), ctx.changeHeader("X-Auth", 1, nullptr),
                        ctx.addHeader("X-Auth", " app1"), ctx.quarantine("held")};
  }
  return MilterStatus::kContinue;
}
MilterStatus sAbort(MilterCtx&) {
  gScript->events.push_back("abort");
  return MilterStatus::kContinue;
}
MilterStatus sClose(MilterCtx&) {
  ++gScript->closes;
  return MilterStatus::kContinue;
}
const MilterCallbacks kCallbacks = {sNegotiate, sConnect, sHelo, sMail, sRcpt, sHeader, sEoh, sBody, sEom, sAbort, sClose};

// --- the MTA's side ----------------------------------------------------------------------------------
std::string u32(uint32_t v) {
  v = htonl(v);
  return std::string(reinterpret_cast<const char*>(&v), 4);
}
std::string pkt(char cmd, const std::string& data = "") { return u32(static_cast<uint32_t>(data.size() + 1)) + cmd + data; }
std::string z(const std::string& s) { return s + std::string(1, '\0'); }
std::string optneg(uint32_t actions, uint32_t protocol) { return pkt('O', u32(6) + u32(actions) + u32(protocol)); }

constexpr uint32_t kPostfixActions = 0x1FF;
constexpr uint32_t kPostfixProtocol = 0x1FFFFF;  // every step and every no-reply flag

// Splits reply bytes into "cmd:data" strings.
std::vector<std::string> packets(const std::string& out) {
  std::vector<std::string> r;
  size_t i = 0;
  while (i + 5 <= out.size()) {
    uint32_t n;
    std::memcpy(&n, out.data() + i, 4);
    n = ntohl(n);
    r.push_back(std::string(1, out[i + 4]) + ":" + out.substr(i + 5, n - 1));
    i += 4 + n;
  }
  EXPECT_EQ(i, out.size()) << "trailing bytes";
  return r;
}

class MilterProtocolTest : public ::testing::Test {
 protected:
  void SetUp() override { gScript = &script; }
  void TearDown() override { gScript = nullptr; }
  // Feeds `bytes` and returns the replies produced.
  std::vector<std::string> send(MilterSession& s, const std::string& bytes, bool wantOk = true) {
    bool ok = s.feed(bytes.data(), bytes.size());
    EXPECT_EQ(ok, wantOk) << s.error();
    auto r = packets(s.output());
    s.output().clear();
    return r;
  }
  Script script;
};

TEST_F(MilterProtocolTest, NegotiationAnswersTheFlagsAndSymbolLists) {
  MilterSession s(kCallbacks);
  auto r = send(s, optneg(kPostfixActions, kPostfixProtocol));
  ASSERT_EQ(r.size(), 1u);
  std::string want = "O:" + u32(6) + u32(script.wantActions) + u32(script.wantProtocol) + u32(proto::kStageMail) +
                     z("i {auth_authen}");
  EXPECT_EQ(r[0], want);
  EXPECT_EQ(script.offeredProtocol & proto::kNoReplyFlags, proto::kNoReplyFlags);
  EXPECT_EQ(s.state(), MilterSession::SessionState::kIdle);
}

TEST_F(MilterProtocolTest, NoReplyStepsAreSilentAndFakedOnesAnsweredContinue) {
  // An MTA with the no-reply flags: headers, end of headers and body chunks get no answer.
  {
    MilterSession s(kCallbacks);
    send(s, optneg(kPostfixActions, kPostfixProtocol));
    auto r = send(s, pkt('M', z("<a@example.com>")) + pkt('L', z("Subject") + z(" hi")) + pkt('N') + pkt('B', "body"));
    EXPECT_EQ(r, std::vector<std::string>({"c:"})) << "only MAIL FROM answered";
  }
  // An MTA without them (an old Sendmail): the session answers 'c' for the filter.
  {
    MilterSession s(kCallbacks);
    auto r = send(s, optneg(kPostfixActions, 0x7F | proto::kNoUnknown | proto::kNoData | proto::kSkip));
    ASSERT_EQ(r.size(), 1u);
    uint32_t sent;
    std::memcpy(&sent, r[0].data() + 2 + 8, 4);
    EXPECT_EQ(ntohl(sent) & proto::kNoReplyFlags, 0u) << "faked flags are not sent to the MTA";
    r = send(s, pkt('M', z("<a@example.com>")) + pkt('L', z("Subject") + z(" hi")) + pkt('N') + pkt('B', "body"));
    EXPECT_EQ(r, std::vector<std::string>({"c:", "c:", "c:", "c:"}));
  }
}

TEST_F(MilterProtocolTest, MacrosBelongToTheirStepAndAreClearedForTheNextMessage) {
  MilterSession s(kCallbacks);
  send(s, optneg(kPostfixActions, kPostfixProtocol));
  send(s, pkt('D', "C" + z("j") + z("mx.example")) + pkt('C', z("client.example") + "4" + std::string("\0\x19", 2) + z("192.0.2.1")));
  send(s, pkt('D', "M" + z("{auth_authen}") + z("app1")) + pkt('M', z("<a@example.com>") + z("SIZE=10")));
  send(s, pkt('D', "R" + z("{rcpt_addr}") + z("b@example.net")) + pkt('R', z("<b@example.net>")));
  send(s, pkt('D', "E" + z("i") + z("QID1")) + pkt('E'));
  send(s, pkt('M', z("<c@example.com>")));
  ASSERT_EQ(script.events.size(), 5u);
  EXPECT_EQ(script.events[0], "connect client.example 192.0.2.1");
  EXPECT_EQ(script.events[1], "mail <a@example.com> SIZE=10 user=app1/app1 rcpt_addr=-");
  EXPECT_EQ(script.events[2], "rcpt <b@example.net> macro=b@example.net");
  EXPECT_EQ(script.events[3], "eom i=QID1");
  EXPECT_EQ(script.events[4], "mail <c@example.com> user=-/- rcpt_addr=-") << "the last message's macros are gone";
  EXPECT_NE(s.symbol("j"), nullptr) << "connect macros stay for the whole connection";
}

TEST_F(MilterProtocolTest, EndOfMessageChangesComeBeforeTheVerdictByteForByte) {
  script.eomChanges = true;
  MilterSession s(kCallbacks);
  send(s, optneg(kPostfixActions, kPostfixProtocol));
  send(s, pkt('M', z("<a@example.com>")) + pkt('L', z("From") + z(" a@example.com")) + pkt('B', "x"));
  EXPECT_FALSE(script.insertOutsideEom) << "header changes only at end of message";
  auto r = send(s, pkt('E', "tail"));
  std::vector<std::string> want = {"i:" + u32(0) + z("DKIM-Signature") + z(" v=1"), "m:" + u32(1) + z("X-Auth") + z(""),
                                   "h:" + z("X-Auth") + z(" app1"), "q:" + z("held"), "c:"};
  EXPECT_EQ(r, want);
  EXPECT_EQ(script.changes, std::vector<bool>({true, true, true, true}));
  EXPECT_EQ(script.events[script.events.size() - 2], "body tail") << "a body chunk inside the end-of-message packet";
}

TEST_F(MilterProtocolTest, ChangesNotNegotiatedAreRefused) {
  script.wantActions = proto::kAddHeaders;  // no change-headers, no quarantine
  script.eomChanges = true;
  MilterSession s(kCallbacks);
  send(s, optneg(kPostfixActions, kPostfixProtocol));
  auto r = send(s, pkt('M', z("<a@example.com>")) + pkt('E'));
  EXPECT_EQ(script.changes, std::vector<bool>({true, false, true, false})) << "changeHeader and quarantine refused";
  EXPECT_EQ(r, std::vector<std::string>({"c:", "i:" + u32(0) + z("DKIM-Signature") + z(" v=1"),
                                         "h:" + z("X-Auth") + z(" app1"), "c:"}));
}

TEST_F(MilterProtocolTest, RejectsWithTheFiltersTextAndEndsTheMessage) {
  script.eomReject = true;
  MilterSession s(kCallbacks);
  send(s, optneg(kPostfixActions, kPostfixProtocol));
  auto r = send(s, pkt('M', z("<a@example.com>")) + pkt('E'));
  EXPECT_EQ(r, std::vector<std::string>({"c:", "y:" + z("550 5.7.1 From: not owned")}));
  EXPECT_EQ(s.state(), MilterSession::SessionState::kIdle);
  script.mailStatus = MilterStatus::kReject;
  script.eomReject = false;
  r = send(s, pkt('M', z("<a@example.com>")));
  EXPECT_EQ(r, std::vector<std::string>({"y:" + z("550 5.7.1 not you")}));
  EXPECT_EQ(s.state(), MilterSession::SessionState::kIdle) << "a refused MAIL ends the message";
  auto bad = send(s, pkt('L', z("Subject") + z(" x")), false);
  EXPECT_NE(s.error().find("outside a message"), std::string::npos) << s.error();
}

TEST_F(MilterProtocolTest, PacketsSplitAnywhereGiveTheSameReplies) {
  std::string conversation = optneg(kPostfixActions, kPostfixProtocol) + pkt('D', "M" + z("i") + z("Q1")) +
                             pkt('M', z("<a@example.com>")) + pkt('R', z("<b@example.net>")) +
                             pkt('L', z("From") + z(" a@example.com")) + pkt('N') + pkt('B', std::string(70000, 'x')) +
                             pkt('E') + pkt('A') + pkt('Q');
  MilterSession whole(kCallbacks);
  EXPECT_FALSE(whole.feed(conversation.data(), conversation.size())) << "ends with quit";
  EXPECT_EQ(whole.error(), "") << "quit is not an error";
  std::string wholeOut = whole.output();
  auto wholeEvents = script.events;
  EXPECT_EQ(script.closes, 1);
  for (size_t step : {1u, 3u, 7u, 4096u}) {
    script = Script();
    MilterSession s(kCallbacks);
    std::string out;
    bool ok = true;
    for (size_t i = 0; i < conversation.size() && ok; i += step) {
      ok = s.feed(conversation.data() + i, std::min(step, conversation.size() - i));
      out += s.output();
      s.output().clear();
    }
    EXPECT_EQ(out, wholeOut) << "step " << step;
    EXPECT_EQ(script.events, wholeEvents) << "step " << step;
    EXPECT_EQ(script.closes, 1) << "step " << step;
  }
}

TEST_F(MilterProtocolTest, ProtocolErrorsEndTheSessionWithAReason) {
  struct Case {
    const char* name;
    std::string bytes;
    const char* why;
  } cases[] = {
      {"command before negotiation", pkt('M', z("<a@b>")), "before option negotiation"},
      {"zero length", optneg(kPostfixActions, kPostfixProtocol) + u32(0), "empty milter packet"},
      {"oversized", optneg(kPostfixActions, kPostfixProtocol) + u32(64 * 1024 * 1024) + "B", "limit"},
      {"unknown command", optneg(kPostfixActions, kPostfixProtocol) + pkt('Z'), "unknown milter command 0x5a"},
      {"short optneg", pkt('O', u32(6)), "too short"},
      {"old version", pkt('O', u32(1) + u32(1) + u32(1)), "too old"},
      {"MAIL not terminated", optneg(kPostfixActions, kPostfixProtocol) + pkt('M', "<a@b>"), "not \\0-terminated"},
      {"RCPT before MAIL", optneg(kPostfixActions, kPostfixProtocol) + pkt('R', z("<a@b>")), "RCPT outside"},
      {"body before MAIL", optneg(kPostfixActions, kPostfixProtocol) + pkt('B', "x"), "outside a message"},
      {"header without value", optneg(kPostfixActions, kPostfixProtocol) + pkt('M', z("<a@b>")) + pkt('L', z("From")),
       "without a value"},
      {"connect with a bad family", optneg(kPostfixActions, kPostfixProtocol) + pkt('C', z("h") + "X"), "unknown family"},
      {"second negotiation", optneg(kPostfixActions, kPostfixProtocol) + optneg(kPostfixActions, kPostfixProtocol),
       "second option negotiation"},
  };
  for (const auto& c : cases) {
    script = Script();
    MilterSession s(kCallbacks);
    EXPECT_FALSE(s.feed(c.bytes.data(), c.bytes.size())) << c.name;
    EXPECT_NE(s.error().find(c.why), std::string::npos) << c.name << ": " << s.error();
    EXPECT_EQ(s.state(), MilterSession::SessionState::kClosed) << c.name;
    EXPECT_FALSE(s.feed("x", 1)) << c.name << ": nothing after the end";
  }
}

TEST_F(MilterProtocolTest, QuitNewConnectionStartsAFreshFilterContext) {
  MilterSession s(kCallbacks);
  send(s, optneg(kPostfixActions, kPostfixProtocol));
  send(s, pkt('M', z("<a@example.com>")) + pkt('K'));
  EXPECT_EQ(script.closes, 1);
  EXPECT_EQ(script.negotiations, 2) << "the filter rebuilds its view of the negotiation";
  EXPECT_EQ(script.events.back(), "abort") << "the unfinished message was aborted first";
  auto r = send(s, pkt('C', z("h2") + "U") + pkt('M', z("<x@example.com>")));
  EXPECT_EQ(r, std::vector<std::string>({"c:", "c:"}));
  s.finish();
  EXPECT_EQ(script.closes, 2);
  s.finish();
  EXPECT_EQ(script.closes, 2) << "close runs once";
}

TEST_F(MilterProtocolTest, AnMtaWithoutTheNeededActionsIsRefused) {
  MilterSession s(kCallbacks);
  auto bytes = optneg(proto::kAddHeaders, kPostfixProtocol);  // no change-headers, quarantine, symlists
  EXPECT_FALSE(s.feed(bytes.data(), bytes.size()));
  EXPECT_NE(s.error().find("actions"), std::string::npos) << s.error();
}

}  // namespace
}  // namespace sluice::milter
