// tests/test_study.cpp: the study tools. Receptive fields and coverage maps against brute force (all paths
// enumerated explicitly in 1-D, and convlab's own conv2d / conv_transpose2d / upsample with all-ones weights
// pulled back from a one-hot output gradient); HDC verdicts; the transposed-conv size inverse; the
// convolution matrix of the spec's worked example; identities and gradient checks; one-line errors.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/error.h"
#include "models/config.h"
#include "models/receptive_field.h"
#include "tests/testing.h"
#include "data/files.h"
#include "data/picture.h"
#include "models/study/study.h"

namespace convlab {
namespace {

// ---- brute force ----

struct Sched {
  std::vector<int64_t> k, d, s, p;
};

// Every path from output index 0 back to the input, enumerated one by one (unbounded lattice).
std::map<int64_t, int64_t> enumerate_paths(const Sched& c) {
  std::map<int64_t, int64_t> count;
  std::function<void(size_t, int64_t)> go = [&](size_t layer, int64_t pos) {
    if (layer == 0) {
      ++count[pos];
      return;
    }
    const size_t l = layer - 1;
    for (int64_t j = 0; j < c.k[l]; ++j) go(l, pos * c.s[l] - c.p[l] + j * c.d[l]);
  };
  go(c.k.size(), 0);
  return count;
}

std::vector<RfLayer> to_layers(const Sched& c) {
  std::vector<RfLayer> out;
  for (size_t i = 0; i < c.k.size(); ++i) {
    RfLayer l;
    l.type = "conv2d", l.path = "layer " + std::to_string(i), l.top = static_cast<int64_t>(i);
    l.kernel = {c.k[i], c.k[i]}, l.dilation = {c.d[i], c.d[i]}, l.stride = {c.s[i], c.s[i]}, l.padding = {c.p[i], c.p[i]};
    out.push_back(l);
  }
  return out;
}

Sched random_sched(Rng& rng) {
  Sched c;
  const int64_t n = 1 + rng.randint(4);
  for (int64_t i = 0; i < n; ++i) {
    c.k.push_back(1 + rng.randint(5));
    c.d.push_back(1 + rng.randint(6));
    c.s.push_back(1 + rng.randint(2));
    c.p.push_back(rng.randint(c.d.back() * (c.k.back() - 1) / 2 + 2));
  }
  return c;
}

// x.grad of one output pixel through convlab's conv2d with all-ones weights: the exact path counts.
Tensor conv_paths(const Sched& c, int64_t S, Pair pixel) {
  Tensor x = Tensor::zeros({1, 1, S, S}).set_requires_grad(true);
  Tensor y = x;
  for (size_t i = 0; i < c.k.size(); ++i)
    y = conv2d(y, Tensor::ones({1, 1, c.k[i], c.k[i]}), Tensor(),
               Conv2dArgs{{c.s[i], c.s[i]}, {c.p[i], c.p[i]}, {c.d[i], c.d[i]}, 1});
  Tensor g = Tensor::zeros(y.shape());
  g.data()[pixel[0] * y.size(3) + pixel[1]] = 1.f;
  y.backward(g);
  return x.grad();
}

// The coverage map placed on the whole input (zeros outside its window).
std::vector<double> full_map(const RfAnalysis& a, int64_t S) {
  std::vector<double> m(static_cast<size_t>(S * S), 0.0);
  const CoverageMap& c = a.coverage;
  for (int64_t y = 0; y < c.H; ++y)
    for (int64_t x = 0; x < c.W; ++x) m[static_cast<size_t>((c.y0 + y) * S + c.x0 + x)] = c.at(y, x);
  return m;
}

TEST(Study, CoverageAndRfMatchPathEnumeration) {
  Rng rng(7);
  for (int trial = 0; trial < 30; ++trial) {
    const Sched c = random_sched(rng);
    const auto paths = enumerate_paths(c);
    const RfAnalysis a = analyse_stack(to_layers(c));  // unbounded, output pixel 0
    const int64_t lo = paths.begin()->first, hi = paths.rbegin()->first;
    SCOPED_TRACE("trial " + std::to_string(trial));
    ASSERT_EQ(a.coverage.y0, lo);
    ASSERT_EQ(a.coverage.H, hi - lo + 1);
    EXPECT_EQ(a.rows.back().rf[0], double(hi - lo + 1));                // theoretical rf = span of the paths
    EXPECT_DOUBLE_EQ(a.rows.back().start[0], 0.5 * double(lo + hi));     // centre of output 0's window
    int64_t holes = 0;
    for (int64_t y = 0; y < a.coverage.H; ++y)
      for (int64_t x = 0; x < a.coverage.W; ++x) {
        const auto py = paths.find(lo + y), px = paths.find(lo + x);
        const double want = py == paths.end() || px == paths.end() ? 0.0 : double(py->second * px->second);
        ASSERT_EQ(a.coverage.at(y, x), want) << "at " << y << "," << x;
        holes += want == 0;
      }
    EXPECT_EQ(a.holes, holes);
  }
}

TEST(Study, BoundedCoverageMatchesConv2dWithOnesWeights) {
  Rng rng(11);
  int checked = 0;
  for (int trial = 0; checked < 24; ++trial) {
    const Sched c = random_sched(rng);
    const int64_t S = 20 + rng.randint(30);
    std::vector<Pair> sizes;
    try {
      sizes = rf_sizes(to_layers(c), {S, S});
    } catch (const Error&) {
      continue;  // this schedule does not fit S
    }
    const Pair out = sizes.back(), pixel = {out[0] / 2, rng.randint(out[1])};
    const RfAnalysis a = analyse_stack(to_layers(c), {.input_size = {S, S}, .pixel = pixel});
    const Tensor want = conv_paths(c, S, pixel);
    const std::vector<double> got = full_map(a, S);
    for (int64_t i = 0; i < S * S; ++i) ASSERT_EQ(got[static_cast<size_t>(i)], double(want.data()[i])) << "trial " << trial << " pixel " << i;
    ++checked;
  }
}

TEST(Study, TransposedAndUpsampleCoverageMatchTheOps) {
  // conv (s2) -> conv_transpose2d (s2, output_padding 1) -> nearest x2 -> conv: all weights 1, counts exact.
  RfLayer c1{.type = "conv2d", .path = "c1", .kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}};
  RfLayer t1{.type = "conv_transpose2d", .path = "t1", .kind = RfKind::transposed, .kernel = {3, 3},
             .stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 1}};
  RfLayer up{.type = "upsample", .path = "up", .kind = RfKind::nearest, .scale = std::array<double, 2>{2.0, 2.0}};
  RfLayer c2{.type = "conv2d", .path = "c2", .kernel = {3, 3}, .padding = {2, 2}, .dilation = {2, 2}};
  const int64_t S = 12;
  for (const Pair pixel : {Pair{12, 12}, Pair{13, 10}, Pair{0, 23}}) {
    const RfAnalysis a = analyse_stack({c1, t1, up, c2}, {.input_size = {S, S}, .pixel = pixel});
    Tensor x = Tensor::zeros({1, 1, S, S}).set_requires_grad(true);
    Tensor y = conv2d(x, Tensor::ones({1, 1, 3, 3}), Tensor(), Conv2dArgs{{2, 2}, {1, 1}, {1, 1}, 1});
    y = conv_transpose2d(y, Tensor::ones({1, 1, 3, 3}), Tensor(), ConvTranspose2dArgs{{2, 2}, {1, 1}, {1, 1}, {1, 1}, 1});
    y = upsample(y, UpsampleArgs{.scale = std::array<double, 2>{2.0, 2.0}});
    y = conv2d(y, Tensor::ones({1, 1, 3, 3}), Tensor(), Conv2dArgs{{1, 1}, {2, 2}, {2, 2}, 1});
    ASSERT_EQ(y.size(2), a.output_size[0]);
    Tensor g = Tensor::zeros(y.shape());
    g.data()[pixel[0] * y.size(3) + pixel[1]] = 1.f;
    y.backward(g);
    const std::vector<double> got = full_map(a, S);
    for (int64_t i = 0; i < S * S; ++i) ASSERT_EQ(got[static_cast<size_t>(i)], double(x.grad().data()[i])) << i;
  }
  // Bilinear (fractional weights): the reached pixels are those with a non-zero gradient.
  RfLayer bl{.type = "upsample", .path = "bl", .kind = RfKind::bilinear, .scale = std::array<double, 2>{1.5, 1.5}};
  const RfAnalysis a = analyse_stack({bl, c2}, {.input_size = {7, 7}, .pixel = Pair{5, 7}});
  Tensor x = Tensor::zeros({1, 1, 7, 7}).set_requires_grad(true);
  Tensor y = conv2d(upsample(x, UpsampleArgs{.mode = UpsampleMode::bilinear, .scale = std::array<double, 2>{1.5, 1.5}}),
                    Tensor::ones({1, 1, 3, 3}), Tensor(), Conv2dArgs{{1, 1}, {2, 2}, {2, 2}, 1});
  Tensor g = Tensor::zeros(y.shape());
  g.data()[5 * y.size(3) + 7] = 1.f;
  y.backward(g);
  const std::vector<double> got = full_map(a, 7);
  for (int64_t i = 0; i < 49; ++i) EXPECT_EQ(got[static_cast<size_t>(i)] != 0, x.grad().data()[i] != 0) << i;
}

