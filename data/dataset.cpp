// data/dataset.cpp: see dataset.h.
#include "data/dataset.h"

#include "core/error.h"

namespace convlab {

const char* bucket_name(int32_t bucket) {
  switch (bucket) {
    case kBucketBackground: return "background";
    case kBucketSmall: return "small";
    case kBucketMedium: return "medium";
    case kBucketLarge: return "large";
    case kBucketThin: return "thin";
    default: return "?";
  }
}

uint64_t sample_seed(uint64_t seed, int64_t i) {
  // Two rounds of the splitmix64 finaliser: seed and index enter separately, so (s, i) and (s + 1, i - 1)
  // do not collide the way seed + i would.
  auto mix = [](uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  return mix(mix(seed) ^ static_cast<uint64_t>(i));
}

namespace {
std::vector<double> shares(const SegDataset& ds, int64_t n, bool buckets) {
  CL_CHECK(n > 0 && n <= ds.size(), "pixel shares: n must be in [1, " << ds.size() << "], got " << n);
  const int64_t k = buckets ? kNumBuckets : ds.num_classes();
  std::vector<int64_t> count(k, 0);
  int64_t total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const SegSample s = ds.get(i);
    for (int32_t v : buckets ? s.bucket : s.label) {
      CL_CHECK(v >= 0 && v < k, "pixel shares: sample " << i << " has id " << v << " outside [0, " << k << ")");
      ++count[v];
    }
    total += s.H * s.W;
  }
  std::vector<double> out(k);
  for (int64_t c = 0; c < k; ++c) out[c] = static_cast<double>(count[c]) / static_cast<double>(total);
  return out;
}
}  // namespace

std::vector<double> class_pixel_shares(const SegDataset& ds, int64_t n) { return shares(ds, n, false); }
std::vector<double> bucket_pixel_shares(const SegDataset& ds, int64_t n) { return shares(ds, n, true); }

}  // namespace convlab
