// tools/lib/predict.cpp: `convlab predict` (see predict.h).
#include "tools/lib/predict.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "core/error.h"
#include "data/png.h"
#include "data/safetensors.h"
#include "models/seg_predict.h"
#include "models/seg_task.h"

namespace convlab {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string lower_ext(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext;
}
bool is_png_name(const fs::path& p) { return lower_ext(p) == ".png"; }
bool is_image_name(const fs::path& p) { return is_png_name(p) || lower_ext(p) == ".jpg" || lower_ext(p) == ".jpeg"; }

// Files and folders -> the image files, in order.
std::vector<fs::path> expand_inputs(const std::vector<std::string>& inputs) {
  CL_CHECK(!inputs.empty(), "predict: give at least one image (PNG, JPEG) or folder");
  std::vector<fs::path> out;
  for (const std::string& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      std::vector<fs::path> found;
      for (fs::directory_iterator it(in, ec), end; !ec && it != end; it.increment(ec))
        if (it->is_regular_file(ec) && is_image_name(it->path())) found.push_back(it->path());
      CL_CHECK(!ec, "predict: cannot list the folder " << in << " (" << ec.message() << ")");
      CL_CHECK(!found.empty(), "predict: the folder " << in << " holds no .png / .jpg images");
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else {
      CL_CHECK(fs::is_regular_file(in, ec), "predict: " << in << " is neither an image file nor a folder");
      out.emplace_back(in);
    }
  }
  return out;
}

struct Planned {
  fs::path image, mask, classes, probabilities;
};

std::vector<Planned> plan_outputs(const std::vector<fs::path>& images, const std::vector<std::string>& inputs,
                                  const std::string& output) {
  std::error_code ec;
  const bool single = images.size() == 1 && !fs::is_directory(inputs.front(), ec);
  std::vector<Planned> plan;
  if (single && (output.empty() || is_png_name(output))) {
    const fs::path mask = output.empty() ? fs::path("mask.png") : fs::path(output);
    const fs::path stem = mask.parent_path() / mask.stem();
    plan.push_back({images[0], mask, stem.string() + "_classes.png", stem.string() + "_probabilities.safetensors"});
  } else {
    CL_CHECK(output.empty() || !is_png_name(output),
             "predict: -o " << output << " names one file, but " << images.size()
                            << " images need an output folder (e.g. -o predictions)");
    const fs::path dir = output.empty() ? fs::path("predictions") : fs::path(output);
    std::map<std::string, fs::path> stems;
    for (const fs::path& img : images) {
      const std::string stem = img.stem().string();
      auto [it, fresh] = stems.emplace(stem, img);
      CL_CHECK(fresh, "predict: " << it->second.string() << " and " << img.string() << " would both write "
                                  << (dir / (stem + ".png")).string() << " (same file name in different folders)");
      plan.push_back({img, dir / (stem + ".png"), dir / (stem + "_classes.png"),
                      dir / (stem + "_probabilities.safetensors")});
    }
  }
  std::set<fs::path> in;
  for (const fs::path& img : images) in.insert(fs::weakly_canonical(img, ec));
  for (const Planned& p : plan)
    for (const fs::path& o : {p.mask, p.classes, p.probabilities})
      CL_CHECK(!in.count(fs::weakly_canonical(o, ec)),
               "predict: the output " << o.string() << " would overwrite an input image; choose another -o");
  return plan;
}

}  // namespace

json predict_command(const PredictCommand& c, std::vector<std::string>& warnings) {
  const std::vector<fs::path> images = expand_inputs(c.inputs);
  const std::vector<Planned> plan = plan_outputs(images, c.inputs, c.output);
  LoadedSegModel m = load_seg_checkpoint(c.checkpoint, c.config, c.sets, "predict", /*with_data=*/false);
  const int64_t trainH = m.task.input_shape[2], trainW = m.task.input_shape[3];
  const int64_t classes = m.task.model->output_shape(m.task.input_shape)[1];
  CL_CHECK(classes <= 256, "predict: the network has " << classes
                                                       << " classes; the class-index PNG holds at most 256");
  if (!plan.empty() && !plan.front().mask.parent_path().empty()) {
    std::error_code ec;
    fs::create_directories(plan.front().mask.parent_path(), ec);
    CL_CHECK(!ec, "predict: cannot create " << plan.front().mask.parent_path().string() << " (" << ec.message() << ")");
  }
  std::error_code ec;
  const bool single = images.size() == 1 && !fs::is_directory(c.inputs.front(), ec);
  const std::string where = single ? plan.front().mask.string() : plan.front().mask.parent_path().string();
  json out = {{"config", m.config_source}, {"output", where}, {"images", json::array()}};
  std::set<std::pair<int64_t, int64_t>> warned;
  for (const Planned& p : plan) {
    const RgbImage rgb = to_rgb(read_image(p.image.string()));
    if ((rgb.H != trainH || rgb.W != trainW) && warned.insert({rgb.W, rgb.H}).second)
      warnings.push_back("predict: " + p.image.string() + " is " + std::to_string(rgb.W) + "x" + std::to_string(rgb.H) +
                         ", the network was trained on " + std::to_string(trainW) + "x" + std::to_string(trainH) +
                         " images: objects at another scale may be segmented worse (resize the image to compare)");
    const SegPrediction pr = predict_image(*m.task.model, rgb, p.image.string());
    write_png(p.mask.string(), class_map_picture(pr, m.task.class_names, c.legend));
    std::vector<uint8_t> index(pr.labels.begin(), pr.labels.end());  // ids < 256 (checked above)
    write_png_grey(p.classes.string(), index.data(), pr.W, pr.H);
    json item = {{"image", p.image.string()}, {"width", pr.W},  {"height", pr.H},
                 {"mask", p.mask.string()},   {"classes", p.classes.string()}};
    if (c.probabilities) {
      Tensor probs = Tensor::from({pr.classes, pr.H, pr.W}, pr.probabilities);
      safetensors::save(p.probabilities.string(), {{"probabilities", probs}},
                        {{"format", "convlab-probabilities"}, {"image", p.image.string()}});
      item["probabilities"] = p.probabilities.string();
    }
    std::vector<int64_t> counts(static_cast<size_t>(pr.classes), 0);
    for (int32_t l : pr.labels) ++counts[static_cast<size_t>(l)];
    item["class_pixels"] = counts;
    out["images"].push_back(item);
  }
  return out;
}

}  // namespace convlab
