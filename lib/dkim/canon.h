// canon.h - DKIM canonicalization (RFC 6376 section 3.4): the "simple" and "relaxed" forms of
// header fields and bodies, and a streaming body canonicalizer + SHA-256 hasher.
//
// Header fields are given whole, as they appear in the message: "Name: value", folding (CRLF
// followed by WSP) kept, without the final CRLF. Both canonical forms end with CRLF.
//
// Bodies are fed in chunks of any size, split anywhere (even between CR and LF). Line ends may be
// CRLF or a bare LF (MTAs hand milters LF-terminated lines); a bare LF is treated as CRLF, a CR not
// followed by LF is an ordinary byte. Invariants of the output:
//   simple   trailing empty lines removed; an empty body becomes a single CRLF (3.4.3);
//   relaxed  WSP runs inside a line become one SP, WSP at line ends is dropped, trailing empty
//            lines removed; an empty body stays empty (3.4.4, errata 3133).
// A last line without a line end gets a CRLF in both forms. Memory use is O(1) in the body size
// apart from the pending-empty-line counter.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace sluice::dkim {

enum class HeaderCanon { kSimple, kRelaxed };
enum class BodyCanon { kSimple, kRelaxed };

const char* toString(HeaderCanon c);
const char* toString(BodyCanon c);
// "simple" / "relaxed" (case-insensitive); nullopt otherwise.
std::optional<HeaderCanon> parseHeaderCanon(std::string_view s);
std::optional<BodyCanon> parseBodyCanon(std::string_view s);

// Appends the canonical form of one whole header field (see above) to out.
void canonHeader(HeaderCanon canon, std::string_view field, std::string& out);
std::string canonHeader(HeaderCanon canon, std::string_view field);

// Streaming body canonicalizer: feed() appends the canonical bytes that are already certain;
// finish() appends the rest. Reusable after finish() (it resets).
class BodyCanonicalizer {
 public:
  explicit BodyCanonicalizer(BodyCanon canon) : canon_(canon) {}
  void feed(std::string_view chunk, std::string& out);
  void finish(std::string& out);
  BodyCanon canon() const { return canon_; }

 private:
  void content(char c, std::string& out);
  void endLine(std::string& out);

  BodyCanon canon_;
  bool pendingCr_ = false;     // last byte was CR; whether it ends the line depends on the next
  bool pendingWsp_ = false;    // relaxed: WSP seen in the line, written only if content follows
  bool lineHasContent_ = false;
  bool wroteAny_ = false;
  uint64_t emptyLines_ = 0;    // empty lines held back until content follows them
};

using Sha256Digest = std::array<unsigned char, 32>;

// Body canonicalizer feeding SHA-256 (the bh= value). Buffers canonical bytes in blocks.
// Meant for one body; canonicalLength() counts the canonical bytes hashed so far.
class BodyHasher {
 public:
  explicit BodyHasher(BodyCanon canon);
  ~BodyHasher();
  BodyHasher(BodyHasher&&) noexcept;
  BodyHasher& operator=(BodyHasher&&) noexcept;
  BodyHasher(const BodyHasher&) = delete;
  BodyHasher& operator=(const BodyHasher&) = delete;

  void update(std::string_view chunk);
  // The digest of the canonical body; an error only if OpenSSL's digest fails.
  Result<Sha256Digest> finish();
  BodyCanon canon() const { return canon_.canon(); }
  uint64_t canonicalLength() const { return length_; }

 private:
  void flush();

  BodyCanonicalizer canon_;
  std::string buf_;
  uint64_t length_ = 0;
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// One-shot SHA-256 (header data, tests).
Result<Sha256Digest> sha256(std::string_view data);

}  // namespace sluice::dkim
