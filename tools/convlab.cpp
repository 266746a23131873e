// tools/convlab.cpp: the one convlab executable. Each subcommand parses its options with CLI11 and calls
// into the libraries; user errors (convlab::Error, bad options) print one line on stderr and exit 2.
#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

#include "core/error.h"
#include "core/threads.h"
#include "tools/lib/io.h"
#include "tools/lib/op_case.h"

namespace {

int cmd_op(const std::string& case_path, const std::string& out_path, bool stats, int repeat) {
  using namespace convlab;
  CL_CHECK(repeat >= 0, "op: --repeat must be >= 0, got " << repeat);
  const OpCall call = parse_case(read_text_file(case_path));
  const OpResult r = run_case(call, repeat);
  const std::string text = result_json(call, r, stats).dump() + "\n";
  if (out_path.empty()) std::cout << text << std::flush;
  else write_file_atomic(out_path, text);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  convlab::ensure_passive_wait(argc, argv);
  CLI::App app{"convlab: a small deep-learning framework for studying convolution"};
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads, "OpenMP threads (default: all cores)")->check(CLI::NonNegativeNumber);

  std::string case_path, out_path;
  bool stats = false;
  int repeat = 0;
  CLI::App* op = app.add_subcommand("op", "Run one layer call (forward + backward) from an op-case JSON file");
  op->add_option("case", case_path, "op-case JSON file (see docs/op-case.md)")->required();
  op->add_option("-o,--output", out_path, "write the result here instead of stdout");
  op->add_flag("--stats", stats, "print each tensor as {shape, sum, abs_sum, min, max}");
  op->add_option("--repeat", repeat, "time N forward and N backward passes (median ms)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::Error& e) {
    std::cerr << "convlab: " << e.what() << " (see convlab --help)\n";
    return 2;
  }
  try {
    if (threads > 0) convlab::set_num_threads(threads);
    if (*op) return cmd_op(case_path, out_path, stats, repeat);
  } catch (const convlab::Error& e) {
    std::cerr << "convlab: " << e.what() << "\n";
    return 2;
  } catch (const std::bad_alloc&) {
    std::cerr << "convlab: out of memory\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "convlab: internal error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