TEST(Study, HdcVerdicts) {
  const HdcVerdict ok = hdc_check(3, {1, 2, 5});
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.M2, 2);
  const HdcVerdict grid = hdc_check(3, {2, 2, 2});
  EXPECT_TRUE(grid.formula_ok);  // M_2 = 2 <= 3: the formula alone misses gridding
  EXPECT_EQ(grid.M2, 2);
  EXPECT_EQ(grid.common_factor, 2);
  EXPECT_FALSE(grid.ok());
  const HdcVerdict far = hdc_check(3, {1, 2, 9});
  EXPECT_FALSE(far.formula_ok);
  EXPECT_EQ(far.M2, 5);
  EXPECT_EQ(far.common_factor, 1);
  const HdcVerdict cf = hdc_check(3, {2, 4, 8});
  EXPECT_EQ(cf.common_factor, 2);
  EXPECT_FALSE(cf.ok());
  // The coverage is the ground truth: [2,2,2] has holes, [1,2,5] none.
  const RfAnalysis g = analyse_stack(rf_schedule({3}, {2, 2, 2}, {}));
  EXPECT_EQ(g.holes, 169 - 49);  // 7 of 13 positions per axis
  EXPECT_EQ(analyse_stack(rf_schedule({3}, {1, 2, 5}, {})).holes, 0);
  EXPECT_GT(analyse_stack(rf_schedule({3}, {1, 2, 9}, {})).holes, 0);
}

