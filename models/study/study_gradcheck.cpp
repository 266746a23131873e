// models/study/study_gradcheck.cpp: `convlab gradcheck`: finite-difference checks of an op's backward.
// The checked scalar is L = sum(out * R) (R: the case's grad_output, else uniform [-1, 1) from --seed),
// evaluated in double from the float outputs; for every element of every input tensor
//   numeric = (L(v + eps) - L(v - eps)) / h,   h = the step actually taken in float,
// against the autograd gradient. Conv-family ops are linear in each single element (deform: in each
// offset coordinate too, while no sample point crosses an integer), so central differences are exact up
// to float rounding and a large eps (1e-2) is best. The default cases keep every deform sample point at
// least 0.2 px from an integer and every max-pool input 0.05 apart, so no step crosses a kink.
// relative error = max |analytic - numeric| / (max |numeric| + 1e-3), as tests/testing.h.
//
// gradcheck CONFIG checks every leaf layer of a model the same way, one layer at a time: its input is the
// layer's real input from a forward pass of a random batch (train mode: BN uses batch statistics), and the
// checked tensors are that input and each of the layer's parameters (a seeded sample of --max-elements
// elements each). Where a layer has a kink the finite difference would straddle, the check moves off it,
// and says so in the report:
//  - relu / leaky_relu: inputs closer than 4 eps to 0 are pushed to +-4 eps;
//  - max_pool2d: the input is a permutation of distinct values 5 eps apart (as the op's default case);
//  - deform_conv2d: its offset predictor starts at zero, which puts every sample point on a whole pixel,
//    where bilinear sampling has a kink; the check gives the predictors small random weights and offset
//    bias 0.5, shrunk until every sample point is further from a whole pixel than one step can move it;
//  - dropout: the same mask for every evaluation (its RNG state is restored before each forward);
//  - batch_norm2d: smooth, but it divides by each channel's batch std, so its input step is eps times the
//    smallest channel std (DCGAN's discriminator feeds it activations of std ~0.02).
// Smooth layers (BN, tanh, sigmoid) then differ from the central difference by O(step^2) only.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/random.h"
#include "layers/basic_layers.h"
#include "layers/family_layers.h"
#include "models/config.h"
#include "models/gan_task.h"
#include "data/files.h"
#include "models/study/study.h"

namespace convlab {

using nlohmann::json;

namespace {

// Central difference of loss() in the element *p, divided by the step the float rounding actually took.
template <class Loss>
double central_difference(float* p, double h, Loss&& loss) {
  const float orig = *p, up_v = static_cast<float>(orig + h), down_v = static_cast<float>(orig - h);
  *p = up_v;
  const double up = loss();
  *p = down_v;
  const double down = loss();
  *p = orig;
  return (up - down) / (double(up_v) - double(down_v));
}

json rnd(const Shape& s, int64_t seed) { return {{"shape", s}, {"random", seed}}; }

// Offsets (dy, dx) = integer in [-1, 1] + a fraction in [0.2, 0.8]: sample points stay off the integer grid.
json off_grid_offsets(const Shape& s, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> v(static_cast<size_t>(numel_of(s)));
  for (double& x : v) x = static_cast<double>(rng.randint(3) - 1) + 0.2 + 0.6 * rng.uniform();
  return {{"shape", s}, {"data", v}};
}

// A permutation of 0.05 * k: distinct values, far apart relative to eps.
json spread_values(const Shape& s, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> v(static_cast<size_t>(numel_of(s)));
  std::iota(v.begin(), v.end(), 0.0);
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<size_t>(rng.randint(static_cast<int64_t>(i)))]);
  for (double& x : v) x = 0.05 * x - 0.025 * static_cast<double>(v.size());
  return {{"shape", s}, {"data", v}};
}

struct TensorCheck {
  std::string name;
  Shape shape;
  double abs = 0, rel = 0;
};

