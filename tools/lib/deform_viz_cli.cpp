// tools/lib/deform_viz_cli.cpp: see deform_viz_cli.h.
#include "tools/lib/deform_viz_cli.h"

#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

#include "models/study/deform_viz.h"
#include "tools/lib/cli_checks.h"

namespace convlab {

void register_deform_viz(CLI::App& app) {
  auto c = std::make_shared<DeformVizCommand>();
  auto as_json = std::make_shared<bool>(false);
  CLI::App* sub = app.add_subcommand("deform-viz", "Sampling points of a trained deform_conv2d layer over an image "
                                                   "(offsets, mask, share reading padding)");
  sub->add_option("--checkpoint", c->checkpoint, "model.safetensors of a segmentation run")->required();
  sub->add_option("--config", c->config, "config file (default: the one stored in the checkpoint)");
  sub->add_option("--set", c->sets, "override a config value (repeatable)");
  sub->add_option("image", c->image, "input PNG (or --val-image)");
  sub->add_option("--val-image", c->val_image, "use validation image K of the config's dataset instead of a PNG")->check(at_most(100000));
  sub->add_option("-o,--png", c->png, "write the picture of the sampling points");
  sub->add_option("--layer", c->layer, "the deformable layer: its index in model.layers / state-dict prefix "
                                       "(default: the first deformable layer)");
  sub->add_option("--pixel", c->pixels, "output pixel y,x of that layer (repeatable; default: a 3x3 grid)")
      ->allow_extra_args(false);
  sub->add_flag("--json", *as_json, "print JSON");
  sub->callback([c, as_json] {
    const DeformVizResult r = deform_viz_command(*c);
    std::cout << (*as_json ? r.json.dump(2) + "\n" : r.text) << std::flush;
  });
}

}  // namespace convlab
