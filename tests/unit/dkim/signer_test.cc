// signer_test.cc - tests for the Signer and SigningTable of lib/dkim/signer.h: several signatures
// (RSA + Ed25519, several d=, both canonicalizations) in one pass verify with the public keys;
// streamed bodies sign the same as whole ones; header selection and oversigning (RFC 6376 5.4.2);
// the From: rule; spec checks; the field's format (tags, folding); the signing table. The message
// is the RFC 8463 A.3 example (../shared/corpus/dkim/rfc8463-appendix-a/unsigned.eml).
#include "dkim/signer.h"

#include <gtest/gtest.h>

#include "dkim_test_util.h"

namespace sluice::dkim {
namespace {

using testing::corpus;
using testing::parseTags;
using testing::readFile;
using testing::stripWhitespace;

const KeyLoadOptions kTestKeys{.checkPermissions = false, .minRsaBits = 1024};

class SignerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto rsa = parseKey(*generateKey(KeyType::kRsa, 2048), {}, "rsa2048");
    auto ed = loadKey(corpus("rfc8463-appendix-a/ed25519.seed.b64"), kTestKeys);
    ASSERT_TRUE(rsa && ed);
    rsa_ = new DkimKey(std::move(*rsa));
    ed_ = new DkimKey(std::move(*ed));
  }
  static void TearDownTestSuite() {
    delete rsa_;
    delete ed_;
  }

  static SignatureSpec spec(const DkimKey* key, std::string domain, HeaderCanon hc = HeaderCanon::kRelaxed,
                            BodyCanon bc = BodyCanon::kRelaxed) {
    SignatureSpec s;
    s.domain = std::move(domain);
    s.selector = key == ed_ ? "ed1" : "rsa1";
    s.key = key;
    s.headerCanon = hc;
    s.bodyCanon = bc;
    s.timestamp = 1528637909;
    return s;
  }

  // Signs msg (body in chunks of `chunk` bytes, 0 = whole).
  static Result<std::vector<std::string>> sign(const std::vector<SignatureSpec>& specs, const std::string& msg,
                                               size_t chunk = 0) {
    auto headers = MessageHeaders::parse(msg);
    if (!headers) return headers.error();
    Signer signer(specs);
    signer.headers(*headers);
    std::string_view body = std::string_view(msg).substr(headers->bodyOffset());
    if (chunk == 0) chunk = body.size() + 1;
    for (size_t i = 0; i < body.size(); i += chunk) signer.body(body.substr(i, chunk));
    return signer.finish();
  }

  // Verifies one of our fields over msg the way a verifier does (RFC 6376 6.1.3).
  static bool verifies(const std::string& field, const std::string& msg) {
    auto headers = MessageHeaders::parse(msg);
    auto tags = parseTags(field);
    std::string c = stripWhitespace(tags["c"]);
    auto hc = parseHeaderCanon(c.substr(0, c.find('/')));
    auto bc = parseBodyCanon(c.substr(c.find('/') + 1));
    if (!headers || !hc || !bc) return false;
    BodyHasher hasher(*bc);
    hasher.update(std::string_view(msg).substr(headers->bodyOffset()));
    auto bh = hasher.finish();
    if (!bh || testing::digestB64(*bh) != stripWhitespace(tags["bh"])) return false;
    bool ed = stripWhitespace(tags["a"]) == "ed25519-sha256";
    auto record = publicKeyRecord(ed ? *ed_ : *rsa_);
    std::string data = signedHeaderData(*headers, testing::parseHList(tags["h"]), *hc, withoutSignatureValue(field));
    return record && testing::verifyWithRecord(*record, ed, data, stripWhitespace(tags["b"]));
  }

  static std::string message() { return readFile(corpus("rfc8463-appendix-a/unsigned.eml")); }

  static inline DkimKey* rsa_ = nullptr;
  static inline DkimKey* ed_ = nullptr;
};

TEST_F(SignerTest, SeveralSignaturesInOnePassVerify) {
  std::string msg = message();
  std::vector<SignatureSpec> specs = {
      spec(ed_, "football.example.com"),
      spec(rsa_, "football.example.com"),
      spec(rsa_, "relay.example.net", HeaderCanon::kSimple, BodyCanon::kSimple),
      spec(ed_, "relay.example.net", HeaderCanon::kRelaxed, BodyCanon::kSimple),
      spec(rsa_, "relay.example.net", HeaderCanon::kSimple, BodyCanon::kRelaxed),
  };
  auto sigs = sign(specs, msg);
  ASSERT_TRUE(sigs) << sigs.message();
  ASSERT_EQ(sigs->size(), specs.size());
  for (size_t i = 0; i < sigs->size(); ++i) {
    const std::string& f = (*sigs)[i];
    EXPECT_TRUE(verifies(f, msg)) << "signature " << i << ":\n" << f;
    auto tags = parseTags(f);
    EXPECT_EQ(tags["d"], specs[i].domain);
    EXPECT_EQ(tags["c"], std::string(toString(specs[i].headerCanon)) + "/" + toString(specs[i].bodyCanon));
  }
  // Relaxed body: the published RFC 8463 bh=.
  EXPECT_EQ(parseTags((*sigs)[0])["bh"], "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=");
  // A changed body no longer verifies.
  std::string tampered = msg;
  tampered.replace(tampered.find("hungry"), 6, "HUNGRY");
  for (const auto& f : *sigs) EXPECT_FALSE(verifies(f, tampered));
}