TEST(Study, ConfigsAndGriddingLint) {
  const auto grid = load_config(testing::source_path("configs/gridding_seg.json"));
  const RfModel m = rf_model(grid);
  EXPECT_EQ(analyse_stack(m.layers, {.input_size = m.input_size}).holes, 0);  // the stem fills the holes
  const std::vector<RfLayer> stack(m.layers.begin() + 1, m.layers.end());     // from model.layers[3]
  const RfAnalysis a = analyse_stack(stack, {.input_size = m.input_size});
  EXPECT_NEAR(a.hole_share, 1 - (13.0 / 25) * (13.0 / 25), 1e-12);  // 72.96%
  EXPECT_EQ(a.rows.back().rf[0], 25);
  ASSERT_EQ(gridding_warnings(grid).size(), 1u);
  EXPECT_NE(gridding_warnings(grid)[0].find("72.96%"), std::string::npos) << gridding_warnings(grid)[0];
  for (const char* clean : {"hdc_seg", "rfmatched_seg", "plain_seg", "downup_seg"})
    EXPECT_TRUE(gridding_warnings(load_config(testing::source_path(std::string("configs/") + clean + ".json"))).empty()) << clean;
  const auto hdc = load_config(testing::source_path("configs/hdc_seg.json"));
  const RfModel h = rf_model(hdc);
  const auto runs = dilated_runs(h.layers);
  ASSERT_EQ(runs.size(), 1u);
  const RunHdc v = run_hdc(h.layers, runs[0], 1);  // from model.layers[3] (flat index 1): 1,2,5,1,2,5
  EXPECT_FALSE(v.sequence.formula_ok);             // M_2 = 5 over the whole sequence...
  ASSERT_TRUE(v.group.has_value());
  EXPECT_TRUE(v.group->ok());                      // ...while one group [1,2,5] passes, as the paper applies it
}

