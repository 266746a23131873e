// tools/bench.cpp: Google Benchmark timings of every conv type on the shapes of ../shared/bench/shapes.json
// (embedded below so the benchmark runs without the shared folder), forward and forward+backward, at 1 and 2
// threads, with GFLOP/s computed from the same FLOP counts as shapes.json.
//   build/bench                                  # everything
//   build/bench --benchmark_filter='seg_d1'      # one shape
//   build/bench --benchmark_filter='fma_peak'    # the FMA peak of each SIMD target this CPU has
// Timings are medians of Google Benchmark's repetitions; compare with PyTorch side by side using
// tools/torch_bench.py (docs/PERFORMANCE.md records both).
#include <benchmark/benchmark.h>

#include <functional>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/threads.h"
#include "models/config.h"
#include "models/gan_task.h"
#include "core/loss.h"

#include <omp.h>
#include <sys/resource.h>
#include <cstdio>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace {

using namespace convlab;

struct BenchShape {
  std::string name, op;
  int64_t N, C_in, C_out, H, W, k;
  Conv2dArgs a;
  double flops_fwd;
};

const std::vector<BenchShape>& conv_shapes() {
  static const std::vector<BenchShape> s = {
      {"seg_d1", "conv2d", 8, 32, 32, 64, 64, 3, {{1, 1}, {1, 1}, {1, 1}, 1}, 603979776},
      {"seg_d2", "conv2d", 8, 32, 32, 64, 64, 3, {{1, 1}, {2, 2}, {2, 2}, 1}, 603979776},
      {"seg_d5", "conv2d", 8, 32, 32, 64, 64, 3, {{1, 1}, {5, 5}, {5, 5}, 1}, 603979776},
      {"seg_wide", "conv2d", 8, 64, 64, 64, 64, 3, {{1, 1}, {1, 1}, {1, 1}, 1}, 2415919104},
      {"stem", "conv2d", 8, 3, 32, 64, 64, 3, {{1, 1}, {1, 1}, {1, 1}, 1}, 56623104},
      {"classifier", "conv2d", 8, 32, 11, 64, 64, 1, {{1, 1}, {0, 0}, {1, 1}, 1}, 23068672},
      {"dw", "conv2d", 8, 64, 64, 64, 64, 3, {{1, 1}, {1, 1}, {1, 1}, 64}, 37748736},
      {"pw", "conv2d", 8, 64, 64, 64, 64, 1, {{1, 1}, {0, 0}, {1, 1}, 1}, 268435456},
      {"dcgan_d1", "conv2d", 64, 1, 64, 28, 28, 4, {{2, 2}, {1, 1}, {1, 1}, 1}, 25690112},
      {"dcgan_d2", "conv2d", 64, 64, 128, 14, 14, 4, {{2, 2}, {1, 1}, {1, 1}, 1}, 822083584},
  };
  return s;
}

// ---- FMA peak probe: the machine's own ceiling per SIMD target (docs/PERFORMANCE.md quotes GFLOP/s as a share
// of it). Independent FMA chains (12 ymm / 24 zmm accumulators, more than latency x throughput) on every
// thread; flops = 2 per lane per FMA.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) float fma_loop_avx2(int64_t iters) {
  __m256 a[12];
  for (int j = 0; j < 12; ++j) a[j] = _mm256_set1_ps(1e-3f * float(j));
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i)
#pragma GCC unroll 12
    for (int j = 0; j < 12; ++j) a[j] = _mm256_fmadd_ps(a[j], m, c);
  float out[8], s = 0.f;
  for (int j = 1; j < 12; ++j) a[0] = _mm256_add_ps(a[0], a[j]);
  _mm256_storeu_ps(out, a[0]);
  for (float v : out) s += v;
  return s;
}
__attribute__((target("avx512f,avx2,fma"))) float fma_loop_avx512(int64_t iters) {
  __m512 a[24];
  for (int j = 0; j < 24; ++j) a[j] = _mm512_set1_ps(1e-3f * float(j));
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i)
#pragma GCC unroll 24
    for (int j = 0; j < 24; ++j) a[j] = _mm512_fmadd_ps(a[j], m, c);
  for (int j = 1; j < 24; ++j) a[0] = _mm512_add_ps(a[0], a[j]);
  float lanes[16];  // not _mm512_reduce_add_ps: GCC 12's version of it trips -Wuninitialized in avx512fintrin.h
  _mm512_storeu_ps(lanes, a[0]);
  float sum = 0.f;
  for (float v : lanes) sum += v;
  return sum;
}
#endif

