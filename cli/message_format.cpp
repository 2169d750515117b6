#include "message_format.hpp"

#include <cstdio>
#include <ctime>

namespace weir::cli {

namespace {

/// `"name":"text"` when `bytes` is UTF-8, else `"name_base64":"..."`.
void append_bytes_field(std::string& out, std::string_view name, std::string_view bytes) {
  const bool text = is_utf8(bytes);
  out += '"';
  out += name;
  if (!text) out += "_base64";
  out += "\":";
  out += json_string(text ? std::string(bytes) : base64(bytes));
}

/// Nanoseconds since the epoch as RFC 3339 UTC with nanoseconds.
std::string utc_time(std::int64_t ns) {
  const auto seconds = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm parts{};
  gmtime_r(&seconds, &parts);
  char text[64];
  const auto used = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &parts);
  std::snprintf(text + used, sizeof text - used, ".%09lldZ",
                static_cast<long long>(ns % 1'000'000'000));
  return text;
}

}  // namespace

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (byte < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", byte);
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

result<message_header> parse_header(std::string_view flag) {
  const auto equals = flag.find('=');
  if (equals == std::string_view::npos || equals == 0) {
    return status{errc::invalid_argument,
                  "--header \"" + std::string(flag) + "\" is not NAME=VALUE with a non-empty NAME"};
  }
  return message_header{std::string(flag.substr(0, equals)), std::string(flag.substr(equals + 1))};
}

bool is_utf8(std::string_view bytes) {
  std::size_t i = 0;
  const auto n = bytes.size();
  const auto at = [&](std::size_t k) { return static_cast<unsigned char>(bytes[k]); };
  const auto continuation = [&](std::size_t k) { return k < n && (at(k) & 0xC0) == 0x80; };
  while (i < n) {
    const auto lead = at(i);
    if (lead < 0x80) {
      ++i;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
      if (!continuation(i + 1)) return false;
      i += 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      if (!continuation(i + 1) || !continuation(i + 2)) return false;
      const auto second = at(i + 1);
      if (lead == 0xE0 && second < 0xA0) return false;  // overlong
      if (lead == 0xED && second > 0x9F) return false;  // surrogate
      i += 3;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      if (!continuation(i + 1) || !continuation(i + 2) || !continuation(i + 3)) return false;
      const auto second = at(i + 1);
      if (lead == 0xF0 && second < 0x90) return false;  // overlong
      if (lead == 0xF4 && second > 0x8F) return false;  // past U+10FFFF
      i += 4;
    } else {
      return false;
    }
  }
  return true;
}

std::string base64(std::string_view bytes) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  const auto at = [&](std::size_t k) -> std::uint32_t { return static_cast<unsigned char>(bytes[k]); };
  for (; i + 3 <= bytes.size(); i += 3) {
    const auto triple = at(i) << 16 | at(i + 1) << 8 | at(i + 2);
    for (int shift = 18; shift >= 0; shift -= 6) out += alphabet[(triple >> shift) & 0x3F];
  }
  const auto rest = bytes.size() - i;
  if (rest > 0) {
    const auto triple = at(i) << 16 | (rest == 2 ? at(i + 1) << 8 : 0);
    out += alphabet[(triple >> 18) & 0x3F];
    out += alphabet[(triple >> 12) & 0x3F];
    out += rest == 2 ? alphabet[(triple >> 6) & 0x3F] : '=';
    out += '=';
  }
  return out;
}

std::string json_line(const delivery& d) {
  std::string out = "{\"id\":" + std::to_string(d.id) + ",\"attempt\":" + std::to_string(d.attempt);
  out += ",\"publish_time_ns\":" + std::to_string(d.data.publish_time_ns);
  out += ",\"publish_time\":";
  out += json_string(utc_time(d.data.publish_time_ns));
  out += ',';
  append_bytes_field(out, "key", d.data.key);
  // Headers whose name and value are text go under "headers"; the others under
  // "headers_base64", name and value both in base64, so no byte is lost.
  for (const bool text : {true, false}) {
    out += text ? ",\"headers\":{" : ",\"headers_base64\":{";
    bool first = true;
    for (const auto& header : d.data.headers) {
      if ((is_utf8(header.name) && is_utf8(header.value)) != text) continue;
      if (!first) out += ',';
      first = false;
      out += json_string(text ? header.name : base64(header.name));
      out += ':';
      out += json_string(text ? header.value : base64(header.value));
    }
    out += '}';
  }
  out += ',';
  append_bytes_field(out, "body", d.data.payload.view());
  out += '}';
  return out;
}

}  // namespace weir::cli
