// tests/test_shards.cpp: batch shards (core/shards.h), the cut of a batch that lets data-parallel training give
// the bits of one process. Two threads play two ranks through an in-process ShardComm (the same all-gather in
// rank order as tools/lib/mpi_comm.cpp over MPI), so the whole property is tested without a launcher:
//   - ops: conv2d (dilated, with bias) + batch norm + ReLU + 1x1 conv + cross-entropy on a batch of 4 cut into
//     4 shards: one process holding all 4 and two ranks holding 2 each give bit-identical loss, weight and bias
//     gradients, batch-norm running statistics, and input gradients of the same samples;
//   - depthwise conv2d (the "same 3x3" kernel and the plain one: stride 2, dilation 2, channel multiplier 2) and
//     deform_conv2d v1 / v2 on batches cut into shards: one process holding all shards and two ranks holding half
//     each give bit-identical weight and bias gradients, and outputs and input / offset / mask gradients of the
//     same samples (the deform case with one image per rank too, where a rank's GEMMs would otherwise be split);
//   - ops whose batch sums are not sharded (matmul, mse_loss, sum) refuse to run spread over ranks, naming the op;
//   - the training loop: a short hdc_seg and deform_seg run on two ranks end with the checkpoint tensors and
//     metrics of one process with the same train.batch_shards; a global batch that the ranks cannot split is refused naming
//     both numbers.
// tests/test_mpi_train.sh runs the real thing under mpirun.
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/conv_transpose2d.h"
#include "core/deform_conv2d.h"
#include "core/loss.h"
#include "core/shards.h"
#include "data/safetensors.h"
#include "models/config.h"
#include "models/metrics.h"
#include "models/train/engine.h"
#include "models/train/gan.h"
#include "models/train/segmentation.h"
#include "models/train/tasks.h"
#include "tests/testing.h"

namespace convlab {
namespace {

using nlohmann::json;
using testing::error_of;
using testing::random_tensor;

// Ranks as threads: a generation-counted barrier around a shared buffer.
class InProcessGroup {
 public:
  explicit InProcessGroup(int n) : n_(n) {}
  int size() const { return n_; }
  void all_gather(int rank, const void* mine, int64_t bytes, void* all) {
    std::unique_lock<std::mutex> lock(m_);
    buf_.resize(size_t(bytes * n_));
    std::memcpy(buf_.data() + rank * bytes, mine, size_t(bytes));
    wait_all(lock);
    std::memcpy(all, buf_.data(), size_t(bytes * n_));
    wait_all(lock);
  }
  bool any(bool mine) {
    std::unique_lock<std::mutex> lock(m_);
    flag_ = flag_ || mine;
    wait_all(lock);
    const bool r = flag_;
    wait_all(lock);
    flag_ = false;  // every rank has read it; reset before the next round (all are past the second barrier)
    return r;
  }

 private:
  void wait_all(std::unique_lock<std::mutex>& lock) {
    const int64_t gen = gen_;
    if (++arrived_ == n_) {
      arrived_ = 0;
      ++gen_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return gen_ != gen; });
    }
  }
  int n_;
  std::mutex m_;
  std::condition_variable cv_;
  int arrived_ = 0;
  int64_t gen_ = 0;
  std::vector<char> buf_;
  bool flag_ = false;
};

class ThreadComm : public ShardComm {
 public:
  ThreadComm(InProcessGroup& g, int rank) : g_(g), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return g_.size(); }
  void all_gather(const void* mine, int64_t bytes, void* all) override { g_.all_gather(rank_, mine, bytes, all); }
  bool any(bool mine) override { return g_.any(mine); }

 private:
  InProcessGroup& g_;
  int rank_;
};

// Runs f(rank, comm) on two threads as the two ranks of one in-process group, and waits for both.
template <typename F>
void two_ranks(F f) {
  InProcessGroup group(2);
  std::vector<std::thread> ranks;
  for (int r = 0; r < 2; ++r)
    ranks.emplace_back([&, r] {
      ThreadComm comm(group, r);
      f(r, comm);
    });
  for (auto& t : ranks) t.join();
}

struct OpResult {
  float loss = 0;
  std::vector<std::vector<float>> grads;  // w1, b1, gamma, beta, w2, b2, then dx
  std::vector<float> running_mean, running_var;
};

std::vector<float> values(const Tensor& t) { return std::vector<float>(t.data(), t.data() + t.numel()); }

