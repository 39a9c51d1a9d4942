// mime_test.cc - tests of lib/mime: header unfolding, RFC 2047 words, the three line-end styles,
// multipart and nested messages, field groups, mbox splitting, and the limits on hostile input
// (deep nesting, missing or unterminated boundaries, huge input, binary junk).
#include "mime/mime.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace sluice::mime {
namespace {

TEST(Mime, UnfoldsHeadersAndFindsBody) {
  auto m = parse("Subject: one\r\n two\r\nFrom: a@b.example\r\n\r\nbody\r\n");
  EXPECT_EQ(m->root().headers.get("subject"), "one two");
  EXPECT_EQ(m->root().headers.get("FROM"), "a@b.example");
  EXPECT_EQ(m->root().body, "body\n");
  EXPECT_EQ(m->root().type, "text/plain");
}

TEST(Mime, FieldNames) {
  // Printable ASCII up to the first colon (WSP only before it); anything else ends the block.
  Fields f;
  parseFields("X-Long-Field-Name-Of-Thirty-Two:a\nName \t: b\nAbcdefgh:c\nBad Name: d\nE: e\n", f);
  ASSERT_EQ(f.items().size(), 3u);
  EXPECT_EQ(f.items()[0].name, "X-Long-Field-Name-Of-Thirty-Two");
  EXPECT_EQ(f.items()[1].name, "Name");
  EXPECT_EQ(f.get("name"), "b");
  EXPECT_EQ(f.get("abcdefgh"), "c");
  for (const std::string& bad : std::vector<std::string>{": x\n", " \t: x\n", "Abcdefg\x01: x\n", "Abcdefghij\x7f: x\n", "Caf\xc3\xa9: x\n",
                          std::string(129, 'a') + ": x\n", "no colon\n"}) {
    Fields g;
    parseFields(bad, g);
    EXPECT_TRUE(g.empty()) << bad;
  }
  Fields h;
  const std::string longName = std::string(128, 'a') + ":  x \r\n";  // Fields point into their input
  parseFields(longName, h);
  ASSERT_EQ(h.items().size(), 1u);
  EXPECT_EQ(h.items()[0].value, "x");
}

TEST(Mime, CharsetsWithAnAsciiPrefix) {
  // The ASCII prefix is copied, the rest converted from the state the prefix left.
  auto jp = parse("Content-Type: text/plain; charset=iso-2022-jp\n\nUser unknown: \x1b$B%F%9%H\x1b(B end\n");
  EXPECT_EQ(jp->root().body, "User unknown: \xE3\x83\x86\xE3\x82\xB9\xE3\x83\x88 end\n");
  auto cp = parse("Content-Type: text/plain; charset=windows-1252\n\nprice \x80 5\n");
  EXPECT_EQ(cp->root().body, "price \xE2\x82\xAC 5\n");
  auto l2 = parse("Content-Type: text/plain; charset=iso-8859-2\n\nonly ascii\n");
  EXPECT_EQ(l2->root().body, "only ascii\n");
  auto l1 = parse("Content-Type: text/plain; charset=latin1\n\n\xe9\x80\xff\n");
  EXPECT_EQ(l1->root().body, "\xC3\xA9\xC2\x80\xC3\xBF\n");
  auto unknown = parse("Content-Type: text/plain; charset=x-no-such-charset\n\nab\xe9\n");
  EXPECT_EQ(unknown->root().body, "ab\xe9\n");
}

TEST(Mime, QuotedPrintableEdges) {
  EXPECT_EQ(decodeQuotedPrintable("a=3D=41=42c"), "a=ABc");
  EXPECT_EQ(decodeQuotedPrintable("soft=\nbreak"), "softbreak");
  EXPECT_EQ(decodeQuotedPrintable("bad=G1 =4 end="), "bad=G1 =4 end=");
  EXPECT_EQ(decodeQuotedPrintable("=e9=E9"), "\xe9\xe9");
  EXPECT_EQ(decodeQuotedPrintable(""), "");
}

TEST(Mime, BoundaryLinesOnly) {
  // Near misses: the delimiter inside a line, a longer run of '-', a prefix of it.
  std::string m = "Content-Type: multipart/mixed; boundary=\"b-1\"\n\n"
                  "--b-1\n\none x--b-1 ---b-1\n-----------b-\n--b-\n"
                  "--b-1\nContent-Type: text/plain\n\ntwo\n--b-1--\n";
  auto msg = parse(m);
  ASSERT_EQ(msg->root().children.size(), 2u);
  EXPECT_EQ(msg->root().children[0].body, "one x--b-1 ---b-1\n-----------b-\n--b-");
  EXPECT_EQ(msg->root().children[1].body, "two");
}

TEST(Mime, NormalizesNewlines) {
  EXPECT_EQ(normalizeNewlines("a\r\nb\rc\n\r\r\n\r"), "a\nb\nc\n\n\n\n");
  EXPECT_EQ(normalizeNewlines(""), "");
  EXPECT_EQ(normalizeNewlines("no line end"), "no line end");
  // Against a byte-by-byte reference, with CR and LF on both sides of every 16-byte block.
  auto reference = [](std::string_view t) {
    std::string o;
    for (size_t i = 0; i < t.size(); ++i) {
      if (t[i] != '\r') o += t[i];
      else if (o += '\n', i + 1 < t.size() && t[i + 1] == '\n') ++i;
    }
    return o;
  };
  uint32_t seed = 777;
  auto next = [&] { return seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff; };
  for (int round = 0; round < 2000; ++round) {
    std::string t(next() % 80, 'a');
    for (char& c : t) c = "ab\r\n\r\n"[next() % 6];
    ASSERT_EQ(normalizeNewlines(t), reference(t)) << "round " << round;
  }
}

TEST(Mime, ThreeLineEndStylesGiveTheSameTree) {
  std::string lf = "Content-Type: multipart/mixed; boundary=XX\n\n--XX\nContent-Type: text/plain\n\nhello\n--XX--\n";
  std::string crlf, cr;
  for (char c : lf) {
    crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    cr += c == '\n' ? '\r' : c;
  }
  for (const std::string& in : {lf, crlf, cr}) {
    auto m = parse(in);
    ASSERT_EQ(m->root().children.size(), 1u) << in;
    EXPECT_EQ(m->root().children[0].body, "hello");
  }
}

TEST(Mime, EncodedWords) {
  EXPECT_EQ(decodeWords("=?UTF-8?B?w6k=?= x"), "\xC3\xA9 x");
  EXPECT_EQ(decodeWords("=?iso-8859-1?Q?caf=E9?="), "caf\xC3\xA9");
  EXPECT_EQ(decodeWords("=?utf-8?q?a_b?= =?utf-8?q?c?="), "a bc");  // blanks between words dropped
  EXPECT_EQ(decodeWords("=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?="), "\xE3\x83\x86\xE3\x82\xB9\xE3\x83\x88");
  EXPECT_EQ(decodeWords("=?broken"), "=?broken");
}

TEST(Mime, TransferEncodingsAndCharsets) {
  auto m = parse("Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\ncaf=E9 =\nx\n");
  EXPECT_EQ(m->root().body, "caf\xC3\xA9 x\n");
  auto b = parse("Content-Transfer-Encoding: base64\n\naGVsbG8gd29ybGQ=\n");
  EXPECT_EQ(b->root().body, "hello world");
}

TEST(Mime, DeliveryStatusAndNestedMessage) {
  std::string in =
      "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\n\n"
      "--b1\n\nhuman text\n"
      "--b1\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\n"
      "Final-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1\n\n"
      "Final-Recipient: rfc822; b@example.org\nAction: delayed\n  (folded)\nStatus: 4.4.7\n\n"
      "--b1\nContent-Type: message/rfc822\n\nMessage-ID: <id@x>\nFrom: s@example.net\n\nbody\n--b1--\n";
  auto m = parse(in);
  ASSERT_EQ(m->root().children.size(), 3u);
  const Part& ds = m->root().children[1];
  EXPECT_EQ(ds.type, "message/delivery-status");
  auto groups = parseFieldGroups(ds.body);
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[1].get("final-recipient"), "rfc822; a@example.org");
  EXPECT_EQ(groups[2].get("action"), "delayed (folded)");
  const Part& orig = m->root().children[2];
  ASSERT_EQ(orig.children.size(), 1u);
  EXPECT_EQ(orig.children[0].headers.get("message-id"), "<id@x>");
}

