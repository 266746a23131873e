// tools/lib/compare_cli.h: the `convlab compare` subcommand: its flags, a call to compare_command
// (models/compare/compare.h) and the printing of its result.
#pragma once

namespace CLI {
class App;
}

namespace convlab {

void register_compare_command(CLI::App& app);

}  // namespace convlab