// conv2d(dilation 2, bias) -> BN -> ReLU -> 1x1 conv -> cross-entropy, on samples [n0, n0 + n) of a fixed batch.
OpResult run_ops(int64_t n0, int64_t n) {
  const int64_t N = 4, H = 10, W = 9;
  const Tensor x_all = random_tensor({N, 3, H, W}, 11);
  Tensor x = Tensor::empty({n, 3, H, W});
  std::memcpy(x.data(), x_all.data() + n0 * 3 * H * W, sizeof(float) * size_t(n * 3 * H * W));
  x.set_requires_grad(true);
  Tensor w1 = random_tensor({5, 3, 3, 3}, 12, -0.5f, 0.5f), b1 = random_tensor({5}, 13);
  Tensor gamma = random_tensor({5}, 14, 0.5f, 1.5f), beta = random_tensor({5}, 15);
  Tensor w2 = random_tensor({4, 5, 1, 1}, 16), b2 = random_tensor({4}, 17);
  Tensor rm = Tensor::zeros({5}), rv = Tensor::ones({5});
  for (Tensor* t : {&w1, &b1, &gamma, &beta, &w2, &b2}) t->set_requires_grad(true);
  std::vector<int32_t> labels;
  Rng rng(18);
  for (int64_t i = 0; i < N * H * W; ++i) labels.push_back(int32_t(rng.uniform() * 4) % 4);
  labels[5] = -1;  // an ignored pixel
  const std::vector<int32_t> mine(labels.begin() + n0 * H * W, labels.begin() + (n0 + n) * H * W);
  Conv2dArgs a;
  a.padding = {2, 2};
  a.dilation = {2, 2};
  Tensor h = relu(batch_norm2d(conv2d(x, w1, b1, a), gamma, beta, rm, rv, true, 0.1f, 1e-5f));
  Tensor loss = cross_entropy(conv2d(h, w2, b2, Conv2dArgs{}), mine, {}, -1);
  loss.backward();
  OpResult r;
  r.loss = loss.item();
  for (Tensor* t : {&w1, &b1, &gamma, &beta, &w2, &b2, &x}) r.grads.push_back(values(t->grad()));
  r.running_mean = values(rm);
  r.running_var = values(rv);
  return r;
}

TEST(Shards, TwoRanksGiveTheBitsOfOneProcessThroughConvBatchNormAndLoss) {
  OpResult one;
  {
    ShardScope s({.total = 4, .first = 0, .local = 4});
    one = run_ops(0, 4);
  }
  OpResult part[2];
  two_ranks([&](int r, ThreadComm& comm) {
    ShardScope s({.total = 4, .first = 2 * r, .local = 2, .comm = &comm});
    part[r] = run_ops(2 * r, 2);
  });
  const char* names[] = {"conv weight", "conv bias", "bn gamma", "bn beta", "head weight", "head bias"};
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(std::memcmp(&part[r].loss, &one.loss, sizeof(float)), 0) << "rank " << r << " loss";
    for (size_t i = 0; i < 6; ++i) EXPECT_EQ(part[r].grads[i], one.grads[i]) << "rank " << r << " " << names[i];
    EXPECT_EQ(part[r].running_mean, one.running_mean) << "rank " << r;
    EXPECT_EQ(part[r].running_var, one.running_var) << "rank " << r;
    // dx of the rank's samples equals the matching half of the one-process dx
    const auto& dx = one.grads[6];
    const std::vector<float> half(dx.begin() + r * long(dx.size()) / 2, dx.begin() + (r + 1) * long(dx.size()) / 2);
    EXPECT_EQ(part[r].grads[6], half) << "rank " << r << " input gradient";
  }
}

