// data/batch.cpp: see batch.h.
#include "data/batch.h"

#include <exception>
#include <numeric>
#include <string>

#include "core/error.h"

namespace convlab {

SegBatch make_batch(const SegDataset& ds, const std::vector<int64_t>& indices, const Augment& aug, Rng& rng) {
  CL_CHECK(!indices.empty(), "make_batch: no indices");
  CL_CHECK(aug.crop >= 0, "make_batch: crop must be >= 0, got " << aug.crop);
  SegBatch b;
  b.B = static_cast<int64_t>(indices.size());
  // Samples are generated in parallel (get() is a pure const function), then checked, augmented and
  // copied in index order, so the Rng draws and the result do not depend on the thread count. An
  // exception inside the parallel loop is carried out as text; the lowest failing index is reported.
  std::vector<SegSample> samples(b.B);
  std::vector<std::string> errors(b.B);
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t n = 0; n < b.B; ++n) {
    try {
      samples[n] = ds.get(indices[n]);
    } catch (const std::exception& e) {
      errors[n] = e.what();
    }
  }
  for (int64_t n = 0; n < b.B; ++n) CL_CHECK(errors[n].empty(), errors[n]);
  for (int64_t n = 0; n < b.B; ++n) {
    const SegSample& s = samples[n];
    CL_CHECK(s.image.shape() == Shape({3, s.H, s.W}) && static_cast<int64_t>(s.label.size()) == s.H * s.W &&
                 static_cast<int64_t>(s.bucket.size()) == s.H * s.W,
             "make_batch: sample " << indices[n] << " is inconsistent: image " << shape_str(s.image.shape())
                                   << ", " << s.label.size() << " labels for " << s.H << "x" << s.W);
    // Without a crop every sample must have the first one's size; with a crop, any size >= crop.
    CL_CHECK(aug.crop > 0 ? (s.H >= aug.crop && s.W >= aug.crop) : (n == 0 || (s.H == b.H && s.W == b.W)),
             "make_batch: sample " << indices[n] << " is " << s.H << "x" << s.W << ", "
                                   << (aug.crop > 0 ? "smaller than the crop " : "the batch is ")
                                   << (aug.crop > 0 ? aug.crop : b.H) << "x" << (aug.crop > 0 ? aug.crop : b.W));
    if (n == 0) {
      b.H = aug.crop > 0 ? aug.crop : s.H;
      b.W = aug.crop > 0 ? aug.crop : s.W;
      b.images = Tensor::empty({b.B, 3, b.H, b.W});
      b.labels.resize(b.B * b.H * b.W);
      b.buckets.resize(b.B * b.H * b.W);
    }
    const bool hf = aug.hflip && rng.uniform() < 0.5f;
    const bool vf = aug.vflip && rng.uniform() < 0.5f;
    const int64_t top = aug.crop > 0 ? rng.randint(s.H - aug.crop + 1) : 0;
    const int64_t left = aug.crop > 0 ? rng.randint(s.W - aug.crop + 1) : 0;
    // Output pixel (y, x) reads source pixel (sy, sx): crop first, then flip within the crop window.
    const float* src = s.image.data();
    float* dst = b.images.data() + n * 3 * b.H * b.W;
    int32_t* lab = b.labels.data() + n * b.H * b.W;
    int32_t* bkt = b.buckets.data() + n * b.H * b.W;
    for (int64_t y = 0; y < b.H; ++y) {
      const int64_t sy = top + (vf ? b.H - 1 - y : y);
      for (int64_t x = 0; x < b.W; ++x) {
        const int64_t sx = left + (hf ? b.W - 1 - x : x);
        const int64_t si = sy * s.W + sx, di = y * b.W + x;
        for (int64_t c = 0; c < 3; ++c) dst[c * b.H * b.W + di] = src[c * s.H * s.W + si];
        lab[di] = s.label[si];
        bkt[di] = s.bucket[si];
      }
    }
  }
  return b;
}

SegBatch make_batch(const SegDataset& ds, const std::vector<int64_t>& indices) {
  Rng unused(0);
  return make_batch(ds, indices, Augment{}, unused);
}

EpochOrder::EpochOrder(int64_t n, uint64_t seed) : n_(n), seed_(seed) {
  CL_CHECK(n >= 1, "EpochOrder: dataset size must be >= 1, got " << n);
}

std::vector<int64_t> EpochOrder::permutation(int64_t epoch) const {
  CL_CHECK(epoch >= 0, "EpochOrder: epoch must be >= 0, got " << epoch);
  std::vector<int64_t> p(n_);
  std::iota(p.begin(), p.end(), 0);
  Rng rng(sample_seed(seed_, epoch));
  for (int64_t i = n_ - 1; i > 0; --i) std::swap(p[i], p[rng.randint(i + 1)]);
  return p;
}

int64_t EpochOrder::batches_per_epoch(int64_t batch_size) const {
  CL_CHECK(batch_size >= 1 && batch_size <= n_,
           "EpochOrder: batch size must be in [1, " << n_ << "] (the dataset size), got " << batch_size);
  return n_ / batch_size;
}

std::vector<int64_t> EpochOrder::batch(int64_t step, int64_t batch_size) const {
  CL_CHECK(step >= 0, "EpochOrder: step must be >= 0, got " << step);
  const int64_t per = batches_per_epoch(batch_size);
  const std::vector<int64_t> p = permutation(step / per);
  const int64_t start = (step % per) * batch_size;
  return std::vector<int64_t>(p.begin() + start, p.begin() + start + batch_size);
}

}  // namespace convlab
