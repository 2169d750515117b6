// The `weir` command line. Subcommand names, flags and output lines are a
// contract that people script against: change them only compatibly.

#include <malloc.h>

#include <iostream>

#include <CLI/CLI.hpp>

#include "client_commands.hpp"
#include "inspect_command.hpp"
#include "node_command.hpp"
#include "run_command.hpp"
#include "stats_command.hpp"
#include "weir/runtime/logging.hpp"

int main(int argc, char** argv) {
  // Frames and log records of hundreds of KiB are reused from the heap instead
  // of mapped and unmapped (page faults) each time: at 1 KiB messages that cut a
  // third of weir produce's CPU. The price is up to 64 MiB of freed heap kept.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  weir::log_to_stderr();
  CLI::App app{"weir: reliable stream processing with actors"};
  app.require_subcommand(1);

  weir::cli::inspect_options inspect;
  auto* inspect_cmd = app.add_subcommand(
      "inspect", "Show a queue's checkpoint log: segments, counts, snapshot and any corruption");
  inspect_cmd->add_option("DIR", inspect.dir, "The queue's log directory")->required();
  inspect_cmd->add_flag("--json", inspect.json, "Print one JSON object instead of text");
  inspect_cmd->footer(
      "Exit status: 0 clean, 1 corruption or a torn tail was found, 2 the log could not be read.");

  weir::cli::node_command_options node;
  auto* node_cmd = app.add_subcommand(
      "node",
      "Run a node: serve durable queues over ZeroMQ until SIGTERM (drains, syncs, exits 0)");
  node_cmd->add_option("--listen", node.listen, "tcp://HOST:PORT to accept peers on")->required();
  node_cmd->add_option("--data", node.data_dir, "Directory of the queues' logs")->required();
  node_cmd
      ->add_option("--config", node.config_file, "TOML file: [node] settings, [queue.NAME] tables")
      ->check(CLI::ExistingFile);
  node_cmd->add_option("--queue", node.queues,
                       "Serve this queue (durable, sync always, 5 deliveries, then NAME.dlq); "
                       "repeatable");
  node_cmd->add_option("--metrics", node.metrics,
                       "Serve Prometheus metrics (GET /metrics) on HOST:PORT; port 0 picks one "
                       "and logs it");
  node_cmd->footer(
      "Logs go to stderr. Exit status: 0 after SIGTERM or SIGINT, 2 when it cannot start.");

  weir::cli::produce_options produce;
  auto* produce_cmd = app.add_subcommand(
      "produce",
      "Publish to a node's queue: one --body, each line of --lines, or --count N numbered "
      "messages (message k carries k in its first 8 bytes, unsigned, little-endian)");
  produce_cmd->add_option("--connect", produce.connect, "tcp://HOST:PORT of the node")->required();
  produce_cmd->add_option("--queue", produce.queue, "Queue name on that node")->required();
  auto* count_opt =
      produce_cmd->add_option("--count", produce.count, "Messages to publish (sequence numbers 1..N)");
  produce_cmd->add_option("--body", produce.body, "Publish one message with this body");
  produce_cmd->add_flag("--lines", produce.lines,
                        "Publish each line of standard input (or of --file) as one message");
  produce_cmd->add_option("--file", produce.file, "Read --lines from PATH instead of standard input");
  produce_cmd->add_option("--key", produce.key, "The key of every message (--body, --lines)");
  produce_cmd->add_option("--header", produce.headers,
                          "NAME=VALUE, a header on every message (--body, --lines); repeatable")
      ->expected(1)
      ->take_all();
  produce_cmd->add_option("--size", produce.size, "Payload bytes per message (at least 8)")
      ->capture_default_str();
  produce_cmd->add_option("--window", produce.window, "Unconfirmed messages at most")
      ->capture_default_str();
  produce_cmd->add_option("--batch", produce.batch, "Messages per publish")->capture_default_str();
  produce_cmd->add_option("--ids-out", produce.ids_out,
                          "Append each confirmed sequence number to FILE, one per line");
  produce_cmd->add_option("--timeout", produce.timeout_s, "Give up after SECONDS")
      ->capture_default_str();
  produce_cmd->add_option("--rate", produce.rate,
                          "Publish at most R messages per second (for latency measurements)");
  produce_cmd->add_flag("--progress", produce.progress,
                        "Show a progress bar of confirms on stderr (only when stdout is a terminal)");
  produce_cmd->footer(
      "Last line: confirmed=N elapsed_s=T msg_per_s=R. Exit status: 0 all confirmed, 1 timed "
      "out, 2 bad arguments, bad input or unknown queue.");

  weir::cli::consume_options consume;
  auto* consume_cmd = app.add_subcommand(
      "consume",
      "Receive from a node's queue: with --print, write each message (acked once written); "
      "without, count the sequence numbers weir produce --count sent");
  consume_cmd->add_option("--connect", consume.connect, "tcp://HOST:PORT of the node")->required();
  consume_cmd->add_option("--queue", consume.queue, "Queue name on that node")->required();
  consume_cmd->add_option("--count", consume.count, "Exit after N unique messages");
  consume_cmd->add_option("--idle-exit", consume.idle_exit_s,
                          "Exit after SECONDS without a delivery");
  consume_cmd->add_option("--ids-out", consume.ids_out,
                          "Append each received sequence number to FILE (flushed before the ack)");
  consume_cmd->add_option("--credit", consume.credit, "Deliveries held at most")
      ->capture_default_str();
  consume_cmd->add_option("--fail-every", consume.fail_every,
                          "Nack (requeue) every K-th delivery instead of acking it");
  consume_cmd->add_option("--delay-ms", consume.delay_ms,
                          "Pause MS after each delivery before acking it (a slow consumer)");
  consume_cmd->add_option("--warm-up", consume.warm_up_s,
                          "Leave deliveries of the first SECONDS (from the first delivery) out "
                          "of the latency_ms line; a warm_up_latency_ms line gives theirs")
      ->check(CLI::NonNegativeNumber);
  auto* print_opt = consume_cmd->add_flag(
      "--print", consume.print, "Write each message's body on its own line to standard output");
  auto* format_opt =
      consume_cmd
          ->add_option("--format", consume.format,
                       "With --print: text (the body) or json (id, key, headers, body, attempt, "
                       "publish time; bytes that are not UTF-8 as NAME_base64)")
          ->check(CLI::IsMember({"text", "json"}))
          ->capture_default_str();
  consume_cmd->get_option("--ids-out")->excludes(print_opt)->excludes(format_opt);
  consume_cmd->footer(
      "Last line: received=N unique=U elapsed_s=T msg_per_s=R (on stderr with --print or "
      "--format). Exit status: 0 done, 1 idle before --count or output failed, 2 bad arguments "
      "or unknown queue.");

  weir::cli::dlq_options dlq;
  auto* dlq_cmd = app.add_subcommand("dlq", "List or replay a queue's dead letters");
  dlq_cmd->require_subcommand(1);
  for (const char* action : {"list", "replay"}) {
    auto* sub = dlq_cmd->add_subcommand(action, std::string(action) == "list"
                                                    ? "Print the dead letters of a queue"
                                                    : "Move dead letters back into their queue");
    sub->add_option("--connect", dlq.connect, "tcp://HOST:PORT of the node")->required();
    sub->add_option("--queue", dlq.queue, "The queue whose dead letters to use")->required();
    sub->add_option("--limit", dlq.limit, "At most this many")->capture_default_str();
    sub->callback([&dlq, action] { dlq.action = action; });
  }

  weir::cli::run_options run;
  auto* run_cmd = app.add_subcommand(
      "run",
      "Run a pipeline declared in a TOML file until its source is read and every stage is done");
  run_cmd->add_option("FILE", run.file, "The topology (docs/configuration.md)")
      ->required()
      ->check(CLI::ExistingFile);
  run_cmd->add_option("--data", run.data_dir,
                      "Queue logs and stage checkpoints here (default: [pipeline] data_dir, "
                      "else ./weir-data)");
  run_cmd->add_option("--node", run.node, "This process's node, when the file names [node.NAME]s");
  run_cmd->add_option("--metrics", run.metrics, "Serve Prometheus metrics on HOST:PORT");
  run_cmd->add_flag("--print-config", run.print_config,
                    "Print the effective configuration, defaults included, and exit");
  run_cmd->add_option("--top", run.top, "Print this many of the largest counts at the end")
      ->capture_default_str();
  run_cmd->add_option("--timeout", run.timeout_s, "Give up after SECONDS (default: no limit)");
  run_cmd->footer(
      "The effective configuration goes to stderr at start. Interrupted (SIGINT, SIGTERM), it "
      "stops cleanly; run it again to resume. Exit status: 0 done, 1 failed or timed out, 2 bad "
      "configuration or cannot start, 130 interrupted.");

  std::string graph_file;
  auto* graph_cmd =
      app.add_subcommand("graph", "Print the pipeline of a TOML topology as Graphviz DOT");
  graph_cmd->add_option("FILE", graph_file, "The topology")->required()->check(CLI::ExistingFile);
  graph_cmd->footer("Exit status: 0 printed, 2 bad configuration. Render with: dot -Tsvg");

  weir::cli::info_options info;
  auto* stats_cmd = app.add_subcommand(
      "stats", "Print a running node's metrics in Prometheus text format (as GET /metrics)");
  auto* tree_cmd = app.add_subcommand(
      "tree", "Print a running node's supervision tree: each actor's state and restarts");
  for (auto* sub : {stats_cmd, tree_cmd}) {
    sub->add_option("--connect", info.connect, "tcp://HOST:PORT of the node (its ZeroMQ port)")
        ->required();
    sub->add_option("--timeout", info.timeout_s, "Give up after SECONDS")->capture_default_str();
    sub->footer("Exit status: 0 printed, 1 the node did not answer in time or refused, 2 bad "
                "arguments.");
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (*inspect_cmd) return weir::cli::run_inspect(inspect, std::cout, std::cerr);
  if (*node_cmd) return weir::cli::run_node(node);
  if (*produce_cmd) {
    produce.count_given = count_opt->count() > 0;
    return weir::cli::run_produce(produce);
  }
  if (*consume_cmd) {
    if (format_opt->count() > 0) consume.print = true;  // --format json alone prints
    return weir::cli::run_consume(consume);
  }
  if (*dlq_cmd) return weir::cli::run_dlq(dlq);
  if (*run_cmd) return weir::cli::run_topology(run);
  if (*graph_cmd) return weir::cli::print_graph(graph_file);
  if (*stats_cmd) return weir::cli::run_stats(info);
  if (*tree_cmd) return weir::cli::run_tree(info);
  return 2;
}
