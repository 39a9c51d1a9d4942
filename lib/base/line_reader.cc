// line_reader.cc - see line_reader.h.
#include "base/line_reader.h"

#include <cstring>

namespace sluice {

void LineReader::append(std::string_view bytes) {
  if (pos_ > 0 && (pos_ == buf_.size() || pos_ > 4096)) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes.data(), bytes.size());
}

LineReader::Status LineReader::nextLine(std::string_view* line) {
  const char* start = buf_.data() + pos_;
  size_t avail = buf_.size() - pos_;
  const void* nl = std::memchr(start, '\n', avail);
  if (nl == nullptr) {
    return avail > maxLine_ ? Status::kTooLong : Status::kNeedMore;
  }
  size_t len = static_cast<size_t>(static_cast<const char*>(nl) - start);
  if (len > maxLine_) return Status::kTooLong;
  size_t consumed = len + 1;
  if (len > 0 && start[len - 1] == '\r') --len;
  *line = std::string_view(start, len);
  pos_ += consumed;
  return Status::kLine;
}

}  // namespace sluice