// A DCGAN in miniature (the MNIST shapes) on samples [n0, n0 + n) of a batch of 8: G = convT from a 1x1 latent
// (the pointwise path) to 7x7 + BN + ReLU + two strided convTs to 28x28 + tanh; D = two strided conv2ds with small
// outputs (several images per GEMM block) + BN + leaky ReLU + a 7x7 head conv; BCE on D(real) and D(G(z)).
OpResult run_gan_ops(int64_t n0, int64_t n) {
  const int64_t N = 8;
  auto rows = [&](const Tensor& all) {
    Shape sh = all.shape();
    sh[0] = n;
    Tensor t = Tensor::empty(sh);
    const int64_t per = all.numel() / N;
    std::memcpy(t.data(), all.data() + n0 * per, sizeof(float) * size_t(n * per));
    return t;
  };
  const Tensor z = rows(random_tensor({N, 6, 1, 1}, 21)), real = rows(random_tensor({N, 1, 28, 28}, 22));
  Tensor g1 = random_tensor({6, 5, 7, 7}, 23, -0.3f, 0.3f), g2 = random_tensor({5, 4, 4, 4}, 24, -0.3f, 0.3f);
  Tensor g3 = random_tensor({4, 1, 4, 4}, 32, -0.3f, 0.3f);
  Tensor ga = random_tensor({5}, 25, 0.5f, 1.5f), gb = random_tensor({5}, 26);
  Tensor d0 = random_tensor({64, 1, 4, 4}, 31, -0.3f, 0.3f);
  Tensor d1 = random_tensor({128, 64, 4, 4}, 27, -0.1f, 0.1f), d2 = random_tensor({1, 128, 7, 7}, 28, -0.3f, 0.3f);
  Tensor da = random_tensor({128}, 29, 0.5f, 1.5f), db = random_tensor({128}, 30);
  for (Tensor* t : {&g1, &g2, &g3, &ga, &gb, &d0, &d1, &d2, &da, &db}) t->set_requires_grad(true);
  Tensor rm = Tensor::zeros({5}), rv = Tensor::ones({5}), dm = Tensor::zeros({128}), dv = Tensor::ones({128});
  ConvTranspose2dArgs up;
  up.stride = {2, 2};
  up.padding = {1, 1};
  const Tensor h7 = relu(batch_norm2d(conv_transpose2d(z, g1, Tensor()), ga, gb, rm, rv, true, 0.1f, 1e-5f));
  const Tensor fake = tanh(conv_transpose2d(relu(conv_transpose2d(h7, g2, Tensor(), up)), g3, Tensor(), up));  // [n,1,28,28]
  Conv2dArgs down;
  down.stride = {2, 2};
  down.padding = {1, 1};
  auto D = [&](const Tensor& x) {
    const Tensor h = leaky_relu(conv2d(x, d0, Tensor(), down), 0.2f);  // [n, 64, 14, 14]
    return reshape(conv2d(leaky_relu(batch_norm2d(conv2d(h, d1, Tensor(), down), da, db, dm, dv, true, 0.1f, 1e-5f), 0.2f),
                          d2, Tensor(), Conv2dArgs{}), {n, 1});  // [n, 7, 7, 7] -> [n, 1]
  };
  const Tensor real_logits = D(real);
  Tensor loss = add(bce_with_logits(real_logits, Tensor::ones({n, 1})), bce_with_logits(D(fake), Tensor::zeros({n, 1})));
  loss.backward();
  OpResult r;
  r.loss = loss.item();
  for (Tensor* t : {&g1, &g2, &ga, &gb, &d1, &d2, &da, &db, &d0, &g3}) r.grads.push_back(values(t->grad()));
  r.grads.push_back(values(real_logits));
  r.running_mean = values(dm);
  r.running_var = values(dv);
  return r;
}

TEST(Shards, TwoRanksGiveTheBitsOfOneProcessThroughTransposedConvsAndBce) {
  OpResult one;
  {
    ShardScope s({.total = 2, .first = 0, .local = 2});
    one = run_gan_ops(0, 8);
  }
  OpResult part[2];
  two_ranks([&](int r, ThreadComm& comm) {
    ShardScope s({.total = 2, .first = r, .local = 1, .comm = &comm});
    part[r] = run_gan_ops(4 * r, 4);
  });
  const char* names[] = {"G convT 1x1->7x7", "G convT 7->14", "G bn gamma", "G bn beta", "D conv 14->7", "D head",
                         "D bn gamma", "D bn beta", "D conv 28->14", "G convT 14->28", "D(real) logits"};
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(std::memcmp(&part[r].loss, &one.loss, sizeof(float)), 0) << "rank " << r << " loss";
    for (size_t i = 0; i < 10; ++i) EXPECT_TRUE(part[r].grads[i] == one.grads[i]) << "rank " << r << " " << names[i];
    const auto& lg = one.grads[10];  // the rank's D(real) logits are its half of the one-process logits
    EXPECT_TRUE(part[r].grads[10] == std::vector<float>(lg.begin() + 4 * r, lg.begin() + 4 * r + 4)) << "rank " << r << " " << names[10];
    EXPECT_EQ(part[r].running_mean, one.running_mean) << "rank " << r;
    EXPECT_EQ(part[r].running_var, one.running_var) << "rank " << r;
  }
}

