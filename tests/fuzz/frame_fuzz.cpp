// libFuzzer target for decode_frame: any bytes must give either a frame_error
// or a frame whose every field can be read without an exception. Both entry
// points (borrowed bytes, and a received ZeroMQ message read in place) must
// agree on the verdict. An escaping exception or a sanitizer report is a bug.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <variant>

#include "frame_walk.hpp"
#include "weir/transport/frame.hpp"

namespace {

using weir::transport::frame_error;
using weir::transport::inbound_frame_ptr;

// Keeps the walk's result observable so the reads are not optimised away.
volatile std::uint64_t digest_sink = 0;

void read_everything(const std::variant<inbound_frame_ptr, frame_error>& result) {
  if (auto* frame = std::get_if<inbound_frame_ptr>(&result)) {
    weir::testing::frame_walk walk;
    walk.frame((*frame)->root());
    digest_sink = digest_sink + walk.digest();
  } else if (std::get<frame_error>(result).message.empty()) {
    std::abort();  // every refusal must say why
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  weir::transport::frame_limits limits;
  limits.max_frame_bytes = 1 << 20;

  auto borrowed = weir::transport::decode_frame(data, size, limits);
  read_everything(borrowed);

  auto received = weir::transport::decode_frame(zmq::message_t(data, size), limits);
  read_everything(received);

  if (borrowed.index() != received.index()) std::abort();
  if (auto* error = std::get_if<frame_error>(&borrowed)) {
    if (error->code != std::get<frame_error>(received).code) std::abort();
  }
  return 0;
}
