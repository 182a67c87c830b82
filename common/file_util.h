// Whole-file input and crash-safe output, shared by every tok1d command.
//
// The path "-" means standard input (for reading) or standard output (for writing).
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tok1d/status.h"

namespace tok1d {

// Inputs larger than this are refused before they are read into memory.
inline constexpr uint64_t kDefaultMaxInputBytes = uint64_t{1} << 30;  // 1 GiB

inline bool IsStdio(const std::string& path) { return path == "-"; }

// Reads a whole file (or stdin for "-") into memory.
StatusOr<std::vector<uint8_t>> ReadFileBytes(const std::string& path,
                                             uint64_t max_bytes = kDefaultMaxInputBytes);

// Fails with kInvalidArgument if `input` and `output` name the same file (which would be
// destroyed while it is read). "-" never collides.
Status CheckDistinctPaths(const std::string& input, const std::string& output);

// kInvalidArgument if `path` exists and `force` is not set (the message suggests --force).
// "-" (stdout) always passes.
Status CheckOverwrite(const std::string& path, bool force);

// Writes an output file atomically: bytes go to a temporary file in the same directory, which
// is fsync'ed and renamed into place by Commit(). If the object is destroyed without a
// successful Commit() (any error, an early return), the temporary file is removed, so no
// partial output is ever left behind. An existing file is only replaced when `force` is set;
// the check is made both at Open (to fail before expensive work) and at Commit (no race).
// For "-" the bytes go to stdout and Commit() flushes it.
class AtomicOutputFile {
 public:
  static StatusOr<AtomicOutputFile> Open(const std::string& path, bool force);

  AtomicOutputFile(AtomicOutputFile&& other) noexcept;
  AtomicOutputFile& operator=(AtomicOutputFile&& other) noexcept;
  AtomicOutputFile(const AtomicOutputFile&) = delete;
  AtomicOutputFile& operator=(const AtomicOutputFile&) = delete;
  ~AtomicOutputFile();

  Status Write(std::span<const uint8_t> bytes);
  Status Commit();

  const std::string& path() const { return path_; }

 private:
  AtomicOutputFile() = default;
  void Discard();

  std::string path_;       // final name
  std::string temp_path_;  // empty for stdout
  int fd_ = -1;
  bool force_ = false;
  bool committed_ = false;
};

// Open + Write + Commit in one call.
Status WriteFileAtomically(const std::string& path, std::span<const uint8_t> bytes, bool force);

// AtomicOutputFile names its temporary file ".NAME.tmp-XXXXXX" beside the output NAME. Returns
// NAME when `file_name` (a name without folders) has that form, else an empty string: a killed
// writer leaves such files behind, and this tells whose they are.
std::string OutputNameOfTemporaryFile(std::string_view file_name);

}  // namespace tok1d