TEST(Study, SizeInverseRoundTrips) {
  Rng rng(3);
  for (int t = 0; t < 40; ++t) {
    const int64_t in = 1 + rng.randint(20), k = 1 + rng.randint(5), s = 1 + rng.randint(3), out = 1 + rng.randint(60);
    const auto sol = transposed_solutions(in, out, k, s);
    size_t brute = 0;  // PyTorch's rule, written out
    for (int64_t d = 1; d <= 4; ++d)
      for (int64_t p = 0; p <= k * d; ++p)
        for (int64_t op = 0; op < std::max(s, d); ++op) brute += (in - 1) * s - 2 * p + d * (k - 1) + op + 1 == out;
    EXPECT_EQ(sol.size(), brute);
    for (const auto& x : sol) {
      const ConvTranspose2dArgs a{{s, s}, {x.padding, x.padding}, {x.output_padding, x.output_padding}, {x.dilation, x.dilation}, 1};
      EXPECT_EQ(conv_transpose2d_dims({1, 1, in, in}, {1, 1, k, k}, nullptr, a).H, out);
    }
  }
  EXPECT_EQ(size_command({.op = "conv2d", .in = 64, .kernel = 3, .stride = 2, .padding = 1}).json["out"], 32);
  EXPECT_EQ(size_command({.op = "max_pool2d", .in = 7, .kernel = 2, .stride = 2, .ceil_mode = true}).json["out"], 4);
  EXPECT_EQ(size_command({.op = "conv_transpose2d", .in = 16, .out = 100, .kernel = 3, .stride = 2}).json["solutions"].size(), 0u);
}

TEST(Study, MatrixOfTheWorkedExample) {
  const MatrixCommand c{.case_path = testing::source_path("configs/examples/worked_example.case.json")};
  const Tensor C = conv_matrix(parse_case(read_text_file(c.case_path)));
  ASSERT_EQ(shape_str(C.shape()), "[4,16]");
  const std::vector<float> row0 = {1, 4, 1, 0, 1, 4, 3, 0, 3, 3, 1, 0, 0, 0, 0, 0};
  EXPECT_EQ(std::vector<float>(C.data(), C.data() + 16), row0);
  const auto j = matrix_command(c).json;
  const std::vector<double> want = {122, 636, 714, 148, 248, 1274, 1620, 578, 492, 1448, 1480, 550, 378, 780, 528, 134};
  EXPECT_EQ(j["transpose_times_y"]["data"].get<std::vector<double>>(), want);
  EXPECT_EQ(j["Cx"]["data"].get<std::vector<double>>(), std::vector<double>({122, 148, 126, 134}));
  for (const auto& [k, v] : j["max_abs_diff"].items()) EXPECT_EQ(v.get<double>(), 0.0) << k;
}

TEST(Study, IdentitiesAndGradchecksPass) {
  const StudyResult id = identities_command({});
  EXPECT_TRUE(id.ok) << id.text;
  EXPECT_EQ(id.json["identities"].size(), 8u);
  for (const OpSpec& s : op_specs()) EXPECT_NO_THROW(default_case(s.name)) << s.name << " has no default gradcheck case";
  const StudyResult g = gradcheck_command({.all = true});
  EXPECT_TRUE(g.ok) << g.text;
}

