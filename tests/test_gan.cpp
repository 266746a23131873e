// tests/test_gan.cpp: the GAN pieces on tiny configs: the eigen-solver, Frechet distance, Inception Score and
// checkerboard measure against closed forms; GAN config validation (one line naming both shapes); DCGAN
// initialisation; a few training steps (run folder, metrics, bit-identical --resume, NaN stop); the classifier;
// gan-eval; and `convlab sample` / `gan-eval` from the command line. Tests needing MNIST skip without it.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "data/mnist.h"
#include "data/png.h"
#include "data/safetensors.h"
#include "models/config.h"
#include "models/gan_task.h"
#include "tests/testing.h"
#include "models/train/classifier.h"
#include "models/eval/gan_eval.h"
#include "models/train/gan.h"

namespace convlab {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string runs_dir() {
  const fs::path d = fs::temp_directory_path() / ("convlab_gan_test_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d.string();
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// dcgan_mnist with narrow networks (16/8 channels), batch 8: a step takes a few ms.
json tiny_gan(const std::string& name) {
  json c = load_config(testing::source_path("configs/dcgan_mnist.json"));
  c["name"] = name;
  c["generator"]["layers"][0]["out_channels"] = 16;
  c["generator"]["layers"][3]["out_channels"] = 8;
  c["discriminator"]["layers"][0]["out_channels"] = 8;
  c["discriminator"]["layers"][2]["out_channels"] = 16;
  c["gan"]["latent_size"] = 12;
  c["generator"]["layers"][0]["in_channels"] = 12;
  c["data"] = {{"dataset", "shapes"}, {"train_size", 64}};  // the embedded set: these tests need no download
  c["train"] = {{"steps", 6}, {"batch_size", 8}, {"log_every", 2}, {"sample_every", 3}, {"samples", 8}};
  return c;
}

std::vector<std::vector<float>> tensors_of(const std::string& path) {
  std::vector<std::vector<float>> out;
  for (auto& [name, t] : safetensors::load(path).tensors) out.push_back(t.to_vector());
  return out;
}

json tiny_classifier() {
  json c = load_config(testing::source_path("configs/mnist_classifier.json"));
  c["name"] = "tiny_classifier";
  c["model"]["layers"][0]["out_channels"] = 4;
  c["model"]["layers"][2]["out_channels"] = 4;
  c["model"]["layers"][7]["out_features"] = 16;
  c["data"]["train_size"] = 64;
  c["data"]["test_size"] = 50;
  c["train"] = {{"steps", 4}, {"batch_size", 16}, {"log_every", 2}, {"eval_every", 4}};
  return c;
}

TEST(GanEval, JacobiEigenReconstructs) {
  const int64_t n = 7;
  Tensor r = testing::random_tensor({n, n}, 3);
  std::vector<double> a(n * n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) a[i * n + j] = double(r.data()[i * n + j]) + r.data()[j * n + i];
  std::vector<double> w, v;
  symmetric_eigen(a, n, w, v);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double rec = 0, orth = 0;
      for (int64_t k = 0; k < n; ++k) rec += v[i * n + k] * w[k] * v[j * n + k], orth += v[k * n + i] * v[k * n + j];
      EXPECT_NEAR(rec, a[i * n + j], 1e-10);
      EXPECT_NEAR(orth, i == j ? 1.0 : 0.0, 1e-10);
    }
  // sqrt of a PSD matrix A^T A squares back to it
  std::vector<double> p(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t k = 0; k < n; ++k) p[i * n + j] += a[k * n + i] * a[k * n + j];
  const auto s = sqrt_psd(p, n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double sq = 0;
      for (int64_t k = 0; k < n; ++k) sq += s[i * n + k] * s[k * n + j];
      EXPECT_NEAR(sq, p[i * n + j], 1e-8 * (1 + std::fabs(p[i * n + j])));
    }
  EXPECT_NE(error_of([] { std::vector<double> w2, v2; symmetric_eigen({1, 2, 3, 4}, 2, w2, v2); }), "");
}

TEST(GanEval, FrechetClosedForms) {
  // Diagonal covariances: FD = |dm|^2 + sum (sqrt(a_i) - sqrt(b_i))^2, unchanged by a common rotation.
  Gaussian x{3, {1, 2, 3}, {4, 0, 0, 0, 1, 0, 0, 0, 9}}, y{3, {0, 2, 5}, {1, 0, 0, 0, 1, 0, 0, 0, 16}};
  const double expect = 1 + 4 + (1 + 0 + 1);
  EXPECT_NEAR(frechet_distance(x, y), expect, 1e-9);
  EXPECT_NEAR(frechet_distance(x, x), 0.0, 1e-9);
  const double c = std::cos(0.7), s = std::sin(0.7);  // rotation in the (0, 1) plane
  auto rot = [&](const Gaussian& g) {
    Gaussian o = g;
    const double q[9] = {c, -s, 0, s, c, 0, 0, 0, 1};
    std::vector<double> t(9, 0.0);
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) {
        o.mean[i] = 0;
        for (int k = 0; k < 3; ++k)
          for (int l = 0; l < 3; ++l) t[i * 3 + j] += q[i * 3 + k] * g.cov[k * 3 + l] * q[j * 3 + l];
      }
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 3; ++k) o.mean[i] += q[i * 3 + k] * g.mean[k];
    o.cov = t;
    return o;
  };
  EXPECT_NEAR(frechet_distance(rot(x), rot(y)), expect, 1e-8);
  const Gaussian f = fit_gaussian({1, 2, 3, 4, 5, 9}, 2);  // samples (1,2), (3,4), (5,9)
  EXPECT_NEAR(f.mean[1], 5.0, 1e-12);
  EXPECT_NEAR(f.cov[0], 4.0, 1e-12);  // var of 1, 3, 5 (n - 1)
  EXPECT_NEAR(f.cov[1], 7.0, 1e-12);  // cov((1,3,5), (2,4,9)) = (-2*-3 + 0 + 2*4) / 2
}

