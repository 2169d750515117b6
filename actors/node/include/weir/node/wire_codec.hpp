#pragma once
// Between the queue protocol's C++ structs (weir/queue/protocol.hpp) and wire
// frames (wire.capnp): the one place that knows both. Every frame a node, a
// remote queue or a client sends is built here, and every protocol message
// they receive is read into its C++ form here; what a message means to its
// receiver (which actor it goes to) stays with the receiver.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <capnp/message.h>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>
#include <zmq.hpp>

#include "weir/queue/protocol.hpp"
#include "weir/schema/wire.capnp.h"
#include "weir/transport/frame.hpp"
#include "weir/transport/link.hpp"

namespace weir::wire {

/// A link thread hands a received frame to an actor: (frame_atom, frame_handle).
using frame_atom = caf::atom_constant<caf::atom("wframe")>;

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

// Each frame holds one protocol message; publish and deliver messages carry
// whole batches, so one frame holds many queue messages. Frames are sized from
// what they carry, so that one that fits is sent without a copy.

/// One envelope of a deliver message; `frame` holds `in`: the payload read is a
/// slice of it, not a copy (null: a copy).
delivery read_delivery(schema::Envelope::Reader in, const transport::inbound_frame_ptr& frame);

/// The lists of ack and extend messages.
std::vector<id_range> read_ranges(capnp::List<schema::IdRange>::Reader in);
std::vector<std::uint64_t> read_ids(capnp::List<std::uint64_t>::Reader in);

/// The error code a queue's protocol_error goes to its peer with, and back:
/// nullopt for codes that are not a queue's refusal of a producer's publish.
schema::ErrorCode error_code_of(protocol_error_kind kind);
std::optional<protocol_error_kind> protocol_error_kind_of(schema::ErrorCode code);

/// A frame with one Error message.
zmq::message_t error_frame(schema::ErrorCode code, const std::string& message,
                           const std::string& queue, std::uint64_t request_id = 0);

// --- a producer's and a consumer's messages to a node (a remote queue sends them) ---

zmq::message_t publish_frame(const std::string& queue, const publish_batch& batch);
zmq::message_t subscribe_frame(const std::string& queue, std::uint64_t consumer_id,
                               std::int64_t credit);
zmq::message_t credit_frame(const std::string& queue, std::uint64_t consumer_id,
                            std::int64_t grant);
zmq::message_t unsubscribe_frame(const std::string& queue, std::uint64_t consumer_id);
zmq::message_t ack_frame(const std::string& queue, std::uint64_t consumer_id,
                         const std::vector<id_range>& ranges);
/// The ids, action, delay and reason of `request`, with `ids` in place of its own.
zmq::message_t nack_frame(const std::string& queue, std::uint64_t consumer_id,
                          const std::vector<std::uint64_t>& ids, const nack_request& request);
zmq::message_t extend_frame(const std::string& queue, std::uint64_t consumer_id,
                            const std::vector<std::uint64_t>& ids, std::uint32_t extension_ms);

/// A publish as the queue takes it; its bodies share `frame` when it is not null.
publish_batch read_publish(schema::Publish::Reader in, const transport::inbound_frame_ptr& frame);
nack_request read_nack(schema::Nack::Reader in);

// --- a node's answers to them -----------------------------------------------------

zmq::message_t confirm_frame(const confirmation& c);
zmq::message_t deliver_frame(const std::string& queue, std::uint64_t consumer_id,
                             const std::vector<delivery>& deliveries);

/// `queue` names the queue the confirmation is for on this side of the link.
confirmation read_confirm(schema::Confirm::Reader in, const std::string& queue);

// --- requests with a request id, and their replies ---------------------------------

zmq::message_t list_request_frame(const std::string& queue, std::uint64_t request_id,
                                  std::uint64_t from_id, std::uint32_t limit, bool dead_letters);
zmq::message_t list_reply_frame(std::uint64_t request_id, const std::vector<delivery>& ready);
zmq::message_t replay_request_frame(const std::string& queue, std::uint64_t request_id,
                                    std::uint32_t limit);
zmq::message_t replay_reply_frame(std::uint64_t request_id, std::uint64_t moved);
zmq::message_t info_request_frame(schema::InfoTopic topic, std::uint64_t request_id);
zmq::message_t info_reply_frame(std::uint64_t request_id, schema::InfoTopic topic,
                                const std::string& text);

std::vector<delivery> read_list_reply(schema::ListReply::Reader in,
                                      const transport::inbound_frame_ptr& frame);

}  // namespace weir::wire
