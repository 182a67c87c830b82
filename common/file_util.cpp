#include "common/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

namespace tok1d {
namespace {

std::string ErrnoText(int error) { return std::strerror(error); }

Status ErrnoStatus(const std::string& what, const std::string& path, int error) {
  std::string message = "cannot " + what + " '" + path + "': " + ErrnoText(error);
  if (error == ENOENT) return NotFoundError(std::move(message));
  return IoError(std::move(message));
}

// Reads until EOF from `fd`, refusing more than `max_bytes`.
StatusOr<std::vector<uint8_t>> ReadAll(int fd, const std::string& name, uint64_t max_bytes) {
  std::vector<uint8_t> bytes;
  struct stat info {};
  if (fstat(fd, &info) == 0 && S_ISREG(info.st_mode)) {
    if (static_cast<uint64_t>(info.st_size) > max_bytes) {
      return TooLargeError("'" + name + "' is " + std::to_string(info.st_size) +
                           " bytes, over the limit of " + std::to_string(max_bytes));
    }
    bytes.reserve(static_cast<size_t>(info.st_size));
  } else if (fstat(fd, &info) == 0 && S_ISDIR(info.st_mode)) {
    return InvalidArgumentError("'" + name + "' is a directory, not a file");
  }
  uint8_t chunk[1 << 16];
  for (;;) {
    ssize_t got = read(fd, chunk, sizeof(chunk));
    if (got == 0) break;
    if (got < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read", name, errno);
    }
    if (bytes.size() + static_cast<size_t>(got) > max_bytes) {
      return TooLargeError("'" + name + "' is over the input limit of " +
                           std::to_string(max_bytes) + " bytes");
    }
    bytes.insert(bytes.end(), chunk, chunk + got);
  }
  return bytes;
}

Status WriteAllFd(int fd, std::span<const uint8_t> bytes, const std::string& name) {
  while (!bytes.empty()) {
    ssize_t put = write(fd, bytes.data(), bytes.size());
    if (put < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write", name, errno);
    }
    bytes = bytes.subspan(static_cast<size_t>(put));
  }
  return OkStatus();
}

std::string DirectoryOf(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool PathExists(const std::string& path) {
  struct stat info {};
  return lstat(path.c_str(), &info) == 0;
}

constexpr std::string_view kTemporarySuffix = ".tmp-";
constexpr std::string_view kTemporaryRandom = "XXXXXX";  // filled in by mkostemp

Status AlreadyExistsError(const std::string& path) {
  return InvalidArgumentError("output file '" + path +
                              "' already exists; use -f/--force to overwrite it");
}

}  // namespace

StatusOr<std::vector<uint8_t>> ReadFileBytes(const std::string& path, uint64_t max_bytes) {
  if (IsStdio(path)) return ReadAll(STDIN_FILENO, "<stdin>", max_bytes);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open", path, errno);
  auto bytes = ReadAll(fd, path, max_bytes);
  close(fd);
  return bytes;
}

Status CheckDistinctPaths(const std::string& input, const std::string& output) {
  if (IsStdio(input) || IsStdio(output)) return OkStatus();
  struct stat in_info {
  }, out_info{};
  bool same = input == output;
  if (!same && stat(input.c_str(), &in_info) == 0 && stat(output.c_str(), &out_info) == 0) {
    same = in_info.st_dev == out_info.st_dev && in_info.st_ino == out_info.st_ino;
  }
  if (same) {
    return InvalidArgumentError("output '" + output +
                                "' is the input file; choose a different output path");
  }
  return OkStatus();
}

Status CheckOverwrite(const std::string& path, bool force) {
  if (!force && !IsStdio(path) && PathExists(path)) return AlreadyExistsError(path);
  return OkStatus();
}

StatusOr<AtomicOutputFile> AtomicOutputFile::Open(const std::string& path, bool force) {
  AtomicOutputFile file;
  file.path_ = path;
  file.force_ = force;
  if (IsStdio(path)) {
    file.fd_ = STDOUT_FILENO;
    return file;
  }
  if (path.empty()) return InvalidArgumentError("empty output path");
  TOK1D_RETURN_IF_ERROR(CheckOverwrite(path, force));
  std::string name = path.substr(path.find_last_of('/') + 1);  // npos + 1 == 0
  std::string temp = DirectoryOf(path) + "/." + name + std::string(kTemporarySuffix) +
                     std::string(kTemporaryRandom);
  int fd = mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("create a temporary file in the directory of", path, errno);
  // mkstemp creates 0600; give the output the usual permissions (subject to umask).
  mode_t mask = umask(0);
  umask(mask);
  fchmod(fd, 0666 & ~mask);
  file.fd_ = fd;
  file.temp_path_ = std::move(temp);
  return file;
}

AtomicOutputFile::AtomicOutputFile(AtomicOutputFile&& other) noexcept { *this = std::move(other); }

AtomicOutputFile& AtomicOutputFile::operator=(AtomicOutputFile&& other) noexcept {
  if (this != &other) {
    Discard();
    path_ = std::move(other.path_);
    temp_path_ = std::exchange(other.temp_path_, std::string());
    fd_ = std::exchange(other.fd_, -1);
    force_ = other.force_;
    committed_ = other.committed_;
  }
  return *this;
}

AtomicOutputFile::~AtomicOutputFile() { Discard(); }

void AtomicOutputFile::Discard() {
  if (!temp_path_.empty()) {
    if (fd_ >= 0) close(fd_);
    if (!committed_) unlink(temp_path_.c_str());
  }
  temp_path_.clear();
  fd_ = -1;
}

Status AtomicOutputFile::Write(std::span<const uint8_t> bytes) {
  if (fd_ < 0 || committed_) return InternalError("write to a closed output file");
  return WriteAllFd(fd_, bytes, IsStdio(path_) ? "<stdout>" : path_);
}

Status AtomicOutputFile::Commit() {
  if (fd_ < 0 || committed_) return InternalError("commit of a closed output file");
  if (IsStdio(path_)) {
    committed_ = true;
    fd_ = -1;
    return OkStatus();
  }
  if (fsync(fd_) != 0) return ErrnoStatus("sync", path_, errno);
  if (close(fd_) != 0) {
    fd_ = -1;
    return ErrnoStatus("close", path_, errno);
  }
  fd_ = -1;
  // Without --force the rename must not replace a file that appeared since Open.
  int renamed =
      force_ ? rename(temp_path_.c_str(), path_.c_str())
             : renameat2(AT_FDCWD, temp_path_.c_str(), AT_FDCWD, path_.c_str(), RENAME_NOREPLACE);
  if (renamed != 0 && !force_ && errno == EINVAL) {
    // File system without RENAME_NOREPLACE: link() also refuses an existing target.
    renamed = link(temp_path_.c_str(), path_.c_str());
    if (renamed == 0) unlink(temp_path_.c_str());
  }
  if (renamed != 0) {
    if (errno == EEXIST) return AlreadyExistsError(path_);
    return ErrnoStatus("rename the temporary file to", path_, errno);
  }
  committed_ = true;
  // Make the rename itself durable.
  int dir = open(DirectoryOf(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    fsync(dir);
    close(dir);
  }
  return OkStatus();
}

std::string OutputNameOfTemporaryFile(std::string_view file_name) {
  const size_t affixes = 1 + kTemporarySuffix.size() + kTemporaryRandom.size();
  if (file_name.size() <= affixes || file_name.front() != '.') return {};
  const size_t suffix_at = file_name.size() - kTemporaryRandom.size() - kTemporarySuffix.size();
  if (file_name.substr(suffix_at, kTemporarySuffix.size()) != kTemporarySuffix) return {};
  return std::string(file_name.substr(1, suffix_at - 1));
}

Status WriteFileAtomically(const std::string& path, std::span<const uint8_t> bytes, bool force) {
  TOK1D_ASSIGN_OR_RETURN(AtomicOutputFile file, AtomicOutputFile::Open(path, force));
  TOK1D_RETURN_IF_ERROR(file.Write(bytes));
  return file.Commit();
}

}  // namespace tok1d
