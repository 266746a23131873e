// tests/test_data.cpp: the data layer. Shapes: determinism, class set, pixel shares (printed), 1 px lines,
// bucket/label agreement. Batching: determinism, image/label alignment under flips and crops, epoch
// order. Safetensors: round trip and refusal of each kind of bad file. PNG: round trip and refusals.
// MNIST / digit scenes: skipped (GTEST_SKIP) when data/mnist is absent, as on CI.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <omp.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "core/error.h"
#include "data/batch.h"
#include "data/digit_scenes.h"
#include "data/files.h"
#include "data/jpeg.h"
#include "data/png.h"
#include "data/safetensors.h"
#include "data/shapes.h"
#include "tests/testing.h"

namespace convlab {
namespace {

namespace fs = std::filesystem;

// A scratch folder per test process, removed at exit.
const fs::path& temp_dir() {
  static const struct Dir {
    fs::path p = fs::temp_directory_path() / ("convlab_data_" + std::to_string(::getpid()));
    Dir() { fs::create_directories(p); }
    ~Dir() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } dir;
  return dir.p;
}

// Runs f and expects a convlab::Error whose message contains every string in `parts`.
template <class F>
void expect_error(F&& f, const std::vector<std::string>& parts, const std::string& what) {
  try {
    f();
    ADD_FAILURE() << what << ": no error thrown";
  } catch (const Error& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << what << ": " << e.what();
  }
}

bool same_sample(const SegSample& a, const SegSample& b) {
  return a.H == b.H && a.W == b.W && a.label == b.label && a.bucket == b.bucket &&
         a.image.to_vector() == b.image.to_vector();
}

// ---------------------------------------------------------------- shapes

TEST(DataShapes, SampleIsAPureFunctionOfSeedAndIndex) {
  ShapesDataset a({.seed = 7}), b({.seed = 7}), c({.seed = 8});
  const SegSample s5 = a.get(5);
  a.get(3);
  EXPECT_TRUE(same_sample(s5, a.get(5)));
  EXPECT_TRUE(same_sample(s5, b.sample(5)));
  EXPECT_FALSE(same_sample(s5, a.get(6)));
  EXPECT_FALSE(same_sample(s5, c.get(5)));
  EXPECT_EQ(s5.image.shape(), Shape({3, 64, 64}));
  for (float v : s5.image.to_vector()) ASSERT_TRUE(v >= 0.f && v <= 1.f);
}

TEST(DataShapes, ClassPixelSharesAndBuckets) {
  ShapesDataset ds;
  const auto names = ds.class_names();
  ASSERT_EQ(names, (std::vector<std::string>{"background", "disc", "square", "triangle", "ring", "line"}));
  const auto sh = class_pixel_shares(ds, 64);
  const auto bs = bucket_pixel_shares(ds, 64);
  std::string msg = "shapes pixel shares over 64 samples:";
  for (size_t c = 0; c < sh.size(); ++c) msg += " " + names[c] + " " + std::to_string(sh[c]).substr(0, 6);
  msg += "\nsize buckets:";
  for (int b = 0; b < kNumBuckets; ++b)
    msg += std::string(" ") + bucket_name(b) + " " + std::to_string(bs[b]).substr(0, 6);
  std::printf("%s\n", msg.c_str());
  EXPECT_GT(sh[0], 0.55);
  EXPECT_LT(sh[0], 0.85);
  for (size_t c = 1; c <= 4; ++c) EXPECT_GT(sh[c], 0.035) << names[c];
  EXPECT_GT(sh[5], 0.05) << "lines must own >= 5% of the pixels";
  for (int b = 1; b < kNumBuckets; ++b) EXPECT_GT(bs[b], 0.01) << bucket_name(b);
  // Buckets agree with labels: background <-> 0, line <-> thin, shapes <-> small/medium/large.
  for (int64_t i = 0; i < 16; ++i) {
    const SegSample s = ds.get(i);
    for (int64_t p = 0; p < s.H * s.W; ++p) {
      const int32_t l = s.label[p], b = s.bucket[p];
      ASSERT_EQ(l == 0, b == kBucketBackground) << "sample " << i << " pixel " << p;
      ASSERT_EQ(l == 5, b == kBucketThin) << "sample " << i << " pixel " << p;
    }
  }
}

TEST(DataShapes, LinesAreOnePixelThin) {
  // A single line per image: no 2x2 block may be all line (an 8-connected 1 px curve never fills one).
  ShapesDataset ds({.seed = 3, .classes = {"line"}, .line_share = 0.01f, .max_lines = 1});
  ASSERT_EQ(ds.num_classes(), 2);
  int64_t line_px = 0;
  for (int64_t i = 0; i < 64; ++i) {
    const SegSample s = ds.get(i);
    for (int64_t y = 0; y + 1 < s.H; ++y)
      for (int64_t x = 0; x + 1 < s.W; ++x) {
        const int32_t* l = s.label.data() + y * s.W + x;
        ASSERT_FALSE(l[0] && l[1] && l[s.W] && l[s.W + 1]) << "2x2 line block, sample " << i;
      }
    for (int32_t l : s.label) line_px += l;
  }
  EXPECT_GT(line_px, 64 * 22) << "a line spans at least half the image (>= 22 px along its major axis)";
}

TEST(DataShapes, ClassSubsetSizesAndOptionErrors) {
  ShapesDataset ds({.image_size = 32, .classes = {"square", "disc"}});
  EXPECT_EQ(ds.class_names(), (std::vector<std::string>{"background", "square", "disc"}));
  std::set<int32_t> seen;
  for (int64_t i = 0; i < 16; ++i) {
    const SegSample s = ds.get(i);
    EXPECT_EQ(s.image.shape(), Shape({3, 32, 32}));
    seen.insert(s.label.begin(), s.label.end());
  }
  EXPECT_EQ(seen, (std::set<int32_t>{0, 1, 2}));
  EXPECT_EQ(ShapesDataset({.image_size = 96}).get(0).image.shape(), Shape({3, 96, 96}));
  expect_error([] { ShapesDataset({.classes = {"disc", "star"}}); }, {"unknown class 'star'"}, "unknown class");
  expect_error([] { ShapesDataset({.classes = {"disc", "disc"}}); }, {"listed twice"}, "duplicate class");
  expect_error([] { ShapesDataset({.size = 10}).get(10); }, {"out of range"}, "index");
}

// ---------------------------------------------------------------- batching

// image channel c at (y, x) = 1000 c + y W + x, label = y W + x, bucket = (y W + x) % 5: after any crop
// or flip every output pixel must still carry matching values, and neighbours must differ by +-1 / +-W.
class CodedDataset : public SegDataset {
 public:
  explicit CodedDataset(int64_t h = 10, int64_t w = 12) : H_(h), W_(w) {}
  int64_t size() const override { return 8; }
  int64_t num_classes() const override { return H_ * W_; }
  std::vector<std::string> class_names() const override { return {}; }
  SegSample get(int64_t) const override {
    SegSample s;
    s.H = H_;
    s.W = W_;
    s.image = Tensor::empty({3, H_, W_});
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t p = 0; p < H_ * W_; ++p) s.image.data()[c * H_ * W_ + p] = static_cast<float>(1000 * c + p);
    for (int64_t p = 0; p < H_ * W_; ++p) {
      s.label.push_back(static_cast<int32_t>(p));
      s.bucket.push_back(static_cast<int32_t>(p % 5));
    }
    return s;
  }
  int64_t H_, W_;
};

TEST(DataBatch, FlipsAndCropsKeepImageAndLabelsAligned) {
  CodedDataset ds;
  Rng rng(11);
  int hflips = 0, vflips = 0;
  std::set<int32_t> corners;
  for (int rep = 0; rep < 8; ++rep) {
    const SegBatch b = make_batch(ds, {0, 1, 2, 3, 4, 5, 6, 7}, {.hflip = true, .vflip = true, .crop = 6}, rng);
    ASSERT_EQ(b.images.shape(), Shape({8, 3, 6, 6}));
    for (int64_t n = 0; n < b.B; ++n) {
      const int32_t* l = b.labels.data() + n * 36;
      for (int64_t p = 0; p < 36; ++p) {
        for (int64_t c = 0; c < 3; ++c)
          ASSERT_EQ(b.images.data()[(n * 3 + c) * 36 + p], static_cast<float>(1000 * c + l[p]));
        ASSERT_EQ(b.buckets[n * 36 + p], l[p] % 5);
      }
      const int32_t dx = l[1] - l[0], dy = l[6] - l[0];
      ASSERT_TRUE(std::abs(dx) == 1 && std::abs(dy) == 12) << "not a flipped crop: dx " << dx << " dy " << dy;
      for (int64_t y = 0; y < 6; ++y)
        for (int64_t x = 0; x < 6; ++x) ASSERT_EQ(l[y * 6 + x], l[0] + y * dy + x * dx);
      hflips += dx < 0;
      vflips += dy < 0;
      corners.insert(l[0]);
    }
  }
  EXPECT_GT(hflips, 8);  // 64 draws of p = 1/2
  EXPECT_GT(vflips, 8);
  EXPECT_GT(corners.size(), 10u);  // crops land in many places
}

TEST(DataBatch, DeterministicAndEqualToSamplesWithoutAugmentation) {
  ShapesDataset ds({.seed = 5});
  Rng r1(3), r2(3);
  const Augment aug{.hflip = true, .vflip = true, .crop = 48};
  omp_set_num_threads(1);
  const SegBatch a = make_batch(ds, {4, 9, 2}, aug, r1);
  omp_set_num_threads(2);
  const SegBatch b = make_batch(ds, {4, 9, 2}, aug, r2);
  EXPECT_EQ(a.images.to_vector(), b.images.to_vector()) << "1 vs 2 threads";
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.buckets, b.buckets);
  const SegBatch plain = make_batch(ds, {4, 9});
  const SegSample s9 = ds.get(9);
  const std::vector<float> v = plain.images.to_vector(), w = s9.image.to_vector();
  EXPECT_TRUE(std::equal(w.begin(), w.end(), v.begin() + 3 * 64 * 64));
  EXPECT_TRUE(std::equal(s9.label.begin(), s9.label.end(), plain.labels.begin() + 64 * 64));
  Rng r(0);
  expect_error([&] { make_batch(ds, {0}, {.crop = 65}, r); }, {"smaller than the crop 65x65"}, "crop");
  expect_error([&] { make_batch(ds, {}); }, {"no indices"}, "empty batch");
}