TEST_F(SignerTest, BodyInOneByteChunksSignsTheSame) {
  std::string msg = message();
  std::vector<SignatureSpec> specs = {spec(rsa_, "example.com", HeaderCanon::kSimple, BodyCanon::kSimple),
                                      spec(ed_, "example.com")};
  auto whole = sign(specs, msg);
  auto bytes = sign(specs, msg, 1);
  auto sevens = sign(specs, msg, 7);
  ASSERT_TRUE(whole && bytes && sevens);
  EXPECT_EQ(*bytes, *whole);
  EXPECT_EQ(*sevens, *whole);
}

TEST_F(SignerTest, DefaultHeaderListOversigns) {
  auto headers = MessageHeaders::parse(message());
  ASSERT_TRUE(headers);
  auto list = expandHeaderList(defaultHeaderPolicy(), *headers);
  std::string joined;
  for (const auto& n : list) joined += n + ":";
  EXPECT_EQ(joined,
            "from:from:reply-to:subject:subject:date:date:to:to:cc:message-id:message-id:mime-version:"
            "content-type:content-transfer-encoding:");
  HeaderPolicy custom{.sign = {"From", "Received", "X-Mine"}, .oversign = {"from", "list-id"}};
  auto two = MessageHeaders::parse("Received: a\r\nReceived: b\r\nFrom: x@y\r\n\r\n");
  ASSERT_TRUE(two);
  list = expandHeaderList(custom, *two);
  EXPECT_EQ(list, (std::vector<std::string>{"from", "from", "received", "received", "list-id"}));
}

// RFC 6376 5.4.2: an oversigned Subject: a second Subject added above the first breaks the
// signature; without oversigning it does not.
TEST_F(SignerTest, OversigningProtectsAgainstAddedFields) {
  std::string msg = message();
  std::string added = "Subject: click here\r\n" + msg;
  SignatureSpec over = spec(ed_, "example.com");
  over.headers = {"from", "subject", "subject"};
  SignatureSpec plain = spec(ed_, "example.com");
  plain.headers = {"from", "subject"};
  auto sigs = sign({over, plain}, msg);
  ASSERT_TRUE(sigs) << sigs.message();
  EXPECT_TRUE(verifies((*sigs)[0], msg));
  EXPECT_TRUE(verifies((*sigs)[1], msg));
  EXPECT_FALSE(verifies((*sigs)[0], added));
  EXPECT_TRUE(verifies((*sigs)[1], added));
}

TEST_F(SignerTest, FromRule) {
  std::vector<SignatureSpec> specs = {spec(ed_, "example.com")};
  auto none = sign(specs, "To: a@b\r\n\r\nbody\r\n");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.message(), "message has no From: header field; not signing");
  auto two = sign(specs, "From: a@b\r\nFrom: c@d\r\n\r\nbody\r\n");
  ASSERT_FALSE(two);
  EXPECT_EQ(two.message(), "message has 2 From: header fields; not signing");
}

