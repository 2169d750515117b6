// The Python module `weir`: the C++ client (weir/client/client.hpp) with
// Python's conventions. Errors become weir.Error subclasses carrying the
// node's reason; every wait releases the GIL; callbacks from the client's
// threads take the GIL before they touch a Python object.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "weir/client/client.hpp"
#include "weir/runtime/logging.hpp"

namespace py = pybind11;
using namespace std::chrono_literals;

namespace {

// Owned for the life of the process: a static py::object would be released
// after the interpreter is gone.
PyObject* error_type = nullptr;
PyObject* not_found_type = nullptr;
PyObject* timeout_type = nullptr;
PyObject* closed_type = nullptr;
PyObject* invalid_type = nullptr;
PyObject* connection_type = nullptr;

/// A Python exception for `s`: the class follows its kind, .code is the kind's
/// stable name, .reason the text (the node's own words where it gave any).
py::object exception_of(const weir::status& s, PyObject* type = nullptr) {
  if (type == nullptr) {
    switch (s.code()) {
      case weir::errc::not_found:
        type = not_found_type;
        break;
      case weir::errc::timed_out:
        type = timeout_type;
        break;
      case weir::errc::closed:
        type = closed_type;
        break;
      case weir::errc::invalid_argument:
        type = invalid_type;
        break;
      default:
        type = error_type;
        break;
    }
  }
  auto exception = py::reinterpret_borrow<py::object>(type)(s.message());
  exception.attr("code") = weir::to_string(s.code());
  exception.attr("reason") = s.message();
  return exception;
}

[[noreturn]] void raise(const weir::status& s, PyObject* type = nullptr) {
  auto exception = exception_of(s, type);
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exception.ptr())), exception.ptr());
  throw py::error_already_set();
}

void check(const weir::status& s) {
  if (!s) raise(s);
}

/// Bytes from bytes, bytearray, memoryview or str (as UTF-8); `what` names the argument.
std::string bytes_of(py::handle value, const char* what) {
  if (PyUnicode_Check(value.ptr())) {
    Py_ssize_t size = 0;
    const char* text = PyUnicode_AsUTF8AndSize(value.ptr(), &size);
    if (text == nullptr) throw py::error_already_set();
    return std::string(text, static_cast<std::size_t>(size));
  }
  if (PyObject_CheckBuffer(value.ptr())) {
    Py_buffer view;
    if (PyObject_GetBuffer(value.ptr(), &view, PyBUF_SIMPLE) != 0) throw py::error_already_set();
    std::string out(static_cast<const char*>(view.buf), static_cast<std::size_t>(view.len));
    PyBuffer_Release(&view);
    return out;
  }
  throw py::type_error(std::string(what) + " must be bytes or str, not " +
                       std::string(py::str(py::type::handle_of(value).attr("__name__"))));
}

/// Text for Python; bytes that are not UTF-8 survive as surrogates.
py::str text_of(const std::string& bytes) {
  auto* text =
      PyUnicode_DecodeUTF8(bytes.data(), static_cast<Py_ssize_t>(bytes.size()), "surrogateescape");
  if (text == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(text);
}

std::vector<weir::client_header> headers_of(py::handle headers) {
  std::vector<weir::client_header> out;
  if (headers.is_none()) return out;
  if (!py::isinstance<py::dict>(headers))
    throw py::type_error("headers must be a dict of str to str");
  for (auto [name, value] : py::reinterpret_borrow<py::dict>(headers)) {
    out.emplace_back(bytes_of(name, "a header name"), bytes_of(value, "a header value"));
  }
  return out;
}

weir::client_message message_of(py::handle body, py::handle key, py::handle headers) {
  return {bytes_of(body, "body"), key.is_none() ? std::string() : bytes_of(key, "key"),
          headers_of(headers)};
}

/// One item of publish_many: a body, or a dict with "body" and optional "key" and "headers".
weir::client_message message_of(py::handle item) {
  if (py::isinstance<py::dict>(item)) {
    auto d = py::reinterpret_borrow<py::dict>(item);
    if (!d.contains("body")) throw py::value_error("a message dict needs a \"body\"");
    return message_of(d["body"], d.contains("key") ? py::object(d["key"]) : py::object(py::none()),
                      d.contains("headers") ? py::object(d["headers"]) : py::object(py::none()));
  }
  return message_of(item, py::none(), py::none());
}

std::chrono::milliseconds milliseconds_of(double seconds, const char* what) {
  if (!(seconds > 0)) throw py::value_error(std::string(what) + " must be positive seconds");
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000.0 + 0.5));
}

