// models/study/study_identities.cpp: `convlab identities`: identities of the conv family checked numerically
// on random (seeded) shapes, each with its max error and PASS/FAIL:
//   adjoint           <conv2d(x, w), y> = <x, conv_transpose2d(y, w)>  (conv_transpose2d is conv2d's adjoint)
//   transposed        conv_transpose2d(x, w) = conv2d(zero-stuffed, padded x, flipped and transposed w, dilation d)
//   dilated           conv2d(x, w, dilation d) = conv2d(x, w with d-1 zeros inserted between taps)
//   strided           conv2d(x, w, stride s) = conv2d(x, w, stride 1) sampled every s pixels
//   separable         depthwise_separable_conv2d = conv2d(groups = C_in) then a 1x1 conv2d
//   separable-dense   ... = one dense conv2d with weight W[o,i] = sum_m pw[o, i*M+m] dw[i*M+m] (rank-limited)
//   deform-zero       deform_conv2d with zero offsets (v1, and v2 with a mask of ones) = conv2d
//   avgpool           avg_pool2d (count_include_pad) = depthwise conv2d with a constant 1/k^2 kernel
// Errors are relative to the largest reference value (adjoint: to sum |x_i * (C^T y)_i|); float32 kernels
// summing in different orders agree to ~1e-6, so the threshold is 1e-4.
#include <algorithm>
#include <cmath>
#include <functional>

#include "core/error.h"
#include "core/random.h"
#include "models/study/study.h"

