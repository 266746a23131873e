// core/random.h: the framework's own seeded generator (splitmix64-seeded xoshiro256**), identical on every
// platform and thread count, and the standard initialisers. uniform() is in [lo, hi) with 24-bit resolution.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace convlab {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }
  void reseed(uint64_t seed);
  uint64_t next_u64();
  float uniform(float lo = 0.f, float hi = 1.f);  // [lo, hi)
  float normal(float mean = 0.f, float std = 1.f);
  int64_t randint(int64_t n);  // [0, n)
  // The full state, for checkpoints that resume bit-identically.
  uint64_t state[4] = {0, 0, 0, 0};
};

// Fill in place.
void fill_uniform(Tensor& t, Rng& rng, float lo, float hi);
void fill_normal(Tensor& t, Rng& rng, float mean, float std);
// fan_in / fan_out of a weight as PyTorch computes them: dim 1 (dim 0) times the receptive field size.
int64_t fan_in(const Shape& weight_shape);
int64_t fan_out(const Shape& weight_shape);
// PyTorch's defaults: Conv/Linear weights kaiming_uniform_(a=sqrt(5)) i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
void kaiming_uniform(Tensor& w, Rng& rng, float a = 0.f);
void kaiming_normal(Tensor& w, Rng& rng, float a = 0.f);
void xavier_uniform(Tensor& w, Rng& rng, float gain = 1.f);
void xavier_normal(Tensor& w, Rng& rng, float gain = 1.f);

}  // namespace convlab