/// Drops a shared object with the GIL released: its last owner may wait on a
/// client thread that needs the GIL for a callback.
template <class T>
void reset_without_gil(std::shared_ptr<T>& held) {
  if (!held) return;
  if (!Py_IsInitialized() || !PyGILState_Check()) {
    held.reset();
    return;
  }
  py::gil_scoped_release release;
  held.reset();
}

/// A Python object a client thread may call and drop: both take the GIL.
std::shared_ptr<py::object> hold_for_threads(py::object target) {
  return std::shared_ptr<py::object>(new py::object(std::move(target)), [](py::object* o) {
    if (!Py_IsInitialized()) return;  // the interpreter is gone: leak rather than crash
    py::gil_scoped_acquire gil;
    delete o;
  });
}

// Clients still open when the interpreter exits are closed first (atexit), so
// that no callback runs into a finalizing interpreter.
std::mutex open_clients_mutex;
std::vector<std::weak_ptr<weir::client>>* open_clients =
    new std::vector<std::weak_ptr<weir::client>>;

void close_open_clients() {
  std::vector<std::shared_ptr<weir::client>> open;
  {
    std::lock_guard lock(open_clients_mutex);
    for (auto& weak : *open_clients) {
      if (auto strong = weak.lock()) open.push_back(std::move(strong));
    }
    open_clients->clear();
  }
  py::gil_scoped_release release;
  for (auto& c : open) c->close();
}

struct py_subscription;

/// A received message; settle it with ack(), nack() or let its lease run out.
struct py_message {
  std::shared_ptr<weir::subscription> from;
  weir::received_message m;
  bool settled = false;

  ~py_message() { reset_without_gil(from); }

  void ack() {
    check(from->ack(m.id));
    settled = true;
  }
  void nack(bool requeue, const std::string& reason) {
    check(from->nack(m.id, requeue ? weir::nack_action::requeue : weir::nack_action::dead_letter,
                     reason));
    settled = true;
  }
  void extend(std::int64_t ms) { check(from->extend(m.id, std::chrono::milliseconds(ms))); }

  py::dict headers() const {
    py::dict out;
    for (const auto& [name, value] : m.headers) out[text_of(name)] = text_of(value);
    return out;
  }
  std::string repr() const {
    return "<weir.Message queue=" + from->queue() + " id=" + std::to_string(m.id) +
           " attempt=" + std::to_string(m.attempt) + " bytes=" + std::to_string(m.body.size()) +
           ">";
  }
};

/// Messages of one queue as an iterator; iteration ends after `timeout` seconds
/// without a message (never, when timeout is None).
struct py_subscription {
  std::shared_ptr<weir::subscription> s;
  std::optional<double> timeout;

  ~py_subscription() { reset_without_gil(s); }

  /// The next message, or None after `wait` seconds (None: wait for ever).
  /// Waits in slices, so that Ctrl-C is seen while a queue is quiet.
  std::optional<py_message> get(std::optional<double> wait) {
    if (!s) raise(weir::status{weir::errc::closed, "the subscription is closed"});
    const auto deadline =
        wait ? std::chrono::steady_clock::now() + milliseconds_of(std::max(*wait, 0.001), "timeout")
             : std::chrono::steady_clock::time_point::max();
    for (;;) {
      auto slice = std::chrono::milliseconds(100);
      if (wait) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        slice = std::clamp(left, std::chrono::milliseconds(0), slice);
      }
      auto got = [&] {
        py::gil_scoped_release release;
        return s->next(slice);
      }();
      if (got) return py_message{s, std::move(*got), false};
      if (got.error().code() != weir::errc::timed_out) raise(got.error());
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    }
  }

  void close() {
    if (!s) return;
    py::gil_scoped_release release;
    s->close();
  }
};

struct py_client {
  std::shared_ptr<weir::client> c;

  ~py_client() { reset_without_gil(c); }

  weir::client& get() {
    if (!c) raise(weir::status{weir::errc::closed, "the client is closed"});
    return *c;
  }

  void publish(const std::string& queue, py::handle body, py::handle key, py::handle headers) {
    auto message = message_of(body, key, headers);
    auto& client = get();
    weir::status outcome;
    {
      py::gil_scoped_release release;
      outcome = client.publish(queue, std::move(message));
    }
    check(outcome);
  }

  void publish_many(const std::string& queue, py::iterable items) {
    std::vector<weir::client_message> messages;
    for (auto item : items) messages.push_back(message_of(item));
    auto& client = get();
    weir::status outcome;
    {
      py::gil_scoped_release release;
      outcome = client.publish(queue, std::move(messages));
    }
    check(outcome);
  }

