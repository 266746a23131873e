// data/dataset.h: the interface shared by the segmentation sets (embedded shapes, MNIST digit scenes).
//
// A SegDataset is an indexed collection of fixed-size samples; get(i) is a pure function of the dataset's
// options (seed included) and i, so any sample can be regenerated anywhere, in any order, on any thread.
// Besides the class label map every sample carries a per-pixel size bucket, so that IoU can be reported
// separately for small, medium and large objects and for thin structures (docs/data.md gives each set's rule).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace convlab {

// Per-pixel size buckets. 0 is background (ignored by per-size metrics).
enum SizeBucket : int32_t {
  kBucketBackground = 0,
  kBucketSmall = 1,
  kBucketMedium = 2,
  kBucketLarge = 3,
  kBucketThin = 4,  // 1 px structures (the shapes set's lines)
};
inline constexpr int kNumBuckets = 5;

// Bounds on the sizes a config may ask of a dataset (checked where configs are read, with the key's path):
// far above any use here, low enough that no typed number becomes an endless loop or allocation.
inline constexpr int64_t kMaxImageSize = 4096;       // pixels per side
inline constexpr int64_t kMaxTrainSize = 10'000'000;  // samples (generated on demand; the order is 8 bytes each)
inline constexpr int64_t kMaxValSize = 100'000;       // samples, all validated at every validation
inline constexpr int64_t kMaxObjects = 64;            // objects per generated image
inline constexpr int64_t kMaxBatch = 65'536;          // images per batch
const char* bucket_name(int32_t bucket);  // "background", "small", "medium", "large", "thin"

struct SegSample {
  Tensor image;                 // [3, H, W], float in [0, 1] (not normalised)
  std::vector<int32_t> label;   // [H, W], class id in [0, num_classes), 0 = background
  std::vector<int32_t> bucket;  // [H, W], SizeBucket of the object owning the pixel
  int64_t H = 0, W = 0;
};

class SegDataset {
 public:
  virtual ~SegDataset() = default;
  virtual int64_t size() const = 0;
  // Must be safe to call from several threads at once (make_batch generates a batch in parallel);
  // throws convlab::Error when i is out of range.
  virtual SegSample get(int64_t i) const = 0;
  virtual int64_t num_classes() const = 0;           // background included
  virtual std::vector<std::string> class_names() const = 0;  // [num_classes], "background" first
};

// The generator seed of sample i of a dataset seeded with `seed`: a 64-bit mix of both, so that
// neighbouring (seed, i) pairs give unrelated streams.
uint64_t sample_seed(uint64_t seed, int64_t i);

// Pixel share of each class over samples [0, n) of `ds` (for docs and tests): [num_classes], sums to 1.
std::vector<double> class_pixel_shares(const SegDataset& ds, int64_t n);
// Pixel share of each size bucket over samples [0, n): [kNumBuckets].
std::vector<double> bucket_pixel_shares(const SegDataset& ds, int64_t n);

}  // namespace convlab
