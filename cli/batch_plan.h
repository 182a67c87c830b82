// Which files `tok1d batch` converts and where each result goes. The inputs (files, folders, a
// list file) become one sorted list of jobs; each output mirrors its input's place below its
// folder; --shard I/N keeps a deterministic slice of that list, so N processes that are given the
// same inputs convert every file exactly once between them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "tok1d/status.h"

namespace tok1d::cli {

// --shard I/N: this process takes jobs I, I+N, I+2N, … of the sorted list (0 ≤ I < N).
// Round robin rather than contiguous ranges, so that a folder of large files is spread out.
struct Shard {
  uint32_t index = 0;
  uint32_t count = 1;
};

// "I/N" → Shard; kInvalidArgument with a message for the user otherwise.
StatusOr<Shard> ParseShard(std::string_view text);

struct BatchPlanOptions {
  std::vector<std::string> inputs;  // files and folders, as given on the command line
  std::string list_file;            // more inputs, one per line ("-": stdin); empty: none
  bool recursive = false;           // also search the subfolders of folder inputs
  // Outputs are named by their input's path below this folder. Empty: below the folder that
  // was given, or, for a file given by name, directly in the output folder.
  std::string base;
  std::string output_dir;
  std::vector<std::string> input_extensions;  // what folders contribute, lowercase: ".png", …
  std::string output_extension;               // replaces the input's extension: ".t1d"
  Shard shard;
};

struct BatchJob {
  std::string input;
  std::string output;          // inside the output folder
  uint64_t input_bytes = 0;    // 0 when the input cannot be read
  bool output_exists = false;  // when the plan was made: skipped unless --force
  // Why this file cannot be converted (a missing input, two inputs with one output…): it is
  // reported as failed and the others go on. Empty for a job to run.
  std::string problem;
};

struct BatchPlan {
  std::vector<BatchJob> jobs;      // this shard's, sorted by input path
  size_t all_shards_jobs = 0;      // before --shard
  std::vector<std::string> notes;  // for the user, e.g. subfolders not searched without -r
};

// Fails only for what stops the whole batch (an unreadable list file); a bad input becomes a
// job with a problem.
StatusOr<BatchPlan> PlanBatch(const BatchPlanOptions& options);

// Deletes the temporary files (".NAME.tmp-XXXXXX", see AtomicOutputFile) that a killed run left
// beside the outputs of `jobs`, if they were last written before `started` (this run's start).
// Only this shard's outputs are looked at, so shards sharing an output folder leave each other
// alone; at worst a second run of the same shard at the same time loses a temporary file, and
// that file fails with an error: no partial output is ever left. Returns how many were deleted.
size_t RemoveStaleTemporaryFiles(const std::vector<BatchJob>& jobs,
                                 std::filesystem::file_time_type started);

}  // namespace tok1d::cli
