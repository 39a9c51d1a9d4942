// message_headers.h - a bounded RFC 5322 header-block parser for DKIM signing.
//
// Format read (RFC 5322 2.2, 3.6): lines ended by CRLF or a bare LF; a line starting with SP or
// HTAB continues the previous field (folding); any other line is "name:value" where the name is
// printable US-ASCII (33..126) except ':'. WSP between the name and the colon (obsolete syntax,
// RFC 5322 4.5) is accepted and kept in the raw field. The block ends at the first empty line
// (bodyOffset() is the byte after it) or at the end of the input (a headers-only message).
//
// Invariants: fields keep their order and their exact bytes, except that every line end inside a
// field is stored as CRLF (so "simple" canonicalization sees what an SMTP peer will see). Values
// may hold 8-bit bytes (SMTPUTF8). Errors, never a crash, for: a field without a colon, a
// continuation line before any field, a bad field name, a NUL byte, more than maxHeaders fields,
// a physical line longer than maxLineLength, a block longer than maxTotal. The work done before
// an error is bounded by the limits, whatever the input size.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace sluice::dkim {

struct HeaderLimits {
  size_t maxHeaders = 1000;
  size_t maxLineLength = 64 * 1024;  // one physical line, without its line end
  size_t maxTotal = 1024 * 1024;     // the whole block, line ends included
};

struct HeaderField {
  std::string name;  // as written, WSP before the colon removed (compare case-insensitively)
  std::string raw;   // the whole field: name, colon, value, folding as CRLF+WSP; no final CRLF
  std::string_view value() const;  // everything after the first colon
};

class MessageHeaders {
 public:
  explicit MessageHeaders(HeaderLimits limits = {}) : limits_(limits) {}

  // Parses the header block at the start of a message (see above).
  static Result<MessageHeaders> parse(std::string_view message, const HeaderLimits& limits = {});

  // Appends one field given as a milter receives it: the name and everything after the colon
  // (line ends in the value may be LF or CRLF and must be followed by WSP). Same limits.
  Status add(std::string_view name, std::string_view value);

  const std::vector<HeaderField>& fields() const { return fields_; }
  size_t size() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }

  // Every instance of a field name (case-insensitive), in message order.
  std::vector<const HeaderField*> findAll(std::string_view name) const;
  size_t count(std::string_view name) const;
  size_t fromCount() const { return count("from"); }

  // Offset of the first body byte in the parsed input (its size when there was no empty line).
  size_t bodyOffset() const { return bodyOffset_; }
  size_t totalBytes() const { return total_; }
  const HeaderLimits& limits() const { return limits_; }

 private:
  Status parseLine(std::string_view line, size_t lineNo);

  HeaderLimits limits_;
  std::vector<HeaderField> fields_;
  size_t bodyOffset_ = 0;
  size_t total_ = 0;
};

}  // namespace sluice::dkim