TEST(Mime, MissingBoundaryIsOneLeaf) {
  auto m = parse("Content-Type: multipart/mixed; boundary=nothere\n\nno parts here\n");
  EXPECT_TRUE(m->root().children.empty());
  EXPECT_EQ(m->root().body, "no parts here\n");
  auto u = parse("Content-Type: multipart/mixed; boundary=b\n\n--b\n\nunterminated part");
  ASSERT_EQ(u->root().children.size(), 1u);
  EXPECT_EQ(u->root().children[0].body, "unterminated part");
}

TEST(Mime, ThousandNestedMultipartsAreCutAtMaxDepth) {
  std::string in, tail;
  for (int i = 0; i < 1000; ++i) {
    in += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\n\n--b" + std::to_string(i) + "\n";
    tail = "\n--b" + std::to_string(i) + "--\n" + tail;
  }
  in += "\ninnermost\n" + tail;
  auto t0 = std::chrono::steady_clock::now();
  auto m = parse(in);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(m->depthLimited());
  EXPECT_LE(m->partCount(), Limits{}.maxParts);
  size_t depth = 0;
  walk(m->root(), [&](const Part&, size_t d) { depth = std::max(depth, d); });
  EXPECT_LT(depth, Limits{}.maxDepth);
  EXPECT_LT(ms, 2000);
}