std::vector<TensorCheck> check_call(const OpCall& call, double eps, uint64_t seed) {
  const OpSpec* spec = find_op(call.op);
  CL_CHECK(spec, "gradcheck: unknown op '" << call.op << "'");
  for (const auto& [n, t] : call.tensors) Tensor(t).zero_grad();  // handles share the gradient
  const Tensor out = spec->run(call);
  Tensor R = call.grad_output;
  if (!R.defined()) {
    R = Tensor::empty(out.shape());
    Rng rng(seed);
    fill_uniform(R, rng, -1.f, 1.f);
  }
  CL_CHECK(R.shape() == out.shape(), "gradcheck: grad_output " << shape_str(R.shape()) << " must match the output "
                                                               << shape_str(out.shape()));
  out.backward(R);
  auto loss = [&]() {
    NoGradGuard ng;
    const Tensor o = spec->run(call);
    double s = 0;
    for (int64_t i = 0; i < o.numel(); ++i) s += double(o.data()[i]) * double(R.data()[i]);
    return s;
  };
  std::vector<TensorCheck> res;
  for (const auto& [name, t0] : call.tensors) {
    Tensor t = t0;
    const Tensor analytic = t.grad();
    TensorCheck c{name, t.shape()};
    double scale = 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
      const double numeric = central_difference(t.data() + i, eps, loss);
      const double a = analytic.defined() ? double(analytic.data()[i]) : 0.0;
      scale = std::max(scale, std::fabs(numeric));
      c.abs = std::max(c.abs, std::fabs(a - numeric));
    }
    c.rel = c.abs / (scale + 1e-3);
    res.push_back(c);
  }
  return res;
}

// ---- gradcheck CONFIG ----
struct LayerCheck {
  std::string layer, type, tensor, note;
  Shape shape;
  int64_t checked = 0;
  double abs = 0, rel = 0;
};

struct ModelChecker {
  double eps;
  int64_t max_elements;
  uint64_t seed;
  std::vector<LayerCheck> results;

  // Indices of the checked elements: all, or a seeded sample (partial Fisher-Yates), ascending.
  std::vector<int64_t> pick(int64_t n, uint64_t salt) const {
    std::vector<int64_t> idx(static_cast<size_t>(n));
    std::iota(idx.begin(), idx.end(), 0);
    if (max_elements <= 0 || n <= max_elements) return idx;
    Rng rng(seed ^ (salt * 0x9E3779B97F4A7C15ull));
    for (int64_t i = 0; i < max_elements; ++i) std::swap(idx[size_t(i)], idx[size_t(i + rng.randint(n - i))]);
    idx.resize(static_cast<size_t>(max_elements));
    std::sort(idx.begin(), idx.end());
    return idx;
  }

  // deform_conv2d: predictor weights U(-a, a), offset bias 0.5, a halved until every sample point stays
  // further than one step's reach from a whole pixel (the base grid is integer: the offset's fraction decides).
  std::string prepare_deform(Module& m, const Tensor& x) {
    double xmax = 0;
    for (int64_t i = 0; i < x.numel(); ++i) xmax = std::max(xmax, double(std::fabs(x.data()[i])));
    Rng rng(seed + 17);
    const auto params = m.named_parameters();
    for (double a = 0.5;; a *= 0.5) {
      double wmax = 0;
      for (auto [name, t] : params) {
        if (name.rfind("offset.", 0) != 0 && name.rfind("mask.", 0) != 0) continue;
        const bool off_bias = name == "offset.bias";
        fill_uniform(t, rng, -float(a), float(a));
        if (off_bias) std::fill_n(t.data(), t.numel(), 0.5f);
        else wmax = std::max(wmax, a);
      }
      NoGradGuard ng;
      m.forward(x);
      const Tensor& off = dynamic_cast<DeformConv2d&>(m).last_offset();
      double gap = 1;
      for (int64_t i = 0; i < off.numel(); ++i) {
        const double v = off.data()[i];
        gap = std::min(gap, std::fabs(v - std::round(v)));
      }
      if (gap > 2 * eps * std::max({1.0, xmax, wmax}) || a < 1e-6)
        return "offset/mask predictors set to U(-" + fmt(a, 2) + "," + fmt(a, 2) + "), offset bias 0.5 (points " +
               fmt(gap, 2) + " px from whole pixels)";
    }
  }

