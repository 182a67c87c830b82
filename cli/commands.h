// The tok1d subcommands; each adds itself to the parent CLI11 app.
#pragma once

#include "cli/cli_common.h"

namespace tok1d::cli {

Subcommand AddInfoCommand(CLI::App& parent);
Subcommand AddTrimCommand(CLI::App& parent);
Subcommand AddEncodeCommand(CLI::App& parent);
Subcommand AddDecodeCommand(CLI::App& parent);
Subcommand AddBatchCommand(CLI::App& parent);
Subcommand AddSweepCommand(CLI::App& parent);
Subcommand AddCompareCommand(CLI::App& parent);

}  // namespace tok1d::cli
