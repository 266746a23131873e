// models/eval/gan_eval.h: sample-quality scores that need no download, computed with convlab's own digit
// classifier (models/train/classifier.h), and the checkerboard measure of the upsampling study.
//
//  - Inception Score (Salimans et al. 2016) with the digit classifier in place of Inception:
//    IS = exp(E_x KL(p(y|x) || p(y))), p(y) the mean of p(y|x) over the samples. 1 (every sample the same
//    class distribution) .. 10 (confident and all classes equally often).
//  - Frechet distance (Heusel et al. 2017) between Gaussians fitted to the classifier's penultimate features
//    (fc128 after ReLU) of the samples and of MNIST's train split:
//    FD = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)). tr (S1 S2)^(1/2) = tr (S1^(1/2) S2 S1^(1/2))^(1/2), whose
//    matrix is symmetric positive semi-definite, so both square roots come from a symmetric eigen-solver
//    (cyclic Jacobi, in double precision: our own, Eigen is the GEMM engine only).
//  - Checkerboard strength: the variance of the four 2x2 phase means (mean over images of the pixels with
//    (y mod 2, x mod 2) = (a, b)) divided by the pixel variance, pooled over all images (~1e-7 for real
//    digits); checkerboard_stats() adds the per-image (the pilot's, ~0.0002 for real digits) and spectral views.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"

namespace convlab {

struct Classifier;
struct GanTask;

// probs: [n, classes] row-major.
double inception_score(const std::vector<double>& probs, int64_t classes);

struct Gaussian {
  int64_t dim = 0;
  std::vector<double> mean, cov;  // [dim], [dim, dim] (unbiased, n - 1)
};
Gaussian fit_gaussian(const std::vector<double>& feats, int64_t dim);
double frechet_distance(const Gaussian& a, const Gaussian& b);

// Eigen-decomposition of the symmetric matrix a [n, n] (row-major) by cyclic Jacobi rotations:
// eigenvalues in `values`, eigenvectors as the COLUMNS of `vectors` ([n, n]). Off-diagonal mass is driven
// below 1e-22 of the total (or 100 sweeps). Throws when `a` is not symmetric.
void symmetric_eigen(const std::vector<double>& a, int64_t n, std::vector<double>& values, std::vector<double>& vectors);
// The symmetric positive semi-definite square root (negative eigenvalues from rounding are clamped to 0).
std::vector<double> sqrt_psd(const std::vector<double>& a, int64_t n);

double checkerboard_strength(const Tensor& images);  // [N, C, H, W], H and W even

// The stride-periodic pattern of images [N, C, H, W] (H, W multiples of the period s), three ways. The
// phase means of a plane (one image, one channel) are the means of its pixels with (y mod s, x mod s) =
// (a, b); their variance (over the s*s phases) measures the period-s pattern, the plane's pixel variance
// everything. Variances are population variances (divide by the count).
//  - global: phase means and pixel variance pooled over all planes (checkerboard_strength for s = 2). A
//    pattern that differs between samples averages out of the pooled means: real digits give ~1e-7.
//  - per_image: the mean over planes of var(phase means of the plane) / var(plane) (a flat plane counts
//    0). The pilot's measure (real MNIST digits 0.00017, the pilot's 0.00018).
//  - spectral: the share of the planes' non-DC Fourier energy at the alias frequencies
//    (2 pi a / s, 2 pi b / s), (a, b) != (0, 0): sum over planes of sum |X(a H/s, b W/s)|^2 over
//    sum of sum_{(u,v) != 0} |X(u, v)|^2. By Parseval on the s x s phase grid each plane's share equals
//    its per_image ratio exactly, so this is the energy-weighted mean of the per_image ratios.
// Pure period-s patterns give 1, flat or s x s block-constant images 0. Serial, double precision.
struct CheckerboardStats {
  int64_t period = 2, planes = 0;
  double global = 0, per_image = 0, spectral = 0;
};
CheckerboardStats checkerboard_stats(const Tensor& images, int64_t period = 2);
// checkerboard_stats of n samples of a generator, latents from Rng(seed), drawn in batches of
// train.batch_size (with batch_stats, BN uses each batch's statistics, as in training).
CheckerboardStats generator_checkerboard(GanTask& t, int64_t n, uint64_t seed, bool batch_stats, int64_t period = 2);

struct GanEvalOptions {
  std::string classifier;  // model.safetensors of a classification run
  std::string checkpoint;  // generator.safetensors (empty: no generator row unless config is set)
  std::string config;      // a GAN config: its freshly initialised generator (the "at init" row)
  std::vector<std::string> sets;
  int64_t n = 10000;
  uint64_t seed = 1;
  std::string bn;          // "", "eval" or "batch": overrides the config's gan.sample_bn
  bool references = true;  // also score held-out real digits (ceiling) and uniform noise (floor)
};

// Rows {"source", "n", "inception_score", "frechet_distance", "checkerboard"} for the generator, held-out real
// digits and uniform noise.
nlohmann::json gan_eval(const GanEvalOptions& o);

}  // namespace convlab
