#pragma once
// Between the queue protocol's C++ structs (protocol.hpp) and wire frames
// (wire.capnp): the one place that knows both.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <capnp/message.h>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>
#include <zmq.hpp>

#include "weir/queue/protocol.hpp"
#include "weir/schema/wire.capnp.h"
#include "weir/transport/frame.hpp"
#include "weir/transport/link.hpp"

namespace weir::wire {

/// A received frame passed between actors (local only: never serialised).
struct frame_handle {
  transport::inbound_frame_ptr frame;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, frame_handle&) {
  return f(caf::meta::type_name("weir::wire::frame_handle"));
}

/// A remote queue's connection, handed to its proxy actor (local only).
struct connection_handle {
  std::shared_ptr<transport::connection> connection;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, connection_handle&) {
  return f(caf::meta::type_name("weir::wire::connection_handle"));
}

/// Registers frame_handle and connection_handle; add_actor_types calls it.
void add_wire_types(caf::actor_system_config& config);

/// Category of the caf::errors that carry a node's error frame: the code is the
/// schema::ErrorCode, the context the node's text. Callers need not parse the text.
inline const caf::atom_value node_error_category = caf::atom("wnodeerr");

/// Fills in one protocol message of a frame being built.
using message_writer = std::function<void(schema::ProtocolMessage::Builder)>;

/// A frame of one protocol message; publish and deliver messages carry whole
/// batches, so one frame holds many queue messages.
/// `expected_bytes` is a guess of its size: when the frame fits, it is sent without a copy.
zmq::message_t single_message_frame(const message_writer& write, std::size_t expected_bytes = 0);

/// About how many bytes a message takes in a frame (to size the frame).
std::size_t frame_bytes_of(const message_data& message);

void write_message(schema::Envelope::Builder out, const message_data& message);
void write_delivery(schema::Envelope::Builder out, const delivery& d);
/// `frame` holds `in`: the payload read is a slice of it, not a copy (null: a copy).
message_data read_message(schema::Envelope::Reader in, const transport::inbound_frame_ptr& frame);
delivery read_delivery(schema::Envelope::Reader in, const transport::inbound_frame_ptr& frame);

/// Ranges <-> wire lists.
void write_ranges(capnp::List<schema::IdRange>::Builder out, const std::vector<id_range>& ranges);
std::vector<id_range> read_ranges(capnp::List<schema::IdRange>::Reader in);
std::vector<std::uint64_t> read_ids(capnp::List<std::uint64_t>::Reader in);

/// The error code a queue's protocol_error goes to its peer with, and back:
/// nullopt for codes that are not a queue's refusal of a producer's publish.
schema::ErrorCode error_code_of(protocol_error_kind kind);
std::optional<protocol_error_kind> protocol_error_kind_of(schema::ErrorCode code);

/// A frame with one Error message.
zmq::message_t error_frame(schema::ErrorCode code, const std::string& message,
                           const std::string& queue, std::uint64_t request_id = 0);

}  // namespace weir::wire
