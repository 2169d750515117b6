#include "weir/runtime/checkpoint_file.hpp"

#include <capnp/serialize.h>

#include "record_format.hpp"

namespace weir {

namespace {

const char* magic_of(checkpoint_kind kind) {
  return kind == checkpoint_kind::log_snapshot ? record_format::snapshot_magic
                                               : record_format::stage_magic;
}

}  // namespace

status write_checkpoint_file(file_system& fs, const std::string& path,
                             capnp::MessageBuilder& message, checkpoint_kind kind,
                             std::uint32_t version) {
  record_format::word_buffer words(record_format::header_size / sizeof(capnp::word));
  record_format::write_file_header(reinterpret_cast<std::byte*>(words.data()), magic_of(kind),
                                   version);
  record_format::append_record(words, message);

  const auto temp = path + ".tmp";
  // A leftover of an interrupted write, if there is one; a real problem with
  // the directory shows in the open below.
  static_cast<void>(fs.remove_file(temp));
  auto file = fs.open_for_append(temp);
  if (!file) return file.error();
  status outcome = (*file)->append(std::as_bytes(std::span{words}));
  if (outcome) outcome = (*file)->sync();
  file->reset();
  if (outcome) outcome = fs.rename_file(temp, path);
  const auto slash = path.find_last_of('/');
  if (outcome) outcome = fs.sync_dir(slash == std::string::npos ? "." : path.substr(0, slash));
  // The failure returned is what matters; a temp file left is removed by the next write.
  if (!outcome) static_cast<void>(fs.remove_file(temp));
  return outcome;
}

result<std::unique_ptr<checkpoint_file>> checkpoint_file::read(file_system& fs,
                                                               const std::string& path,
                                                               checkpoint_kind kind,
                                                               std::uint32_t version,
                                                               std::uint32_t record_size_max) {
  auto out = std::unique_ptr<checkpoint_file>(new checkpoint_file);
  auto words = record_format::read_file_aligned(fs, path, out->size_bytes_);
  if (!words) return words.error();
  out->words_ = std::move(*words);
  auto bytes = std::as_bytes(std::span{out->words_}).first(out->size_bytes_);
  std::uint32_t found_version = 0;
  auto check = record_format::check_file_header(bytes, magic_of(kind), version, found_version);
  if (check != record_format::header_check::ok) {
    const auto code = check == record_format::header_check::other_version ? errc::version_mismatch
                                                                          : errc::corruption;
    return status{
        code, path + ": " + record_format::describe_header_problem(check, found_version, version)};
  }
  auto frame = record_format::decode_frame(bytes.subspan(record_format::header_size),
                                           record_size_max, record_format::no_salt);
  if (frame.status != record_format::frame_status::ok) {
    return status{errc::corruption, path + ": record at offset 16: " + frame.reason};
  }
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 1ull << 32;
  out->reader_ = std::make_unique<capnp::FlatArrayMessageReader>(
      kj::ArrayPtr<const capnp::word>(frame.payload.data(), frame.payload.size()), options);
  return out;
}

}  // namespace weir