// linear (bias) -> ReLU -> dropout -> linear -> cross-entropy over [N, classes] on samples [n0, n0 + n) of 8,
// the dropout generator seeded alike on every rank.
OpResult run_linear_ops(int64_t n0, int64_t n) {
  const Tensor all = random_tensor({8, 20}, 41);
  Tensor x = Tensor::empty({n, 20});
  std::memcpy(x.data(), all.data() + n0 * 20, sizeof(float) * size_t(n * 20));
  Tensor w1 = random_tensor({16, 20}, 42, -0.3f, 0.3f), b1 = random_tensor({16}, 43);
  Tensor w2 = random_tensor({5, 16}, 44, -0.3f, 0.3f), b2 = random_tensor({5}, 45);
  for (Tensor* t : {&w1, &b1, &w2, &b2}) t->set_requires_grad(true);
  const std::vector<int32_t> labels_all = {0, 1, 2, 3, 4, 0, 1, 2};
  const std::vector<int32_t> labels(labels_all.begin() + n0, labels_all.begin() + n0 + n);
  Rng drop(46);
  Tensor loss = cross_entropy(linear(dropout(relu(linear(x, w1, b1)), 0.5f, true, drop), w2, b2), labels);
  loss.backward();
  OpResult r;
  r.loss = loss.item();
  for (Tensor* t : {&w1, &b1, &w2, &b2}) r.grads.push_back(values(t->grad()));
  r.running_mean = {drop.uniform()};  // the generator's next draw: every rank drew the whole batch's mask
  return r;
}

TEST(Shards, TwoRanksGiveTheBitsOfOneProcessThroughLinearAndDropout) {
  OpResult one;
  {
    ShardScope s({.total = 4, .first = 0, .local = 4});
    one = run_linear_ops(0, 8);
  }
  OpResult part[2];
  two_ranks([&](int r, ThreadComm& comm) {
    ShardScope s({.total = 4, .first = 2 * r, .local = 2, .comm = &comm});
    part[r] = run_linear_ops(4 * r, 4);
  });
  const char* names[] = {"fc1 weight", "fc1 bias", "fc2 weight", "fc2 bias"};
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(std::memcmp(&part[r].loss, &one.loss, sizeof(float)), 0) << "rank " << r << " loss";
    for (size_t i = 0; i < 4; ++i) EXPECT_TRUE(part[r].grads[i] == one.grads[i]) << "rank " << r << " " << names[i];
    EXPECT_EQ(part[r].running_mean, one.running_mean) << "rank " << r << ": dropout generator state";
  }
}

// ---- single ops: two ranks against one process on the same global batch

// Samples [n0, n0 + n) of a batch tensor [N, ...].
Tensor batch_rows(const Tensor& all, int64_t n0, int64_t n) {
  Shape sh = all.shape();
  const int64_t per = all.numel() / sh[0];
  sh[0] = n;
  Tensor t = Tensor::empty(sh);
  std::memcpy(t.data(), all.data() + n0 * per, sizeof(float) * size_t(n * per));
  return t;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}

// What an op run on samples [n0, n0 + n) gives: gradients summed over the batch (weight, bias), and tensors with
// one row per sample (the output, input gradients), each named.
struct OpBits {
  std::vector<std::pair<std::string, std::vector<float>>> summed, per_sample;
};

// run(n0, n) on one process holding all S shards of a batch of N, and on two ranks holding S/2 shards (N/2
// samples) each: the summed tensors bit for bit, the per-sample ones the rank's rows of the one-process tensor.
template <typename Run>
void expect_two_ranks_give_one_process(int64_t N, int64_t S, Run run) {
  OpBits one;
  {
    ShardScope s({.total = S, .first = 0, .local = S});
    one = run(0, N);
  }
  OpBits part[2];
  two_ranks([&](int r, ThreadComm& comm) {
    ShardScope s({.total = S, .first = r * S / 2, .local = S / 2, .comm = &comm});
    part[r] = run(r * N / 2, N / 2);
  });
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(part[r].summed.size(), one.summed.size());
    ASSERT_EQ(part[r].per_sample.size(), one.per_sample.size());
    for (size_t i = 0; i < one.summed.size(); ++i)
      EXPECT_TRUE(same_bits(part[r].summed[i].second, one.summed[i].second)) << "rank " << r << " " << one.summed[i].first;
    for (size_t i = 0; i < one.per_sample.size(); ++i) {
      const auto& all = one.per_sample[i].second;
      const long half = long(all.size()) / 2;
      const std::vector<float> mine(all.begin() + r * half, all.begin() + (r + 1) * half);
      EXPECT_TRUE(same_bits(part[r].per_sample[i].second, mine)) << "rank " << r << " " << one.per_sample[i].first;
    }
  }
}