namespace convlab {

using nlohmann::json;

namespace {

constexpr double kTol = 1e-4;

Tensor rand_t(const Shape& s, Rng& rng) {
  Tensor t = Tensor::empty(s);
  fill_uniform(t, rng, -1.f, 1.f);
  return t;
}
int64_t pick(Rng& rng, int64_t lo, int64_t hi) { return lo + rng.randint(hi - lo + 1); }  // [lo, hi]

struct Err {
  double abs = 0, rel = 0;
  void add(const Tensor& got, const Tensor& want, const char* what) {
    CL_CHECK(got.shape() == want.shape(),
             "identities: " << what << ": shapes differ " << shape_str(got.shape()) << " vs " << shape_str(want.shape()));
    double e = 0, scale = 1e-12;
    for (int64_t i = 0; i < got.numel(); ++i) {
      e = std::max(e, std::fabs(double(got.data()[i]) - double(want.data()[i])));
      scale = std::max(scale, std::fabs(double(want.data()[i])));
    }
    abs = std::max(abs, e), rel = std::max(rel, e / scale);
  }
};

// A random conv2d setting whose dilated kernel fits the padded input.
struct ConvCase {
  int64_t N, Cin, Cout, G, k, H, W;
  Conv2dArgs a;
};
ConvCase random_conv(Rng& rng, bool groups) {
  ConvCase c;
  c.G = groups ? pick(rng, 1, 2) : 1;
  c.N = pick(rng, 1, 2), c.Cin = c.G * pick(rng, 1, 3), c.Cout = c.G * pick(rng, 1, 3), c.k = pick(rng, 1, 4);
  const int64_t s = pick(rng, 1, 3), d = pick(rng, 1, 3), p = pick(rng, 0, 2);
  c.a = Conv2dArgs{{s, s}, {p, p}, {d, d}, c.G};
  const int64_t ext = d * (c.k - 1) + 1;
  c.H = std::max<int64_t>(pick(rng, 4, 9), ext - 2 * p), c.W = std::max<int64_t>(pick(rng, 4, 9), ext - 2 * p);
  return c;
}

Err adjoint(Rng& rng, int64_t trials) {
  Err e;
  for (int64_t t = 0; t < trials; ++t) {
    const ConvCase c = random_conv(rng, true);
    const Tensor x = rand_t({c.N, c.Cin, c.H, c.W}, rng), w = rand_t({c.Cout, c.Cin / c.G, c.k, c.k}, rng);
    const Tensor cx = conv2d(x, w, Tensor(), c.a);
    const Tensor y = rand_t(cx.shape(), rng);
    const ConvDims d = conv2d_dims(x.shape(), w.shape(), nullptr, c.a);
    const Pair op = {d.H - ((d.H_out - 1) * d.sH - 2 * d.pH + d.dH * (d.kH - 1) + 1),
                     d.W - ((d.W_out - 1) * d.sW - 2 * d.pW + d.dW * (d.kW - 1) + 1)};
    const Tensor cty = conv_transpose2d(y, w, Tensor(), ConvTranspose2dArgs{c.a.stride, c.a.padding, op, c.a.dilation, c.G});
    double lhs = 0, rhs = 0, mag = 1e-12;
    for (int64_t i = 0; i < cx.numel(); ++i) lhs += double(cx.data()[i]) * y.data()[i];
    for (int64_t i = 0; i < x.numel(); ++i) rhs += double(x.data()[i]) * cty.data()[i], mag += std::fabs(double(x.data()[i]) * cty.data()[i]);
    e.abs = std::max(e.abs, std::fabs(lhs - rhs)), e.rel = std::max(e.rel, std::fabs(lhs - rhs) / mag);
  }
  return e;
}

Err transposed(Rng& rng, int64_t trials) {
  Err e;
  for (int64_t t = 0; t < trials; ++t) {
    const int64_t N = pick(rng, 1, 2), Cin = pick(rng, 1, 3), Cout = pick(rng, 1, 3), k = pick(rng, 1, 4);
    const int64_t s = pick(rng, 1, 3), d = pick(rng, 1, 2);
    const int64_t p = pick(rng, 0, d * (k - 1)), op = pick(rng, 0, std::max(s, d) - 1);  // p <= d(k-1): no crop
    const int64_t min_in = 1 + std::max<int64_t>(0, 2 * p - d * (k - 1) - op + s - 1) / s;  // output >= 1
    const int64_t H = std::max(pick(rng, 2, 6), min_in), W = std::max(pick(rng, 2, 6), min_in);
    const Tensor x = rand_t({N, Cin, H, W}, rng), w = rand_t({Cin, Cout, k, k}, rng);
    const Tensor want = conv_transpose2d(x, w, Tensor(), ConvTranspose2dArgs{{s, s}, {p, p}, {op, op}, {d, d}, 1});
    // Zero-stuff x (s-1 zeros between samples), pad d(k-1)-p on top/left and d(k-1)-p+op on bottom/right.
    const int64_t q = d * (k - 1) - p, Hz = (H - 1) * s + 1 + 2 * q + op, Wz = (W - 1) * s + 1 + 2 * q + op;
    Tensor z = Tensor::zeros({N, Cin, Hz, Wz});
    for (int64_t nc = 0; nc < N * Cin; ++nc)
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < W; ++j) z.data()[(nc * Hz + q + i * s) * Wz + q + j * s] = x.data()[(nc * H + i) * W + j];
    Tensor wf = Tensor::empty({Cout, Cin, k, k});  // wf[o, i, a, b] = w[i, o, k-1-a, k-1-b]
    for (int64_t o = 0; o < Cout; ++o)
      for (int64_t i = 0; i < Cin; ++i)
        for (int64_t a = 0; a < k; ++a)
          for (int64_t b = 0; b < k; ++b)
            wf.data()[((o * Cin + i) * k + a) * k + b] = w.data()[((i * Cout + o) * k + (k - 1 - a)) * k + (k - 1 - b)];
    e.add(conv2d(z, wf, Tensor(), Conv2dArgs{{1, 1}, {0, 0}, {d, d}, 1}), want, "transposed");
  }
  return e;
}

Err dilated(Rng& rng, int64_t trials) {
  Err e;
  for (int64_t t = 0; t < trials; ++t) {
    const ConvCase c = random_conv(rng, true);
    const Tensor x = rand_t({c.N, c.Cin, c.H, c.W}, rng), w = rand_t({c.Cout, c.Cin / c.G, c.k, c.k}, rng);
    const int64_t d = c.a.dilation[0], K = d * (c.k - 1) + 1;
    Tensor wz = Tensor::zeros({c.Cout, c.Cin / c.G, K, K});
    for (int64_t oc = 0; oc < c.Cout * (c.Cin / c.G); ++oc)
      for (int64_t a = 0; a < c.k; ++a)
        for (int64_t b = 0; b < c.k; ++b) wz.data()[(oc * K + a * d) * K + b * d] = w.data()[(oc * c.k + a) * c.k + b];
    Conv2dArgs plain = c.a;
    plain.dilation = {1, 1};
    e.add(conv2d(x, wz, Tensor(), plain), conv2d(x, w, Tensor(), c.a), "dilated");
  }
  return e;
}

Err strided(Rng& rng, int64_t trials) {
  Err e;
  for (int64_t t = 0; t < trials; ++t) {
    const ConvCase c = random_conv(rng, true);
    const Tensor x = rand_t({c.N, c.Cin, c.H, c.W}, rng), w = rand_t({c.Cout, c.Cin / c.G, c.k, c.k}, rng);
    Conv2dArgs one = c.a;
    one.stride = {1, 1};
    const Tensor dense = conv2d(x, w, Tensor(), one), want = conv2d(x, w, Tensor(), c.a);
    Tensor got = Tensor::empty(want.shape());
    const int64_t s = c.a.stride[0], Ho = want.size(2), Wo = want.size(3), Hd = dense.size(2), Wd = dense.size(3);
    for (int64_t nc = 0; nc < want.size(0) * want.size(1); ++nc)
      for (int64_t i = 0; i < Ho; ++i)
        for (int64_t j = 0; j < Wo; ++j) got.data()[(nc * Ho + i) * Wo + j] = dense.data()[(nc * Hd + i * s) * Wd + j * s];
    e.add(got, want, "strided");
  }
  return e;
}

// mode 0: depthwise + pointwise composition; mode 1: one dense conv with the factored weight.
Err separable(Rng& rng, int64_t trials, int mode) {
  Err e;
  for (int64_t t = 0; t < trials; ++t) {
    ConvCase c = random_conv(rng, false);
    const int64_t M = pick(rng, 1, 2), Cm = c.Cin * M;
    const Tensor x = rand_t({c.N, c.Cin, c.H, c.W}, rng), dw = rand_t({Cm, 1, c.k, c.k}, rng), db = rand_t({Cm}, rng);
    const Tensor pw = rand_t({c.Cout, Cm, 1, 1}, rng), pb = rand_t({c.Cout}, rng);
    const Tensor want = depthwise_separable_conv2d(x, dw, db, pw, pb, c.a);
    if (mode == 0) {
      Conv2dArgs dwa = c.a;
      dwa.groups = c.Cin;
      e.add(conv2d(conv2d(x, dw, db, dwa), pw, pb, {}), want, "separable");
      continue;
    }
    Tensor W = Tensor::zeros({c.Cout, c.Cin, c.k, c.k}), b = pb.clone();
    const int64_t kk = c.k * c.k;
    for (int64_t o = 0; o < c.Cout; ++o)
      for (int64_t m = 0; m < Cm; ++m) {  // mid channel m reads input channel m / M
        const float p = pw.data()[o * Cm + m];
        for (int64_t i = 0; i < kk; ++i) W.data()[(o * c.Cin + m / M) * kk + i] += p * dw.data()[m * kk + i];
        b.data()[o] += p * db.data()[m];
      }
    e.add(conv2d(x, W, b, c.a), want, "separable-dense");
  }
  return e;
}

Err deform_zero(Rng& rng, int64_t trials) {
  Err e;
  for (int64_t t = 0; t < trials; ++t) {
    const ConvCase c = random_conv(rng, true);
    const Tensor x = rand_t({c.N, c.Cin, c.H, c.W}, rng), w = rand_t({c.Cout, c.Cin / c.G, c.k, c.k}, rng);
    const Tensor b = rand_t({c.Cout}, rng);
    const Tensor want = conv2d(x, w, b, c.a);
    const int64_t OG = c.Cin % 2 == 0 ? pick(rng, 1, 2) : 1, T = c.k * c.k;
    const Tensor off = Tensor::zeros({c.N, 2 * OG * T, want.size(2), want.size(3)});
    const Tensor mask = Tensor::ones({c.N, OG * T, want.size(2), want.size(3)});
    DeformConv2dArgs a;
    a.stride = c.a.stride, a.padding = c.a.padding, a.dilation = c.a.dilation;
    e.add(deform_conv2d(x, off, w, b, Tensor(), a), want, "deform-zero v1");
    e.add(deform_conv2d(x, off, w, b, mask, a), want, "deform-zero v2");
  }
  return e;
}

Err avgpool(Rng& rng, int64_t trials) {
  Err e;
  for (int64_t t = 0; t < trials; ++t) {
    const int64_t N = pick(rng, 1, 2), C = pick(rng, 1, 3), k = pick(rng, 1, 4), s = pick(rng, 1, 3);
    const int64_t p = pick(rng, 0, k / 2), H = pick(rng, k, 9), W = pick(rng, k, 9);
    const Tensor x = rand_t({N, C, H, W}, rng);
    const Tensor want = avg_pool2d(x, AvgPool2dArgs{{k, k}, Pair{s, s}, {p, p}, false, true});
    const Tensor w = Tensor::full({C, 1, k, k}, 1.f / static_cast<float>(k * k));
    e.add(conv2d(x, w, Tensor(), Conv2dArgs{{s, s}, {p, p}, {1, 1}, C}), want, "avgpool");
  }
  return e;
}

}  // namespace

