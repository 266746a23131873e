// tools/lib/cli_checks.h: bounds for numeric command-line flags.
// Every count or size a user types is bounded above before it reaches a loop or an allocation; the lower
// bound (>= 1 and the like) stays with the library function, whose message names the command.
#pragma once
#include <CLI/CLI.hpp>

#include <string>

namespace convlab {

// Accepts numbers up to `max` (CLI11 converts the text and refuses what is not a number of the option's type).
inline CLI::Validator at_most(double max) {
  return CLI::Validator(
      [max](std::string& s) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(s, v)) return "";  // not a number: the option's own conversion says so
        return v <= max ? "" : "value " + s + " is above the largest accepted, " + CLI::detail::to_string(max);
      },
      "<= " + CLI::detail::to_string(max));
}

}  // namespace convlab
