#include <caf/actor_system_config.hpp>

#include "weir/queue/producer.hpp"
#include "weir/queue/protocol.hpp"
#include "weir/runtime/supervisor.hpp"

namespace weir {

void add_queue_types(caf::actor_system_config& config) {
  add_supervisor_types(config);
  config.add_message_type<message_header>("weir::message_header");
  config.add_message_type<std::vector<message_header>>("std::vector<weir::message_header>");
  config.add_message_type<id_range>("weir::id_range");
  config.add_message_type<std::vector<id_range>>("std::vector<weir::id_range>");
  config.add_message_type<message_data>("weir::message_data");
  config.add_message_type<std::vector<message_data>>("std::vector<weir::message_data>");
  config.add_message_type<publish_batch>("weir::publish_batch");
  config.add_message_type<confirmation>("weir::confirmation");
  config.add_message_type<delivery>("weir::delivery");
  config.add_message_type<std::vector<delivery>>("std::vector<weir::delivery>");
  config.add_message_type<delivery_batch>("weir::delivery_batch");
  config.add_message_type<nack_request>("weir::nack_request");
  config.add_message_type<protocol_error>("weir::protocol_error");
  config.add_message_type<queue_stats>("weir::queue_stats");
  config.add_message_type<producer_stats>("weir::producer_stats");
}

}  // namespace weir
