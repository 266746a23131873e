// tools/lib/predict.h: `convlab predict`: a trained segmentation checkpoint applied to PNG images.
//
// Inputs: PNG / JPEG files and folders (a folder's *.png, *.jpg, *.jpeg, sorted by name, not recursive). Outputs per image: the
// class map in palette colours (with a legend strip below it: each class's colour and name, from the config's
// data section, else "class k"; `legend` false: the bare map, as large as the image), the class-index mask
// (8-bit grey PNG whose values are class ids: what a program reads back) and, with `probabilities`, the
// per-class probabilities as a safetensors file (one tensor "probabilities" [classes, H, W], float32; numpy:
// tools/torch_model.py read_safetensors). Names:
//   one image, -o mask.png (the default):  mask.png, mask_classes.png, mask_probabilities.safetensors
//   several, -o DIR (default predictions): DIR/<stem>.png, DIR/<stem>_classes.png,
//                                          DIR/<stem>_probabilities.safetensors
// Checked before the first file is written: the inputs, two inputs with the same stem, an output that would
// overwrite an input, the checkpoint and config, more than 256 classes for the index mask. Each file is
// written atomically; an image that cannot be read or predicted stops the command naming it (the images
// before it are written).
// An image whose size differs from the training size (data.crop, else data.image_size) is predicted with a
// warning: a fully convolutional net takes it, but it saw objects only at that scale.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace convlab {

struct PredictCommand {
  std::string checkpoint{}, config{};  // config: "" = the checkpoint's own (models/seg_task.h)
  std::vector<std::string> sets{}, inputs{};
  std::string output{};  // "" = mask.png for one image, predictions/ for several
  bool probabilities = false;
  bool legend = true;  // the colour mask carries a strip below it with each class's colour and name
};

// Returns {"config": source, "output": the mask (one image) or the folder, "images": [{"image", "width", "height", "mask", "classes", "probabilities",
// "class_pixels"}]}; warnings (one line each) are appended to `warnings`.
nlohmann::json predict_command(const PredictCommand& c, std::vector<std::string>& warnings);

}  // namespace convlab
