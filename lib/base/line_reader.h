// line_reader.h - a bounded line splitter for stream protocols (policy, admin, SMTP).
//
// Bytes arrive in arbitrary chunks (append()); nextLine() yields each complete line without its
// terminator ("\n", with a preceding "\r" stripped). A line longer than maxLine is an error: the
// reader reports kTooLong once and the caller must drop the connection, because the stream can
// no longer be framed safely. Memory use never exceeds maxLine plus one read chunk.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sluice {

class LineReader {
 public:
  enum class Status { kLine, kNeedMore, kTooLong };

  explicit LineReader(size_t maxLine) : maxLine_(maxLine) {}

  void append(std::string_view bytes);
  // On kLine, *line views internal storage valid until the next append() or nextLine().
  Status nextLine(std::string_view* line);
  size_t buffered() const { return buf_.size() - pos_; }
  void clear() { buf_.clear(); pos_ = 0; }

 private:
  std::string buf_;
  size_t pos_ = 0;
  size_t maxLine_;
};

}  // namespace sluice
