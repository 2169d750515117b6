#include "weir/runtime/http_server.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <list>
#include <system_error>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

namespace weir {

namespace {

using clock_type = std::chrono::steady_clock;

// After the answer is written, what the client still sends is read and dropped
// for at most this long before the close: closing a socket with unread input
// sends a reset, which can destroy the answer before the client has read it
// (exactly the case of a 400 for an oversized request).
constexpr std::chrono::milliseconds drain_time_max{1000};

status os_error(int error_number, const std::string& what) {
  const auto code = error_number == EADDRINUSE ? errc::in_use : errc_from_errno(error_number);
  return {code, what + ": " + std::generic_category().message(error_number)};
}

struct connection {
  enum class phase { reading, writing, draining };
  int fd = -1;
  phase at = phase::reading;
  std::string in;
  std::string out;
  std::size_t written = 0;
  clock_type::time_point deadline;
};

const char* reason_of(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    default:
      return "Internal Server Error";
  }
}

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
         std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// Splits "HOST:PORT" ("[v6]:PORT" too); false when there is no numeric port.
bool split_host_port(const std::string& text, std::string& host, std::string& port) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  host = text.substr(0, colon);
  port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  return std::stoul(port) <= 65535;
}

class http_server_impl final : public http_server {
 public:
  http_server_impl(handler handle, http_server_options options)
      : handle_(std::move(handle)), options_(std::move(options)) {}

  ~http_server_impl() override { stop(); }