TEST(DataBatch, EpochOrderIsASeededPermutationPerEpoch) {
  EpochOrder order(10, 42);
  const auto p0 = order.permutation(0), p1 = order.permutation(1);
  EXPECT_EQ(std::set<int64_t>(p0.begin(), p0.end()).size(), 10u);
  EXPECT_EQ(p0, EpochOrder(10, 42).permutation(0));
  EXPECT_NE(p0, p1);
  EXPECT_NE(p0, EpochOrder(10, 43).permutation(0));
  EXPECT_EQ(order.batches_per_epoch(3), 3);  // drop_last: index p[9] is not used in epoch 0
  EXPECT_EQ(order.batch(2, 3), std::vector<int64_t>(p0.begin() + 6, p0.begin() + 9));
  EXPECT_EQ(order.batch(3, 3), std::vector<int64_t>(p1.begin(), p1.begin() + 3));
  expect_error([&] { order.batch(0, 11); }, {"batch size"}, "batch too large");
}

// ---------------------------------------------------------------- safetensors

NamedTensors sample_tensors() {
  return {{"stem.weight", testing::random_tensor({4, 3, 3, 3}, 1)},
          {"stem.bias", Tensor::from({4}, {1.f, -2.5f, 3e-8f, 0.f})},
          {"bn.num_batches_tracked", Tensor::from({}, {17.f})},
          {"empty", Tensor::empty({0, 5})}};
}

