// tests/testing.cpp: see testing.h.
#include "tests/testing.h"

#include "core/error.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace convlab::testing {

void expect_allclose(const Tensor& got, const Tensor& want, const std::string& name, double rtol, double atol) {
  ASSERT_TRUE(got.defined()) << name << ": missing";
  ASSERT_EQ(shape_str(got.shape()), shape_str(want.shape())) << name << ": shape differs";
  double scale = 0, err = 0;
  int64_t at = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    scale = std::max(scale, std::fabs(double(want.data()[i])));
    const double e = std::fabs(double(got.data()[i]) - double(want.data()[i]));
    if (e > err || std::isnan(e)) {
      err = std::isnan(e) ? INFINITY : e;
      at = i;
    }
  }
  EXPECT_LE(err, atol + rtol * scale) << name << ": max |diff| " << err << " at [" << at << "] (got "
                                      << got.data()[at] << ", want " << want.data()[at]
                                      << ", max|want| " << scale << ")";
}

Tensor random_tensor(const Shape& shape, uint64_t seed, float lo, float hi) {
  Tensor t = Tensor::empty(shape);
  Rng rng(seed);
  fill_uniform(t, rng, lo, hi);
  return t;
}

std::vector<GradcheckResult> gradcheck(const std::string& what,
                                       const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                       std::vector<Tensor> inputs, const GradcheckOptions& opt) {
  for (Tensor& t : inputs)
    if (t.defined()) t.zero_grad();
  Tensor out = f(inputs);
  const Tensor R = random_tensor(out.shape(), opt.seed);
  out.backward(R);
  auto loss = [&]() {
    NoGradGuard ng;
    Tensor o = f(inputs);
    double s = 0;
    for (int64_t i = 0; i < o.numel(); ++i) s += double(o.data()[i]) * double(R.data()[i]);
    return s;
  };
  std::vector<GradcheckResult> results;
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor& t = inputs[k];
    if (!t.defined() || !t.requires_grad()) continue;
    Tensor analytic = t.grad();
    GradcheckResult r;
    r.name = what + ".input" + std::to_string(k) + shape_str(t.shape());
    double scale = 0;
    std::vector<double> numeric(t.numel());
    for (int64_t i = 0; i < t.numel(); ++i) {
      float* p = t.data() + i;
      const float orig = *p;
      *p = static_cast<float>(orig + opt.eps);
      const double up = loss();
      *p = static_cast<float>(orig - opt.eps);
      const double down = loss();
      *p = orig;
      // the step actually taken in float
      const double h = (double(static_cast<float>(orig + opt.eps)) - double(static_cast<float>(orig - opt.eps)));
      numeric[i] = (up - down) / h;
      scale = std::max(scale, std::fabs(numeric[i]));
    }
    for (int64_t i = 0; i < t.numel(); ++i) {
      const double a = analytic.defined() ? analytic.data()[i] : 0.0;
      r.max_abs_error = std::max(r.max_abs_error, std::fabs(a - numeric[i]));
    }
    r.max_rel_error = r.max_abs_error / (scale + 1e-3);
    EXPECT_LE(r.max_rel_error, opt.max_rel_error)
        << r.name << ": gradient max abs error " << r.max_abs_error << " (max |numeric| " << scale << ")";
    results.push_back(r);
  }
  return results;
}

std::string source_path(const std::string& rel) { return std::string(CONVLAB_SOURCE_DIR) + "/" + rel; }

std::string temp_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("convlab_test_" + std::to_string(::getpid()) + "_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::string temp_file(const std::string& name, const std::string& text) {
  static const std::string dir = temp_dir("files");
  const std::string p = dir + "/" + name;
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

CliRun run_cli(const std::string& args, const std::string& stdin_text, const std::string& env) {
  static std::atomic<int> counter{0};
  static const std::string dir = temp_dir("cli");
  const std::string base = dir + "/" + std::to_string(counter++);
  const std::string o = base + ".out", e = base + ".err", i = base + ".in";
  std::ofstream(i, std::ios::binary) << stdin_text;
  const std::string cmd =
      (env.empty() ? "" : "env " + env + " ") + std::string(CONVLAB_BINARY) + " " + args + " <" + i + " >" + o + " 2>" + e;
  const int status = std::system(cmd.c_str());
  auto slurp = [](const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  CliRun r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(o), r.err = slurp(e);
  return r;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace convlab::testing
