#pragma once
// How `weir produce` reads message parts from the command line and how `weir
// consume --print` writes messages out: text lines, or one JSON object a line
// where bytes that are not UTF-8 travel as base64.

#include <optional>
#include <string>
#include <string_view>

#include "weir/queue/protocol.hpp"
#include "weir/runtime/status.hpp"

namespace weir::cli {

/// `NAME=VALUE` from a --header flag; the name must not be empty, the value may be.
[[nodiscard]] result<message_header> parse_header(std::string_view flag);

/// True when `bytes` is well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF).
bool is_utf8(std::string_view bytes);

/// `text` (UTF-8) as a JSON string, quotes included, control characters escaped.
std::string json_string(std::string_view text);

/// Standard base64 (RFC 4648, with padding).
std::string base64(std::string_view bytes);

/// One JSON object, without a newline: id, attempt, publish time, key, headers and
/// body; a key, header value or body that is not UTF-8 goes under NAME_base64.
std::string json_line(const delivery& d);

}  // namespace weir::cli