// Depthwise conv2d (groups = C = 3, weight [3*mult, 1, k, k], bias) on samples [n0, n0 + n) of a batch of N,
// backward from a fixed upstream gradient.
OpBits run_depthwise(int64_t n0, int64_t n, int64_t N, int64_t H, int64_t W, int64_t k, int64_t mult,
                     const Conv2dArgs& a) {
  const int64_t C = 3;
  Tensor x = batch_rows(random_tensor({N, C, H, W}, 51), n0, n);
  Tensor w = random_tensor({C * mult, 1, k, k}, 52, -0.5f, 0.5f), b = random_tensor({C * mult}, 53);
  for (Tensor* t : {&x, &w, &b}) t->set_requires_grad(true);
  Tensor y = conv2d(x, w, b, a);
  Shape gs = y.shape();
  gs[0] = N;
  y.backward(batch_rows(random_tensor(gs, 54), n0, n));
  return {{{"weight gradient", values(w.grad())}, {"bias gradient", values(b.grad())}},
          {{"output", values(y)}, {"input gradient", values(x.grad())}}};
}

TEST(Shards, TwoRanksGiveTheBitsOfOneProcessThroughDepthwiseSame3x3) {
  Conv2dArgs a;  // 3x3, stride 1, padding 1, W >= 8: the "same 3x3" kernel (dw and db fused)
  a.padding = {1, 1};
  a.groups = 3;
  expect_two_ranks_give_one_process(8, 4, [&](int64_t n0, int64_t n) { return run_depthwise(n0, n, 8, 9, 10, 3, 1, a); });
  expect_two_ranks_give_one_process(4, 2, [&](int64_t n0, int64_t n) { return run_depthwise(n0, n, 4, 7, 12, 3, 2, a); });
}

TEST(Shards, TwoRanksGiveTheBitsOfOneProcessThroughDepthwiseStridedDilated) {
  Conv2dArgs a;  // the plain kernel: stride 2, dilation 2, channel multiplier 2
  a.stride = {2, 2};
  a.padding = {2, 2};
  a.dilation = {2, 2};
  a.groups = 3;
  expect_two_ranks_give_one_process(8, 4, [&](int64_t n0, int64_t n) { return run_depthwise(n0, n, 8, 11, 9, 3, 2, a); });
}

// deform_conv2d (groups 2, offset groups 2, bias; v2 with a mask) on samples [n0, n0 + n) of a batch of N,
// offsets up to 1.5 pixels (points off the grid and outside the image), backward from a fixed upstream gradient.
OpBits run_deform(int64_t n0, int64_t n, int64_t N, bool v2) {
  const int64_t Cin = 4, Cout = 6, H = 7, W = 6, OG = 2, T = 9;
  Tensor x = batch_rows(random_tensor({N, Cin, H, W}, 61), n0, n);
  Tensor off = batch_rows(random_tensor({N, 2 * OG * T, H, W}, 62, -1.5f, 1.5f), n0, n);
  Tensor mask = v2 ? batch_rows(random_tensor({N, OG * T, H, W}, 63, 0.f, 1.f), n0, n) : Tensor();
  Tensor w = random_tensor({Cout, Cin / 2, 3, 3}, 64, -0.5f, 0.5f), b = random_tensor({Cout}, 65);
  for (Tensor* t : {&x, &off, &w, &b}) t->set_requires_grad(true);
  if (v2) mask.set_requires_grad(true);
  DeformConv2dArgs a;
  a.padding = {1, 1};
  Tensor y = deform_conv2d(x, off, w, b, mask, a);  // [n, 6, 7, 6]
  y.backward(batch_rows(random_tensor({N, Cout, H, W}, 66), n0, n));
  OpBits r{{{"weight gradient", values(w.grad())}, {"bias gradient", values(b.grad())}},
           {{"output", values(y)}, {"input gradient", values(x.grad())}, {"offset gradient", values(off.grad())}}};
  if (v2) r.per_sample.push_back({"mask gradient", values(mask.grad())});
  return r;
}