TEST(Safetensors, RoundTripKeepsNamesOrderShapesValuesAndMetadata) {
  const std::string path = (temp_dir() / "rt.safetensors").string();
  const NamedTensors in = sample_tensors();
  safetensors::save(path, in, {{"config", "{\"a\": 1}"}, {"step", "600"}});
  const safetensors::File f = safetensors::load(path);
  ASSERT_EQ(f.tensors.size(), in.size());
  for (size_t k = 0; k < in.size(); ++k) {
    EXPECT_EQ(f.tensors[k].first, in[k].first);
    EXPECT_EQ(f.tensors[k].second.shape(), in[k].second.shape());
    EXPECT_EQ(f.tensors[k].second.to_vector(), in[k].second.to_vector()) << in[k].first;
  }
  EXPECT_EQ(f.metadata.at("step"), "600");
  EXPECT_EQ(f.metadata.at("config"), "{\"a\": 1}");
  const std::string bytes = read_file_bytes(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u) << "data section must be 8-byte aligned";
  for (const auto& e : fs::directory_iterator(temp_dir()))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << "temp file left: " << e.path();
  // copy_into fills tensors that share storage with a model; refuses mismatches before copying anything.
  NamedTensors model = sample_tensors();
  for (auto& [name, t] : model) std::fill(t.data(), t.data() + t.numel(), 0.f);
  safetensors::copy_into(f, model, path);
  EXPECT_EQ(model[0].second.to_vector(), in[0].second.to_vector());
  NamedTensors wrong = {{"stem.weight", Tensor::zeros({4, 3, 1, 1})}};
  expect_error([&] { safetensors::copy_into(f, wrong, path); }, {"stem.weight", "[4,3,3,3]", "[4,3,1,1]"}, "shape");
  NamedTensors fewer(in.begin(), in.begin() + 3);
  expect_error([&] { safetensors::copy_into(f, fewer, path); }, {"unexpected tensor 'empty'"}, "extra");
  expect_error([&] { safetensors::save(path, {{"a", in[1].second}, {"a", in[1].second}}); }, {"given twice"}, "dup");
}

