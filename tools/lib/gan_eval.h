// tools/lib/gan_eval.h: sample-quality scores that need no download, computed with convlab's own digit
// classifier (tools/lib/classify.h), and the checkerboard measure of the upsampling study.
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
//    (y mod 2, x mod 2) = (a, b)) divided by the pixel variance. ~0.0002 for real digits.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"

namespace convlab {

struct Classifier;

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
