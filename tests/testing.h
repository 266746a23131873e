// tests/testing.h: shared test helpers.
//  - expect_allclose: compares two tensors and names the one that differs, with the max difference.
//  - gradcheck: central finite differences in double against the autograd gradients of every input.
//  - random_tensor: seeded uniform tensors.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/ops.h"
#include "core/random.h"

namespace convlab::testing {

// |got - want| <= atol + rtol * max|want| elementwise-max; shapes must match exactly.
void expect_allclose(const Tensor& got, const Tensor& want, const std::string& name, double rtol = 1e-5,
                     double atol = 1e-6);

Tensor random_tensor(const Shape& shape, uint64_t seed, float lo = -1.f, float hi = 1.f);

struct GradcheckOptions {
  double eps = 1e-2;          // finite-difference step (conv-like ops are linear: a large step is exact)
  double max_rel_error = 1e-3; // max |analytic - numeric| / (max|numeric| + 1e-3), per input
  uint64_t seed = 1234;        // for the random projection of the output
};

struct GradcheckResult {
  std::string name;
  double max_abs_error = 0, max_rel_error = 0;
};

// f maps the inputs to one output; the checked scalar is sum(f(inputs) * R) with a fixed random R.
// Every input with requires_grad set is checked; returns one result per checked input and adds a
// GoogleTest failure (naming `what` and the input) when an input's relative error is too large.
std::vector<GradcheckResult> gradcheck(const std::string& what,
                                       const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                       std::vector<Tensor> inputs, const GradcheckOptions& opt = {});

// Source-tree paths for test data.
std::string source_path(const std::string& rel);

// The message of the convlab::Error f throws, or "(no error)".
std::string error_of(const std::function<void()>& f);

// The convlab executable as a user runs it: `args` go through the shell (quote them), stdin is empty
// unless given, `env` ("NAME=value ...") is added to its environment. `code` is the exit status, or 128 + the signal when the process was killed by one.
struct CliRun {
  int code = -1;
  std::string out, err;
};
CliRun run_cli(const std::string& args, const std::string& stdin_text = "", const std::string& env = "");
// A fresh, empty folder under the system temp folder, unique to this process and `name`.
std::string temp_dir(const std::string& name);
// Writes `text` to a file in temp_dir("files") and returns its path.
std::string temp_file(const std::string& name, const std::string& text);

}  // namespace convlab::testing
