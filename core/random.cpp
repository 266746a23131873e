// core/random.cpp: xoshiro256** and the initialisers.
#include "core/random.h"

#include <cmath>

#include "core/error.h"

namespace convlab {
namespace {
uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
}  // namespace

void Rng::reseed(uint64_t seed) {
  uint64_t x = seed;
  for (auto& s : state) s = splitmix64(x);
}

uint64_t Rng::next_u64() {
  const uint64_t result = rotl(state[1] * 5, 7) * 9;
  const uint64_t t = state[1] << 17;
  state[2] ^= state[0];
  state[3] ^= state[1];
  state[1] ^= state[2];
  state[0] ^= state[3];
  state[2] ^= t;
  state[3] = rotl(state[3], 45);
  return result;
}

float Rng::uniform(float lo, float hi) {
  const float u = static_cast<float>(next_u64() >> 40) * (1.0f / 16777216.0f);  // [0, 1)
  return lo + (hi - lo) * u;
}

float Rng::normal(float mean, float std) {
  // Box-Muller on doubles; u1 in (0, 1] so log() is finite.
  const double u1 = (static_cast<double>(next_u64() >> 11) + 1.0) * (1.0 / 9007199254740992.0);
  const double u2 = static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0);
  const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  return mean + std * static_cast<float>(z);
}

int64_t Rng::randint(int64_t n) {
  CL_CHECK(n > 0, "randint: n must be positive, got " << n);
  return static_cast<int64_t>(next_u64() % static_cast<uint64_t>(n));
}

void fill_uniform(Tensor& t, Rng& rng, float lo, float hi) {
  float* p = t.data();
  for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = rng.uniform(lo, hi);
}

void fill_normal(Tensor& t, Rng& rng, float mean, float std) {
  float* p = t.data();
  for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = rng.normal(mean, std);
}

int64_t fan_in(const Shape& s) {
  CL_CHECK(s.size() >= 2, "fan_in: weight must have at least 2 dimensions, got " << shape_str(s));
  int64_t rf = 1;
  for (size_t i = 2; i < s.size(); ++i) rf *= s[i];
  return s[1] * rf;
}

int64_t fan_out(const Shape& s) {
  CL_CHECK(s.size() >= 2, "fan_out: weight must have at least 2 dimensions, got " << shape_str(s));
  int64_t rf = 1;
  for (size_t i = 2; i < s.size(); ++i) rf *= s[i];
  return s[0] * rf;
}

void kaiming_uniform(Tensor& w, Rng& rng, float a) {
  const float gain = std::sqrt(2.f / (1.f + a * a));
  const float bound = gain * std::sqrt(3.f / static_cast<float>(fan_in(w.shape())));
  fill_uniform(w, rng, -bound, bound);
}

void kaiming_normal(Tensor& w, Rng& rng, float a) {
  const float gain = std::sqrt(2.f / (1.f + a * a));
  fill_normal(w, rng, 0.f, gain / std::sqrt(static_cast<float>(fan_in(w.shape()))));
}

void xavier_uniform(Tensor& w, Rng& rng, float gain) {
  const float bound =
      gain * std::sqrt(6.f / static_cast<float>(fan_in(w.shape()) + fan_out(w.shape())));
  fill_uniform(w, rng, -bound, bound);
}

void xavier_normal(Tensor& w, Rng& rng, float gain) {
  fill_normal(w, rng, 0.f,
              gain * std::sqrt(2.f / static_cast<float>(fan_in(w.shape()) + fan_out(w.shape()))));
}

}  // namespace convlab