TEST(Shards, TwoRanksGiveTheBitsOfOneProcessThroughDeformConvV1AndV2) {
  for (const bool v2 : {false, true}) {
    SCOPED_TRACE(v2 ? "v2" : "v1");
    // 4 shards of 2 images; then 2 shards of 1 image: each rank holds one image (the path that splits phases
    // over threads), one process two.
    expect_two_ranks_give_one_process(8, 4, [&](int64_t n0, int64_t n) { return run_deform(n0, n, 8, v2); });
    expect_two_ranks_give_one_process(2, 2, [&](int64_t n0, int64_t n) { return run_deform(n0, n, 2, v2); });
  }
}

// Split validation adds the processes' metric counts: the merge must give the counts of one process, also when
// both halves saw the same class in the same object-size bucket (a merge that skipped entries once did not).
TEST(Shards, MetricCountsOfTwoHalvesMergeIntoTheWholeSet) {
  // 8 pixels, 3 classes; buckets 1 (small) and 2 (medium); class 1 is in bucket 2 in both halves.
  const int32_t pred[8] = {0, 1, 1, 2, 1, 1, 0, 2}, label[8] = {0, 1, 2, 2, 1, 0, 1, 2};
  const int32_t bucket[8] = {0, 2, 1, 1, 2, 0, 2, 1};
  SegMetrics whole(3), first(3), second(3);
  whole.add(pred, label, bucket, 8);
  first.add(pred, label, bucket, 4);
  second.add(pred + 4, label + 4, bucket + 4, 4);
  SegMetrics merged(3);
  merged.add_counts(first.counts());
  merged.add_counts(second.counts());
  EXPECT_EQ(merged.counts(), whole.counts());
  const std::vector<std::string> names = {"background", "a", "b"};
  EXPECT_EQ(merged.to_json(names).dump(), whole.to_json(names).dump());
}

TEST(Shards, FoldAddsTheShardsInOrderAndCutsTheBatch) {
  const float p[3] = {1e8f, 1.f, -1e8f};  // in order: (1e8 + 1) - 1e8 = 0 in float; another order gives 1
  float out = -1;
  {
    ShardScope s({.total = 3, .first = 0, .local = 3});
    fold_shards(p, 1, &out);
    EXPECT_EQ(out, 0.f);
    EXPECT_EQ(local_samples(12).begin, 0);
    EXPECT_EQ(local_samples(12).end, 12);
    EXPECT_NE(error_of([] { local_samples(10); }).find("cannot be cut into 3"), std::string::npos);
    EXPECT_NE(error_of([] { local_shards(5, "conv2d"); }).find("conv2d: a batch of 5"), std::string::npos);
  }
  fold_shards(p, 3, &out);  // outside a scope: one shard, the identity
  EXPECT_EQ(out, 1e8f);
  EXPECT_NE(error_of([] { ShardScope s({.total = 4, .first = 1, .local = 2}); }).find("one process holds every shard"),
            std::string::npos);
}

TEST(Shards, OpsWithUnshardedBatchSumsRefuseToRunSpreadOverRanks) {
  std::string err[2][3];
  two_ranks([&](int r, ThreadComm& comm) {
    ShardScope s({.total = 2, .first = r, .local = 1, .comm = &comm});
    Tensor w = random_tensor({3, 2, 3, 3}, 2);
    w.set_requires_grad(true);
    Tensor lw = random_tensor({4, 3}, 3);
    lw.set_requires_grad(true);
    err[r][0] = error_of([&] { matmul(random_tensor({1, 4}, 4), lw); });
    err[r][1] = error_of([&] { mse_loss(random_tensor({1, 1}, 5), random_tensor({1, 1}, 6)); });
    err[r][2] = error_of([&] { sum(w); });
  });
  for (int r = 0; r < 2; ++r) {
    EXPECT_NE(err[r][0].find("matmul"), std::string::npos) << err[r][0];
    EXPECT_NE(err[r][0].find("2 processes"), std::string::npos) << err[r][0];
    EXPECT_NE(err[r][1].find("mse_loss"), std::string::npos) << err[r][1];
    EXPECT_NE(err[r][2].find("sum: its gradient sums"), std::string::npos) << err[r][2];
  }
}

// The tensors of a checkpoint file: name -> raw bytes.
std::map<std::string, std::string> tensor_bytes(const std::string& path) {
  const auto f = safetensors::load(path);
  std::map<std::string, std::string> out;
  for (const auto& [name, t] : f.tensors)
    out[name] = std::string(reinterpret_cast<const char*>(t.data()), sizeof(float) * size_t(t.numel()));
  return out;
}

