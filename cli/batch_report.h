// How `tok1d batch` tells about each file: a progress bar on a terminal (files done / total,
// bytes in and out, time left), a log line per file otherwise, and with --json one JSON record
// per file on standard output. Workers report from their own threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/batch_plan.h"
#include "cli/cli_common.h"

namespace tok1d::cli {

enum class FileOutcome { kDone, kSkipped, kFailed };

struct FileReport {
  const BatchJob* job = nullptr;
  FileOutcome outcome = FileOutcome::kFailed;
  std::string line;  // done: the conversion's summary; failed: the error, naming the file
  std::vector<std::string> warnings;
  uint64_t output_bytes = 0;  // done or skipped: the output's size
  double seconds = 0;
  nlohmann::json details = nlohmann::json::object();  // width, height, tokens, …
};

struct BatchTotals {
  size_t done = 0;
  size_t skipped = 0;
  size_t failed = 0;
  uint64_t bytes_in = 0;   // of the files converted
  uint64_t bytes_out = 0;  // of their outputs
};

class BatchReporter {
 public:
  // `files` and `input_bytes`: the whole batch (this shard), for the progress bar.
  BatchReporter(const Console& console, bool json, size_t files, uint64_t input_bytes);
  ~BatchReporter();
  BatchReporter(const BatchReporter&) = delete;
  BatchReporter& operator=(const BatchReporter&) = delete;

  void Add(const FileReport& report);  // thread-safe
  BatchTotals totals() const;
  // Clears the progress bar; then "tok1d batch encode: 99 done, 0 skipped, 1 failed (…)".
  void Summarize(std::string_view command, size_t not_started);

 private:
  void PrintLine(std::string_view line);
  void LogFile(const FileReport& report);
  void DrawBar(bool force);
  void ClearBar();

  const Console& console_;
  const bool json_;
  const bool bar_;  // on a terminal, unless --quiet
  const size_t files_;
  const uint64_t input_bytes_;
  const std::chrono::steady_clock::time_point started_;

  mutable std::mutex mutex_;
  BatchTotals totals_;
  uint64_t handled_input_bytes_ = 0;    // of every file reported, for the progress bar
  uint64_t converted_input_bytes_ = 0;  // of the files worked on (done or failed): the rate
  std::chrono::steady_clock::time_point last_draw_;
  bool bar_shown_ = false;
};

// "812 B", "1.2 kB", "3.4 MB": decimal units, for the progress bar and the summary.
std::string FormatSize(uint64_t bytes);

}  // namespace tok1d::cli