  void leaf(Module& m, const std::string& name, const Tensor& x_real) {
    Tensor x = x_real.clone();
    std::string note;
    const std::string type = m.type();
    if (type == "relu" || type == "leaky_relu") {
      const float margin = float(4 * eps);
      for (int64_t i = 0; i < x.numel(); ++i)
        if (std::fabs(x.data()[i]) < margin) x.data()[i] = x.data()[i] < 0 ? -margin : margin;
      note = "inputs moved >= 4 eps from 0";
    } else if (type == "max_pool2d") {
      Rng rng(seed + 5);
      std::vector<int64_t> perm(static_cast<size_t>(x.numel()));
      std::iota(perm.begin(), perm.end(), 0);
      for (int64_t i = x.numel(); i > 1; --i) std::swap(perm[size_t(i - 1)], perm[size_t(rng.randint(i))]);
      for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = float(5 * eps * double(perm[size_t(i)] - x.numel() / 2));
      note = "input: distinct values 5 eps apart";
    } else if (type == "deform_conv2d") {
      note = prepare_deform(m, x);
    }
    // BN: a step large against a channel's batch std leaves the linear regime (see the file header).
    double input_step = eps;
    if (type == "batch_norm2d" && x.dim() == 4) {
      const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
      double min_std = 1;
      for (int64_t ch = 0; ch < C; ++ch) {
        double s1 = 0, s2 = 0;
        for (int64_t n = 0; n < N; ++n)
          for (int64_t i = 0; i < HW; ++i) {
            const double v = x.data()[(n * C + ch) * HW + i];
            s1 += v, s2 += v * v;
          }
        const double mean = s1 / double(N * HW);
        min_std = std::min(min_std, std::sqrt(std::max(0.0, s2 / double(N * HW) - mean * mean)));
      }
      input_step = eps * std::max(min_std, 1e-3);
      if (input_step < eps) note = "input step eps x " + fmt(input_step / eps, 2) + " (smallest channel std)";
    }
    auto* drop = dynamic_cast<Dropout*>(&m);
    const Rng drop_state = drop ? drop->rng() : Rng();
    auto forward = [&](const Tensor& in) {
      if (drop) drop->rng() = drop_state;
      return m.forward(in);
    };
    std::vector<std::pair<std::string, Tensor>> tensors = {{"input", x}};
    for (auto& p : m.named_parameters()) tensors.push_back(p);
    for (auto& [n, t] : tensors) t.zero_grad();
    x.set_requires_grad(true);
    const Tensor out = forward(x);
    Tensor R = Tensor::empty(out.shape());
    Rng rng(seed);
    fill_uniform(R, rng, -1.f, 1.f);
    out.backward(R);
    auto loss = [&]() {
      NoGradGuard ng;
      const Tensor o = forward(x);
      double s = 0;
      for (int64_t i = 0; i < o.numel(); ++i) s += double(o.data()[i]) * double(R.data()[i]);
      return s;
    };
    for (size_t k = 0; k < tensors.size(); ++k) {
      Tensor t = tensors[k].second;
      const Tensor analytic = t.grad();
      LayerCheck c{name, type, tensors[k].first, k == 0 ? note : "", t.shape()};
      double scale = 0;
      for (int64_t i : pick(t.numel(), k + 1)) {
        const double numeric = central_difference(t.data() + i, k == 0 ? input_step : eps, loss);
        const double a = analytic.defined() ? double(analytic.data()[i]) : 0.0;
        scale = std::max(scale, std::fabs(numeric));
        c.abs = std::max(c.abs, std::fabs(a - numeric));
        ++c.checked;
      }
      c.rel = c.abs / (scale + 1e-3);
      results.push_back(c);
    }
  }

  // Checks every leaf of m at its real input x and returns m's output (train mode, no gradient).
  Tensor walk(Module& m, const std::string& name, const Tensor& x) {
    if (m.type() == "sequential") {
      Tensor h = x;
      for (const auto& [n, c] : m.children()) h = walk(*c, name + "." + n, h);
      return h;
    }
    if (m.type() == "residual") {
      const Tensor body = walk(*m.children()[0].second, name + ".body", x);
      NoGradGuard ng;
      return add(x, body);
    }
    leaf(m, name, x);
    NoGradGuard ng;
    return m.forward(x);
  }
};

struct Net {
  std::string name;
  std::shared_ptr<Sequential> model;
  Tensor input;
};

