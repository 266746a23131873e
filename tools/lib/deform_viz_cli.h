// tools/lib/deform_viz_cli.h: the `convlab deform-viz` subcommand: its flags, a call to deform_viz_command
// (models/study/deform_viz.h) and the printing of its result.
#pragma once

namespace CLI {
class App;
}

namespace convlab {

void register_deform_viz(CLI::App& app);

}  // namespace convlab
