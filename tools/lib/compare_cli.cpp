// tools/lib/compare_cli.cpp: see compare_cli.h.
#include "tools/lib/compare_cli.h"

#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>
#include <memory>

#include "core/error.h"
#include "models/compare/compare.h"
#include "tools/lib/mpi_comm.h"
#include "tools/lib/stop_signal.h"

namespace convlab {

void register_compare_command(CLI::App& app) {
  auto c = std::make_shared<CompareCommand>();
  auto as_json = std::make_shared<bool>(false);
  CLI::App* sub = app.add_subcommand("compare", "Train the variants of an experiment file over several seeds and report "
                                                "paired per-seed differences (report.md, report.html)");
  sub->add_option("experiment", c->experiment, "experiment JSON file (see docs/compare.md)")->required();
  sub->add_flag("--quick", c->quick, "use the experiment's quick section (tiny budget: a smoke test)");
  sub->add_option("--budget", c->budget,
                  "full: the converged study (the file's top level); short: its short section (a learning-speed study)")
      ->check(CLI::IsMember({"full", "short"}));
  sub->add_option("--out", c->out, "output folder (default runs/compare/<name>, <name>-short or <name>-quick)");
  sub->add_flag("--fresh", c->fresh, "retrain every run, even those finished earlier");
  sub->add_flag("--estimate", c->estimate_only,
                "only time three training steps of each variant and print how long the experiment would take (trains nothing)");
  sub->add_flag("-q,--quiet", c->quiet, "no progress lines");
  sub->add_flag("--json", *as_json, "print results.json (progress goes to stderr)");
  auto exchange_timeout = std::make_shared<double>(kDefaultExchangeTimeout);
  add_exchange_timeout_option(*sub, *exchange_timeout);
  sub->callback([c, as_json, exchange_timeout] {
    c->log = *as_json ? &std::cerr : &std::cout;  // --json: stdout holds only the JSON
    // Under mpirun the runs are spread over the ranks; rank 0 alone prints and writes the reports.
    MpiSession* mpi = launched_session();
    c->comm = mpi;
    if (mpi) mpi->set_exchange_timeout(*exchange_timeout);
    // A stop (Ctrl-C, mpirun ending the job, a signal to a rank) ends the run in training after its step, with a
    // checkpoint and its time so far: the same command resumes it. A second Ctrl-C kills at once.
    install_stop_handlers();
    c->stop_requested = [] { return stop_signal() != 0; };
    const bool root = !c->comm || c->comm->rank() == 0;
    if (!root) c->log = nullptr;
    StudyResult r;
    try {
      r = compare_command(*c);
    } catch (const nlohmann::json::exception& err) {
      throw Error(std::string("compare: ") + err.what());
    } catch (const std::filesystem::filesystem_error& err) {
      throw Error(std::string("compare: ") + err.what());
    }
    if (root) std::cout << (*as_json ? r.json.dump(2) + "\n" : r.text) << std::flush;
  });
}

}  // namespace convlab