std::vector<double> losses(const std::string& metrics) {
  std::vector<double> out;
  std::ifstream f(metrics);
  for (std::string line; std::getline(f, line);) {
    const json j = json::parse(line);
    if (j.contains("loss")) out.push_back(j["loss"].get<double>());
    if (j.contains("miou")) out.push_back(j["miou"].get<double>());
  }
  return out;
}

// A short run of configs/NAME.json (3 steps of 4 images at 32x32, 2 shards, a validation at the end) in one
// process and on two ranks: the same checkpoint tensors and logged losses / mIoU.
void expect_seg_run_on_two_ranks_ends_where_one_process_ends(const std::string& name) {
  const json config = load_config(testing::source_path("configs/" + name + ".json"),
                                  {"train.steps=3", "train.batch_size=4", "train.batch_shards=2", "train.val_every=3",
                                   "train.log_every=1", "data.image_size=32", "data.val_size=8"});
  const std::string one_dir = testing::temp_dir(name + "_shards_one"), two_dir = testing::temp_dir(name + "_shards_two");
  run_training(*segmentation_training(config), TrainFlags{.runs_dir = one_dir});
  std::string err[2];
  json summary[2];
  two_ranks([&](int r, ThreadComm& comm) {
    err[r] = error_of([&] { summary[r] = run_training(*segmentation_training(config), TrainFlags{.runs_dir = two_dir, .comm = &comm}); });
  });
  ASSERT_EQ(err[0], "(no error)");
  ASSERT_EQ(err[1], "(no error)");
  EXPECT_EQ(summary[0]["processes"], 2);
  EXPECT_EQ(summary[0]["batch_shards"], 2);
  for (const std::string f : {"model.safetensors", "optimizer.safetensors"})
    EXPECT_TRUE(tensor_bytes(one_dir + "/" + name + "/" + f) == tensor_bytes(two_dir + "/" + name + "/" + f)) << f << " differs";
  const auto l1 = losses(one_dir + "/" + name + "/metrics.jsonl"), l2 = losses(two_dir + "/" + name + "/metrics.jsonl");
  EXPECT_EQ(l1.size(), 5u);  // 3 log rows, the validation's loss and mIoU
  EXPECT_EQ(l1, l2);
  // The offset statistics of deformable layers (none in other configs): of the global batch at a log step, of the
  // last validation batch at a validation.
  auto deform = [](const std::string& path) {
    std::vector<std::string> out;
    std::ifstream f(path);
    for (std::string line; std::getline(f, line);) {
      const json j = json::parse(line);
      if (j.contains("deform")) out.push_back(j["deform"].dump());
    }
    return out;
  };
  const auto d1 = deform(one_dir + "/" + name + "/metrics.jsonl"), d2 = deform(two_dir + "/" + name + "/metrics.jsonl");
  EXPECT_EQ(d1.size(), name == "deform_seg" ? 4u : 0u);
  EXPECT_EQ(d1, d2);
}

TEST(Shards, TrainingOnTwoRanksEndsWhereOneProcessEnds) { expect_seg_run_on_two_ranks_ends_where_one_process_ends("hdc_seg"); }

// Deformable v2 convs (their offset / mask predictors are conv2ds) between conv2ds and batch norms.
TEST(Shards, DeformSegTrainingOnTwoRanksEndsWhereOneProcessEnds) {
  expect_seg_run_on_two_ranks_ends_where_one_process_ends("deform_seg");
}