void fma_peak(benchmark::State& st, Isa isa, int threads) {
  constexpr int64_t kIters = 1 << 20;
  const double flops_per_thread = isa == Isa::avx512 ? 2.0 * 24 * 16 * kIters : 2.0 * 12 * 8 * kIters;
  set_num_threads(threads);
  float sink = 0.f;
  for (auto _ : st) {
#pragma omp parallel reduction(+ : sink)
    {
#if defined(__x86_64__) && defined(__GNUC__)
      sink += isa == Isa::avx512 ? fma_loop_avx512(kIters) : fma_loop_avx2(kIters);
#endif
    }
  }
  benchmark::DoNotOptimize(sink);
  st.counters["GFLOP/s"] =
      benchmark::Counter(flops_per_thread * threads * double(st.iterations()) / 1e9, benchmark::Counter::kIsRate);
}

Tensor rand(const Shape& s, uint64_t seed) {
  Tensor t = Tensor::empty(s);
  Rng rng(seed);
  fill_uniform(t, rng, -1.f, 1.f);
  return t;
}

void run(benchmark::State& st, const BenchShape& b, bool backward, int threads) {
  set_num_threads(threads);
  Tensor x = rand({b.N, b.C_in, b.H, b.W}, 1).set_requires_grad(backward);
  Tensor w = rand({b.C_out, b.C_in / b.a.groups, b.k, b.k}, 2).set_requires_grad(backward);
  Tensor bias = rand({b.C_out}, 3).set_requires_grad(backward);
  Tensor go;
  for (auto _ : st) {
    Tensor y = conv2d(x, w, bias, b.a);
    if (backward) {
      if (!go.defined()) go = rand(y.shape(), 4);
      y.backward(go);
    }
    benchmark::DoNotOptimize(y.data());
  }
  const double flops = b.flops_fwd * (backward ? 3.0 : 1.0);
  st.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// The hdc_step network of ../shared/bench/README.md: stem 3->32 + six 3x3 32->32 convs (dilations
// 1,2,5,1,2,5, padding = dilation), each BN + ReLU, 1x1 -> 11 classes; batch 16 x 3x64x64, per-pixel CE, Adam.
void hdc_step(benchmark::State& st, int threads) {
  set_num_threads(threads);
  nlohmann::json layers = nlohmann::json::array();
  auto cbr = [&](int d) {
    layers.push_back({{"type", "conv2d"}, {"out_channels", 32}, {"kernel_size", 3}, {"padding", d}, {"dilation", d}});
    layers.push_back({{"type", "batch_norm2d"}});
    layers.push_back({{"type", "relu"}});
  };
  cbr(1);
  for (int d : {1, 2, 5, 1, 2, 5}) cbr(d);
  layers.push_back({{"type", "conv2d"}, {"out_channels", 11}, {"kernel_size", 1}});
  Rng rng(0);
  auto model = build_layers(layers, {16, 3, 64, 64}, rng, "hdc_step");
  std::vector<ParamRef> ps;
  for (auto& [n, t] : model->named_parameters()) ps.push_back({n, t});
  Adam opt(ps, {.lr = 1e-3});
  Tensor x = rand({16, 3, 64, 64}, 1);
  std::vector<int32_t> labels(16 * 64 * 64);
  for (auto& l : labels) l = int32_t(rng.randint(11));
  for (auto _ : st) {
    opt.zero_grad();
    Tensor loss = cross_entropy(model->forward(x), labels);
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.data());
  }
  st.counters["img/s"] = benchmark::Counter(16, benchmark::Counter::kIsIterationInvariantRate);
}

