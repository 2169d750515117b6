#include "log_files.hpp"

#include <charconv>
#include <cstdio>

namespace weir::log_files {

namespace {

std::string number_name(const char* prefix, std::uint64_t number, const char* suffix) {
  char name[64];
  std::snprintf(name, sizeof name, "%s%020llu%s", prefix, static_cast<unsigned long long>(number),
                suffix);
  return name;
}

}  // namespace

std::string segment_name(std::uint64_t number) {
  return number_name("segment-", number, ".wlog");
}

std::string spare_name(std::uint64_t number) {
  return number_name("spare-", number, ".wlog");
}

std::string snapshot_name(std::uint64_t sequence) {
  return number_name("snapshot-", sequence, ".wsnap");
}

std::optional<std::uint64_t> parse_number_name(std::string_view name, std::string_view prefix,
                                               std::string_view suffix) {
  if (name.size() <= prefix.size() + suffix.size() || !name.starts_with(prefix) ||
      !name.ends_with(suffix)) {
    return std::nullopt;
  }
  auto digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  std::uint64_t value = 0;
  auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (error != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

}  // namespace weir::log_files
