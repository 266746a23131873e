// models/eval/gan_eval.cpp: classifier-based Inception Score, Frechet distance (with a Jacobi eigen-solver for
// the matrix square roots) and the checkerboard measure. Everything is serial and in double precision, so
// the figures do not depend on the thread count.
#include "models/eval/gan_eval.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"
#include "core/random.h"
#include "data/mnist.h"
#include "models/config.h"
#include "models/gan_task.h"
#include "models/train/classifier.h"

namespace convlab {

using nlohmann::json;

double inception_score(const std::vector<double>& probs, int64_t classes) {
  const int64_t n = int64_t(probs.size()) / classes;
  CL_CHECK(n > 0, "inception_score: no samples");
  std::vector<double> py(size_t(classes), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < classes; ++k) py[k] += probs[i * classes + k] / double(n);
  // KL(p(y|x) || p(y)) = sum_k p_k (log p_k - log py_k); terms with p_k = 0 contribute 0.
  double kl = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < classes; ++k) {
      const double p = probs[i * classes + k];
      if (p > 0) kl += p * (std::log(p) - std::log(py[k]));
    }
  return std::exp(kl / double(n));
}

Gaussian fit_gaussian(const std::vector<double>& f, int64_t dim) {
  // dim^2 doubles and an O(dim^3) eigen-solve: the classifier's feature layer must be a feature vector.
  CL_CHECK(dim >= 1 && dim <= 4096, "frechet_distance: " << dim << " features per image; at most 4096 are supported");
  const int64_t n = int64_t(f.size()) / dim;
  CL_CHECK(n >= 2, "frechet_distance: needs at least 2 samples, got " << n);
  Gaussian g;
  g.dim = dim;
  g.mean.assign(size_t(dim), 0.0);
  g.cov.assign(size_t(dim * dim), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t a = 0; a < dim; ++a) g.mean[a] += f[i * dim + a];
  for (double& m : g.mean) m /= double(n);
  std::vector<double> c(static_cast<size_t>(dim));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t a = 0; a < dim; ++a) c[a] = f[i * dim + a] - g.mean[a];
    for (int64_t a = 0; a < dim; ++a) {
      if (c[a] == 0) continue;  // ReLU features are often exactly 0 (then the row adds nothing)
      double* row = g.cov.data() + a * dim;
      for (int64_t b = a; b < dim; ++b) row[b] += c[a] * c[b];
    }
  }
  for (int64_t a = 0; a < dim; ++a)
    for (int64_t b = a; b < dim; ++b) {
      const double v = g.cov[a * dim + b] / double(n - 1);
      g.cov[a * dim + b] = g.cov[b * dim + a] = v;
    }
  return g;
}

