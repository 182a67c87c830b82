#include "cli/batch_report.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

namespace tok1d::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kRedrawInterval = std::chrono::milliseconds(100);

unsigned TerminalColumns() {
  winsize size{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col >= 20) return size.ws_col;
  return 80;
}

std::string FormatDuration(double seconds) {
  const auto total = static_cast<long long>(seconds + 0.5);
  char text[32];
  if (total >= 3600) {
    std::snprintf(text, sizeof(text), "%lld:%02lld:%02lld", total / 3600, total / 60 % 60,
                  total % 60);
  } else {
    std::snprintf(text, sizeof(text), "%lld:%02lld", total / 60, total % 60);
  }
  return text;
}

std::string_view OutcomeName(FileOutcome outcome) {
  switch (outcome) {
    case FileOutcome::kDone:
      return "done";
    case FileOutcome::kSkipped:
      return "skipped";
    case FileOutcome::kFailed:
      return "failed";
  }
  return "failed";
}

}  // namespace

std::string FormatSize(uint64_t bytes) {
  if (bytes < 1000) return std::to_string(bytes) + " B";
  static constexpr const char* kUnits[] = {"kB", "MB", "GB", "TB", "PB"};
  double value = static_cast<double>(bytes) / 1000.0;
  size_t unit = 0;
  while (value >= 999.95 && unit + 1 < std::size(kUnits)) {
    value /= 1000.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f %s", value, kUnits[unit]);
  return text;
}

BatchReporter::BatchReporter(const Console& console, bool json, size_t files, uint64_t input_bytes)
    : console_(console),
      json_(json),
      bar_(!console.quiet && isatty(STDERR_FILENO) != 0),
      files_(files),
      input_bytes_(input_bytes),
      started_(Clock::now()) {}

BatchReporter::~BatchReporter() {
  std::lock_guard lock(mutex_);
  ClearBar();
}

void BatchReporter::Add(const FileReport& report) {
  std::lock_guard lock(mutex_);
  const BatchJob& job = *report.job;
  switch (report.outcome) {
    case FileOutcome::kDone:
      ++totals_.done;
      totals_.bytes_in += job.input_bytes;
      totals_.bytes_out += report.output_bytes;
      converted_input_bytes_ += job.input_bytes;
      break;
    case FileOutcome::kSkipped:
      ++totals_.skipped;
      break;
    case FileOutcome::kFailed:
      ++totals_.failed;
      converted_input_bytes_ += job.input_bytes;
      break;
  }
  handled_input_bytes_ += job.input_bytes;
  LogFile(report);
  if (json_) {
    nlohmann::json record = {{"input", job.input},
                             {"output", job.output},
                             {"status", OutcomeName(report.outcome)},
                             {"bytes_in", job.input_bytes},
                             {"bytes_out", report.output_bytes},
                             {"seconds", report.seconds}};
    record.update(report.details);
    if (!report.warnings.empty()) record["warnings"] = report.warnings;
    if (report.outcome == FileOutcome::kFailed) record["error"] = report.line;
    ClearBar();
    // Invalid UTF-8 in a file name is replaced rather than failing the record.
    std::cout << record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n'
              << std::flush;
  }
  DrawBar(totals_.done + totals_.skipped + totals_.failed == files_);
}

BatchTotals BatchReporter::totals() const {
  std::lock_guard lock(mutex_);
  return totals_;
}

void BatchReporter::LogFile(const FileReport& report) {
  for (const std::string& warning : report.warnings) {
    if (!console_.quiet) PrintLine("tok1d: warning: " + warning);
  }
  switch (report.outcome) {
    case FileOutcome::kFailed:
      PrintLine("tok1d: error: " + report.line);
      break;
    case FileOutcome::kDone:
    case FileOutcome::kSkipped:
      // On a terminal the bar shows progress; the lines are for logs, or for -v.
      if (!console_.quiet && (!bar_ || console_.verbosity > 0)) PrintLine(report.line);
      break;
  }
}

void BatchReporter::PrintLine(std::string_view line) {
  ClearBar();
  std::cerr << line << '\n';  // stdout is kept for --json records
}

void BatchReporter::ClearBar() {
  if (!bar_shown_) return;
  std::cerr << "\r\033[K" << std::flush;
  bar_shown_ = false;
}

void BatchReporter::DrawBar(bool force) {
  if (!bar_) return;
  const Clock::time_point now = Clock::now();
  if (!force && bar_shown_ && now - last_draw_ < kRedrawInterval) return;
  last_draw_ = now;

  const size_t handled = totals_.done + totals_.skipped + totals_.failed;
  const double elapsed = std::chrono::duration<double>(now - started_).count();
  std::string text = " " + std::to_string(handled) + "/" + std::to_string(files_) + " files, " +
                     FormatSize(totals_.bytes_in) + " -> " + FormatSize(totals_.bytes_out);
  if (totals_.failed > 0) text += ", " + std::to_string(totals_.failed) + " failed";
  // Time left from the rate so far, in input bytes: skipped files cost nothing.
  if (converted_input_bytes_ > 0 && handled < files_) {
    const double rate = static_cast<double>(converted_input_bytes_) / elapsed;
    text +=
        ", ETA " + FormatDuration(static_cast<double>(input_bytes_ - handled_input_bytes_) / rate);
  }
  const size_t columns = TerminalColumns() - 1;  // the last column would wrap on some terminals
  // A bar of fixed width while the terminal has room for it and the text.
  constexpr size_t kBarWidth = 24;
  const size_t bar_width = columns >= text.size() + kBarWidth + 2 ? kBarWidth : 0;
  std::string line;
  if (bar_width > 0) {
    const size_t filled = files_ == 0 ? bar_width : bar_width * handled / files_;
    line = "[" + std::string(filled, '#') + std::string(bar_width - filled, '.') + "]";
  }
  line += text;
  if (line.size() > columns) line.resize(columns);
  std::cerr << "\r\033[K" << line << std::flush;
  bar_shown_ = true;
}

void BatchReporter::Summarize(std::string_view command, size_t not_started) {
  std::lock_guard lock(mutex_);
  ClearBar();
  const double elapsed = std::chrono::duration<double>(Clock::now() - started_).count();
  char seconds[32];
  std::snprintf(seconds, sizeof(seconds), "%.1f s", elapsed);
  std::string line = "tok1d " + std::string(command) + ": " + std::to_string(totals_.done) +
                     " done, " + std::to_string(totals_.skipped) + " skipped, " +
                     std::to_string(totals_.failed) + " failed";
  if (not_started > 0) line += ", " + std::to_string(not_started) + " not started";
  line += " (" + FormatSize(totals_.bytes_in) + " -> " + FormatSize(totals_.bytes_out) + ", " +
          seconds + ")";
  console_.Note(line);
}

}  // namespace tok1d::cli