TEST(Mime, ManyPartsAreCapped) {
  std::string in = "Content-Type: multipart/mixed; boundary=b\n\n";
  for (int i = 0; i < 5000; ++i) in += "--b\n\nx\n";
  in += "--b--\n";
  auto m = parse(in);
  EXPECT_LE(m->partCount(), Limits{}.maxParts);
}

TEST(Mime, HugeInputIsTruncatedAtTheLimit) {
  Limits l;
  l.maxBytes = 1 << 20;
  std::string in = "Subject: big\n\n" + std::string(50u << 20, 'a');
  auto m = parse(in, l);
  EXPECT_TRUE(m->truncated());
  EXPECT_LE(m->normalized().size(), l.maxBytes);
}

TEST(Mime, BinaryJunkParsesToSomething) {
  std::string junk;
  for (int i = 0; i < 100000; ++i) junk.push_back(static_cast<char>((i * 131) & 0xFF));
  auto m = parse(junk);
  EXPECT_TRUE(m->root().headers.empty());
}

TEST(Mime, SplitsMbox) {
  std::string mbox = "From a@b Mon Jan 1 00:00:00 2024\nSubject: one\n\nbody1\n\nFrom c@d Mon Jan 1 00:00:00 2024\nSubject: two\n\nbody2\n";
  auto msgs = splitMbox(mbox);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(parse(msgs[0])->root().headers.get("subject"), "one");
  EXPECT_EQ(parse(msgs[1])->root().headers.get("subject"), "two");
  EXPECT_EQ(splitMbox("Subject: x\n\nFrom here on\n").size(), 1u);
  EXPECT_EQ(splitMbox("Subject: x\n\nFrom the desk of Mr. X, 10:30:00 today\n").size(), 1u);
  // A separator in the middle of a file that does not start with one (Sisimai reads it so too).
  auto mid = splitMbox("Subject: a\r\n\r\nx\r\nFrom MAILER-DAEMON  Thu Apr 29 23:34:45 2015\r\nSubject: b\r\n\r\ny\r\n");
  ASSERT_EQ(mid.size(), 2u);
  EXPECT_EQ(parse(mid[1])->root().headers.get("subject"), "b");
  EXPECT_TRUE(splitMbox("").empty());
}

// findFromLine against a byte-by-byte reference, on texts made of the bytes that matter (so
// "From " at and off line starts, CR/LF on both sides of a 16-byte block, short tails are all
// frequent) and from every start position.
TEST(Mime, FindFromLineAgreesWithAReference) {
  auto reference = [](std::string_view t, size_t pos) {
    for (size_t f = pos; f + 5 <= t.size(); ++f)
      if (t.compare(f, 5, "From ") == 0 && (f == 0 || t[f - 1] == '\n' || t[f - 1] == '\r')) return f;
    return std::string_view::npos;
  };
  const std::string_view pieces[] = {"From ", "From", "F", "x", "\n", "\r", "\r\n", " ", "rom ", "\nFrom "};
  uint32_t seed = 12345;
  auto next = [&] { return seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff; };
  for (int round = 0; round < 400; ++round) {
    std::string t;
    size_t len = next() % 300;  // several 64-byte blocks and a short tail
    while (t.size() < len) t += pieces[next() % (sizeof pieces / sizeof pieces[0])];
    for (size_t pos = 0; pos <= t.size(); ++pos) ASSERT_EQ(findFromLine(t, pos), reference(t, pos)) << "text '" << t << "' pos " << pos;
  }
  EXPECT_EQ(findFromLine("From a", 0), 0u);
  EXPECT_EQ(findFromLine("xFrom a", 0), std::string_view::npos);
  EXPECT_EQ(findFromLine(std::string(40, 'x') + "\rFrom ", 0), 41u);
  EXPECT_EQ(findFromLine("", 0), std::string_view::npos);
}

