// tests/test_layers.cpp: Modules (names, counts, train/eval), batch norm, options parsing and its messages.
#include <gtest/gtest.h>

#include "core/error.h"
#include "layers/basic_layers.h"
#include "layers/conv_layers.h"
#include "layers/registry.h"
#include "tests/testing.h"

namespace convlab {
namespace {

using nlohmann::json;
using testing::random_tensor;

ModulePtr make(const json& j, const Shape& in, uint64_t seed = 1) {
  Rng rng(seed);
  Options o(j, "model.layers[0]");
  const LayerType* t = find_layer_type(j.at("type").get<std::string>());
  EXPECT_NE(t, nullptr);
  ModulePtr m = t->make(o, in, rng);
  o.finish({"type"});
  return m;
}

using testing::error_of;

TEST(Layers, Conv2dHasPyTorchNamesAndInit) {
  ModulePtr m = make({{"type", "conv2d"}, {"out_channels", 8}, {"kernel_size", 3}, {"padding", "same"}, {"dilation", 2}},
                     {2, 4, 9, 9});
  auto ps = m->named_parameters();
  ASSERT_EQ(ps.size(), 2u);
  EXPECT_EQ(ps[0].first, "weight");
  EXPECT_EQ(shape_str(ps[0].second.shape()), "[8,4,3,3]");
  EXPECT_EQ(ps[1].first, "bias");
  EXPECT_EQ(m->num_parameters(), 8 * 4 * 9 + 8);
  EXPECT_EQ(shape_str(m->output_shape({2, 4, 9, 9})), "[2,8,9,9]");
  const float bound = 1.f / std::sqrt(36.f);
  for (float v : ps[0].second.to_vector()) EXPECT_LE(std::fabs(v), bound);
}

TEST(Layers, ConfigErrorsGivePathAndSuggestion) {
  EXPECT_EQ(error_of([] { make({{"type", "conv2d"}, {"out_channels", 8}, {"kernel_size", 3}, {"dilation", 0}}, {1, 3, 8, 8}); }),
            "model.layers[0].dilation: expected a positive integer, got 0");
  EXPECT_EQ(error_of([] { make({{"type", "conv2d"}, {"out_channels", 8}, {"kernal_size", 3}}, {1, 3, 8, 8}); }),
            "model.layers[0].kernel_size: missing (expected a positive integer or a pair [h, w])");
  EXPECT_EQ(error_of([] { make({{"type", "conv2d"}, {"out_channels", 8}, {"kernel_size", 3}, {"strid", 2}}, {1, 3, 8, 8}); }),
            "model.layers[0].strid: unknown key (did you mean 'stride'?)");
  EXPECT_EQ(error_of([] { make({{"type", "conv2d"}, {"in_channels", 4}, {"out_channels", 8}, {"kernel_size", 3}}, {1, 3, 8, 8}); }),
            "model.layers[0].in_channels: 4 does not match the previous layer's output [1,3,8,8] (3 channels)");
}

TEST(Layers, SequentialShapePassNamesTheLayer) {
  Sequential s;
  Rng rng(1);
  s.add(std::make_shared<Conv2d>(Conv2dOptions{.in_channels = 3, .out_channels = 4, .kernel_size = {3, 3}}, rng));
  s.add(std::make_shared<Conv2d>(Conv2dOptions{.in_channels = 5, .out_channels = 4, .kernel_size = {3, 3}}, rng));
  const std::string e = error_of([&] { s.output_shape({1, 3, 8, 8}); });
  EXPECT_NE(e.find("layer 1 (conv2d): conv2d: weight [4,5,3,3] expects input with 5 channels"), std::string::npos) << e;
  EXPECT_EQ(s.named_parameters()[2].first, "1.weight");
}

TEST(BatchNorm, TrainingNormalisesAndUpdatesRunningStats) {
  BatchNorm2d bn({.num_features = 3});
  Tensor x = random_tensor({4, 3, 5, 5}, 3, -2.f, 3.f);
  Tensor y = bn.forward(x);
  for (int64_t c = 0; c < 3; ++c) {
    double s = 0, s2 = 0;
    for (int64_t n = 0; n < 4; ++n)
      for (int64_t i = 0; i < 25; ++i) {
        const double v = y.data()[(n * 3 + c) * 25 + i];
        s += v, s2 += v * v;
      }
    EXPECT_NEAR(s / 100, 0.0, 1e-5);
    EXPECT_NEAR(s2 / 100, 1.0, 1e-3);
  }
  auto bufs = bn.named_buffers();
  EXPECT_EQ(bufs[0].first, "running_mean");
  EXPECT_NEAR(bufs[0].second.data()[0], 0.1 * 0.5, 0.05);  // mean of U(-2,3) is 0.5
  EXPECT_EQ(bufs[2].second.item(), 1.f);
}

TEST(BatchNorm, GradcheckTrainingAndEval) {
  for (bool training : {true, false}) {
    Tensor rm = random_tensor({3}, 9), rv = random_tensor({3}, 10, 0.5f, 2.f);
    testing::GradcheckOptions opt;
    opt.eps = 1e-3;
    opt.max_rel_error = 2e-3;
    testing::gradcheck(
        training ? "batch_norm2d(train)" : "batch_norm2d(eval)",
        [&](const std::vector<Tensor>& t) {
          Tensor rm2 = rm.clone(), rv2 = rv.clone();  // running stats must not drift between evaluations
          return batch_norm2d(t[0], t[1], t[2], rm2, rv2, training);
        },
        {random_tensor({2, 3, 3, 4}, 11).set_requires_grad(), random_tensor({3}, 12).set_requires_grad(),
         random_tensor({3}, 13).set_requires_grad()},
        opt);
  }
}

TEST(Dropout, ScalesKeptValuesAndIsIdentityInEval) {
  Dropout d(0.25f, 7);
  Tensor x = Tensor::ones({1000});
  Tensor y = d.forward(x);
  int zeros = 0;
  for (float v : y.to_vector()) {
    if (v == 0.f) ++zeros;
    else EXPECT_FLOAT_EQ(v, 1.f / 0.75f);
  }
  EXPECT_NEAR(zeros, 250, 50);
  d.eval();
  EXPECT_TRUE(d.forward(x).same(x));
}

}  // namespace
}  // namespace convlab