TEST(GanEval, InceptionScoreAndCheckerboard) {
  std::vector<double> onehot, same;
  for (int i = 0; i < 20; ++i)
    for (int k = 0; k < 10; ++k) onehot.push_back(k == i % 10), same.push_back(k == 3 ? 0.5 : 0.5 / 9);
  EXPECT_NEAR(inception_score(onehot, 10), 10.0, 1e-9);
  EXPECT_NEAR(inception_score(same, 10), 1.0, 1e-9);
  Tensor checker = Tensor::empty({2, 1, 4, 4}), flat = Tensor::empty({2, 1, 4, 4});
  for (int64_t i = 0; i < 32; ++i) checker.data()[i] = ((i / 4) % 2 + i % 2) % 2 ? 1.f : -1.f, flat.data()[i] = float(i / 16);
  EXPECT_NEAR(checkerboard_strength(checker), 1.0, 1e-9);
  EXPECT_NEAR(checkerboard_strength(flat), 0.0, 1e-9);
}

TEST(GanConfig, RefusesMisfitsNamingBothShapes) {
  json c = tiny_gan("t_bad");
  json no_d = c;
  no_d.erase("discriminator");
  EXPECT_NE(error_of([&] { make_gan_task(no_d, false); }).find("discriminator.layers: missing"), std::string::npos);
  json big = c;  // 1 -> 7 -> 14 -> 30 (padding 0 on the last layer): not D's 28x28
  big["generator"]["layers"][6]["padding"] = 0;
  const std::string e1 = error_of([&] { make_gan_task(big, false); });
  EXPECT_NE(e1.find("[8,1,30,30]"), std::string::npos) << e1;
  EXPECT_NE(e1.find("[8,1,28,28]"), std::string::npos) << e1;
  json lat = c;
  lat["gan"]["latent_size"] = 100;
  const std::string e2 = error_of([&] { make_gan_task(lat, false); });
  EXPECT_NE(e2.find("[8,12,1,1]"), std::string::npos) << e2;
  EXPECT_NE(e2.find("[8,100,1,1]"), std::string::npos) << e2;
  json d2 = c;  // D ending in 16 channels of 7x7: not one logit per image
  d2["discriminator"]["layers"].erase(5);
  EXPECT_NE(error_of([&] { make_gan_task(d2, false); }).find("one logit per image"), std::string::npos);
  for (const char* f : {"configs/dcgan_mnist.json", "configs/dcgan_mnist_k3.json", "configs/dcgan_mnist_resize.json",
                        "configs/dcgan_mnist_ttur.json"})
    EXPECT_EQ(error_of([&] { make_gan_task(load_config(testing::source_path(f)), false); }), "") << f;
}

