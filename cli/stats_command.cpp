#include "stats_command.hpp"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <optional>

#include "weir/node/wire_codec.hpp"
#include "weir/transport/link.hpp"

namespace weir::cli {

namespace {

// One request per run, so any fixed id will do; not 0, which marks errors
// that answer no request (a malformed frame, a refused handshake).
constexpr std::uint64_t info_request_id = 1;

// Talks to the node with a bare transport connection: no actor system is needed
// for one request and one reply.
int ask(const info_options& options, schema::InfoTopic topic, const char* command) {
  if (options.timeout_s <= 0) {
    std::cerr << "weir " << command << ": --timeout must be positive\n";
    return 2;
  }
  std::mutex mutex;
  std::condition_variable changed;
  std::optional<std::string> answer;
  std::optional<std::string> refusal;
  bool up = false;                        // a session is open
  transport::connection* link = nullptr;  // set once connect() returned

  transport::link_options settings;
  settings.node_id = std::string(command) + ":" + std::to_string(::getpid());
  auto connection =
      transport::connection::connect(options.connect, settings, [&](transport::link_event event) {
        std::lock_guard lock(mutex);
        if (event.type == transport::link_event::kind::peer_up) {
          // Every new session asks again: a reply lost with a reconnect is not resent.
          up = true;
          if (link != nullptr && !answer && !refusal) {
            link->send(wire::info_request_frame(topic, info_request_id));
          }
          return;
        }
        if (event.type == transport::link_event::kind::peer_down) {
          up = false;
          return;
        }
        if (event.type != transport::link_event::kind::frame || !event.frame) return;
        for (auto message : event.frame->root().getMessages()) {
          if (message.isInfoReply() && message.getInfoReply().getRequestId() == info_request_id) {
            answer = message.getInfoReply().getText();
          } else if (message.isError()) {
            auto error = message.getError();
            if (error.getRequestId() == info_request_id || error.getRequestId() == 0) {
              refusal = error.getMessage();
            }
          }
        }
        changed.notify_all();
      });
  if (!connection) {
    std::cerr << "weir " << command << ": " << connection.error().to_string() << "\n";
    return 2;
  }
  const auto timeout = std::chrono::duration<double>(options.timeout_s);
  int exit_status = 0;
  {
    std::unique_lock lock(mutex);
    link = connection->get();
    // Frames sent before the handshake are dropped: ask now only if a session
    // came up before `link` was set, else the peer_up handler asks.
    if (up) link->send(wire::info_request_frame(topic, info_request_id));
    const bool done =
        changed.wait_for(lock, timeout, [&] { return answer.has_value() || refusal.has_value(); });
    if (answer) {
      std::cout << *answer << std::flush;
    } else if (refusal) {
      std::cerr << "weir " << command << ": node at " << options.connect << " refused: " << *refusal
                << "\n";
      exit_status = 1;
    } else if (!done) {
      std::cerr << "weir " << command << ": no answer from a node at " << options.connect
                << " within " << options.timeout_s << " s\n";
      exit_status = 1;
    }
    link = nullptr;
  }
  connection->reset();  // joins the link thread; no event runs after this
  return exit_status;
}

}  // namespace

int run_stats(const info_options& options) {
  return ask(options, schema::InfoTopic::METRICS, "stats");
}

int run_tree(const info_options& options) {
  return ask(options, schema::InfoTopic::TREE, "tree");
}

}  // namespace weir::cli