TEST(Shards, GanTrainingOnTwoRanksEndsWhereOneProcessEnds) {
  const json config = load_config(testing::source_path("configs/dcgan_mnist_ttur.json"),
                                  {"data.dataset=shapes", "data.train_size=64", "train.steps=4", "train.batch_size=8",
                                   "train.log_every=1", "train.sample_every=4", "train.samples=4", "train.batch_shards=2"});
  const std::string one_dir = testing::temp_dir("gan_shards_one"), two_dir = testing::temp_dir("gan_shards_two");
  run_training(*gan_training(config), TrainFlags{.runs_dir = one_dir});
  std::string err[2];
  two_ranks([&](int r, ThreadComm& comm) {
    err[r] = error_of([&] { run_training(*gan_training(config), TrainFlags{.runs_dir = two_dir, .comm = &comm}); });
  });
  ASSERT_EQ(err[0], "(no error)");
  ASSERT_EQ(err[1], "(no error)");
  const std::string run = "/dcgan_mnist_ttur/";
  for (const std::string f : {"generator.safetensors", "discriminator.safetensors", "generator_ema.safetensors",
                              "optimizer.safetensors"})
    EXPECT_TRUE(tensor_bytes(one_dir + run + f) == tensor_bytes(two_dir + run + f)) << f << " differs";
  auto rows = [](const std::string& path) {
    std::vector<std::vector<double>> out;
    std::ifstream f(path);
    for (std::string line; std::getline(f, line);) {
      const json j = json::parse(line);
      if (j.contains("loss_d")) out.push_back({j["loss_d"], j["loss_g"], j["d_x"], j["d_g_z1"], j["d_g_z2"]});
    }
    return out;
  };
  const auto r1 = rows(one_dir + run + "metrics.jsonl"), r2 = rows(two_dir + run + "metrics.jsonl");
  EXPECT_EQ(r1.size(), 4u);
  EXPECT_EQ(r1, r2);
}

TEST(Shards, ClassifierTrainingOnTwoRanksEndsWhereOneProcessEnds) {
  // A made-up MNIST folder (data/mnist.h's format): 6 seeded images per digit.
  const std::string mnist = testing::temp_dir("shards_mnist");
  std::filesystem::create_directories(mnist + "/digits");
  Rng rng(7);
  for (int digit = 0; digit < 10; ++digit) {
    std::vector<float> pixels(6 * 784);
    for (float& v : pixels) v = rng.uniform() < 0.3f ? float(int(rng.uniform() * 256)) / 256.f : 0.f;
    std::ofstream(mnist + "/digits/" + std::to_string(digit) + ".json") << json{{"data", pixels}}.dump();
  }
  const char* before = std::getenv("CONVLAB_MNIST_DIR");
  const std::string saved = before ? before : "";
  setenv("CONVLAB_MNIST_DIR", mnist.c_str(), 1);
  const json config = load_config(testing::source_path("configs/mnist_classifier.json"),
                                  {"train.steps=3", "train.batch_size=8", "train.batch_shards=2", "train.eval_every=3",
                                   "train.log_every=1", "data.train_size=20", "data.test_size=10"});
  const std::string one_dir = testing::temp_dir("cls_shards_one"), two_dir = testing::temp_dir("cls_shards_two");
  const std::string err_one = error_of([&] { run_training(*make_training_task(config), TrainFlags{.runs_dir = one_dir}); });
  std::string err[2];
  two_ranks([&](int r, ThreadComm& comm) {
    err[r] = error_of([&] { run_training(*make_training_task(config), TrainFlags{.runs_dir = two_dir, .comm = &comm}); });
  });
  if (before) setenv("CONVLAB_MNIST_DIR", saved.c_str(), 1);
  else unsetenv("CONVLAB_MNIST_DIR");
  ASSERT_EQ(err_one, "(no error)");
  ASSERT_EQ(err[0], "(no error)");
  ASSERT_EQ(err[1], "(no error)");
  EXPECT_TRUE(tensor_bytes(one_dir + "/mnist_classifier/model.safetensors") ==
              tensor_bytes(two_dir + "/mnist_classifier/model.safetensors"));
  const auto l1 = losses(one_dir + "/mnist_classifier/metrics.jsonl"), l2 = losses(two_dir + "/mnist_classifier/metrics.jsonl");
  EXPECT_EQ(l1.size(), 4u);  // 3 log rows and the evaluation's loss
  EXPECT_EQ(l1, l2);
}

TEST(Shards, AGlobalBatchTheRanksCannotSplitIsRefusedNamingBothNumbers) {
  const json config = load_config(testing::source_path("configs/hdc_seg.json"),
                                  {"train.steps=1", "train.batch_size=5", "data.image_size=32", "data.val_size=8"});
  const std::string dir = testing::temp_dir("shards_refused");
  std::string err[2];
  two_ranks([&](int r, ThreadComm& comm) {
    err[r] = error_of([&] { run_training(*segmentation_training(config), TrainFlags{.runs_dir = dir, .comm = &comm}); });
  });
  for (int r = 0; r < 2; ++r)
    EXPECT_NE(err[r].find("a global batch of 5 cannot be split evenly over 2 processes"), std::string::npos) << err[r];
  EXPECT_FALSE(std::filesystem::exists(dir + "/hdc_seg/model.safetensors"));
}

}  // namespace
}  // namespace convlab