  /// Calls `callback(None)` once durable or `callback(error)`; without a callback,
  /// returns a concurrent.futures.Future that gets the same outcome.
  py::object publish_async(const std::string& queue, py::handle body, py::handle key,
                           py::handle headers, py::object callback) {
    std::vector<weir::client_message> messages;
    messages.push_back(message_of(body, key, headers));
    py::object returned = py::none();
    if (callback.is_none()) {
      returned = py::module_::import("concurrent.futures").attr("Future")();
      returned.attr("set_running_or_notify_cancel")();
    }
    auto future = hold_for_threads(returned);
    auto user = hold_for_threads(callback);
    get().publish_async(queue, std::move(messages), [future, user](const weir::status& outcome) {
      if (!Py_IsInitialized()) return;
      py::gil_scoped_acquire gil;
      try {
        py::object error = outcome ? py::object(py::none()) : exception_of(outcome);
        if (!future->is_none()) {
          if (outcome) {
            future->attr("set_result")(py::none());
          } else {
            future->attr("set_exception")(error);
          }
        } else {
          (*user)(error);
        }
      } catch (py::error_already_set& e) {
        // Nobody to raise to on this thread: Python's hook for such errors reports it.
        e.discard_as_unraisable("weir publish_async callback");
      }
    });
    return returned;
  }

  py_subscription consume(const std::string& queue, std::uint32_t credit,
                          std::optional<double> timeout) {
    auto& client = get();
    std::optional<weir::result<weir::subscription>> got;
    {
      py::gil_scoped_release release;
      got.emplace(client.subscribe(queue, credit));
    }
    if (!*got) raise(got->error());
    return py_subscription{std::make_shared<weir::subscription>(std::move(**got)), timeout};
  }

  /// Runs handler(message) for each message; a handler that returns acks it
  /// (unless it settled the message itself), one that raises nacks it with the
  /// exception's text as the reason. Returns how many were handled without error.
  std::uint64_t process(const std::string& queue, py::object handler, std::uint32_t credit,
                        bool requeue, std::optional<double> timeout,
                        std::optional<std::uint64_t> count) {
    auto sub = consume(queue, credit, timeout);
    std::uint64_t handled = 0;
    std::uint64_t seen = 0;
    while (!count || seen < *count) {
      auto message = sub.get(timeout);
      if (!message) break;
      ++seen;
      auto held = py::cast(std::move(*message));
      auto& m = held.cast<py_message&>();
      try {
        handler(held);
      } catch (py::error_already_set& e) {
        // Ctrl-C and SystemExit are no fault of the message: it is requeued
        // whatever `requeue` says, and the loop ends.
        const bool interrupted = !e.matches(PyExc_Exception);
        if (!m.settled) {
          const std::string type = py::str(e.type().attr("__name__"));
          const std::string text = py::str(e.value());
          m.nack(requeue || interrupted, text.empty() ? type : type + ": " + text);
        }
        if (interrupted) throw;
        continue;
      }
      if (!m.settled) m.ack();
      ++handled;
    }
    sub.close();
    return handled;
  }

  void close() {
    if (!c) return;
    py::gil_scoped_release release;
    c->close();
  }
};

}  // namespace