// `convlab sample --interpolate A,B`: the walk starts at seed A's latent and ends at seed B's, exactly.
TEST(GanConfig, InterpolateLatentsWalksFromOneSeedToTheOther) {
  GanTask t = make_gan_task(load_config(testing::source_path("configs/dcgan_mnist.json")), false);
  const Tensor z = interpolate_latents(t, 3, 7, 5);
  ASSERT_EQ(z.shape(), (Shape{5, t.latent, 1, 1}));
  Rng ra(3), rb(7);
  const Tensor za = sample_latent(t, 1, ra), zb = sample_latent(t, 1, rb);
  const int64_t L = t.latent;
  for (int64_t k = 0; k < L; ++k) {
    EXPECT_EQ(z.data()[k], za.data()[k]) << "first step, element " << k;
    EXPECT_EQ(z.data()[4 * L + k], zb.data()[k]) << "last step, element " << k;
    EXPECT_EQ(z.data()[2 * L + k], 0.5f * za.data()[k] + 0.5f * zb.data()[k]) << "middle step, element " << k;
  }
  EXPECT_THROW(interpolate_latents(t, 3, 7, 1), Error);
}

TEST(GanConfig, DcganInit) {
  GanTask t = make_gan_task(load_config(testing::source_path("configs/dcgan_mnist.json")), false);
  for (auto& [name, p] : t.generator->named_parameters()) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < p.numel(); ++i) s += p.data()[i], s2 += double(p.data()[i]) * p.data()[i];
    const double m = s / p.numel(), sd = std::sqrt(s2 / p.numel() - m * m);
    const bool gamma = p.dim() == 1;  // the only 1-D parameters are batch-norm weights / biases
    if (name.find("bias") != std::string::npos) {
      EXPECT_EQ(s2, 0.0) << name;
    } else {
      EXPECT_NEAR(m, gamma ? 1.0 : 0.0, 0.01) << name;
      EXPECT_NEAR(sd, 0.02, 0.006) << name;
    }
  }
}

TEST(GanConfig, GeneratorEmaArithmetic) {
  json c = tiny_gan("t_ema_math");
  c["gan"]["ema_decay"] = 0.5;
  GanTask t = make_gan_task(c, false);
  ASSERT_TRUE(t.generator_ema);
  const auto live = t.generator->state_dict(), ema = t.generator_ema->state_dict();
  for (size_t i = 0; i < live.size(); ++i) EXPECT_EQ(live[i].second.to_vector(), ema[i].second.to_vector());
  // Move every live entry by +1, then one update at step 0: beta = min(0.5, 1/10) = 0.1.
  std::vector<std::vector<float>> before;
  for (auto& [n, v] : live) {
    before.push_back(v.to_vector());
    Tensor w = v;
    for (int64_t j = 0; j < w.numel(); ++j) w.data()[j] += 1.f;
  }
  update_generator_ema(t, 0);
  for (size_t i = 0; i < live.size(); ++i) {
    const bool counter = live[i].first.find("num_batches_tracked") != std::string::npos;
    for (int64_t j = 0; j < live[i].second.numel(); ++j) {
      const float b = before[i][size_t(j)], want = counter ? b + 1.f : 0.1f * b + 0.9f * (b + 1.f);
      ASSERT_FLOAT_EQ(ema[i].second.data()[j], want) << live[i].first;
    }
  }
  // At step 1000 the warm-up bound (1001/1010) exceeds 0.5: the configured decay applies.
  const std::vector<float> e0 = ema[0].second.to_vector(), l0 = live[0].second.to_vector();
  update_generator_ema(t, 1000);
  for (int64_t j = 0; j < 5; ++j) EXPECT_FLOAT_EQ(ema[0].second.data()[j], 0.5f * e0[size_t(j)] + 0.5f * l0[size_t(j)]);
  for (double bad : {1.0, -0.1}) {
    c["gan"]["ema_decay"] = bad;
    EXPECT_NE(error_of([&] { make_gan_task(c, false); }).find("gan.ema_decay"), std::string::npos) << bad;
  }
  c["gan"]["ema_decay"] = 0;
  for (double bad : {0.5, 1.1}) {
    c["gan"]["real_label"] = bad;
    EXPECT_NE(error_of([&] { make_gan_task(c, false); }).find("gan.real_label"), std::string::npos) << bad;
  }
}