TEST(Mime, Latin1AndAsciiPrefixesAgreeWithAReference) {
  // Texts of ASCII runs and high bytes of every length around the 16-byte blocks.
  uint32_t seed = 99;
  auto next = [&] { return seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff; };
  for (int round = 0; round < 300; ++round) {
    std::string t, want;
    size_t len = next() % 80;
    for (size_t i = 0; i < len; ++i) {
      auto c = static_cast<unsigned char>(next() % 7 == 0 ? 0x80 + next() % 128 : 'a' + next() % 26);
      t.push_back(static_cast<char>(c));
      if (c < 0x80) want.push_back(static_cast<char>(c));
      else want += {static_cast<char>(0xC0 | (c >> 6)), static_cast<char>(0x80 | (c & 0x3F))};
    }
    auto m = parse("Content-Type: text/plain; charset=iso-8859-1\n\n" + t);
    ASSERT_EQ(m->root().body, want) << round;
    // iso-2022-jp: the ASCII prefix up to ESC is copied, the rest converted.
    std::string jp = std::string(next() % 40, 'x') + "\x1b$B%F\x1b(B" + std::string(next() % 40, 'y');
    auto j = parse("Content-Type: text/plain; charset=iso-2022-jp\n\n" + jp);
    ASSERT_EQ(j->root().body, jp.substr(0, jp.find('\x1b')) + "\xE3\x83\x86" + jp.substr(jp.rfind('B') + 1)) << round;
  }
}

TEST(Mime, FieldLookupIgnoresAsciiCaseOnly) {
  Fields f;
  parseFields("X{a}: one\nX[A]: two\nContent-TYPE: three\nC: four\n\n", f);
  EXPECT_EQ(f.get("x[a]"), "two");  // '[' and '{' differ by 0x20 but are not letters
  EXPECT_EQ(f.get("X{A}"), "one");
  EXPECT_EQ(f.get("content-type"), "three");
  EXPECT_EQ(f.get("c"), "four");
  EXPECT_EQ(f.find("content-typ"), nullptr);
  EXPECT_EQ(f.find(""), nullptr);
  f.addView("", "empty");
  EXPECT_EQ(f.get(""), "empty");
  // Names whose lengths differ by 65536, same first and last bytes; copies keep their keys.
  std::string big = "a" + std::string(65536, 'x') + "b";
  f.add(big, "big");
  EXPECT_EQ(f.find("axb"), nullptr);
  f.addValue("AXB", "small");
  Fields g = f;
  EXPECT_EQ(g.get("axb"), "small");
  EXPECT_EQ(g.get("A" + std::string(65536, 'X') + "B"), "big");
  EXPECT_EQ(g.get("x[a]"), "two");
}

TEST(Mime, CharsetAndBoundaryFromOneContentType) {
  auto m = parse("Content-Type: multipart/mixed; Boundary=\"b;1\"; x=\"charset=no\"; CHARSET=ISO-8859-1; boundary=b2; charset=utf-8\n\n"
                 "--b;1\nContent-Type: text/plain; boundary=z\n\none\n--b;1--\n");
  EXPECT_EQ(m->root().boundary, "b;1");
  EXPECT_EQ(m->root().charset, "iso-8859-1");
  ASSERT_EQ(m->root().children.size(), 1u);
  EXPECT_EQ(m->root().children[0].boundary, "z");
  EXPECT_EQ(m->root().children[0].charset, "");
  EXPECT_EQ(m->root().children[0].body, "one");
}

