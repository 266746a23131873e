// tests/fuzz/fuzz_targets.h: the bodies of the libFuzzer harnesses (tests/fuzz/fuzz_<name>.cpp, built with
// -DCONVLAB_FUZZ=ON by scripts/fuzz.sh) and of their regression test (tests/test_fuzz_regressions.cpp, which
// replays every file under tests/fuzz/regressions/<name>/), so both run exactly the same code.
//
// Contract of every target: an input is either accepted or rejected with convlab::Error. Any other exception,
// a crash or a sanitizer report is a finding. The targets themselves do not catch anything.
//
// Targets (name = folder under tests/fuzz/corpus/ and tests/fuzz/regressions/):
//   safetensors  bytes -> safetensors::parse, every tensor read, copy_into a copy of itself
//   config       config JSON text -> load_config (extends resolved against a copy of configs/) -> the model
//                built shape-only as `convlab train` would without data (segmentation, gan, classification)
//   set          lines of "--set" assignments -> apply_set on a shipped config (hdc_seg; dcgan_mnist when the
//                first line is "#gan", mnist_classifier when it is "#classification") -> built as `config`
//   op_case      `convlab op` case text -> parse_case -> run_case (forward + backward) -> result_json
//   image        bytes -> decode_image (PNG through stb, JPEG through libjpeg-turbo) -> to_rgb
//   jpeg         bytes -> decode_jpeg (libjpeg-turbo; data/jpeg.h)
// Limits: one thread, tensors of at most kMaxElements elements (core/tensor.h), so a legitimate but huge
// network is refused with convlab::Error instead of eating the fuzzer's memory.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/tensor.h"
#include "core/threads.h"
#include "data/jpeg.h"
#include "data/png.h"
#include "data/safetensors.h"
#include "models/config.h"
#include "models/gan_task.h"
#include "models/seg_task.h"
#include "models/op_case/op_case.h"

#ifndef CONVLAB_SOURCE_DIR
#error "CONVLAB_SOURCE_DIR must name the source tree (set by CMakeLists.txt)"
#endif

namespace convlab::fuzz {

inline constexpr int64_t kMaxElements = int64_t(1) << 24;  // 64 MiB of floats per tensor

// Every call (cheap): one thread, the tensor limit. The regression test restores both afterwards.
inline void setup() {
  if (num_threads() != 1) set_num_threads(1);
  set_max_tensor_elements(kMaxElements);
}

inline std::string source_path(const std::string& rel) { return std::string(CONVLAB_SOURCE_DIR) + "/" + rel; }

// ---- safetensors ----
inline void safetensors_input(const uint8_t* data, size_t size) {
  setup();
  const safetensors::File f = safetensors::parse(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  NamedTensors copies;
  double sum = 0;
  for (const auto& [name, t] : f.tensors) {
    const float* p = t.data();
    for (int64_t i = 0; i < t.numel(); ++i) sum += p[i];  // every byte the parser says is there
    copies.emplace_back(name, Tensor::zeros(t.shape()));
    (void)f.find(name);
  }
  safetensors::copy_into(f, copies, "fuzz");
  (void)sum;
}

// ---- config language + model builder ----

// A shape-only build of a resolved config, the way `convlab train` dispatches on "task".
inline void build_config(const nlohmann::json& cfg) {
  const std::string task = cfg.is_object() && cfg.contains("task") && cfg["task"].is_string()
                               ? cfg["task"].get<std::string>() : "";
  if (task == "gan") {
    const GanTask t = make_gan_task(cfg, /*with_data=*/false);
    (void)describe_model(*t.generator, t.z_shape(2));
    (void)describe_model(*t.discriminator, t.image_shape(2));
  } else if (task == "classification") {
    // models/train/classifier.cpp builds the same list for [B, 1, 28, 28] (its builder is internal to that file).
    const nlohmann::json& model = config_section(cfg, "model");
    CL_CHECK(model.contains("layers"), "model.layers: missing");
    Rng rng(0);
    const Shape in = {2, 1, 28, 28};
    const auto net = build_layers(model["layers"], in, rng, "model.layers");
    (void)describe_model(*net, in);
  } else {
    const SegTask t = make_seg_task(cfg, /*with_data=*/false);
    (void)describe_model(*t.model, t.input_shape);
  }
}

// A private copy of configs/*.json, so "extends": "seg_base.json" resolves as it does for a shipped config.
inline const std::filesystem::path& config_dir() {
  static const std::filesystem::path dir = [] {
    namespace fs = std::filesystem;
    std::string tmpl = (fs::temp_directory_path() / "convlab-fuzz-XXXXXX").string();
    CL_CHECK(mkdtemp(tmpl.data()) != nullptr, "fuzz: cannot create a temporary folder");
    const fs::path d = tmpl;
    for (const auto& e : fs::directory_iterator(source_path("configs")))
      if (e.path().extension() == ".json") fs::copy_file(e.path(), d / e.path().filename());
    static const std::string keep = d.string();
    std::atexit([] { std::error_code ec; fs::remove_all(keep, ec); });
    return d;
  }();
  return dir;
}

inline void config_input(const uint8_t* data, size_t size) {
  setup();
  const std::filesystem::path path = config_dir() / "fuzz_input.json";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  build_config(load_config(path.string()));
}

// ---- --set ----
inline void set_input(const uint8_t* data, size_t size) {
  setup();
  static const nlohmann::json seg = load_config(source_path("configs/hdc_seg.json"));
  static const nlohmann::json gan = load_config(source_path("configs/dcgan_mnist.json"));
  static const nlohmann::json cls = load_config(source_path("configs/mnist_classifier.json"));
  std::vector<std::string> lines;
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (size_t start = 0; start <= text.size() && lines.size() < 8;) {
    const size_t nl = text.find('\n', start);
    lines.push_back(text.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  nlohmann::json cfg = seg;
  size_t first = 0;
  if (!lines.empty() && (lines[0] == "#gan" || lines[0] == "#classification")) {
    cfg = lines[0] == "#gan" ? gan : cls;
    first = 1;
  }
  for (size_t i = first; i < lines.size(); ++i) apply_set(cfg, lines[i]);
  build_config(cfg);
}

// ---- op cases ----
inline void op_case_input(const uint8_t* data, size_t size) {
  setup();
  const OpCall call = parse_case(std::string(reinterpret_cast<const char*>(data), size));
  const OpResult r = run_case(call, 0);
  (void)result_json(call, r, /*stats=*/true).dump();
}

// ---- PNG and JPEG, as decode_image sees them ----
inline void image_input(const uint8_t* data, size_t size) {
  setup();
  const PngImage img = decode_image(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  const RgbImage rgb = to_rgb(img);
  (void)rgb;
}

// ---- JPEG through libjpeg-turbo (data/jpeg.h): every error and corrupt-data warning must become convlab::Error ----
inline void jpeg_input(const uint8_t* data, size_t size) {
  setup();
  const PngImage img = decode_jpeg(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  if (img.W * img.H * 3 != static_cast<int64_t>(img.pixels.size())) std::abort();  // a finding: size mismatch
}

// The targets by name (the regression test walks tests/fuzz/regressions/<name>/).
struct Target {
  const char* name;
  void (*run)(const uint8_t*, size_t);
};
inline const std::vector<Target>& targets() {
  static const std::vector<Target> all = {{"safetensors", safetensors_input},
                                          {"config", config_input},
                                          {"set", set_input},
                                          {"op_case", op_case_input},
                                          {"image", image_input},
                                          {"jpeg", jpeg_input}};
  return all;
}

}  // namespace convlab::fuzz
