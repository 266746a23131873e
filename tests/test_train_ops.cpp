// tests/test_train_ops.cpp: losses, batch norm and optimizers against PyTorch 1.13 values
// (tests/golden/train_ops.json from tools/gen_golden_train.py), gradchecks of the losses, LR schedules.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/ops.h"
#include "tests/testing.h"
#include "data/files.h"
#include "models/op_case/op_case.h"

namespace convlab {
namespace {

using nlohmann::json;
using testing::expect_allclose;

const json& golden() {
  static const json j = json::parse(read_text_file(testing::source_path("tests/golden/train_ops.json")));
  return j;
}
Tensor T(const json& j) { return tensor_from_json(j, "golden"); }

TEST(Losses, CrossEntropyWithWeightsAndIgnoreMatchesPyTorch) {
  const json& c = golden()["cross_entropy"];
  Tensor x = T(c["logits"]).set_requires_grad();
  Tensor l = cross_entropy(x, c["target"].get<std::vector<int32_t>>(), c["weight"].get<std::vector<float>>(), -100);
  EXPECT_NEAR(l.item(), c["loss"].get<double>(), 1e-5);
  l.backward();
  expect_allclose(x.grad(), T(c["grad"]), "cross_entropy.grad_logits", 1e-5);
}

TEST(Losses, BceAndMseMatchPyTorch) {
  for (const char* name : {"bce_with_logits", "mse"}) {
    const json& c = golden()[name];
    Tensor x = T(c[name == std::string("mse") ? "input" : "logits"]).set_requires_grad();
    Tensor l = name == std::string("mse") ? mse_loss(x, T(c["target"])) : bce_with_logits(x, T(c["target"]));
    EXPECT_NEAR(l.item(), c["loss"].get<double>(), 1e-5) << name;
    l.backward();
    expect_allclose(x.grad(), T(c["grad"]), std::string(name) + ".grad", 1e-5);
  }
}

TEST(Losses, Gradcheck) {
  testing::GradcheckOptions opt;
  opt.eps = 1e-3;
  const std::vector<int32_t> target = {0, 2, 1, -1, 2, 0, 1, 1};
  testing::gradcheck("cross_entropy",
                     [&](const std::vector<Tensor>& t) { return cross_entropy(t[0], target, {1.f, 2.f, 0.5f}, -1); },
                     {testing::random_tensor({2, 3, 2, 2}, 1, -2, 2).set_requires_grad()}, opt);
  testing::gradcheck("bce_with_logits", [](const std::vector<Tensor>& t) { return bce_with_logits(t[0], t[1]); },
                     {testing::random_tensor({7}, 2, -3, 3).set_requires_grad(),
                      testing::random_tensor({7}, 3, 0, 1).set_requires_grad()},
                     opt);
  testing::gradcheck("mse_loss", [](const std::vector<Tensor>& t) { return mse_loss(t[0], t[1]); },
                     {testing::random_tensor({7}, 4).set_requires_grad(), testing::random_tensor({7}, 5).set_requires_grad()},
                     opt);
}

TEST(Losses, ErrorsNameShapes) {
  EXPECT_THROW(cross_entropy(Tensor::zeros({1, 3, 2, 2}), {0, 1, 2}), Error);
  EXPECT_THROW(cross_entropy(Tensor::zeros({1, 3, 1, 1}), {3}), Error);
  EXPECT_THROW(mse_loss(Tensor::zeros({2}), Tensor::zeros({3})), Error);
}

TEST(BatchNormGolden, TrainingStepMatchesPyTorch) {
  const json& c = golden()["batch_norm2d"];
  Tensor x = T(c["input"]).set_requires_grad(), w = T(c["weight"]).set_requires_grad(), b = T(c["bias"]).set_requires_grad();
  Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
  Tensor y = batch_norm2d(x, w, b, rm, rv, true);
  expect_allclose(y, T(c["output"]), "batch_norm2d.output", 1e-5);
  y.backward(T(c["grad_output"]));
  expect_allclose(x.grad(), T(c["grad_input"]), "batch_norm2d.grad_input", 1e-4);
  expect_allclose(w.grad(), T(c["grad_weight"]), "batch_norm2d.grad_weight", 1e-5);
  expect_allclose(b.grad(), T(c["grad_bias"]), "batch_norm2d.grad_bias", 1e-5);
  expect_allclose(rm, T(c["running_mean"]), "batch_norm2d.running_mean", 1e-6);
  expect_allclose(rv, T(c["running_var"]), "batch_norm2d.running_var", 1e-6);
}

void run_trajectory(const json& c, Optimizer& opt, Tensor& p) {
  Tensor cc = T(c["c"]), d = T(c["d"]);
  for (int i = 0; i < 5; ++i) {
    opt.zero_grad();
    sum(add(mul(cc, mul(p, p)), mul(d, p))).backward();
    opt.step();
  }
}

TEST(Optimizers, FiveStepsMatchPyTorch) {
  {
    const json& c = golden()["sgd"];
    Tensor p = T(c["start"]).set_requires_grad();
    const json& o = c["options"];
    Sgd opt({{"p", p}}, {.lr = o["lr"], .momentum = o["momentum"], .weight_decay = o["weight_decay"], .nesterov = true});
    run_trajectory(c, opt, p);
    expect_allclose(p, T(c["end"]), "sgd(nesterov).param", 1e-5);
  }
  for (const char* name : {"adam", "adamw"}) {
    const json& c = golden()[name];
    Tensor p = T(c["start"]).set_requires_grad();
    const json& o = c["options"];
    Adam opt({{"p", p}}, {.lr = o["lr"], .beta1 = o["beta1"], .beta2 = o["beta2"], .weight_decay = o["weight_decay"],
                          .decoupled = name == std::string("adamw")});
    run_trajectory(c, opt, p);
    expect_allclose(p, T(c["end"]), std::string(name) + ".param", 1e-5);
  }
}

TEST(Optimizers, StateRoundTripContinuesIdentically) {
  auto make = [] { return testing::random_tensor({4}, 3).set_requires_grad(); };
  Tensor p1 = make(), p2 = make();
  Adam a1({{"p", p1}}, {.lr = 0.1}), a2({{"p", p2}}, {.lr = 0.1});
  auto stepf = [](Optimizer& o, Tensor& p) {
    o.zero_grad();
    sum(square(p)).backward();
    o.step();
  };
  for (int i = 0; i < 3; ++i) stepf(a1, p1), stepf(a2, p2);
  std::vector<std::pair<std::string, Tensor>> saved;
  for (auto& [k, t] : a2.state()) saved.emplace_back(k, t.clone());
  Tensor p3 = p2.detach().clone().set_requires_grad();
  Adam a3({{"p", p3}}, {.lr = 0.1});
  a3.load_state(saved);
  stepf(a1, p1), stepf(a3, p3);
  EXPECT_EQ(p1.to_vector(), p3.to_vector());
}

TEST(LrSchedule, PolyStepCosineWarmup) {
  LrSchedule s{.kind = "poly", .base_lr = 1.0, .total_steps = 100, .power = 0.9};
  EXPECT_DOUBLE_EQ(s.lr_at(0), 1.0);
  EXPECT_NEAR(s.lr_at(50), std::pow(0.5, 0.9), 1e-12);
  EXPECT_NEAR(s.lr_at(100), 0.0, 1e-12);
  LrSchedule st{.kind = "step", .base_lr = 1.0, .step_size = 10, .gamma = 0.5};
  EXPECT_DOUBLE_EQ(st.lr_at(25), 0.25);
  LrSchedule c{.kind = "cosine", .base_lr = 1.0, .total_steps = 10, .min_lr = 0.1, .warmup_steps = 2};
  EXPECT_DOUBLE_EQ(c.lr_at(0), 0.5 * (0.1 + 0.9));  // warm-up halves the first step
  EXPECT_NEAR(c.lr_at(10), 0.1, 1e-12);
}

}  // namespace
}  // namespace convlab