TEST(GanConfig, ShapesDataNeedsNoDownload) {
  json c = tiny_gan("t_shapes");
  GanTask t = make_gan_task(c, true);
  ASSERT_EQ(t.train_indices.size(), 64u);
  const Tensor x = real_images(t, {0, 5, 63});
  ASSERT_EQ(x.shape(), (Shape{3, 1, 28, 28}));
  float lo = 1e9f, hi = -1e9f;
  for (int64_t i = 0; i < x.numel(); ++i) lo = std::min(lo, x.data()[i]), hi = std::max(hi, x.data()[i]);
  EXPECT_GE(lo, -1.f);
  EXPECT_LE(hi, 1.f);
  EXPECT_LT(lo + 0.2f, hi) << "images are not flat";
  EXPECT_EQ(x.to_vector(), real_images(t, {0, 5, 63}).to_vector());  // a pure function of (seed, index)
  EXPECT_NE(error_of([&] { real_images(t, {64}); }).find("outside the 64"), std::string::npos);
  c["data"] = {{"dataset", "mnist"}, {"mnist_dir", "/nonexistent/mnist"}};
  const std::string e = error_of([&] { make_gan_task(c, true); });
  EXPECT_NE(e.find("scripts/get_mnist.sh"), std::string::npos) << e;
  EXPECT_NE(e.find("data.dataset=shapes"), std::string::npos) << e;
}

TEST(GanTrain, RunsResumesAndStopsOnNan) {
  const std::string runs = runs_dir();
  const json s = train_gan(tiny_gan("t_full"), {.runs_dir = runs, .quiet = true});
  const std::string dir = s["run_dir"];
  for (const char* f : {"config.json", "metrics.jsonl", "summary.json", "generator.safetensors",
                        "discriminator.safetensors", "optimizer.safetensors", "samples_3.png", "samples_6.png"})
    EXPECT_TRUE(fs::exists(dir + "/" + f)) << f;
  std::ifstream mf(dir + "/metrics.jsonl");
  std::string line;
  ASSERT_TRUE(std::getline(mf, line));
  const json m = json::parse(line);
  for (const char* k : {"loss_d", "loss_g", "d_x", "d_g_z1", "d_g_z2"}) EXPECT_TRUE(m.contains(k)) << k;
  // 3 steps, stop, resume to 6: the same weights bit for bit
  train_gan(tiny_gan("t_half"), {.runs_dir = runs, .quiet = true, .stop_after = 3});
  train_gan(tiny_gan("t_half"), {.runs_dir = runs, .resume = true, .quiet = true});
  const auto a = safetensors::load(dir + "/generator.safetensors"),
             b = safetensors::load(runs + "/t_half/generator.safetensors");
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) EXPECT_EQ(a.tensors[i].second.to_vector(), b.tensors[i].second.to_vector());
  // With gan.ema_decay: the live generator is unchanged (the average only reads it), generator_ema.safetensors
  // differs from it, loads as a generator, and resumes bit for bit.
  json ec = tiny_gan("t_ema");
  ec["gan"]["ema_decay"] = 0.9;
  train_gan(ec, {.runs_dir = runs, .quiet = true});
  EXPECT_EQ(tensors_of(runs + "/t_ema/generator.safetensors"), tensors_of(dir + "/generator.safetensors"));
  EXPECT_NE(tensors_of(runs + "/t_ema/generator_ema.safetensors"), tensors_of(dir + "/generator.safetensors"));
  EXPECT_NO_THROW(load_generator(runs + "/t_ema/generator_ema.safetensors"));
  json eh = ec;
  eh["name"] = "t_ema_half";
  train_gan(eh, {.runs_dir = runs, .quiet = true, .stop_after = 4});
  train_gan(eh, {.runs_dir = runs, .resume = true, .quiet = true});
  EXPECT_EQ(tensors_of(runs + "/t_ema_half/generator_ema.safetensors"), tensors_of(runs + "/t_ema/generator_ema.safetensors"));
  fs::remove(runs + "/t_ema_half/generator_ema.safetensors");  // resuming an EMA run needs its average
  EXPECT_NE(error_of([&] { train_gan(eh, {.runs_dir = runs, .resume = true, .quiet = true}); }).find("generator_ema"),
            std::string::npos);
  // An absurd learning rate blows the weights up: the run stops naming the step, keeping step 3's checkpoint.
  json bad = tiny_gan("t_nan");
  bad["optimizer"]["lr"] = 1e36;
  const std::string e = error_of([&] { train_gan(bad, {.runs_dir = runs, .quiet = true}); });
  EXPECT_NE(e.find("at step"), std::string::npos) << e;
  EXPECT_NE(e.find("last good checkpoint"), std::string::npos) << e;
}

