// tools/lib/study_gradcheck.cpp: `convlab gradcheck`: finite-difference checks of an op's backward.
// The checked scalar is L = sum(out * R) (R: the case's grad_output, else uniform [-1, 1) from --seed),
// evaluated in double from the float outputs; for every element of every input tensor
//   numeric = (L(v + eps) - L(v - eps)) / h,   h = the step actually taken in float,
// against the autograd gradient. Conv-family ops are linear in each single element (deform: in each
// offset coordinate too, while no sample point crosses an integer), so central differences are exact up
// to float rounding and a large eps (1e-2) is best. The default cases keep every deform sample point at
// least 0.2 px from an integer and every max-pool input 0.05 apart, so no step crosses a kink.
// relative error = max |analytic - numeric| / (max |numeric| + 1e-3), as tests/testing.h.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/random.h"
#include "tools/lib/io.h"
#include "tools/lib/study.h"

namespace convlab {

using nlohmann::json;

namespace {

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
      float* p = t.data() + i;
      const float orig = *p, up_v = static_cast<float>(orig + eps), down_v = static_cast<float>(orig - eps);
      *p = up_v;
      const double up = loss();
      *p = down_v;
      const double down = loss();
      *p = orig;
      const double numeric = (up - down) / (double(up_v) - double(down_v));
      const double a = analytic.defined() ? double(analytic.data()[i]) : 0.0;
      scale = std::max(scale, std::fabs(numeric));
      c.abs = std::max(c.abs, std::fabs(a - numeric));
    }
    c.rel = c.abs / (scale + 1e-3);
    res.push_back(c);
  }
  return res;
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
  CL_CHECK(int(c.all) + int(!c.op.empty()) + int(!c.case_path.empty()) == 1,
           "gradcheck: give exactly one of --op NAME, --all or --case FILE");
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
