// canon_test.cc - tests for lib/dkim/canon.h: the RFC 6376 3.4.5 canonicalization example and the
// empty-body hashes (from ../shared/corpus/dkim/rfc-vectors.json, derived from RFC 6376), the
// canonical bodies and bh= of the RFC 6376 A.2 and RFC 8463 A.3 examples, hand-made edge cases,
// and streaming: any chunking, and bare-LF line ends, give the same bytes as the whole CRLF body;
// bodies of random text against a line-by-line reference of RFC 6376 3.4.3 and 3.4.4.
#include "dkim/canon.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <random>
#include <string>
#include <vector>

#include "dkim/message_headers.h"
#include "dkim_test_util.h"

namespace sluice::dkim {
namespace {

using testing::corpus;
using testing::readFile;

std::string canonBody(BodyCanon c, std::string_view body, size_t chunk = 0) {
  BodyCanonicalizer canon(c);
  std::string out;
  if (chunk == 0) {
    canon.feed(body, out);
  } else {
    for (size_t i = 0; i < body.size(); i += chunk) canon.feed(body.substr(i, chunk), out);
  }
  canon.finish(out);
  return out;
}

std::string b64d(const nlohmann::json& j) { return base64Decode(j.get<std::string>()).value_or("<bad base64>"); }

nlohmann::json rfcVectors() { return nlohmann::json::parse(readFile(corpus("rfc-vectors.json"))); }

TEST(Canon, Rfc6376Section345Example) {
  auto v = rfcVectors()["canonicalization"][0];
  std::string input = b64d(v["input_b64"]);
  auto headers = MessageHeaders::parse(input);
  ASSERT_TRUE(headers) << headers.message();
  std::string relaxed;
  std::string simple;
  for (const auto& f : headers->fields()) {
    canonHeader(HeaderCanon::kRelaxed, f.raw, relaxed);
    canonHeader(HeaderCanon::kSimple, f.raw, simple);
  }
  EXPECT_EQ(relaxed, b64d(v["relaxed_header_b64"]));
  EXPECT_EQ(simple, b64d(v["simple_header_b64"]));
  std::string body = input.substr(headers->bodyOffset());
  EXPECT_EQ(canonBody(BodyCanon::kRelaxed, body), b64d(v["relaxed_body_b64"]));
  EXPECT_EQ(canonBody(BodyCanon::kSimple, body), b64d(v["simple_body_b64"]));
}

TEST(Canon, EmptyBodyHashes) {
  auto e = rfcVectors()["canonicalization"][0]["empty_body"];
  EXPECT_EQ(canonBody(BodyCanon::kRelaxed, ""), b64d(e["relaxed_b64"]));
  EXPECT_EQ(canonBody(BodyCanon::kSimple, ""), b64d(e["simple_b64"]));
  for (auto [canon, key] : {std::pair{BodyCanon::kRelaxed, "sha256_relaxed_bh"},
                            std::pair{BodyCanon::kSimple, "sha256_simple_bh"}}) {
    for (std::string_view body : {"", "\r\n", "\r\n\r\n", "\n\n\n"}) {
      BodyHasher h(canon);
      h.update(body);
      auto d = h.finish();
      ASSERT_TRUE(d);
      EXPECT_EQ(testing::digestB64(*d), e[key].get<std::string>()) << toString(canon) << " body of "
                                                                    << body.size() << " bytes";
    }
  }
}

// The canonical body and bh= of every signature in rfc-vectors.json, from the example message.
TEST(Canon, RfcExampleBodies) {
  int n = 0;
  const auto vectors = rfcVectors();
  for (const auto& sig : vectors["signatures"]) {
    std::string msg = readFile(corpus(sig["message"].get<std::string>()));
    auto headers = MessageHeaders::parse(msg);
    ASSERT_TRUE(headers) << headers.message();
    std::string c = sig["c"].get<std::string>();
    auto canon = parseBodyCanon(c.substr(c.find('/') + 1));
    ASSERT_TRUE(canon);
    std::string body = msg.substr(headers->bodyOffset());
    EXPECT_EQ(canonBody(*canon, body), b64d(sig["canon_body_b64"])) << sig["id"];
    BodyHasher h(*canon);
    h.update(body);
    auto d = h.finish();
    ASSERT_TRUE(d);
    EXPECT_EQ(testing::digestB64(*d), sig["bh"].get<std::string>()) << sig["id"];
    ++n;
  }
  EXPECT_EQ(n, 3);
}

TEST(Canon, HeaderTable) {
  struct Case { const char* field; const char* relaxed; };
  const Case cases[] = {
      {"Subject: Hello  World ", "subject:Hello World\r\n"},
      {"SUBJECT :\t a\r\n\t b\r\n  c  ", "subject:a b c\r\n"},
      {"X-Empty:", "x-empty:\r\n"},
      {"X-Empty:   \r\n\t", "x-empty:\r\n"},
      {"From: \xc3\xa9 <a@b>", "from:\xc3\xa9 <a@b>\r\n"},
      {"To:a,\r\n b", "to:a, b\r\n"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(canonHeader(HeaderCanon::kRelaxed, c.field), c.relaxed) << "relaxed(\"" << c.field << "\")";
    EXPECT_EQ(canonHeader(HeaderCanon::kSimple, c.field), std::string(c.field) + "\r\n");
  }
}

TEST(Canon, BodyTable) {
  struct Case { const char* in; const char* simple; const char* relaxed; };
  const Case cases[] = {
      {"", "\r\n", ""},
      {"a", "a\r\n", "a\r\n"},
      {"a\r\n", "a\r\n", "a\r\n"},
      {"a\n", "a\r\n", "a\r\n"},
      {"a \t b  \r\n", "a \t b  \r\n", "a b\r\n"},
      {"  \r\n", "  \r\n", ""},
      {"a\r\n\r\n\r\n", "a\r\n", "a\r\n"},
      {"a\r\n  \r\n\t\r\n", "a\r\n  \r\n\t\r\n", "a\r\n"},
      {"\r\n\r\na\r\n\r\n", "\r\n\r\na\r\n", "\r\n\r\na\r\n"},
      {"a\rb\r\n", "a\rb\r\n", "a\rb\r\n"},
      {"a\r", "a\r\r\n", "a\r\r\n"},
      {"x\n\ny\n", "x\r\n\r\ny\r\n", "x\r\n\r\ny\r\n"},
      {" lead\r\n", " lead\r\n", " lead\r\n"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(canonBody(BodyCanon::kSimple, c.in), c.simple) << "simple(\"" << c.in << "\")";
    EXPECT_EQ(canonBody(BodyCanon::kRelaxed, c.in), c.relaxed) << "relaxed(\"" << c.in << "\")";
  }
}

// RFC 6376 3.4.3 / 3.4.4 line by line, written for clarity: relaxed turns WSP runs into one SP
// and drops WSP at line ends; both drop trailing empty lines, simple makes an empty body one CRLF.
// A line end is LF or CRLF, a lone CR is an ordinary byte.
std::string referenceBody(BodyCanon canon, std::string_view body) {
  const bool relaxed = canon == BodyCanon::kRelaxed;
  std::vector<std::string> lines;
  std::string line;
  auto endLine = [&] {
    std::string out;
    bool wsp = false;
    for (char c : line) {
      if (relaxed && (c == ' ' || c == '\t')) {
        wsp = true;
        continue;
      }
      if (wsp) out += ' ';
      wsp = false;
      out += c;
    }
    lines.push_back(out);
    line.clear();
  };
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] == '\n') endLine();
    else if (body[i] == '\r' && i + 1 < body.size() && body[i + 1] == '\n') continue;
    else line += body[i];
  }
  if (!line.empty()) endLine();
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  std::string out;
  for (const auto& l : lines) out += l + "\r\n";
  if (!relaxed && out.empty()) out = "\r\n";
  return out;
}

TEST(Canon, MatchesReferenceOnRandomText) {
  std::mt19937 rng(7);
  const char* pieces[] = {"a", "bc", "defghijkl", " ", " ", "  ", "\t", "\r\n", "\r\n", "\n", "\r", "x y"};
  for (int round = 0; round < 500; ++round) {
    std::string body;
    size_t len = rng() % 120;
    for (size_t i = 0; i < len; ++i) body += pieces[rng() % std::size(pieces)];
    for (BodyCanon c : {BodyCanon::kSimple, BodyCanon::kRelaxed}) {
      std::string want = referenceBody(c, body);
      ASSERT_EQ(canonBody(c, body), want) << toString(c) << " round " << round;
      ASSERT_EQ(canonBody(c, body, 1 + rng() % 7), want) << toString(c) << " round " << round << " chunked";
    }
  }
}

// Long runs of text that stays as it is (the 16-byte block path) with the bytes that change it
// - TAB, SP runs, SP or TAB before a line end, bare CR and LF, empty and blank lines - at every
// offset of a block, whole and in random chunks.
TEST(Canon, MatchesReferenceOnLongLines) {
  std::mt19937 rng(11);
  const char* specials[] = {"\t", "  ", " \r\n", "\t\r\n", "\r", "\n", "\r\n\r\n", "\r\n \r\n", "\r\n\tx", "\r\n x", " "};
  for (int round = 0; round < 2000; ++round) {
    std::string body;
    size_t len = 1 + rng() % 3000;
    while (body.size() < len) {
      size_t run = rng() % 40;
      for (size_t i = 0; i < run; ++i) body += static_cast<char>(i % 7 == 6 ? ' ' : 'a' + rng() % 26);
      if (rng() % 3 == 0) body += "\r\n";
      if (rng() % 5 == 0) body += specials[rng() % std::size(specials)];
    }
    for (BodyCanon c : {BodyCanon::kSimple, BodyCanon::kRelaxed}) {
      std::string want = referenceBody(c, body);
      ASSERT_EQ(canonBody(c, body), want) << toString(c) << " round " << round;
      ASSERT_EQ(canonBody(c, body, 1 + rng() % 100), want) << toString(c) << " round " << round << " chunked";
    }
  }
}

// Whole body == 1-byte chunks == random chunks; LF-only == CRLF.
TEST(Canon, StreamingEqualsWhole) {
  std::string body;
  for (int i = 0; i < 200; ++i) {
    body += "line " + std::to_string(i) + (i % 3 ? "  \t trailing \t \r\n" : "\r\n");
    if (i % 17 == 0) body += "\r\n\r\n";
    if (i % 29 == 0) body += "a lone\rCR\r\n";
  }
  body += "\r\n\r\n  \r\n";
  std::string lf;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] == '\r' && i + 1 < body.size() && body[i + 1] == '\n') continue;
    lf += body[i];
  }
  std::mt19937 rng(42);
  for (BodyCanon c : {BodyCanon::kSimple, BodyCanon::kRelaxed}) {
    std::string whole = canonBody(c, body);
    EXPECT_EQ(canonBody(c, body, 1), whole) << toString(c);
    EXPECT_EQ(canonBody(c, lf), whole) << toString(c) << " bare LF";
    EXPECT_EQ(canonBody(c, lf, 1), whole) << toString(c) << " bare LF, 1-byte chunks";
    BodyCanonicalizer canon(c);
    std::string out;
    for (size_t i = 0; i < body.size();) {
      size_t n = std::min<size_t>(rng() % 50, body.size() - i);
      canon.feed(std::string_view(body).substr(i, n), out);
      i += n;
    }
    canon.finish(out);
    EXPECT_EQ(out, whole) << toString(c) << " random chunks";
    // The hasher agrees with the canonicalizer, in 1-byte chunks too.
    BodyHasher h1(c);
    BodyHasher hn(c);
    for (char ch : body) h1.update(std::string_view(&ch, 1));
    hn.update(body);
    auto d1 = h1.finish();
    auto dn = hn.finish();
    auto want = sha256(whole);
    ASSERT_TRUE(d1 && dn && want);
    EXPECT_EQ(*d1, *want);
    EXPECT_EQ(*dn, *want);
    EXPECT_EQ(h1.canonicalLength(), whole.size());
  }
}

TEST(Canon, ParseNames) {
  EXPECT_EQ(parseHeaderCanon("Relaxed"), HeaderCanon::kRelaxed);
  EXPECT_EQ(parseBodyCanon("simple"), BodyCanon::kSimple);
  EXPECT_FALSE(parseBodyCanon("nowsp"));
  EXPECT_STREQ(toString(HeaderCanon::kSimple), "simple");
}

}  // namespace
}  // namespace sluice::dkim
