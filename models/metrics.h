// models/metrics.h: segmentation metrics from confusion matrices.
//  - pixel accuracy, per-class IoU = TP / (TP + FP + FN), mIoU = mean over classes present (in the ground
//    truth or the prediction) of the evaluated pixels;
//  - IoU by object-size bucket (small / medium / large / thin): the same mIoU computed on the pixels that are
//    background or belong to an object of that bucket, over the foreground classes that occur in the bucket.
//    False positives on background count against the bucket; pixels of objects of other buckets are left out.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace convlab {

class SegMetrics {
 public:
  explicit SegMetrics(int64_t num_classes);
  // pred, label, bucket: [count] class ids / size buckets (as data/dataset.h); label < 0 is ignored.
  void add(const int32_t* pred, const int32_t* label, const int32_t* bucket, int64_t count);
  double pixel_accuracy() const;
  std::vector<double> class_iou() const;  // NaN for a class absent from both truth and prediction
  double miou() const;
  double bucket_miou(int32_t bucket) const;  // NaN when the bucket has no pixels
  nlohmann::json to_json(const std::vector<std::string>& class_names) const;
  // Every count as one flat vector, and adding such a vector (from another process's share of the same
  // evaluation): integer sums, so the order of merging never matters.
  std::vector<int64_t> counts() const;
  void add_counts(const std::vector<int64_t>& counts);

 private:
  static double miou_of(const std::vector<int64_t>& conf, int64_t C, bool foreground_only,
                        const std::vector<bool>* classes);
  int64_t C_;
  std::vector<int64_t> conf_;                  // [C, C] truth x prediction
  std::vector<std::vector<int64_t>> bconf_;    // per bucket, [C, C]
  std::vector<std::vector<bool>> bclasses_;    // per bucket: foreground classes seen in that bucket
};

}  // namespace convlab