// parseFields against a line-by-line reference of its rules, on texts made of the bytes that
// matter (names of every length around the 16-byte fast path, WSP before the colon, NUL, CR,
// DEL, 8-bit bytes, continuations, empty lines, "From " lines).
TEST(Mime, ParseFieldsAgreesWithAReference) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  auto trimB = [&](std::string_view v) {
    while (!v.empty() && blank(v.front())) v.remove_prefix(1);
    while (!v.empty() && blank(v.back())) v.remove_suffix(1);
    return v;
  };
  auto reference = [&](std::string_view t, std::vector<std::pair<std::string, std::string>>& out) -> size_t {
    size_t pos = 0;
    bool open = false;
    while (pos < t.size()) {
      size_t nl = t.find('\n', pos);
      size_t eol = nl == std::string_view::npos ? t.size() : nl, next = nl == std::string_view::npos ? eol : eol + 1;
      std::string_view line = t.substr(pos, eol - pos);
      if (line.empty()) return next;
      if (line[0] == ' ' || line[0] == '\t') {
        if (!open) return pos;
        out.back().second += " ";
        out.back().second += trimB(line);
        pos = next;
        continue;
      }
      size_t colon = line.substr(0, 129).find(':');
      size_t end = colon;
      if (colon != std::string_view::npos)
        while (end > 0 && (line[end - 1] == ' ' || line[end - 1] == '\t')) --end;
      bool ok = colon != std::string_view::npos && end > 0;
      for (size_t i = 0; ok && i < end; ++i) ok = line[i] > 32 && line[i] < 127;
      if (!ok) {
        if (pos == 0 && line.substr(0, 5) == "From ") {
          pos = next;
          continue;
        }
        return pos;
      }
      out.emplace_back(std::string(line.substr(0, end)), std::string(line.substr(colon + 1)));
      open = true;
      pos = next;
    }
    return pos;
  };
  const std::string_view pieces[] = {"Subject", ": ", ":", " ", "\t", "\n", "\n", "\r\n", "\r", std::string_view("\0", 1), "\x7f",
                                     "\xc3\xa9", "X-Very-Long-Field-Name", "abc", "From ", "a b", "\n ", "\n\t", "\n\n", "0123456789abcdef"};
  uint32_t seed = 4242;
  auto next = [&] { return seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff; };
  for (int round = 0; round < 3000; ++round) {
    std::string t;
    size_t len = next() % 200;
    while (t.size() < len) t += pieces[next() % (sizeof pieces / sizeof pieces[0])];
    std::vector<std::pair<std::string, std::string>> want;
    size_t wantAt = reference(t, want);
    for (auto& [n, v] : want) v = std::string(trimB(v));
    Fields got;
    size_t gotAt = parseFields(t, got);
    ASSERT_EQ(gotAt, wantAt) << "text '" << t << "'";
    ASSERT_EQ(got.items().size(), want.size()) << "text '" << t << "'";
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_EQ(got.items()[i].name, want[i].first) << "text '" << t << "'";
      ASSERT_EQ(got.items()[i].value, want[i].second) << "text '" << t << "'";
    }
  }
}

// The body decodings against byte-by-byte references: quoted-printable ('=' at every offset of
// the 16-byte blocks, soft breaks, bad escapes) and line ends (CR, LF, CRLF, CRCRLF).
TEST(Mime, QuotedPrintableAndNewlinesAgreeWithReferences) {
  auto qpRef = [](std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size();) {
      auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
      if (s[i] != '=') out.push_back(s[i++]);
      else if (i + 1 < s.size() && s[i + 1] == '\n') i += 2;
      else if (i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]))), i += 3;
      else out.push_back(s[i++]);
    }
    return out;
  };
  auto nlRef = [](std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] != '\r') out.push_back(s[i]);
      else {
        out.push_back('\n');
        if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
      }
    }
    return out;
  };
  const std::string_view pieces[] = {"=", "=4", "=41", "=e9", "=\n", "=\r\n", "=G1", "x", "abcdefghij", "\n", "\r", "\r\n", "=3D", "0123456789abcdef"};
  uint32_t seed = 777;
  auto next = [&] { return seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff; };
  for (int round = 0; round < 2000; ++round) {
    std::string t;
    size_t len = next() % 160;
    while (t.size() < len) t += pieces[next() % (sizeof pieces / sizeof pieces[0])];
    ASSERT_EQ(normalizeNewlines(t), nlRef(t)) << "text '" << t << "'";
    std::string lf = nlRef(t);
    ASSERT_EQ(decodeQuotedPrintable(lf), qpRef(lf)) << "text '" << lf << "'";
    auto m = parse("Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + t);
    ASSERT_EQ(m->root().body, qpRef(lf)) << "text '" << t << "'";
  }
}

