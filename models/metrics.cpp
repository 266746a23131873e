// models/metrics.cpp: see metrics.h.
#include "models/metrics.h"

#include <cmath>

#include "core/error.h"

namespace convlab {

namespace {
constexpr int kBuckets = 5;  // background, small, medium, large, thin (data/dataset.h)
const char* kBucketNames[kBuckets] = {"background", "small", "medium", "large", "thin"};
}  // namespace

SegMetrics::SegMetrics(int64_t C)
    : C_(C), conf_(C * C, 0), bconf_(kBuckets, std::vector<int64_t>(C * C, 0)), bclasses_(kBuckets, std::vector<bool>(C, false)) {}

std::vector<int64_t> SegMetrics::counts() const {
  std::vector<int64_t> v(conf_);
  for (const auto& b : bconf_) v.insert(v.end(), b.begin(), b.end());
  for (const auto& b : bclasses_)
    for (bool seen : b) v.push_back(seen ? 1 : 0);
  return v;
}

void SegMetrics::add_counts(const std::vector<int64_t>& v) {
  const size_t cc = conf_.size();
  CL_CHECK(v.size() == cc * (1 + bconf_.size()) + size_t(C_) * bclasses_.size(),
           "metrics: " << v.size() << " counts do not match " << C_ << " classes");
  size_t k = 0;
  for (size_t i = 0; i < cc; ++i) conf_[i] += v[k++];
  for (auto& b : bconf_)
    for (size_t i = 0; i < cc; ++i) b[i] += v[k++];
  for (auto& b : bclasses_)
    for (size_t i = 0; i < b.size(); ++i) {
      const bool seen = v[k++] != 0;  // read every entry: `b[i] || v[k++]` would skip one when b[i] is set
      b[i] = b[i] || seen;
    }
}

void SegMetrics::add(const int32_t* pred, const int32_t* label, const int32_t* bucket, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const int32_t y = label[i], p = pred[i];
    if (y < 0) continue;
    CL_CHECK(y < C_ && p >= 0 && p < C_, "metrics: class id out of range (label " << y << ", prediction " << p << ")");
    ++conf_[y * C_ + p];
    const int32_t b = bucket ? bucket[i] : 0;
    if (b <= 0 || b >= kBuckets) {
      for (int k = 1; k < kBuckets; ++k) ++bconf_[k][y * C_ + p];  // background pixels count for every bucket
    } else {
      ++bconf_[b][y * C_ + p];
      bclasses_[b][y] = true;
    }
  }
}

double SegMetrics::pixel_accuracy() const {
  int64_t tp = 0, all = 0;
  for (int64_t c = 0; c < C_; ++c) tp += conf_[c * C_ + c];
  for (int64_t v : conf_) all += v;
  return all ? double(tp) / double(all) : NAN;
}

std::vector<double> SegMetrics::class_iou() const {
  std::vector<double> iou(C_, NAN);
  for (int64_t c = 0; c < C_; ++c) {
    int64_t tp = conf_[c * C_ + c], fp = 0, fn = 0;
    for (int64_t k = 0; k < C_; ++k) {
      if (k == c) continue;
      fn += conf_[c * C_ + k];
      fp += conf_[k * C_ + c];
    }
    if (tp + fp + fn > 0) iou[c] = double(tp) / double(tp + fp + fn);
  }
  return iou;
}

double SegMetrics::miou_of(const std::vector<int64_t>& conf, int64_t C, bool fg_only, const std::vector<bool>* classes) {
  double s = 0;
  int n = 0;
  for (int64_t c = fg_only ? 1 : 0; c < C; ++c) {
    if (classes && !(*classes)[c]) continue;
    int64_t tp = conf[c * C + c], fp = 0, fn = 0;
    for (int64_t k = 0; k < C; ++k) {
      if (k == c) continue;
      fn += conf[c * C + k];
      fp += conf[k * C + c];
    }
    if (tp + fp + fn == 0) continue;
    s += double(tp) / double(tp + fp + fn);
    ++n;
  }
  return n ? s / n : NAN;
}

double SegMetrics::miou() const { return miou_of(conf_, C_, false, nullptr); }

double SegMetrics::bucket_miou(int32_t b) const {
  CL_CHECK(b > 0 && b < kBuckets, "metrics: bucket " << b << " out of range");
  return miou_of(bconf_[b], C_, true, &bclasses_[b]);
}

nlohmann::json SegMetrics::to_json(const std::vector<std::string>& names) const {
  auto num = [](double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); };
  nlohmann::json j;
  j["pixel_accuracy"] = num(pixel_accuracy());
  j["miou"] = num(miou());
  nlohmann::json per = nlohmann::json::object();
  const auto iou = class_iou();
  for (int64_t c = 0; c < C_; ++c) per[c < int64_t(names.size()) ? names[c] : std::to_string(c)] = num(iou[c]);
  j["class_iou"] = per;
  nlohmann::json buckets = nlohmann::json::object();
  for (int b = 1; b < kBuckets; ++b) buckets[kBucketNames[b]] = num(bucket_miou(b));
  j["bucket_miou"] = buckets;
  return j;
}

}  // namespace convlab