TEST(GanTrain, ClassifierAndEval) {
  if (!mnist_available()) GTEST_SKIP() << "MNIST digits not present (scripts/get_mnist.sh)";
  const std::string runs = runs_dir();
  const json s = train_classifier(tiny_classifier(), {.runs_dir = runs, .quiet = true});
  EXPECT_TRUE(s["final"]["accuracy"].is_number());
  const std::string cpath = runs + "/tiny_classifier/model.safetensors";
  Classifier c = load_classifier(cpath);
  EXPECT_EQ(c.classes, 10);
  EXPECT_EQ(c.features, 16);
  train_gan(tiny_gan("t_eval"), {.runs_dir = runs, .quiet = true});
  GanEvalOptions o;
  o.classifier = cpath;
  o.checkpoint = runs + "/t_eval/generator.safetensors";
  o.n = 40;
  const json r = gan_eval(o);
  ASSERT_EQ(r["rows"].size(), 3u);
  for (const auto& row : r["rows"]) {
    EXPECT_GE(row["inception_score"].get<double>(), 1.0 - 1e-9);
    EXPECT_GE(row["frechet_distance"].get<double>(), -1e-6);
  }
  // not a classifier checkpoint
  EXPECT_NE(error_of([&] { load_classifier(runs + "/t_eval/generator.safetensors"); }).find("not a convlab classifier"),
            std::string::npos);
}

struct CliRun {
  int code;
  std::string out, err;
};

CliRun cli(const std::string& args) {
  const std::string o = runs_dir() + "/cli_out", e = runs_dir() + "/cli_err";
  const int status = std::system((std::string(CONVLAB_BINARY) + " " + args + " >" + o + " 2>" + e).c_str());
  auto slurp = [](const std::string& p) {
    std::ifstream f(p);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  return {WEXITSTATUS(status), slurp(o), slurp(e)};
}

TEST(GanCli, SampleAndErrors) {
  const CliRun missing = cli("sample --checkpoint /nonexistent/generator.safetensors -o /tmp/x.png");
  EXPECT_EQ(missing.code, 2);
  EXPECT_EQ(std::count(missing.err.begin(), missing.err.end(), '\n'), 1) << missing.err;
  EXPECT_EQ(cli("gan-eval --checkpoint x").code, 2);  // --classifier is required
  const std::string runs = runs_dir();
  train_gan(tiny_gan("t_cli"), {.runs_dir = runs, .quiet = true});
  const std::string g = runs + "/t_cli/generator.safetensors";
  const CliRun grid = cli("sample --checkpoint " + g + " -n 6 -o " + runs + "/grid.png");
  EXPECT_EQ(grid.code, 0) << grid.err;
  EXPECT_TRUE(fs::exists(runs + "/grid.png"));
  const CliRun strip = cli("sample --checkpoint " + g + " --interpolate 3,7 --steps 5 -o " + runs + "/strip.png");
  EXPECT_EQ(strip.code, 0) << strip.err;
  EXPECT_EQ(read_png(runs + "/strip.png").W, 2 * (5 * 29 + 1));  // 5 tiles of 28 px + 1 px separators, x2
  const CliRun bad = cli("sample --checkpoint " + g + " --interpolate 3-7 -o " + runs + "/s.png");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("SEED_A,SEED_B"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace convlab
