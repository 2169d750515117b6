#pragma once
// A LogRecord read out of a frame's payload, for recovery, the writer and reads.

#include <span>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include "weir/schema/log.capnp.h"

namespace weir::detail {

/// Decodes a framed payload into a LogRecord reader.
struct decoded_record {
  capnp::FlatArrayMessageReader reader;
  explicit decoded_record(std::span<const capnp::word> payload)
      : reader(kj::ArrayPtr<const capnp::word>(payload.data(), payload.size()), reader_options()) {}
  static capnp::ReaderOptions reader_options() {
    capnp::ReaderOptions options;
    options.traversalLimitInWords = 1ull << 32;
    return options;
  }
};

/// Calls fn(LogRecord::Reader) on the decoded payload; false when it does not
/// decode (kj exceptions become false).
template <class Fn>
bool with_log_record(std::span<const capnp::word> payload, Fn&& fn) {
  try {
    decoded_record decoded{payload};
    fn(decoded.reader.getRoot<schema::LogRecord>());
    return true;
  } catch (const kj::Exception&) {
    return false;
  }
}

}  // namespace weir::detail
