// tests/test_gradcheck_config.cpp: `convlab gradcheck CONFIG` (models/study/study_gradcheck.cpp): every layer of
// the shipped segmentation configs (HDC, deformable) and of a DCGAN (generator and discriminator) passes the
// finite-difference check in train mode; a failure is reported and turns into exit code 2 after the report.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <set>

#include "core/error.h"
#include "tests/testing.h"
#include "models/study/study.h"

namespace convlab {
namespace {

using nlohmann::json;

StudyResult check(const std::string& config, int64_t max_elements = 256) {
  GradcheckCommand c;
  c.config = testing::source_path(config);
  c.max_elements = max_elements;
  return gradcheck_command(c);
}

std::set<std::string> layers_of(const json& checks) {
  std::set<std::string> s;
  for (const json& c : checks) s.insert(c["layer"].get<std::string>());
  return s;
}

TEST(GradcheckConfig, HdcSegEveryLayerPasses) {
  const StudyResult r = check("configs/hdc_seg.json");
  EXPECT_TRUE(r.ok) << r.text;
  EXPECT_EQ(layers_of(r.json["checks"]).size(), 22u);  // 7 convs + 7 BN + 7 ReLU + the head
  for (const json& c : r.json["checks"]) {
    EXPECT_TRUE(c["pass"].get<bool>()) << c.dump();
    EXPECT_LE(c["checked"].get<int64_t>(), 256);
    if (c["type"] == "batch_norm2d" && c["tensor"] == "input") {
      EXPECT_EQ(c["shape"], json({2, 24, 8, 8}));
    }
  }
}

TEST(GradcheckConfig, DeformSegChecksOffsetAndMaskPredictors) {
  const StudyResult r = check("configs/deform_seg.json");
  EXPECT_TRUE(r.ok) << r.text;
  std::set<std::string> deform_tensors;
  for (const json& c : r.json["checks"])
    if (c["type"] == "deform_conv2d") deform_tensors.insert(c["tensor"].get<std::string>());
  EXPECT_EQ(deform_tensors, (std::set<std::string>{"input", "weight", "offset.weight", "offset.bias", "mask.weight",
                                                   "mask.bias"}));
  EXPECT_NE(r.text.find("offset bias 0.5"), std::string::npos);
}

TEST(GradcheckConfig, DcganGeneratorAndDiscriminator) {
  const StudyResult r = check("configs/dcgan_mnist.json", 48);
  EXPECT_TRUE(r.ok) << r.text;
  const std::set<std::string> layers = layers_of(r.json["checks"]);
  EXPECT_TRUE(layers.count("generator.0") && layers.count("discriminator.5")) << r.text;
  for (const json& c : r.json["checks"])
    if (c["layer"] == "generator.0" && c["tensor"] == "weight") {
      EXPECT_EQ(c["checked"], 48);
      EXPECT_EQ(c["elements"], 100 * 128 * 7 * 7);
    }
}

TEST(GradcheckConfig, FailuresAndErrorsThroughTheBinary) {
  const std::string cfg = testing::source_path("configs/plain_seg.json");
  const std::string out = "/tmp/convlab_gc_" + std::to_string(::getpid());
  // A tolerance nothing meets: the report is printed, then one error line and exit code 2.
  int status = std::system((std::string(CONVLAB_BINARY) + " gradcheck " + cfg + " --tol 1e-30 --max-elements 8 >" +
                            out + ".out 2>" + out + ".err").c_str());
  EXPECT_EQ(WEXITSTATUS(status), 2);
  std::ifstream o(out + ".out"), e(out + ".err");
  const std::string text((std::istreambuf_iterator<char>(o)), {}), err((std::istreambuf_iterator<char>(e)), {});
  EXPECT_NE(text.find("FAIL"), std::string::npos) << text;
  EXPECT_NE(err.find("some checks FAILED"), std::string::npos) << err;
  std::remove((out + ".out").c_str());
  std::remove((out + ".err").c_str());
  GradcheckCommand both;
  both.config = cfg, both.op = "conv2d";
  EXPECT_THROW(gradcheck_command(both), Error);
  GradcheckCommand missing;
  missing.config = "/nonexistent/config.json";
  EXPECT_THROW(gradcheck_command(missing), Error);
}

}  // namespace
}  // namespace convlab
