#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "common/file_util.h"
#include "temp_dir.h"

namespace tok1d {
namespace {

using testing::TempDir;

std::vector<uint8_t> Bytes(std::string_view text) { return {text.begin(), text.end()}; }

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST_CASE("ReadFileBytes reads files and reports missing ones and the size limit") {
  TempDir dir;
  REQUIRE(WriteFileAtomically(dir.File("a"), Bytes("hello"), false).ok());
  auto bytes = ReadFileBytes(dir.File("a"));
  REQUIRE(bytes.ok());
  CHECK(*bytes == Bytes("hello"));
  CHECK(ReadFileBytes(dir.File("missing")).status().code() == StatusCode::kNotFound);
  CHECK(ReadFileBytes(dir.File("a"), 4).status().code() == StatusCode::kTooLarge);
}

TEST_CASE("WriteFileAtomically refuses to overwrite without force") {
  TempDir dir;
  const std::string path = dir.File("out.bin");
  REQUIRE(WriteFileAtomically(path, Bytes("first"), false).ok());
  Status again = WriteFileAtomically(path, Bytes("second"), false);
  CHECK(again.code() == StatusCode::kInvalidArgument);
  CHECK(again.message().find("--force") != std::string::npos);
  CHECK(Slurp(path) == "first");
  CHECK(WriteFileAtomically(path, Bytes("second"), true).ok());
  CHECK(Slurp(path) == "second");
  CHECK(dir.EntryCount() == 1);  // no temporary file left
}

TEST_CASE("AtomicOutputFile leaves nothing behind without Commit") {
  TempDir dir;
  const std::string path = dir.File("out.bin");
  {
    auto file = AtomicOutputFile::Open(path, false);
    REQUIRE(file.ok());
    REQUIRE(file->Write(Bytes("partial")).ok());
    CHECK(dir.EntryCount() == 1);  // the temporary file
  }
  CHECK(dir.EntryCount() == 0);
}

TEST_CASE("AtomicOutputFile does not replace a file created after Open") {
  TempDir dir;
  const std::string path = dir.File("race.bin");
  auto file = AtomicOutputFile::Open(path, false);
  REQUIRE(file.ok());
  REQUIRE(file->Write(Bytes("mine")).ok());
  REQUIRE(WriteFileAtomically(path, Bytes("theirs"), false).ok());
  CHECK(file->Commit().code() == StatusCode::kInvalidArgument);
  CHECK(Slurp(path) == "theirs");
}

TEST_CASE("OutputNameOfTemporaryFile recognises AtomicOutputFile's temporary files") {
  TempDir dir;
  const std::filesystem::path output = dir.File("photo.t1d");
  auto file = AtomicOutputFile::Open(output.string(), false);
  REQUIRE(file.ok());
  REQUIRE(dir.EntryCount() == 1);
  const auto temporary = *std::filesystem::directory_iterator(output.parent_path());
  CHECK(OutputNameOfTemporaryFile(temporary.path().filename().string()) == "photo.t1d");
  CHECK(OutputNameOfTemporaryFile("photo.t1d").empty());
  CHECK(OutputNameOfTemporaryFile(".photo.t1d").empty());
  CHECK(OutputNameOfTemporaryFile(".tmp-abcdef").empty());
}

TEST_CASE("Writing into a missing directory fails cleanly") {
  TempDir dir;
  CHECK(WriteFileAtomically(dir.File("no/such/dir/out"), Bytes("x"), false).code() ==
        StatusCode::kNotFound);
}

TEST_CASE("CheckDistinctPaths catches the same file under two names") {
  TempDir dir;
  REQUIRE(WriteFileAtomically(dir.File("in"), Bytes("x"), false).ok());
  CHECK_FALSE(CheckDistinctPaths(dir.File("in"), dir.File("in")).ok());
  CHECK_FALSE(CheckDistinctPaths(dir.File("in"), dir.File("./in")).ok());
  CHECK(CheckDistinctPaths(dir.File("in"), dir.File("out")).ok());
  CHECK(CheckDistinctPaths("-", "-").ok());
}

}  // namespace
}  // namespace tok1d