std::string write_temp(const std::string& name, const std::string& text) {
  const auto p = std::filesystem::temp_directory_path() / ("convlab_study_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(p) << text;
  return p.string();
}

// exit code, stdout, stderr of the convlab executable
std::array<std::string, 3> cli(const std::string& args) {
  const std::string o = write_temp("out", ""), e = write_temp("err", "");
  const int st = std::system((std::string(CONVLAB_BINARY) + " " + args + " >" + o + " 2>" + e).c_str());
  return {std::to_string(WEXITSTATUS(st)), read_text_file(o), read_text_file(e)};
}

TEST(Study, ErrorsAreOneClearLine) {
  EXPECT_THROW(rf_schedule({3}, {1, 0, 2}, {}), Error);
  EXPECT_THROW(rf_schedule({0}, {1}, {}), Error);
  EXPECT_THROW(hdc_check(3, {-1}), Error);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"rf --dilations 1,0,2", "rf: dilation must be >= 1, got 0 (layer 1)"},
      {"rf --dilations 1,-2", "rf: dilation must be >= 1, got -2"},
      {"rf --kernel 0 --dilations 1,2", "rf: kernel must be >= 1, got 0"},
      {"rf " + write_temp("c.json", R"({"model": {"layers": [{"type": "conv2d", "out_channels": 2, "kernel_size": 3, "dilation": 0}]}})"),
       "model.layers[0].dilation: expected a positive integer, got 0"},
      {"size --in 5 -k 0", "size: --kernel must be >= 1, got 0"},
      {"size --in 5 -d 0", "size: --dilation must be >= 1, got 0"},
      {"matrix " + write_temp("big.json", R"({"op": "conv2d", "tensors": {"input": {"shape": [1,2,8,8], "random": 1},
          "weight": {"shape": [2,2,3,3], "random": 2}}})"), "entries (> 4096)"},
      {"matrix " + write_temp("up.json", R"({"op": "upsample", "scale_factor": 2, "tensors": {"input": {"shape": [1,1,2,2], "random": 1}}})"),
       "only conv2d"},
      {"gradcheck --op conv3d", "unknown --op 'conv3d'"},
  };
  for (const auto& [args, fragment] : bad) {
    const auto [code, out, err] = cli(args);
    EXPECT_EQ(code, "2") << args;
    EXPECT_TRUE(out.empty()) << args;
    EXPECT_NE(err.find(fragment), std::string::npos) << args << " -> " << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  }
}

TEST(Study, CliJsonAndPng) {
  const std::string png = write_temp("cov.png", "");
  const auto [code, out, err] = cli("rf --kernel 3 --dilations 2,2,2 --json -o " + png);
  ASSERT_EQ(code, "0") << err;
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["coverage"]["holes"], 120);
  EXPECT_EQ(j["hdc"][0]["sequence"]["formula_ok"], true);
  EXPECT_EQ(j["hdc"][0]["sequence"]["ok"], false);
  // The coverage heatmap (13x13 cells) under its title and over its colour bar (data/picture.h).
  const RgbImage pic = to_rgb(read_png(png));
  const int64_t side = 13 * cell_size(13, 13);
  std::vector<double> counts;
  for (const auto& row : j["coverage"]["counts"])
    for (double v : row) counts.push_back(v);
  const RgbImage bare = heatmap(counts, 13, 13, {230, 30, 30}, cell_size(13, 13));
  const auto [y0, x0] = annotated_map_origin(text_scale_for(side));
  ASSERT_GE(pic.H, y0 + side);
  for (int64_t y = 0; y < side; ++y)
    for (int64_t x = 0; x < side; ++x) ASSERT_TRUE(std::equal(pic.at(y0 + y, x0 + x), pic.at(y0 + y, x0 + x) + 3, bare.at(y, x)));
  const auto r = cli("rf " + testing::source_path("configs/gridding_seg.json") + " --from-layer 3");
  EXPECT_EQ(r[0], "0") << r[2];
  EXPECT_NE(r[1].find("72.96%"), std::string::npos) << r[1];
}

}  // namespace
}  // namespace convlab