std::vector<Net> config_nets(const GradcheckCommand& c) {
  const json cfg = load_config(c.config, c.sets);
  CL_CHECK(c.batch >= 1, "gradcheck: --batch must be >= 1, got " << c.batch);
  const std::string task = cfg.value("task", std::string("segmentation"));
  Rng rng(c.seed + 1);
  std::vector<Net> nets;
  if (task == "gan") {
    GanTask g = make_gan_task(cfg, /*with_data=*/false);
    Tensor img = Tensor::empty(g.image_shape(c.batch));
    fill_uniform(img, rng, -1.f, 1.f);
    nets.push_back({"generator", g.generator, sample_latent(g, c.batch, rng)});
    nets.push_back({"discriminator", g.discriminator, img});
    return nets;
  }
  CL_CHECK(cfg.contains("model") && cfg["model"].is_object() && cfg["model"].contains("layers"),
           "gradcheck: " << c.config << ": model.layers: missing");
  CL_CHECK(c.size >= 1, "gradcheck: --size must be >= 1, got " << c.size);
  const bool cls = task == "classification";  // MNIST digits [B, 1, 28, 28]
  const Shape in = cls ? Shape{c.batch, 1, 28, 28} : Shape{c.batch, 3, c.size, c.size};
  Rng init(cfg.value("seed", uint64_t(0)));
  Tensor x = Tensor::empty(in);
  fill_uniform(x, rng, cls ? -1.f : 0.f, 1.f);
  nets.push_back({"model", build_layers(cfg["model"]["layers"], in, init, "model.layers"), x});
  return nets;
}

StudyResult config_gradcheck(const GradcheckCommand& c) {
  ModelChecker mc{c.eps, c.max_elements, c.seed, {}};
  StudyResult r;
  r.json = {{"config", c.config}, {"eps", c.eps}, {"tolerance", c.tol}, {"seed", c.seed}, {"batch", c.batch},
            {"max_elements", c.max_elements}, {"checks", json::array()}};
  std::string inputs;
  for (Net& n : config_nets(c)) {
    n.model->train();
    mc.walk(*n.model, n.name, n.input);
    inputs += (inputs.empty() ? "" : ", ") + n.name + " input " + shape_str(n.input.shape());
  }
  std::vector<std::vector<std::string>> rows = {{"layer", "type", "tensor", "shape", "checked", "max abs err",
                                                 "max rel err", "", "note"}};
  int failed = 0;
  for (const LayerCheck& t : mc.results) {
    const bool pass = t.rel <= c.tol;
    failed += !pass;
    r.json["checks"].push_back({{"layer", t.layer}, {"type", t.type}, {"tensor", t.tensor}, {"shape", t.shape},
                                {"checked", t.checked}, {"elements", numel_of(t.shape)}, {"max_abs_error", t.abs},
                                {"max_rel_error", t.rel}, {"pass", pass}, {"note", t.note}});
    rows.push_back({t.layer, t.type, t.tensor, shape_str(t.shape),
                    std::to_string(t.checked) + "/" + std::to_string(numel_of(t.shape)), fmt(t.abs, 3), fmt(t.rel, 3),
                    pass ? "PASS" : "FAIL", t.note});
  }
  r.ok = failed == 0;
  r.json["all_pass"] = r.ok;
  r.json["inputs"] = inputs;
  r.text = "gradcheck " + c.config + ": every layer at its input from a forward pass (" + inputs +
           "), train mode; finite differences of sum(out * R), eps " + fmt(c.eps) + ", pass if rel err <= " +
           fmt(c.tol) + "\n" + format_table(rows) +
           (r.ok ? "all pass\n" : std::to_string(failed) + " failed\n");
  return r;
}

}  // namespace