// Multipart splitting against a reference built on a naive delimiter search, on bodies made of
// delimiter-like pieces (delimiters in and off line starts, runs of '-', a closing delimiter,
// lines of every length around the 64-byte blocks).
TEST(Mime, MultipartSplitAgreesWithAReference) {
  const std::string delim = "--b=1";
  auto naive = [&](std::string_view b, size_t from) {
    for (size_t f = from; f + delim.size() <= b.size(); ++f)
      if (b.compare(f, delim.size(), delim) == 0 && (f == 0 || b[f - 1] == '\n')) return f;
    return std::string_view::npos;
  };
  auto reference = [&](std::string_view b) {
    std::vector<std::string> parts;
    size_t d = naive(b, 0);
    while (d != std::string_view::npos && parts.size() < 400) {
      size_t after = d + delim.size();
      if (b.compare(after, 2, "--") == 0) break;
      size_t eol = b.find('\n', after);
      if (eol == std::string_view::npos) break;
      size_t start = eol + 1, nd = naive(b, start);
      size_t end = nd == std::string_view::npos ? b.size() : nd, len = end - start;
      if (nd != std::string_view::npos && len > 0 && b[end - 1] == '\n') --len;
      std::string_view chunk = b.substr(start, len);
      Fields ignored;
      parts.emplace_back(chunk.substr(std::min(parseFields(chunk, ignored), chunk.size())));
      d = nd;
    }
    return parts;
  };
  const std::string_view pieces[] = {"--b=1", "--b=1--", "--b=", "-", "----------------", "\n", "\n", "x", "text ", "\n--b=1\n\n",
                                     "--b=12", "0123456789abcdefghijklmnopqrstuvwxyz0123456789"};
  uint32_t seed = 31337;
  auto next = [&] { return seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff; };
  for (int round = 0; round < 2000; ++round) {
    std::string body;
    size_t len = next() % 400;
    while (body.size() < len) body += pieces[next() % (sizeof pieces / sizeof pieces[0])];
    auto m = parse("Content-Type: multipart/mixed; boundary=\"b=1\"\n\n" + body);
    std::vector<std::string> want = reference(body);
    const auto& kids = m->root().children;
    ASSERT_EQ(kids.size(), want.size()) << "body '" << body << "'";
    for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(kids[i].body, want[i]) << "body '" << body << "' part " << i;
  }
}

// decodeBase64 against a range-test reference: both alphabets, '=' ending the data, line ends
// and junk skipped.
TEST(Mime, Base64AgreesWithAReference) {
  auto reference = [](std::string_view s) {
    std::string out;
    uint32_t acc = 0;
    int bits = 0;
    for (char ch : s) {
      int v;
      if (ch >= 'A' && ch <= 'Z') v = ch - 'A';
      else if (ch >= 'a' && ch <= 'z') v = ch - 'a' + 26;
      else if (ch >= '0' && ch <= '9') v = ch - '0' + 52;
      else if (ch == '+' || ch == '-') v = 62;
      else if (ch == '/' || ch == '_') v = 63;
      else if (ch == '=') break;
      else continue;
      acc = (acc << 6) | static_cast<uint32_t>(v);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out.push_back(static_cast<char>((acc >> bits) & 0xFF));
      }
    }
    return out;
  };
  EXPECT_EQ(decodeBase64("aGVsbG8="), "hello");
  EXPECT_EQ(decodeBase64("aGVs\r\nbG8"), "hello");
  uint32_t seed = 2024;
  auto next = [&] { return seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff; };
  for (int round = 0; round < 2000; ++round) {
    std::string t;
    size_t len = next() % 100;
    for (size_t i = 0; i < len; ++i) t.push_back(static_cast<char>(next() % 9 == 0 ? next() % 256 : "ABCxyz019+/-_\n"[next() % 15]));
    if (next() % 4 == 0) t.insert(next() % (t.size() + 1), "=");
    ASSERT_EQ(decodeBase64(t), reference(t)) << "text '" << t << "'";
  }
}

TEST(Mime, Params) {
  EXPECT_EQ(param("multipart/mixed; boundary=\"a b\\\"c\"; x=1", "BOUNDARY"), "a b\"c");
  EXPECT_EQ(param("text/plain;charset=utf-8", "charset"), "utf-8");
  EXPECT_EQ(param("text/plain", "charset"), "");
}

}  // namespace
}  // namespace sluice::mime