PYBIND11_MODULE(weir, m) {
  m.doc() = "Client of weir nodes: publish with confirms, consume with explicit acks.";
  // Logs go to stderr, and only warnings: stdout is the program's own.
  weir::log_to_stderr();
  spdlog::set_level(spdlog::level::warn);

  auto make_type = [&](const char* name, PyObject* bases, const char* doc) {
    auto* type =
        PyErr_NewExceptionWithDoc((std::string("weir.") + name).c_str(), doc, bases, nullptr);
    if (type == nullptr) throw py::error_already_set();
    m.attr(name) = py::reinterpret_borrow<py::object>(type);
    return type;
  };
  auto tuple = [](PyObject* a, PyObject* b) {
    return py::make_tuple(py::handle(a), py::handle(b)).release().ptr();
  };
  error_type = make_type("Error", PyExc_Exception,
                         "A failure reported by weir; .code is its kind, .reason the text.");
  not_found_type = make_type("NotFoundError", tuple(error_type, PyExc_LookupError),
                             "The node has no such queue (or message).");
  timeout_type = make_type("TimeoutError", tuple(error_type, PyExc_TimeoutError),
                           "Not done within the time given; a publish may still be stored.");
  closed_type = make_type("ClosedError", error_type, "The client or subscription is closed.");
  invalid_type = make_type("InvalidArgumentError", tuple(error_type, PyExc_ValueError),
                           "The call asked for something malformed.");
  connection_type = make_type("ConnectionError", tuple(error_type, PyExc_ConnectionError),
                              "No weir node could be reached at the address.");

  py::class_<py_message>(m, "Message", "A message received from a queue.")
      .def_property_readonly("id", [](const py_message& x) { return x.m.id; })
      .def_property_readonly(
          "attempt", [](const py_message& x) { return x.m.attempt; },
          "1 on the first delivery, 2 on the first redelivery, ...")
      .def_property_readonly("body", [](const py_message& x) { return py::bytes(x.m.body); })
      .def_property_readonly("key", [](const py_message& x) { return text_of(x.m.key); })
      .def_property_readonly("headers", &py_message::headers)
      .def_property_readonly(
          "publish_time",
          [](const py_message& x) { return static_cast<double>(x.m.publish_time_ns) / 1e9; },
          "The publisher's clock, seconds since the Unix epoch.")
      .def_property_readonly("queue", [](const py_message& x) { return x.from->queue(); })
      .def_property_readonly("settled", [](const py_message& x) { return x.settled; })
      .def("ack", &py_message::ack, "Done: the queue forgets the message.")
      .def("nack", &py_message::nack, py::arg("requeue") = true, py::arg("reason") = "",
           "Failed: requeue it (redelivered later) or send it to the dead-letter queue.")
      .def("extend", &py_message::extend, py::arg("ms"),
           "Moves the message's ack deadline `ms` milliseconds later.")
      .def("__repr__", &py_message::repr);

  py::class_<py_subscription>(m, "Subscription", "Messages of one queue, as an iterator.")
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__",
           [](py_subscription& self) {
             auto message = self.get(self.timeout);
             if (!message) throw py::stop_iteration();
             return std::move(*message);
           })
      .def("get", &py_subscription::get, py::arg("timeout") = py::none(),
           "The next message, or None after `timeout` seconds.")
      .def("close", &py_subscription::close,
           "Unsubscribes: unsettled messages are ready for others at once.")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](py_subscription& self, py::args) { self.close(); });

  py::class_<py_client>(m, "Client", "A connection to one weir node.")
      .def("publish", &py_client::publish, py::arg("queue"), py::arg("body"),
           py::arg("key") = py::none(), py::arg("headers") = py::none(),
           "Publishes one message and returns once the node has stored it.")
      .def("publish_many", &py_client::publish_many, py::arg("queue"), py::arg("messages"),
           "Publishes bodies (or dicts with body, key, headers) in order; returns once all are "
           "stored.")
      .def("publish_async", &py_client::publish_async, py::arg("queue"), py::arg("body"),
           py::arg("key") = py::none(), py::arg("headers") = py::none(),
           py::arg("callback") = py::none(),
           "Returns at once; callback(None or error) once stored, or a Future without callback.")
      .def("consume", &py_client::consume, py::arg("queue"), py::arg("credit") = 16,
           py::arg("timeout") = py::none(),
           "An iterator of messages, at most `credit` unsettled; it ends after `timeout` idle "
           "seconds.")
      .def("process", &py_client::process, py::arg("queue"), py::arg("handler"),
           py::arg("credit") = 1, py::arg("requeue") = true, py::arg("timeout") = py::none(),
           py::arg("count") = py::none(),
           "Runs handler(message) on each message: ack on return, nack with the exception's text "
           "on raise.")
      .def("close", &py_client::close, "Waits for async publishes, then disconnects.")
      .def_property_readonly("address", [](py_client& self) { return self.get().address(); })
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](py_client& self, py::args) { self.close(); });

  m.def(
      "connect",
      [](const std::string& address, double connect_timeout, double publish_timeout,
         std::uint32_t window) {
        weir::client_options options;
        options.connect_timeout = milliseconds_of(connect_timeout, "connect_timeout");
        options.publish_timeout = milliseconds_of(publish_timeout, "publish_timeout");
        options.window = window;
        std::optional<weir::result<weir::client>> connected;
        {
          py::gil_scoped_release release;
          connected.emplace(weir::client::connect(address, options));
        }
        if (!*connected) {
          const auto& error = connected->error();
          raise(error,
                error.code() == weir::errc::invalid_argument ? invalid_type : connection_type);
        }
        auto c = std::make_shared<weir::client>(std::move(**connected));
        {
          std::lock_guard lock(open_clients_mutex);
          std::erase_if(*open_clients, [](const auto& weak) { return weak.expired(); });
          open_clients->push_back(c);
        }
        return py_client{std::move(c)};
      },
      py::arg("address"), py::arg("connect_timeout") = 10.0, py::arg("publish_timeout") = 30.0,
      py::arg("window") = 4096,
      "Connects to the weir node at address (tcp://HOST:PORT); raises weir.ConnectionError "
      "if none answers within connect_timeout seconds.");

  py::module_::import("atexit").attr("register")(py::cpp_function(&close_open_clients));
}
