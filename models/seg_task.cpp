// models/seg_task.cpp: reading a segmentation config into datasets, model, loss and optimizer settings.
#include "models/seg_task.h"

#include <algorithm>

#include "core/error.h"
#include "data/digit_scenes.h"
#include "data/folder_dataset.h"
#include "data/mnist.h"
#include "data/picture.h"
#include "data/shapes.h"
#include "layers/options.h"
#include "models/checkpoint.h"
#include "models/config.h"

namespace convlab {

using nlohmann::json;

namespace {

// data.dataset = "folder": a user's images/ and masks/ (data/folder_dataset.h).
std::unique_ptr<SegDataset> make_folder_dataset(Options& o, uint64_t seed, const std::string& split, int64_t S) {
  FolderDatasetOptions f;
  f.root = o.string("root", std::nullopt);
  f.image_size = S;
  CL_CHECK(o.has("classes"), "data.classes: missing (a folder dataset names its classes, background first: "
                             "[\"background\", \"cat\", ...])");
  const json& names = o.raw("classes");
  CL_CHECK(names.is_array(), "data.classes: expected a list of class names");
  for (const auto& c : names) {
    CL_CHECK(c.is_string() && !c.get<std::string>().empty(), "data.classes: expected non-empty names, got " << c.dump());
    f.classes.push_back(c.get<std::string>());
  }
  f.ignore_index = o.integer("ignore_index", 255, -1, 255);
  f.train_list = o.string("train_list", "");
  f.val_list = o.string("val_list", "");
  f.val_ratio = o.number("val_ratio", 0.2);
  f.seed = seed;  // the same split for train and val (unlike the generated sets' per-split seeds)
  for (const char* k : {"train_size", "val_size"})
    CL_CHECK(!o.has(k), "data." << k << ": a folder dataset has as many samples as its files (split by val_ratio, "
                                << "train_list or val_list); remove it");
  return std::make_unique<FolderDataset>(f, split);
}

}  // namespace

std::unique_ptr<SegDataset> make_dataset(const json& data, uint64_t seed, const std::string& split) {
  Options o(data, "data");
  const std::string kind = o.string("dataset", "shapes", {"shapes", "digits", "folder"});
  const int64_t S = o.integer("image_size", 64, 16, kMaxImageSize);
  if (kind == "folder") {
    auto ds = make_folder_dataset(o, seed, split, S);
    o.boolean("hflip", true);  // read by make_seg_task; listed here so finish() knows them
    o.boolean("vflip", true);
    o.integer("crop", 0, 0, kMaxImageSize);
    o.finish();
    return ds;
  }
  const int64_t train_size = o.integer("train_size", 100000, 1, kMaxTrainSize);
  const int64_t val_size = o.integer("val_size", 256, 1, kMaxValSize);
  const uint64_t s = seed * 1000003ull + (split == "val" ? 7919ull : 0ull);
  const int64_t n = split == "val" ? val_size : train_size;
  std::unique_ptr<SegDataset> ds;
  if (kind == "shapes") {
    ShapesOptions so;
    so.image_size = S;
    so.seed = s;
    so.size = n;
    so.line_share = float(o.number("line_share", so.line_share));
    so.min_objects = o.integer("min_objects", so.min_objects, 0, kMaxObjects);
    so.max_objects = o.integer("max_objects", so.max_objects, 0, kMaxObjects);
    so.max_radius = float(o.number("max_radius", 0));
    if (o.has("classes")) {
      so.classes.clear();
      for (const auto& c : o.raw("classes")) {
        CL_CHECK(c.is_string(), "data.classes: expected a list of class names");
        so.classes.push_back(c.get<std::string>());
      }
    }
    ds = std::make_unique<ShapesDataset>(so);
  } else {
    const std::string dir = o.string("mnist_dir", default_mnist_dir());
    auto mnist = std::make_shared<const Mnist>(load_mnist(dir));
    DigitScenesOptions d;
    d.image_size = S;
    d.seed = s;
    d.size = n;
    d.split = split == "val" ? MnistSplit::kTest : MnistSplit::kTrain;
    ds = std::make_unique<DigitScenes>(mnist, d);
  }
  o.boolean("hflip", true);  // read by make_seg_task; listed here so finish() knows them
  o.boolean("vflip", true);
  o.integer("crop", 0, 0, kMaxImageSize);
  o.finish();
  return ds;
}

std::vector<std::string> config_class_names(const json& data, int64_t num_classes) {
  std::vector<std::string> names;
  const std::string kind = data.is_object() && data.contains("dataset") && data["dataset"].is_string()
                               ? data["dataset"].get<std::string>() : "shapes";
  const bool listed = data.is_object() && data.contains("classes") && data["classes"].is_array();
  if (kind == "digits") {
    names = {"background"};
    for (int d = 0; d < 10; ++d) names.push_back(std::to_string(d));
  } else if (kind == "shapes" || (kind == "folder" && listed)) {
    if (kind == "shapes") names = {"background"};
    const json none = json::array();
    const json& given = listed ? data["classes"] : none;
    if (kind == "shapes" && !listed)
      for (const std::string& c : ShapesOptions{}.classes) names.push_back(c);
    for (const json& c : given) names.push_back(c.is_string() ? c.get<std::string>() : c.dump());
  }
  return int64_t(names.size()) == num_classes ? names : default_class_names(num_classes);
}

std::unique_ptr<Optimizer> make_optimizer(const json& cfg, const Module& model, double lr_override) {
  Options o(cfg, "optimizer");
  const std::string type = o.string("type", "adam", {"adam", "adamw", "sgd"});
  const double lr = o.number("lr", type == "sgd" ? 0.01 : 1e-3);
  const double wd = o.number("weight_decay", type == "adamw" ? 0.01 : 0.0);
  std::vector<ParamRef> ps;
  for (auto& [name, t] : model.named_parameters()) ps.push_back({name, t, model.lr_multiplier(t)});
  std::unique_ptr<Optimizer> opt;
  if (type == "sgd") {
    SgdOptions s{.lr = lr, .momentum = o.number("momentum", 0.9), .weight_decay = wd,
                 .nesterov = o.boolean("nesterov", false)};
    opt = std::make_unique<Sgd>(std::move(ps), s);
  } else {
    AdamOptions a{.lr = lr, .weight_decay = wd, .decoupled = type == "adamw"};
    if (o.has("betas")) {
      const json& b = o.raw("betas");
      CL_CHECK(b.is_array() && b.size() == 2 && b[0].is_number() && b[1].is_number(),
               "optimizer.betas: expected [beta1, beta2]");
      a.beta1 = b[0].get<double>();
      a.beta2 = b[1].get<double>();
      CL_CHECK(a.beta1 >= 0 && a.beta1 < 1 && a.beta2 >= 0 && a.beta2 < 1, "optimizer.betas: each must be in [0, 1)");
    }
    a.eps = o.number("eps", 1e-8);
    opt = std::make_unique<Adam>(std::move(ps), a);
  }
  CL_CHECK(lr > 0, "optimizer.lr: expected a positive number, got " << lr);
  if (lr_override > 0) opt->set_lr(lr_override);
  o.finish();
  return opt;
}

SegTask make_seg_task(const json& config, bool with_data) {
  SegTask t;
  t.config = config;
  Options top(config, "config");
  t.name = top.string("name", "run");
  check_run_name(t.name);
  t.seed = static_cast<uint64_t>(top.integer("seed", 0, 0, INT64_MAX));
  top.string("task", "segmentation", {"segmentation"});
  for (const char* k : {"data", "model", "loss", "optimizer", "schedule", "train", "description"})
    if (top.has(k)) top.raw(k);
  top.finish();

  const json& data = config_section(config, "data");
  Options d(data, "data");
  t.augment.hflip = d.boolean("hflip", true);
  t.augment.vflip = d.boolean("vflip", true);
  t.augment.crop = d.integer("crop", 0, 0, kMaxImageSize);
  const int64_t S = d.integer("image_size", 64, 16, kMaxImageSize);
  if (with_data) {
    t.train_set = make_dataset(data, t.seed, "train");
    t.val_set = make_dataset(data, t.seed, "val");
  }

  Options tr(config_section(config, "train"), "train");
  t.train.steps = tr.integer("steps", 600, 1);
  t.train.batch_size = tr.integer("batch_size", 16, 1, kMaxBatch);
  t.train.val_every = tr.integer("val_every", std::max<int64_t>(1, t.train.steps / 4), 1);
  t.train.log_every = tr.integer("log_every", 20, 1);
  t.train.checkpoint_every = tr.integer("checkpoint_every", std::min(t.train.val_every, kDefaultCheckpointEveryMax), 1);
  t.train.grid_images = tr.integer("grid_images", 4, 0, 64);
  t.train.batch_shards = tr.integer("batch_shards", 0, 0, t.train.batch_size);
  tr.finish();

  const int64_t in_ch = 3, crop = t.augment.crop > 0 ? t.augment.crop : S;
  CL_CHECK(crop <= S, "data.crop: " << crop << " is larger than image_size " << S);
  t.input_shape = {t.train.batch_size, in_ch, crop, crop};
  CL_CHECK(config.contains("model") && config["model"].is_object() && config["model"].contains("layers"),
           "model.layers: missing (the network, a list of layers)");
  Options mo(config["model"], "model");
  mo.raw("layers");
  mo.finish({"description"});
  Rng rng(t.seed);
  t.model = build_layers(config["model"]["layers"], t.input_shape, rng, "model.layers", &t.layer_record);
  const Shape out = t.model->output_shape(t.input_shape);
  const int64_t classes = with_data ? t.train_set->num_classes() : (out.size() == 4 ? out[1] : -1);
  if (classes > 0) t.class_names = with_data ? t.val_set->class_names() : config_class_names(data, classes);
  CL_CHECK(out.size() == 4 && out[1] == classes && out[2] == crop && out[3] == crop,
           "model.layers: the network maps " << shape_str(t.input_shape) << " to " << shape_str(out)
                                             << ", but segmentation needs [" << t.input_shape[0] << "," << classes
                                             << "," << crop << "," << crop << "] (one logit per class and pixel)");

  Options lo(config_section(config, "loss"), "loss");
  lo.string("type", "cross_entropy", {"cross_entropy"});
  t.ignore_index = int32_t(lo.integer("ignore_index", -100));
  CL_CHECK(!(data.contains("dataset") && data["dataset"] == "folder") || t.ignore_index == kFolderIgnoredLabel,
           "loss.ignore_index: a folder dataset marks the pixels of data.ignore_index (the value in the mask files) as "
               << kFolderIgnoredLabel << "; leave loss.ignore_index out (got " << t.ignore_index << ")");
  if (lo.has("class_weights")) {
    const json& w = lo.raw("class_weights");
    CL_CHECK(w.is_array() && int64_t(w.size()) == classes,
             "loss.class_weights: expected " << classes << " numbers (one per class)");
    for (const auto& v : w) {
      CL_CHECK(v.is_number() && v.get<double>() >= 0, "loss.class_weights: expected non-negative numbers");
      t.class_weights.push_back(v.get<float>());
    }
  }
  lo.finish();

  t.optimizer_config = config.contains("optimizer") ? config["optimizer"] : json::object();
  Options so(config_section(config, "schedule"), "schedule");
  t.schedule.kind = so.string("type", "poly", {"constant", "poly", "step", "cosine"});
  t.schedule.total_steps = t.train.steps;
  t.schedule.power = so.number("power", 0.9);
  t.schedule.step_size = so.integer("step_size", std::max<int64_t>(1, t.train.steps / 3), 1);
  t.schedule.gamma = so.number("gamma", 0.1);
  t.schedule.min_lr = so.number("min_lr", 0.0);
  t.schedule.warmup_steps = so.integer("warmup_steps", 0, 0);
  so.finish();
  return t;
}

}  // namespace convlab