void symmetric_eigen(const std::vector<double>& a_in, int64_t n, std::vector<double>& values,
                     std::vector<double>& vectors) {
  CL_CHECK(int64_t(a_in.size()) == n * n, "symmetric_eigen: expected " << n * n << " values, got " << a_in.size());
  std::vector<double> a = a_in;
  double total = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      total += a[i * n + j] * a[i * n + j];
      CL_CHECK(std::fabs(a[i * n + j] - a[j * n + i]) <= 1e-9 * (1 + std::fabs(a[i * n + j])),
               "symmetric_eigen: the matrix is not symmetric at (" << i << "," << j << ")");
    }
  vectors.assign(size_t(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) vectors[i * n + i] = 1.0;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j)
        if (i != j) off += a[i * n + j] * a[i * n + j];
    if (off <= 1e-22 * total || off == 0) break;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) {
        const double apq = a[p * n + q];
        if (apq == 0) continue;
        // Rotation P (P_pp = P_qq = c, P_pq = s, P_qp = -s) with A' = P^T A P zeroing A'_pq: t = tan(phi) is
        // the smaller root of t^2 + 2 t theta - 1 = 0, theta = (a_qq - a_pp) / (2 a_pq) (stable for large theta).
        const double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int64_t k = 0; k < n; ++k) {  // columns p, q of A P
          const double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (int64_t k = 0; k < n; ++k) {  // rows p, q of P^T (A P)
          const double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (int64_t k = 0; k < n; ++k) {  // V P
          const double vkp = vectors[k * n + p], vkq = vectors[k * n + q];
          vectors[k * n + p] = c * vkp - s * vkq;
          vectors[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  values.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) values[i] = a[i * n + i];
}

std::vector<double> sqrt_psd(const std::vector<double>& a, int64_t n) {
  std::vector<double> w, v;
  symmetric_eigen(a, n, w, v);
  std::vector<double> out(size_t(n * n), 0.0);
  for (int64_t k = 0; k < n; ++k) {  // V diag(sqrt(w)) V^T
    const double r = std::sqrt(std::max(w[k], 0.0));
    if (r == 0) continue;
    for (int64_t i = 0; i < n; ++i) {
      const double vi = v[i * n + k] * r;
      for (int64_t j = 0; j < n; ++j) out[i * n + j] += vi * v[j * n + k];
    }
  }
  return out;
}

double frechet_distance(const Gaussian& x, const Gaussian& y) {
  CL_CHECK(x.dim == y.dim, "frechet_distance: feature sizes " << x.dim << " and " << y.dim << " differ");
  const int64_t n = x.dim;
  double d2 = 0, tr = 0;
  for (int64_t i = 0; i < n; ++i) d2 += (x.mean[i] - y.mean[i]) * (x.mean[i] - y.mean[i]);
  for (int64_t i = 0; i < n; ++i) tr += x.cov[i * n + i] + y.cov[i * n + i];
  // tr (S1 S2)^(1/2) = tr (R S2 R)^(1/2) with R = S1^(1/2): R S2 R is symmetric PSD, its eigenvalues are those of S1 S2.
  const std::vector<double> r = sqrt_psd(x.cov, n);
  std::vector<double> rs(size_t(n * n), 0.0), m(size_t(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < n; ++k)
      for (int64_t j = 0; j < n; ++j) rs[i * n + j] += r[i * n + k] * y.cov[k * n + j];
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < n; ++k)
      for (int64_t j = 0; j < n; ++j) m[i * n + j] += rs[i * n + k] * r[k * n + j];
  for (int64_t i = 0; i < n; ++i)  // symmetrise away rounding
    for (int64_t j = i + 1; j < n; ++j) m[i * n + j] = m[j * n + i] = 0.5 * (m[i * n + j] + m[j * n + i]);
  std::vector<double> w, v;
  symmetric_eigen(m, n, w, v);
  double tr_sqrt = 0;
  for (double e : w) tr_sqrt += std::sqrt(std::max(e, 0.0));
  return d2 + tr - 2 * tr_sqrt;
}

double checkerboard_strength(const Tensor& images) {
  CL_CHECK(images.dim() == 4 && images.size(2) % 2 == 0 && images.size(3) % 2 == 0,
           "checkerboard_strength: expected images [N, C, H, W] with even H and W, got " << shape_str(images.shape()));
  const int64_t P = images.size(0) * images.size(1), H = images.size(2), W = images.size(3);
  const float* x = images.data();
  double phase[4] = {0, 0, 0, 0}, sum = 0, sq = 0;
  for (int64_t p = 0; p < P; ++p)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t xx = 0; xx < W; ++xx) {
        const double v = x[(p * H + y) * W + xx];
        phase[(y % 2) * 2 + xx % 2] += v;
        sum += v;
        sq += v * v;
      }
  const double cnt = double(P * H * W), mean = sum / cnt, var = sq / cnt - mean * mean;
  double pv = 0;
  for (double& m : phase) m /= cnt / 4;
  for (double m : phase) pv += (m - mean) * (m - mean) / 4;
  return var > 0 ? pv / var : 0.0;
}

CheckerboardStats checkerboard_stats(const Tensor& images, int64_t s) {
  CL_CHECK(s >= 1, "checkerboard_stats: the period must be >= 1, got " << s);
  CL_CHECK(images.dim() == 4 && images.numel() > 0 && images.size(2) % s == 0 && images.size(3) % s == 0,
           "checkerboard_stats: expected images [N, C, H, W] with H and W multiples of the period " << s << ", got "
                                                                                              << shape_str(images.shape()));
  const int64_t P = images.size(0) * images.size(1), H = images.size(2), W = images.size(3), S2 = s * s;
  const double n = double(H * W), per_phase = n / double(S2);
  // Twiddles of the s-point DFT: the alias frequency (2 pi a/s, 2 pi b/s) of pixel (y, x) only depends on
  // (y mod s, x mod s), so X(aH/s, bW/s) = sum over phases (p, q) of the phase sums times e^{-2 pi i (ap + bq)/s}.
  std::vector<double> cs(static_cast<size_t>(s)), sn(static_cast<size_t>(s));
  for (int64_t k = 0; k < s; ++k) {
    const double ang = 2 * std::numbers::pi * double(k) / double(s);
    cs[size_t(k)] = std::cos(ang), sn[size_t(k)] = -std::sin(ang);
  }
  std::vector<double> phase(static_cast<size_t>(S2)), gphase(static_cast<size_t>(S2), 0.0), means(static_cast<size_t>(P));
  double ss_total = 0, per_image = 0, alias_total = 0;
  for (int64_t pl = 0; pl < P; ++pl) {
    const float* x = images.data() + pl * H * W;
    std::fill(phase.begin(), phase.end(), 0.0);
    double sum = 0;
    float lo = x[0], hi = x[0];
    for (int64_t y = 0; y < H; ++y)
      for (int64_t xx = 0; xx < W; ++xx) {
        const float v = x[y * W + xx];
        phase[size_t((y % s) * s + xx % s)] += v;
        sum += v, lo = std::min(lo, v), hi = std::max(hi, v);
      }
    const double mean = sum / n;
    double ss = 0;  // second pass: sum of squared deviations (no cancellation)
    for (int64_t i = 0; i < H * W; ++i) ss += (x[i] - mean) * (x[i] - mean);
    double var_m = 0;
    for (int64_t k = 0; k < S2; ++k) {
      gphase[size_t(k)] += phase[size_t(k)];
      var_m += (phase[size_t(k)] / per_phase - mean) * (phase[size_t(k)] / per_phase - mean) / double(S2);
    }
    if (hi > lo) per_image += var_m / (ss / n);  // a flat plane (every pixel equal) counts 0
    double alias = 0;
    for (int64_t a = 0; a < s; ++a)
      for (int64_t b = 0; b < s; ++b) {
        if (a == 0 && b == 0) continue;
        double re = 0, im = 0;
        for (int64_t p = 0; p < s; ++p)
          for (int64_t q = 0; q < s; ++q) {
            const size_t k = size_t((a * p + b * q) % s);
            re += phase[size_t(p * s + q)] * cs[k], im += phase[size_t(p * s + q)] * sn[k];
          }
        alias += re * re + im * im;
      }
    alias_total += alias;
    ss_total += ss;
    means[size_t(pl)] = mean;
  }
  CheckerboardStats r;
  r.period = s, r.planes = P;
  r.per_image = per_image / double(P);
  // Parseval: the non-DC energy sum_{(u,v) != 0} |X|^2 of a plane is n * ss.
  r.spectral = ss_total > 0 ? alias_total / (n * ss_total) : 0.0;
  double gsum = 0;
  for (double m : means) gsum += m;
  const double gmean = gsum / double(P);
  double between = 0, var_gm = 0;
  for (double m : means) between += (m - gmean) * (m - gmean);
  const double gvar = (ss_total + n * between) / (n * double(P));
  for (double g : gphase) var_gm += (g / (per_phase * double(P)) - gmean) * (g / (per_phase * double(P)) - gmean) / double(S2);
  r.global = gvar > 0 ? var_gm / gvar : 0.0;
  return r;
}

CheckerboardStats generator_checkerboard(GanTask& t, int64_t n, uint64_t seed, bool batch_stats, int64_t period) {
  CL_CHECK(n >= 1, "generator_checkerboard: n must be >= 1, got " << n);
  const bool saved = t.sample_batch_stats;
  t.sample_batch_stats = batch_stats;
  Rng rng(seed);
  std::vector<float> all;
  for (int64_t s = 0; s < n; s += t.train.batch_size) {
    const Tensor img = generate(t, sample_latent(t, std::min(t.train.batch_size, n - s), rng));
    all.insert(all.end(), img.data(), img.data() + img.numel());
  }
  t.sample_batch_stats = saved;
  return checkerboard_stats(Tensor::from(t.image_shape(n), all), period);
}

namespace {

json score(Classifier& c, const Gaussian& ref, const Tensor& images, const std::string& source) {
  std::vector<double> probs, feats;
  classify(c, images, probs, feats);
  // Which digit each sample is (the classifier's argmax) and how sure it is: IS mixes both (a skewed class
  // mix and unsure samples each pull it down), these two tell them apart.
  const int64_t n = images.size(0), K = c.classes;
  std::vector<double> shares(size_t(K), 0.0);
  double confidence = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double* p = probs.data() + i * K;
    const int64_t k = std::max_element(p, p + K) - p;
    shares[size_t(k)] += 1.0 / double(n);
    confidence += p[k] / double(n);
  }
  return {{"source", source},
          {"n", n},
          {"inception_score", inception_score(probs, K)},
          {"frechet_distance", frechet_distance(fit_gaussian(feats, c.features), ref)},
          {"checkerboard", checkerboard_strength(images)},
          {"class_shares", shares},
          {"mean_confidence", confidence}};
}

}  // namespace