// Rewrites a valid file's header (keeping the data) to produce each kind of bad file.
std::string with_header(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

TEST(Safetensors, RefusesTruncatedCorruptedAndForeignFiles) {
  const fs::path dir = temp_dir();
  const std::string good_path = (dir / "good.safetensors").string();
  safetensors::save(good_path, {{"w", Tensor::from({2, 2}, {1, 2, 3, 4})}, {"b", Tensor::from({2}, {5, 6})}});
  const std::string good = read_file_bytes(good_path);
  const std::string data(24, '\0');  // room for w (16 bytes) + b (8 bytes)
  const std::string w = R"("w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]})";
  const std::string b = R"("b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]})";
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"empty file", "", "too short"},
      {"4 bytes", good.substr(0, 4), "too short"},
      {"cut in the header", good.substr(0, 20), "does not fit"},
      {"cut in the data", good.substr(0, good.size() - 3), "truncated"},
      {"trailing bytes", good + "xyz", "unexplained bytes"},
      {"png file", std::string("\x89PNG\r\n\x1a\n", 8) + std::string(64, '\0'), "does not fit"},
      {"text file", "hello world, this is not a checkpoint at all", "does not fit"},
      {"not json", with_header("{\"w\": nope}", data), "not valid JSON"},
      {"json array", with_header("[1, 2]", ""), "does not start with '{'"},
      {"wrong dtype", with_header(R"({"w":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]}})", data.substr(0, 8)),
       "dtype F16"},
      {"missing field", with_header(R"({"w":{"dtype":"F32","shape":[2,2]}})", ""),
       "needs dtype, shape and data_offsets"},
      {"size mismatch",
       with_header(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}})", data.substr(0, 16)),
       "needs 24 bytes"},
      {"negative shape", with_header(R"({"w":{"dtype":"F32","shape":[-2,2],"data_offsets":[0,16]}})", data),
       "bad shape"},
      {"overlap",
       with_header("{" + w + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", data.substr(0, 16)),
       "overlaps"},
      {"gap", with_header("{" + w + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[20,28]}})", data + "1234"),
       "gap"},
      {"past the end", with_header("{" + w + "," + b + "}", data.substr(0, 20)), "runs past the end"},
      {"duplicate name", with_header("{" + w + "," + w + "}", data.substr(0, 16)), "appears twice"},
      {"bad metadata", with_header(R"({"__metadata__":{"step":3}})", ""), "not a string"},
  };
  for (const auto& [what, bytes, expect] : cases) {
    const std::string path = (dir / "bad.safetensors").string();
    write_file_bytes_atomic(path, bytes);
    expect_error([&] { safetensors::load(path); }, {"checkpoint " + path + ": ", expect}, what);
  }
  expect_error([&] { safetensors::load((dir / "absent.safetensors").string()); }, {"cannot open"}, "missing file");
  EXPECT_NO_THROW(safetensors::load(good_path));
}