json default_case(const std::string& op) {
  if (op == "conv2d")
    return {{"op", op}, {"stride", {2, 1}}, {"padding", 1}, {"dilation", {1, 2}}, {"groups", 2},
            {"tensors", {{"input", rnd({2, 4, 5, 5}, 1)}, {"weight", rnd({6, 2, 3, 3}, 2)}, {"bias", rnd({6}, 3)}}}};
  if (op == "conv_transpose2d")
    return {{"op", op}, {"stride", 2}, {"padding", 1}, {"output_padding", 1}, {"groups", 2},
            {"tensors", {{"input", rnd({2, 4, 3, 3}, 1)}, {"weight", rnd({4, 3, 3, 3}, 2)}, {"bias", rnd({6}, 3)}}}};
  if (op == "deform_conv2d")  // groups 2, offset_groups 2, v2 (mask)
    return {{"op", op}, {"padding", 1},
            {"tensors", {{"input", rnd({1, 4, 5, 5}, 1)}, {"weight", rnd({4, 2, 3, 3}, 2)},
                         {"offset", off_grid_offsets({1, 36, 5, 5}, 3)}, {"mask", rnd({1, 18, 5, 5}, 4)},
                         {"bias", rnd({4}, 5)}}}};
  if (op == "depthwise_separable_conv2d")
    return {{"op", op}, {"padding", 1}, {"dilation", 2}, {"stride", 1},
            {"tensors", {{"input", rnd({2, 3, 5, 5}, 1)}, {"depthwise_weight", rnd({6, 1, 3, 3}, 2)},
                         {"depthwise_bias", rnd({6}, 3)}, {"pointwise_weight", rnd({4, 6, 1, 1}, 4)},
                         {"pointwise_bias", rnd({4}, 5)}}}};
  if (op == "upsample")
    return {{"op", op}, {"mode", "bilinear"}, {"scale_factor", 1.5}, {"align_corners", false},
            {"tensors", {{"input", rnd({1, 2, 4, 3}, 1)}}}};
  if (op == "max_pool2d")
    return {{"op", op}, {"kernel_size", 3}, {"stride", 2}, {"padding", 1}, {"ceil_mode", true},
            {"tensors", {{"input", spread_values({2, 2, 6, 6}, 1)}}}};
  if (op == "avg_pool2d")
    return {{"op", op}, {"kernel_size", 3}, {"stride", 2}, {"padding", 1}, {"ceil_mode", true}, {"count_include_pad", false},
            {"tensors", {{"input", rnd({2, 2, 5, 5}, 1)}}}};
  CL_FAIL("gradcheck: no default case for op '" << op << "' (give one with --case FILE)");
}

StudyResult gradcheck_command(const GradcheckCommand& c) {
  CL_CHECK(c.eps > 0, "gradcheck: --eps must be > 0, got " << c.eps);
  CL_CHECK(c.tol > 0, "gradcheck: --tol must be > 0, got " << c.tol);
  CL_CHECK(int(c.all) + int(!c.op.empty()) + int(!c.case_path.empty()) + int(!c.config.empty()) == 1,
           "gradcheck: give exactly one of CONFIG, --op NAME, --all or --case FILE");
  if (!c.config.empty()) return config_gradcheck(c);
  std::vector<std::pair<std::string, OpCall>> calls;
  if (!c.case_path.empty()) {
    calls.emplace_back(c.case_path, parse_case(read_text_file(c.case_path)));
  } else {
    std::vector<std::string> names;
    if (c.all) {
      for (const OpSpec& s : op_specs()) names.push_back(s.name);
    } else {
      if (!find_op(c.op)) {
        std::string list;
        for (const OpSpec& s : op_specs()) list += (list.empty() ? "" : ", ") + s.name;
        CL_FAIL("gradcheck: unknown --op '" << c.op << "' (ops: " << list << ")");
      }
      names.push_back(c.op);
    }
    for (const auto& n : names) calls.emplace_back("default case", parse_case(default_case(n).dump()));
  }
  StudyResult r;
  r.json = {{"eps", c.eps}, {"tolerance", c.tol}, {"seed", c.seed}, {"checks", json::array()}};
  std::vector<std::vector<std::string>> rows = {{"op", "tensor", "shape", "max abs err", "max rel err", ""}};
  int failed = 0;
  for (const auto& [source, call] : calls) {
    for (const TensorCheck& t : check_call(call, c.eps, c.seed)) {
      const bool pass = t.rel <= c.tol;
      failed += !pass;
      r.json["checks"].push_back({{"op", call.op}, {"case", source}, {"tensor", t.name}, {"shape", t.shape},
                                  {"max_abs_error", t.abs}, {"max_rel_error", t.rel}, {"pass", pass}});
      rows.push_back({call.op, t.name, shape_str(t.shape), fmt(t.abs, 3), fmt(t.rel, 3), pass ? "PASS" : "FAIL"});
    }
  }
  r.ok = failed == 0;
  r.json["all_pass"] = r.ok;
  r.text = "finite differences of sum(out * R), eps " + fmt(c.eps) + ", pass if rel err <= " + fmt(c.tol) + "\n" +
           format_table(rows) + (r.ok ? "all pass\n" : std::to_string(failed) + " failed\n");
  return r;
}

}  // namespace convlab
