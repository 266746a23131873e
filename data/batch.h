// data/batch.h: batching, augmentation and deterministic epoch shuffling for the segmentation sets.
//
// Reproducibility: a batch depends only on the dataset (itself a pure function of its seed), the
// indices and the state of the Rng passed in; EpochOrder's permutation depends only on (seed, epoch).
// A training run that records its step count can therefore resume bit-identically: the indices of step
// s are order.batch(s, B), and the augmentation Rng can be reseeded per step (e.g. sample_seed(seed, s)).
#pragma once
#include <cstdint>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"
#include "data/dataset.h"

namespace convlab {

struct SegBatch {
  Tensor images;                 // [B, 3, H, W]
  std::vector<int32_t> labels;   // [B, H, W]
  std::vector<int32_t> buckets;  // [B, H, W]
  int64_t B = 0, H = 0, W = 0;
};

// Applied per sample, identically to image, labels and buckets.
struct Augment {
  bool hflip = false;  // mirror left-right with probability 1/2
  bool vflip = false;  // mirror top-bottom with probability 1/2
  int64_t crop = 0;    // > 0: a random crop x crop window (uniform offset); 0: the whole image
};

// Samples are generated in parallel (OpenMP), then augmented in index order. Random draws per sample,
// in this order and only when enabled: hflip (uniform < 0.5), vflip, crop top, crop left. Without a crop
// all samples must have the same size; a crop must fit every sample (convlab::Error otherwise).
SegBatch make_batch(const SegDataset& ds, const std::vector<int64_t>& indices, const Augment& aug, Rng& rng);
// No augmentation (evaluation).
SegBatch make_batch(const SegDataset& ds, const std::vector<int64_t>& indices);

// Deterministic shuffling: permutation(epoch) is a Fisher-Yates shuffle of [0, n) driven by
// Rng(sample_seed(seed, epoch)).
class EpochOrder {
 public:
  EpochOrder(int64_t n, uint64_t seed);
  int64_t size() const { return n_; }
  std::vector<int64_t> permutation(int64_t epoch) const;
  // Full batches per epoch (the last partial batch of each epoch is dropped, as drop_last=True).
  int64_t batches_per_epoch(int64_t batch_size) const;
  // Indices of global step `step` (counting across epochs): epoch = step / batches_per_epoch,
  // position = step % batches_per_epoch within that epoch's permutation.
  std::vector<int64_t> batch(int64_t step, int64_t batch_size) const;

 private:
  int64_t n_;
  uint64_t seed_;
};

}  // namespace convlab