TEST_F(SignerTest, Misuse) {
  Signer noHeaders({spec(ed_, "example.com")});
  noHeaders.body("x\r\n");
  EXPECT_FALSE(noHeaders.finish());
  auto h = MessageHeaders::parse("From: a@example.com\r\n\r\n");
  ASSERT_TRUE(h);
  Signer twice({spec(ed_, "example.com")});
  twice.headers(*h);
  EXPECT_TRUE(twice.finish());
  EXPECT_FALSE(twice.finish());
  Signer nothing({});
  nothing.headers(*h);
  auto empty = nothing.finish();
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

TEST_F(SignerTest, SpecChecks) {
  struct Case { const char* name; SignatureSpec s; const char* wantError; };
  auto with = [](auto f) {
    SignatureSpec s = spec(ed_, "example.com");
    f(s);
    return s;
  };
  const Case cases[] = {
      {"ok", with([](SignatureSpec&) {}), ""},
      {"no key", with([](SignatureSpec& s) { s.key = nullptr; }), "no key"},
      {"space in d=", with([](SignatureSpec& s) { s.domain = "exa mple.com"; }), "bad domain"},
      {"; in d=", with([](SignatureSpec& s) { s.domain = "example.com;x=1"; }), "bad domain"},
      {"empty label", with([](SignatureSpec& s) { s.domain = "example..com"; }), "bad domain"},
      {"bad selector", with([](SignatureSpec& s) { s.selector = "a b"; }), "bad selector"},
      {"h= without from", with([](SignatureSpec& s) { s.headers = {"to", "subject"}; }), "must include From"},
      {"bad h= name", with([](SignatureSpec& s) { s.headers = {"from", "x;y"}; }), "bad header name"},
      {"i= elsewhere", with([](SignatureSpec& s) { s.identity = "a@example.org"; }), "i= must be"},
      {"i= suffix trick", with([](SignatureSpec& s) { s.identity = "a@badexample.com"; }), "i= must be"},
      {"i= subdomain", with([](SignatureSpec& s) { s.identity = "@mail.example.com"; }), ""},
      {"x= not after t=", with([](SignatureSpec& s) { s.expiration = 0; }), "x= must be later"},
  };
  for (const auto& c : cases) {
    Status st = validateSpec(c.s);
    if (std::string(c.wantError).empty()) {
      EXPECT_TRUE(st) << c.name << ": " << st.message();
    } else {
      ASSERT_FALSE(st) << c.name;
      EXPECT_NE(st.message().find(c.wantError), std::string::npos) << c.name << ": got " << st.message();
    }
  }
  auto bad = sign({with([](SignatureSpec& s) { s.selector = ""; })}, message());
  EXPECT_FALSE(bad);
}

TEST_F(SignerTest, FieldFormat) {
  SignatureSpec s = spec(rsa_, "example.com");
  s.timestamp = 1000;
  s.expiration = 3600;
  s.identity = "a b;c@example.com";
  auto sigs = sign({s}, message());
  ASSERT_TRUE(sigs) << sigs.message();
  const std::string& f = (*sigs)[0];
  EXPECT_TRUE(verifies(f, message())) << f;
  EXPECT_TRUE(startsWith(f, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com;")) << f;
  auto tags = parseTags(f);
  EXPECT_EQ(tags["t"], "1000");
  EXPECT_EQ(tags["x"], "4600");
  EXPECT_EQ(tags["i"], "a=20b=3Bc@example.com");
  EXPECT_FALSE(endsWith(f, "\r\n"));
  // b= is the last tag; lines are at most 78 columns (TAB = 8) and folded with CRLF TAB.
  auto parts = split(f, ';');
  EXPECT_TRUE(startsWith(stripWhitespace(parts.back()), "b=")) << f;
  size_t start = 0;
  int lines = 0;
  while (start <= f.size()) {
    size_t end = f.find("\r\n", start);
    std::string line = f.substr(start, end == std::string::npos ? std::string::npos : end - start);
    size_t cols = line.size() + (line.empty() || line[0] != '\t' ? 0 : 7);
    EXPECT_LE(cols, 78u) << "line " << lines << ": " << line;
    if (lines > 0) {
      EXPECT_EQ(line[0], '\t') << line;
    }
    EXPECT_FALSE(line.empty() || line.back() == ' ') << "line " << lines;
    ++lines;
    if (end == std::string::npos) break;
    start = end + 2;
  }
  EXPECT_GE(lines, 6);
}

TEST_F(SignerTest, SigningTable) {
  SigningTable table;
  SignatureSpec author = spec(ed_, "%");
  SignatureSpec relay = spec(rsa_, "relay.example.net");
  SignatureSpec exact = spec(rsa_, "example.com");
  ASSERT_TRUE(table.add({.domain = "Example.COM", .saslUser = "", .signatures = {exact, relay}}));
  ASSERT_TRUE(table.add({.domain = "*.example.com", .saslUser = "", .signatures = {author}}));
  ASSERT_TRUE(table.add({.domain = "", .saslUser = "app7", .signatures = {relay}}));
  ASSERT_TRUE(table.add({.domain = "*", .saslUser = "", .signatures = {author, relay}}));
  struct Case { const char* from; const char* user; std::vector<std::string> wantDomains; };
  const Case cases[] = {
      {"example.com", "", {"example.com", "relay.example.net"}},
      {"EXAMPLE.com.", "app7", {"example.com", "relay.example.net"}},
      {"news.example.com", "", {"news.example.com"}},
      {"a.b.example.com", "", {"a.b.example.com"}},
      {"other.org", "app7", {"relay.example.net"}},
      {"other.org", "", {"other.org", "relay.example.net"}},
      {"", "app7", {"relay.example.net"}},
      {"", "", {}},
  };
  for (const auto& c : cases) {
    std::vector<std::string> got;
    for (const auto& s : table.lookup(c.from, c.user)) got.push_back(s.domain);
    EXPECT_EQ(got, c.wantDomains) << "lookup(\"" << c.from << "\", \"" << c.user << "\")";
  }
  EXPECT_FALSE(table.add({.domain = "", .saslUser = "", .signatures = {relay}}));
  EXPECT_FALSE(table.add({.domain = "bad domain", .saslUser = "", .signatures = {relay}}));
  EXPECT_FALSE(table.add({.domain = "x.org", .saslUser = "", .signatures = {}}));
  SignatureSpec noKey = relay;
  noKey.key = nullptr;
  EXPECT_FALSE(table.add({.domain = "x.org", .saslUser = "", .signatures = {noKey}}));
  EXPECT_EQ(table.size(), 4u);
}

}  // namespace
}  // namespace sluice::dkim