json gan_eval(const GanEvalOptions& o) {
  CL_CHECK(o.n >= 2, "gan-eval: -n must be at least 2, got " << o.n);
  CL_CHECK(!o.checkpoint.empty() || !o.config.empty() || o.references,
           "gan-eval: nothing to score (give --checkpoint or --config)");
  Classifier c = load_classifier(o.classifier);
  const json& cd = c.config;  // from the classifier checkpoint: a file, so its types are checked
  const bool has_dir = cd.contains("data") && cd["data"].is_object() && cd["data"].contains("mnist_dir");
  CL_CHECK(!has_dir || cd["data"]["mnist_dir"].is_string(),
           "gan-eval: classifier " << o.classifier << ": data.mnist_dir in its config is not a string");
  const std::string dir = has_dir ? cd["data"]["mnist_dir"].get<std::string>() : default_mnist_dir();
  const Mnist m = load_mnist(dir);
  // Reference statistics: the classifier's features of MNIST's whole train split (what the GAN learns from).
  std::vector<double> rp, rf;
  classify(c, mnist_images(m, mnist_indices(m, MnistSplit::kTrain)), rp, rf);
  const Gaussian ref = fit_gaussian(rf, c.features);
  json rows = json::array();
  if (!o.checkpoint.empty() || !o.config.empty()) {
    GanTask t = !o.checkpoint.empty() ? load_generator(o.checkpoint) : make_gan_task(load_config(o.config, o.sets), false);
    if (!o.bn.empty()) t.sample_batch_stats = o.bn == "batch";
    CL_CHECK(t.channels == 1 && t.image_size == Mnist::kSide,  // before drawing -n samples, not after
             "gan-eval: the generator makes " << shape_str(t.image_shape(1)) << " images, the classifier takes [1,1,28,28]");
    Rng rng(o.seed);
    std::vector<float> all;
    const int64_t chunk = 500;
    for (int64_t s = 0; s < o.n; s += chunk) {
      const Tensor img = generate(t, sample_latent(t, std::min(chunk, o.n - s), rng));
      all.insert(all.end(), img.data(), img.data() + img.numel());
    }
    const Tensor images = Tensor::from(t.image_shape(o.n), all);
    json r = score(c, ref, images, o.checkpoint.empty() ? "generator at init (" + o.config + ")" : o.checkpoint);
    r["sample_bn"] = t.sample_batch_stats ? "batch" : "eval";
    rows.push_back(r);
  }
  if (o.references) {
    const auto test = mnist_indices(m, MnistSplit::kTest);
    rows.push_back(score(c, ref, mnist_images(m, test), "held-out real digits (ceiling)"));
    Tensor noise = Tensor::empty({std::min<int64_t>(o.n, 10000), 1, Mnist::kSide, Mnist::kSide});
    Rng nr(o.seed ^ 0x4015Eull);
    fill_uniform(noise, nr, -1.f, 1.f);
    rows.push_back(score(c, ref, noise, "uniform noise (floor)"));
  }
  return {{"classifier", o.classifier}, {"reference", "features of MNIST's train split (8,004 digits)"}, {"rows", rows}};
}

}  // namespace convlab