  status listen(const std::string& host_port) {
    std::string host;
    std::string port;
    if (!split_host_port(host_port, host, port)) {
      return {errc::invalid_argument,
              "metrics address '" + host_port + "' is not HOST:PORT with a numeric port"};
    }
    if (host.empty()) host = "0.0.0.0";
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    if (int error = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); error != 0) {
      return {errc::invalid_argument,
              "metrics address '" + host_port + "': " + ::gai_strerror(error)};
    }
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, &::freeaddrinfo);
    listen_fd_ = ::socket(found->ai_family, found->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                          found->ai_protocol);
    if (listen_fd_ < 0) return os_error(errno, "metrics socket for " + host_port);
    // Lets a restarted node bind while old connections sit in TIME_WAIT; on
    // Linux it does not let two listeners share a port, so "in use" stays an error.
    int on = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (::bind(listen_fd_, found->ai_addr, found->ai_addrlen) != 0) {
      return os_error(errno, "cannot listen for metrics on " + host_port);
    }
    if (::listen(listen_fd_, 64) != 0) {
      return os_error(errno, "cannot listen for metrics on " + host_port);
    }
    sockaddr_storage bound{};
    socklen_t bound_size = sizeof bound;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &bound_size);
    char numeric_host[NI_MAXHOST];
    char numeric_port[NI_MAXSERV];
    ::getnameinfo(reinterpret_cast<sockaddr*>(&bound), bound_size, numeric_host,
                  sizeof numeric_host, numeric_port, sizeof numeric_port,
                  NI_NUMERICHOST | NI_NUMERICSERV);
    address_ = bound.ss_family == AF_INET6 ? "[" + std::string(numeric_host) + "]"
                                           : std::string(numeric_host);
    address_ += ":" + std::string(numeric_port);
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) return os_error(errno, "metrics server eventfd");
    thread_ = std::thread([this] { loop(); });
    return {};
  }

  std::string address() const override { return address_; }

  http_server_stats stats() const override {
    http_server_stats out;
    out.connections = connections_.load();
    out.requests = requests_.load();
    out.ok = ok_.load();
    out.not_found = not_found_.load();
    out.bad_requests = bad_requests_.load();
    out.timeouts = timeouts_.load();
    out.refused = refused_.load();
    return out;
  }

  void stop() override {
    if (thread_.joinable()) {
      stopping_ = true;
      std::uint64_t one = 1;
      [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
      thread_.join();
    }
    for (auto& c : clients_) ::close(c.fd);
    clients_.clear();
    if (listen_fd_ >= 0) ::close(listen_fd_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
    listen_fd_ = wake_fd_ = -1;
  }

 private:
  void loop() {
    std::vector<pollfd> fds;
    while (!stopping_) {
      fds.clear();
      fds.push_back({wake_fd_, POLLIN, 0});
      fds.push_back({listen_fd_, POLLIN, 0});
      auto next_deadline = clock_type::time_point::max();
      for (auto& c : clients_) {
        const short events = c.at == connection::phase::writing ? POLLOUT : POLLIN;
        fds.push_back({c.fd, events, 0});
        next_deadline = std::min(next_deadline, c.deadline);
      }
      int timeout_ms = -1;
      if (next_deadline != clock_type::time_point::max()) {
        const auto left =
            std::chrono::ceil<std::chrono::milliseconds>(next_deadline - clock_type::now());
        timeout_ms = static_cast<int>(std::max<std::int64_t>(0, left.count()));
      }
      if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
        spdlog::error("metrics server: poll failed: {}", std::strerror(errno));
        return;
      }
      if (stopping_) return;
      if (fds[1].revents & POLLIN) accept_all();
      // clients_ is a list: its order matches fds[2..] for the entries polled.
      std::size_t i = 2;
      const auto now = clock_type::now();
      for (auto it = clients_.begin(); it != clients_.end() && i < fds.size(); ++i) {
        bool keep = true;
        if (fds[i].revents != 0) keep = serve(*it, fds[i].revents);
        if (keep && now >= it->deadline) {
          if (it->at == connection::phase::reading) ++timeouts_;
          keep = false;
        }
        if (!keep) {
          ::close(it->fd);
          it = clients_.erase(it);
        } else {
          ++it;
        }
      }
    }
  }

  void accept_all() {
    for (;;) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or an error that the next poll reports again
      ++connections_;
      if (clients_.size() >= options_.connections_max) {
        ++refused_;
        ::close(fd);
        continue;
      }
      connection c;
      c.fd = fd;
      c.deadline = clock_type::now() + options_.request_timeout;
      clients_.push_back(std::move(c));
    }
  }

  // False when the connection is done and is to be closed.
  bool serve(connection& c, short revents) {
    switch (c.at) {
      case connection::phase::reading:
        return read_request(c, revents);
      case connection::phase::writing:
        return write_answer(c);
      case connection::phase::draining: {
        char scratch[4096];
        for (;;) {
          auto n = ::recv(c.fd, scratch, sizeof scratch, 0);
          if (n > 0) continue;
          return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
        }
      }
    }
    return false;
  }

  bool read_request(connection& c, short revents) {
    char chunk[4096];
    for (;;) {
      // One byte past the limit is enough to know the request is too large.
      const auto room = options_.request_bytes_max + 1 - c.in.size();
      auto n = ::recv(c.fd, chunk, std::min(room, sizeof chunk), 0);
      if (n > 0) {
        c.in.append(chunk, static_cast<std::size_t>(n));
        if (c.in.find("\r\n\r\n") != std::string::npos) return answer(c, handle_request(c.in));
        if (c.in.size() > options_.request_bytes_max) {
          ++bad_requests_;
          ++requests_;
          return answer(
              c, respond(400, "request larger than " + std::to_string(options_.request_bytes_max) +
                                  " bytes\n"));
        }
        continue;
      }
      if (n == 0) return false;  // closed before a whole request: nothing to answer
      if (errno == EAGAIN || errno == EWOULDBLOCK) return (revents & (POLLERR | POLLHUP)) == 0;
      return false;
    }
  }

  std::string handle_request(const std::string& request) {
    ++requests_;
    const auto line_end = request.find("\r\n");
    const std::string line = request.substr(0, line_end);
    // METHOD SP TARGET SP HTTP/1.x, each part non-empty and free of spaces.
    const auto first = line.find(' ');
    const auto second = first == std::string::npos ? first : line.find(' ', first + 1);
    if (first == std::string::npos || second == std::string::npos || first == 0 ||
        line.find(' ', second + 1) != std::string::npos) {
      return bad_request("malformed request line\n");
    }
    const std::string method = line.substr(0, first);
    const std::string target = line.substr(first + 1, second - first - 1);
    const std::string version = line.substr(second + 1);
    if (!std::all_of(method.begin(), method.end(), is_token_char) || target.empty() ||
        target.front() != '/' || version.rfind("HTTP/1.", 0) != 0 || version.size() != 8) {
      return bad_request("malformed request line\n");
    }
    // Header lines must each be NAME: VALUE; nothing in them is used.
    for (auto at = line_end + 2; at < request.size();) {
      const auto end = request.find("\r\n", at);
      if (end == std::string::npos || end == at) break;
      const auto colon = request.find(':', at);
      if (colon == std::string::npos || colon >= end || colon == at) {
        return bad_request("malformed header line\n");
      }
      at = end + 2;
    }
    if (method != "GET" && method != "HEAD") {
      ++bad_requests_;
      return respond(405, "only GET and HEAD are served\n", "Allow: GET, HEAD\r\n");
    }
    const std::string path = target.substr(0, target.find('?'));
    std::optional<std::string> body;
    try {
      body = handle_(path);
    } catch (const std::exception& e) {
      spdlog::error("metrics server: handler for {} failed: {}", path, e.what());
      return respond(500, "internal error\n");
    }
    if (!body) {
      ++not_found_;
      return respond(404, "not found: " + path + "\n", {}, method == "HEAD");
    }
    ++ok_;
    return respond(200, std::move(*body), {}, method == "HEAD");
  }

  std::string bad_request(const std::string& why) {
    ++bad_requests_;
    spdlog::debug("metrics server: 400: {}", why);
    return respond(400, why);
  }

  std::string respond(int code, std::string body, const std::string& extra_headers = {},
                      bool head_only = false) {
    std::string out = "HTTP/1.1 " + std::to_string(code) + " " + reason_of(code) + "\r\n";
    out += "Content-Type: " + (code == 200 ? options_.content_type : "text/plain; charset=utf-8");
    out += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    out += extra_headers;
    out += "Connection: close\r\n\r\n";
    if (!head_only) out += body;
    return out;
  }

  bool answer(connection& c, std::string response) {
    c.in.clear();
    c.in.shrink_to_fit();
    c.out = std::move(response);
    c.at = connection::phase::writing;
    return write_answer(c);
  }

  bool write_answer(connection& c) {
    while (c.written < c.out.size()) {
      auto n = ::send(c.fd, c.out.data() + c.written, c.out.size() - c.written, MSG_NOSIGNAL);
      if (n > 0) {
        c.written += static_cast<std::size_t>(n);
        continue;
      }
      return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
    ::shutdown(c.fd, SHUT_WR);
    c.at = connection::phase::draining;
    c.deadline = std::min(c.deadline, clock_type::now() + drain_time_max);
    return true;
  }

  handler handle_;
  const http_server_options options_;
  std::string address_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::list<connection> clients_;  // the server thread's
  std::atomic<std::uint64_t> connections_{0};
  std::atomic<std::uint64_t> requests_{0};
  std::atomic<std::uint64_t> ok_{0};
  std::atomic<std::uint64_t> not_found_{0};
  std::atomic<std::uint64_t> bad_requests_{0};
  std::atomic<std::uint64_t> timeouts_{0};
  std::atomic<std::uint64_t> refused_{0};
};

}  // namespace

result<std::unique_ptr<http_server>> http_server::start(std::string host_port, handler handle,
                                                        http_server_options options) {
  if (!handle) return status{errc::invalid_argument, "metrics server without a handler"};
  auto server = std::make_unique<http_server_impl>(std::move(handle), std::move(options));
  if (auto listening = server->listen(host_port); !listening) return listening;
  return std::unique_ptr<http_server>(std::move(server));
}

}  // namespace weir