TEST(Safetensors, CountersAreInt64ScalarsAsPyTorchWritesThem) {
  const fs::path dir = temp_dir();
  const std::string path = (dir / "bn.safetensors").string();
  safetensors::save(path, {{"1.running_mean", Tensor::from({2}, {0.5f, -1.f})},
                           {"1.num_batches_tracked", Tensor::from({}, {600.f})}});
  const std::string bytes = read_file_bytes(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  const nlohmann::json header = nlohmann::json::parse(bytes.substr(8, n));
  EXPECT_EQ(header["1.num_batches_tracked"]["dtype"], "I64");
  EXPECT_EQ(header["1.num_batches_tracked"]["shape"], nlohmann::json::array());
  EXPECT_EQ(header["1.running_mean"]["dtype"], "F32");
  int64_t stored = 0;
  std::memcpy(&stored, bytes.data() + 8 + n + header["1.num_batches_tracked"]["data_offsets"][0].get<size_t>(), 8);
  EXPECT_EQ(stored, 600);
  const safetensors::File f = safetensors::load(path);
  EXPECT_EQ(f.find("1.num_batches_tracked")->to_vector(), std::vector<float>{600.f});
  EXPECT_TRUE(safetensors::is_int64_name("num_batches_tracked"));
  EXPECT_FALSE(safetensors::is_int64_name("my_num_batches_tracked"));
  // An old convlab checkpoint (float32 [1]) loads into today's [] buffer, and the reverse.
  const std::string old_path = (dir / "old.safetensors").string();
  write_file_bytes_atomic(old_path, with_header(R"({"1.num_batches_tracked":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                                                std::string("\x00\x00\x16\x44", 4)));  // 600.0f
  NamedTensors target = {{"1.num_batches_tracked", Tensor::zeros({})}};
  safetensors::copy_into(safetensors::load(old_path), target, old_path);
  EXPECT_EQ(target[0].second.to_vector(), std::vector<float>{600.f});
  NamedTensors two = {{"1.num_batches_tracked", Tensor::zeros({2})}};
  expect_error([&] { safetensors::copy_into(safetensors::load(old_path), two, old_path); }, {"[1]", "[2]"}, "2 != 1");
  // Counters that are not counts are refused before writing; I64 values beyond float32's exact range on load.
  expect_error([&] { safetensors::save(path, {{"num_batches_tracked", Tensor::from({}, {1.5f})}}); },
               {"num_batches_tracked", "counter", "1.5"}, "fraction");
  std::string big(8, '\0');
  const int64_t v = (int64_t(1) << 24) + 1;
  std::memcpy(big.data(), &v, 8);
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"I64 too large", with_header(R"({"n":{"dtype":"I64","shape":[],"data_offsets":[0,8]}})", big), "2^24"},
      {"I64 sized as F32", with_header(R"({"n":{"dtype":"I64","shape":[1],"data_offsets":[0,4]}})", big.substr(0, 4)),
       "needs 8 bytes of I64"},
      {"I64 cut", with_header(R"({"n":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", big), "runs past the end"},
  };
  for (const auto& [what, data, expect] : cases) {
    write_file_bytes_atomic(path, data);
    expect_error([&] { safetensors::load(path); }, {"checkpoint " + path + ": ", expect}, what);
  }
}

// ---------------------------------------------------------------- JPEG (libjpeg-turbo, data/jpeg.h)

TEST(Jpeg, DecodesBaselineProgressiveAndGreyCloseToTheSource) {
  const PngImage png = read_png(testing::source_path("tests/data/jpeg/gradient.png"));
  for (const char* name : {"gradient.jpg", "gradient_progressive.jpg"}) {
    const PngImage j = read_image(testing::source_path(std::string("tests/data/jpeg/") + name));
    ASSERT_EQ(j.W, 24) << name;
    ASSERT_EQ(j.H, 16) << name;
    ASSERT_EQ(j.channels, 3) << name;
    int worst = 0;
    for (size_t k = 0; k < j.pixels.size(); ++k) worst = std::max(worst, std::abs(int(j.pixels[k]) - int(png.pixels[k])));
    EXPECT_LE(worst, 16) << name << ": quality 95 of a smooth gradient";
  }
  const PngImage g = read_image(testing::source_path("tests/data/jpeg/gradient_grey.jpg"));
  ASSERT_EQ(g.channels, 3);
  for (size_t k = 0; k < g.pixels.size(); k += 3) ASSERT_TRUE(g.pixels[k] == g.pixels[k + 1] && g.pixels[k] == g.pixels[k + 2]);
}

TEST(Jpeg, MalformedFilesAreOneErrorNamingTheFile) {
  const std::string dir = testing::source_path("tests/data/jpeg/");
  expect_error([&] { read_image(dir + "gradient_truncated.jpg"); }, {"image " + dir + "gradient_truncated.jpg: corrupt or unsupported JPEG ("}, "cut");
  expect_error([&] { read_image(dir + "gradient_cmyk.jpg"); }, {"gradient_cmyk.jpg: CMYK JPEG is not supported"}, "cmyk");
  expect_error([&] { decode_image(std::string("\xFF\xD8\xFF", 3) + std::string(40, 'x'), "junk"); }, {"image junk: corrupt"}, "junk");
  expect_error([&] { decode_image(std::string("\xFF\xD8\xFF", 3), "soi"); }, {"image soi: corrupt"}, "soi only");
  // A header claiming 20000 x 20000 px: refused before any pixel is allocated.
  std::string big = read_file_bytes(dir + "gradient.jpg");
  const size_t sof = big.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  big[sof + 5] = big[sof + 7] = char(0x4E);  // height, width = 0x4E20 = 20000
  big[sof + 6] = big[sof + 8] = char(0x20);
  expect_error([&] { decode_image(big, "big"); }, {"image big: image 20000x20000 is larger than 16384"}, "huge");
  expect_error([&] { read_png(dir + "gradient.jpg"); }, {"not a PNG file"}, "read_png stays PNG-only");
}

// ---------------------------------------------------------------- PNG

TEST(Png, RoundTripHelpersAndRefusals) {
  const fs::path dir = temp_dir();
  RgbImage img(5, 3);
  for (size_t k = 0; k < img.rgb.size(); ++k) img.rgb[k] = static_cast<uint8_t>(k * 37 % 256);
  const std::string path = (dir / "rt.png").string();
  write_png(path, img);
  const PngImage back = read_png(path);
  EXPECT_EQ(back.W, 5);
  EXPECT_EQ(back.H, 3);
  EXPECT_EQ(back.channels, 3);
  EXPECT_EQ(back.pixels, img.rgb);
  EXPECT_EQ(to_rgb(back).rgb, img.rgb);
  // [1, H, W] in [-1, 1] -> grey bytes; [3, H, W] in [0, 1] -> RGB.
  const RgbImage g = tensor_to_rgb(Tensor::from({1, 1, 3}, {-1.f, 0.f, 1.f}), -1.f, 1.f);
  EXPECT_EQ(g.rgb, (std::vector<uint8_t>{0, 0, 0, 128, 128, 128, 255, 255, 255}));
  const RgbImage c = tensor_to_rgb(Tensor::from({3, 1, 1}, {1.f, 0.5f, 2.f}));
  EXPECT_EQ(c.rgb, (std::vector<uint8_t>{255, 128, 255}));
  const int32_t labels[2] = {0, 3};
  const RgbImage lab = labels_to_rgb(labels, 1, 2);
  EXPECT_EQ(lab.rgb[0] + lab.rgb[1] + lab.rgb[2], 0);
  EXPECT_TRUE(std::equal(lab.rgb.begin() + 3, lab.rgb.end(), palette_colour(3).begin()));
  const RgbImage grid = compose_grid({{img, img, g}, {c}}, 2, 255);
  EXPECT_EQ(grid.W, 2 + 5 + 2 + 5 + 2 + 3 + 2);
  EXPECT_EQ(grid.H, 2 + 3 + 2 + 1 + 2);
  EXPECT_EQ(grid.at(0, 0)[0], 255);
  EXPECT_EQ(grid.at(2, 2)[1], img.rgb[1]);
  // Refusals: missing, not a PNG, truncated.
  expect_error([&] { read_png((dir / "absent.png").string()); }, {"png", "cannot open"}, "missing png");
  write_file_bytes_atomic((dir / "text.png").string(), "not a png");
  expect_error([&] { read_png((dir / "text.png").string()); }, {"not a PNG"}, "text as png");
  const std::string bytes = read_file_bytes(path);
  write_file_bytes_atomic((dir / "cut.png").string(), bytes.substr(0, bytes.size() / 2));
  expect_error([&] { read_png((dir / "cut.png").string()); }, {"cannot decode"}, "truncated png");
}

// ---------------------------------------------------------------- MNIST (skipped without data/mnist)

TEST(Mnist, MissingDataSaysHowToGetIt) {
  expect_error([] { load_mnist("/nonexistent/mnist"); }, {"/nonexistent/mnist/digits/0.json", "scripts/get_mnist.sh"},
               "missing mnist");
}

std::shared_ptr<const Mnist> mnist_or_null() {
  static const std::shared_ptr<const Mnist> m = [] {
    const char* env = std::getenv("CONVLAB_MNIST_DIR");  // lets a run point elsewhere (or at nothing)
    const std::string dir = env != nullptr && *env ? std::string(env) : testing::source_path("data/mnist");
    return mnist_available(dir) ? std::make_shared<const Mnist>(load_mnist(dir)) : nullptr;
  }();
  return m;
}

#define REQUIRE_MNIST(m)                                                                        \
  const auto m = mnist_or_null();                                                               \
  if (!m) GTEST_SKIP() << "data/mnist is absent (CI does not fetch it): run scripts/get_mnist.sh"

TEST(Mnist, LoadsTenThousandDigitsAndSplits) {
  REQUIRE_MNIST(m);
  ASSERT_EQ(m->size(), 10000);
  std::map<int32_t, int64_t> count;
  for (int32_t l : m->labels) ++count[l];
  EXPECT_EQ(count[0], 1001);
  EXPECT_EQ(count[1], 1127);
  EXPECT_EQ(count[9], 978);
  const auto train = mnist_indices(*m, MnistSplit::kTrain), test = mnist_indices(*m, MnistSplit::kTest);
  EXPECT_EQ(train.size() + test.size(), 10000u);
  EXPECT_EQ(test.size(), 1996u);
  Rng rng(1);
  const Tensor x = mnist_images(*m, {test[0], test[1]}, 2, &rng);
  ASSERT_EQ(x.shape(), Shape({2, 1, 28, 28}));
  float lo = 1, hi = -1;
  for (float v : x.to_vector()) lo = std::min(lo, v), hi = std::max(hi, v);
  EXPECT_EQ(lo, -1.f);
  EXPECT_GT(hi, 0.9f);
  EXPECT_EQ(mnist_labels(*m, {test[0]}), std::vector<int32_t>{0});
}

TEST(Mnist, DigitScenesAreDeterministicWithElevenClasses) {
  REQUIRE_MNIST(m);
  DigitScenes ds(m, {.seed = 4, .split = MnistSplit::kTest});
  EXPECT_EQ(ds.num_classes(), 11);
  EXPECT_EQ(ds.class_names()[10], "9");
  EXPECT_TRUE(same_sample(ds.get(3), DigitScenes(m, {.seed = 4, .split = MnistSplit::kTest}).get(3)));
  const auto sh = class_pixel_shares(ds, 200);
  std::string msg = "digit scenes pixel shares over 200 samples:";
  for (size_t c = 0; c < sh.size(); ++c) msg += " " + ds.class_names()[c] + " " + std::to_string(sh[c]).substr(0, 6);
  std::printf("%s\n", msg.c_str());
  for (size_t c = 1; c < sh.size(); ++c) EXPECT_GT(sh[c], 0.002) << "digit " << c - 1;
  const auto bs = bucket_pixel_shares(ds, 200);
  for (int b = kBucketSmall; b <= kBucketLarge; ++b) EXPECT_GT(bs[b], 0.003) << bucket_name(b);
  EXPECT_EQ(bs[kBucketThin], 0.0);
}

}  // namespace
}  // namespace convlab
