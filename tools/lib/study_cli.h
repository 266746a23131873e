// tools/lib/study_cli.h: adds the study subcommands (rf, size, matrix, identities, gradcheck) to the convlab
// executable. Each subcommand runs from its CLI11 callback; a user error, a failed identity or gradient check
// is thrown as a CLI::Error with exit code 2 and a one-line message (after the report has been printed).
#pragma once
#include <CLI/CLI.hpp>

namespace convlab {

void register_study_commands(CLI::App& app);

}  // namespace convlab