StudyResult identities_command(const IdentitiesCommand& c) {
  CL_CHECK(c.trials >= 1, "identities: --trials must be >= 1, got " << c.trials);
  struct Item {
    const char* name;
    const char* what;
    std::function<Err(Rng&, int64_t)> run;
  };
  const std::vector<Item> items = {
      {"adjoint", "<conv2d(x,w), y> = <x, conv_transpose2d(y,w)>", adjoint},
      {"transposed", "conv_transpose2d = conv2d(zero-stuffed x, flipped w^T, dilation d)", transposed},
      {"dilated", "conv2d(dilation d) = conv2d(kernel with zeros inserted)", dilated},
      {"strided", "conv2d(stride s) = conv2d(stride 1)[::s, ::s]", strided},
      {"separable", "separable = conv2d(groups=C_in) + 1x1 conv2d", [](Rng& r, int64_t n) { return separable(r, n, 0); }},
      {"separable-dense", "separable = dense conv2d with W = pw * dw", [](Rng& r, int64_t n) { return separable(r, n, 1); }},
      {"deform-zero", "deform_conv2d(offset 0, mask 1 or none) = conv2d", deform_zero},
      {"avgpool", "avg_pool2d = depthwise conv2d with 1/k^2 kernel", avgpool},
  };
  StudyResult r;
  r.json = {{"seed", c.seed}, {"trials", c.trials}, {"tolerance", kTol}, {"identities", json::array()}};
  std::vector<std::vector<std::string>> rows = {{"identity", "statement", "max abs err", "max rel err", ""}};
  int failed = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    Rng rng(c.seed * 1000 + i);  // one stream per identity: each is reproducible on its own
    const Err e = items[i].run(rng, c.trials);
    const bool pass = e.rel <= kTol;
    failed += !pass;
    r.json["identities"].push_back({{"name", items[i].name}, {"statement", items[i].what}, {"max_abs_error", e.abs},
                                    {"max_rel_error", e.rel}, {"pass", pass}});
    rows.push_back({items[i].name, items[i].what, fmt(e.abs, 3), fmt(e.rel, 3), pass ? "PASS" : "FAIL"});
  }
  r.ok = failed == 0;
  r.json["all_pass"] = r.ok;
  r.text = "conv-family identities on " + std::to_string(c.trials) + " random shapes each (seed " + std::to_string(c.seed) +
           ", tolerance " + fmt(kTol) + " relative)\n" + format_table(rows) +
           (r.ok ? "all pass\n" : std::to_string(failed) + " failed\n");
  return r;
}

}  // namespace convlab