// The dcgan_step networks of ../shared/bench/README.md (configs/dcgan_mnist.json, inlined so the benchmark needs
// no files): G z100 -> ConvT(128,7) -> ConvT(64,4,2,1) -> ConvT(1,4,2,1) + tanh, D the mirror; batch 64; one D
// step (real and detached fake batches, each its own BN statistics) and one non-saturating G step, Adam 2e-4,
// exactly the step of models/train/gan.cpp with random images in [-1, 1] in place of MNIST.
void dcgan_step(benchmark::State& st, int threads) {
  set_num_threads(threads);
  const nlohmann::json cfg = nlohmann::json::parse(R"({
    "task": "gan", "name": "dcgan_step", "seed": 0,
    "gan": {"latent_size": 100, "init": "dcgan", "image_channels": 1, "image_size": 28},
    "generator": {"layers": [
      {"type": "conv_transpose2d", "out_channels": 128, "kernel_size": 7, "bias": false},
      {"type": "batch_norm2d"}, {"type": "relu"},
      {"type": "conv_transpose2d", "out_channels": 64, "kernel_size": 4, "stride": 2, "padding": 1, "bias": false},
      {"type": "batch_norm2d"}, {"type": "relu"},
      {"type": "conv_transpose2d", "out_channels": 1, "kernel_size": 4, "stride": 2, "padding": 1, "bias": false},
      {"type": "tanh"}]},
    "discriminator": {"layers": [
      {"type": "conv2d", "out_channels": 64, "kernel_size": 4, "stride": 2, "padding": 1, "bias": false},
      {"type": "leaky_relu", "negative_slope": 0.2},
      {"type": "conv2d", "out_channels": 128, "kernel_size": 4, "stride": 2, "padding": 1, "bias": false},
      {"type": "batch_norm2d"}, {"type": "leaky_relu", "negative_slope": 0.2},
      {"type": "conv2d", "out_channels": 1, "kernel_size": 7, "bias": false}]},
    "optimizer": {"type": "adam", "lr": 0.0002, "betas": [0.5, 0.999]}})");
  GanTask t = make_gan_task(cfg, /*with_data=*/false);
  const int64_t B = 64;
  auto params = [](Module& m) {
    std::vector<ParamRef> ps;
    for (auto& [n, p] : m.named_parameters()) ps.push_back({n, p});
    return ps;
  };
  Adam og(params(*t.generator), {.lr = 2e-4, .beta1 = 0.5, .beta2 = 0.999});
  Adam od(params(*t.discriminator), {.lr = 2e-4, .beta1 = 0.5, .beta2 = 0.999});
  const Tensor real = rand(t.image_shape(B), 5), z = rand(t.z_shape(B), 6);
  const Tensor ones = Tensor::ones({B, 1}), zeros = Tensor::zeros({B, 1});
  auto logits = [&](const Tensor& x) { return reshape(t.discriminator->forward(x), {B, 1}); };
  t.generator->train();
  t.discriminator->train();
  for (auto _ : st) {
    const Tensor fake = t.generator->forward(z);
    od.zero_grad();
    Tensor lr = bce_with_logits(logits(real), ones);
    Tensor lf = bce_with_logits(logits(fake.detach()), zeros);
    lr.backward();
    lf.backward();
    od.step();
    og.zero_grad();
    Tensor lg = bce_with_logits(logits(fake), ones);
    lg.backward();
    og.step();
    benchmark::DoNotOptimize(lg.data());
  }
  st.counters["samples/s"] = benchmark::Counter(double(B), benchmark::Counter::kIsIterationInvariantRate);
}

int register_all() {
  for (Isa isa : {Isa::avx512, Isa::avx2})
    if (cpu_supports(isa))
      for (int t : {1, 2})
        benchmark::RegisterBenchmark(("fma_peak/" + std::string(isa_name(isa)) + "/threads:" + std::to_string(t)).c_str(),
                                     [isa, t](benchmark::State& st) { fma_peak(st, isa, t); })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->MinTime(0.5);
  for (int t : {1, 2})
    benchmark::RegisterBenchmark(("hdc_step/threads:" + std::to_string(t)).c_str(),
                                 [t](benchmark::State& st) { hdc_step(st, t); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(2.0);
  for (int t : {1, 2})
    benchmark::RegisterBenchmark(("dcgan_step/threads:" + std::to_string(t)).c_str(),
                                 [t](benchmark::State& st) { dcgan_step(st, t); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MinTime(2.0);
  for (const BenchShape& b : conv_shapes())
    for (int t : {1, 2})
      for (bool bwd : {false, true}) {
        const std::string name = b.op + (bwd ? "_fwdbwd/" : "_fwd/") + b.name + "/threads:" + std::to_string(t);
        benchmark::RegisterBenchmark(name.c_str(), [b, bwd, t](benchmark::State& st) { run(st, b, bwd, t); })
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->MinTime(0.3);
      }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  convlab::ensure_passive_wait(argc, argv);
  register_all();
  try {
    convlab::check_isa_env();
  } catch (const convlab::Error& e) {
    std::fprintf(stderr, "bench: %s\n", e.what());
    return 2;
  }
  benchmark::AddCustomContext("simd_target", convlab::isa_name(convlab::active_isa()));
  benchmark::AddCustomContext("simd_targets_available", convlab::available_isa_list());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::fprintf(stderr, "peak RSS: %.1f MiB\n", ru.ru_maxrss / 1024.0);
  // The tensors' own high-water mark (activations, gradients, workspaces): the rest of the RSS is code,
  // libraries and the allocator's free lists.
  std::fprintf(stderr, "peak tensor bytes: %.1f MiB\n", double(convlab::Storage::peak_bytes()) / (1 << 20));
  return 0;
}
