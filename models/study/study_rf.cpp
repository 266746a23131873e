// models/study/study_rf.cpp: `convlab rf`: the receptive-field table, the HDC verdicts and the exact coverage map
// of a config's network or of a kernel/dilation schedule (computation: models/receptive_field.h).
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "models/config.h"
#include "models/receptive_field.h"
#include "models/study/study.h"

namespace convlab {

using nlohmann::json;

namespace {

std::string pair_str(Pair p) { return p[0] == p[1] ? std::to_string(p[0]) : std::to_string(p[0]) + "x" + std::to_string(p[1]); }
std::string dbl_str(std::array<double, 2> v) { return v[0] == v[1] ? fmt(v[0]) : fmt(v[0]) + "x" + fmt(v[1]); }
std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (int64_t x : v) {
    if (!s.empty()) s += ',';
    s += std::to_string(x);
  }
  return s;
}
std::string percent(double share) { return fmt(100 * share, 4) + "%"; }

json hdc_json(const HdcVerdict& v) {
  return {{"kernel", v.kernel}, {"rates", v.rates}, {"M", v.M}, {"formula_applies", v.formula_applies},
          {"M2", v.formula_applies ? json(v.M2) : json(nullptr)}, {"formula_ok", v.formula_ok},
          {"common_factor", v.common_factor}, {"ok", v.ok()}, {"fails", v.fails}};
}

std::string hdc_text(const HdcVerdict& v) {
  std::string s = "rates " + join(v.rates) + ", K = " + (v.kernel > 0 ? std::to_string(v.kernel) : "mixed") + ": ";
  if (v.formula_applies) {
    std::string m;  // the paper's M_i, printed from M_n down to M_2
    for (size_t i = v.M.size(); i-- > 1;) m += (m.empty() ? "" : ", ") + std::string("M_") + std::to_string(i + 1) + "=" + std::to_string(v.M[i]);
    s += m + "; M_2 <= K " + (v.formula_ok ? "holds" : "FAILS");
  } else {
    s += v.rates.size() < 2 ? "M_2 rule needs >= 2 layers" : "M_2 rule needs one kernel size";
  }
  s += "; common factor " + std::to_string(v.common_factor) + (v.common_factor > 1 ? " FAILS" : " (none)");
  s += v.ok() ? "  => HDC satisfied\n" : "  => HDC fails\n";
  for (const auto& f : v.fails) s += "      - " + f + "\n";
  return s;
}

// The coverage map as characters: '.' no path, else the count (max <= 9) or the count in ninths of the max.
std::string coverage_text(const CoverageMap& c, double mx) {
  if (c.W > 64 || c.H > 64) return "  (window " + std::to_string(c.H) + "x" + std::to_string(c.W) + ": see --png or --json)\n";
  std::string s;
  for (int64_t y = 0; y < c.H; ++y) {
    s += "   ";
    for (int64_t x = 0; x < c.W; ++x) {
      const double v = c.at(y, x);
      s += ' ';
      const double level = mx <= 9 ? v : std::ceil(9 * v / mx);  // counts as they are, or ninths of the max
      s += v == 0 ? '.' : static_cast<char>('0' + std::clamp<int>(static_cast<int>(level), 1, 9));
    }
    s += "\n";
  }
  return s;
}

}  // namespace

StudyResult rf_command(const RfCommand& c) {
  CL_CHECK(c.config.empty() != c.dilations.empty(), "rf: give a CONFIG or --dilations (e.g. --kernel 3 --dilations 1,2,5), not both");
  CL_CHECK(c.pixel.empty() || c.pixel.size() == 2, "rf: --pixel takes y,x");
  for (int64_t p : c.pixel)  // the unbounded lattice multiplies it by strides: kept far inside int64
    CL_CHECK(p >= -1000000 && p <= 1000000, "rf: --pixel coordinates must be within +-1000000, got " << p);
  CL_CHECK(c.size >= 0, "rf: --size must be >= 1, got " << c.size);
  std::vector<RfLayer> layers;
  Pair in{-1, -1};
  std::vector<std::string> warnings;
  std::string stopped, source;
  if (!c.config.empty()) {
    const json cfg = load_config(c.config, c.sets);
    RfModel m = rf_model(cfg);
    layers = std::move(m.layers), in = m.input_size, stopped = m.stopped, source = c.config;
    warnings = gridding_warnings(cfg);
  } else {
    CL_CHECK(c.sets.empty(), "rf: --set needs a CONFIG");
    layers = rf_schedule(c.kernels, c.dilations, c.strides);
    source = "kernel " + join(c.kernels.empty() ? std::vector<int64_t>{3} : c.kernels) + ", dilations " + join(c.dilations) +
             (c.strides.empty() ? "" : ", strides " + join(c.strides));
  }
  if (c.size > 0) in = {c.size, c.size};

  // The analysed (sub-)stack: from the first layer at or after --from-layer, at its real input size.
  size_t from = 0;
  if (c.from_layer >= 0) {
    while (from < layers.size() && layers[from].top < c.from_layer) ++from;
    CL_CHECK(from < layers.size(), "rf: --from-layer " << c.from_layer << " is past the last spatial layer ("
                                                       << layers.back().path << ")");
  }
  const Pair sub_in = in[0] > 0 ? rf_sizes(layers, in)[from] : in;
  const std::vector<RfLayer> stack(layers.begin() + static_cast<long>(from), layers.end());
  RfOptions opt{.input_size = sub_in, .pixel = std::nullopt};
  if (!c.pixel.empty()) opt.pixel = Pair{c.pixel[0], c.pixel[1]};
  const RfAnalysis a = analyse_stack(stack, opt);

  // HDC on every dilated run of the analysed stack (a schedule is one run whatever its rates).
  std::vector<HdcVerdict> verdicts;
  std::vector<std::string> run_names;
  bool any_hdc_fail = false;
  json hdc = json::array();
  if (c.config.empty()) {
    std::vector<int64_t> rates;
    int64_t k = stack.front().kernel[0];
    for (const RfLayer& l : stack) rates.push_back(l.dilation[0]), k = l.kernel[0] == k ? k : 0;
    verdicts.push_back(hdc_check(k, rates));
    any_hdc_fail = !verdicts.back().ok();
    run_names.push_back("layers " + std::to_string(from) + ".." + std::to_string(layers.size() - 1));
    hdc.push_back({{"layers", run_names.back()}, {"sequence", hdc_json(verdicts.back())}});
  } else {
    for (const DilatedRun& r : dilated_runs(stack)) {
      const RunHdc h = run_hdc(stack, r, 0);
      run_names.push_back(stack[r.begin].path + " .. " + stack[r.end - 1].path);
      verdicts.push_back(h.sequence);
      // A run fails HDC when its rates fail and so does the group they repeat (the paper's usage).
      any_hdc_fail |= !h.sequence.ok() && !(h.group && h.group->ok());
      json j = {{"layers", run_names.back()}, {"sequence", hdc_json(h.sequence)}};
      if (h.group) {
        j["group"] = hdc_json(*h.group);
        verdicts.push_back(*h.group);
        run_names.push_back(run_names.back() + " (one group)");
      }
      hdc.push_back(j);
    }
  }

  StudyResult res;
  json rows = json::array();
  std::vector<std::vector<std::string>> table = {{"layer", "type", "k", "s", "d", "p", "size", "rf", "jump", "start"}};
  for (const RfRow& r : a.rows) {
    rows.push_back({{"path", r.path}, {"type", r.type}, {"kernel", r.kernel}, {"stride", r.stride}, {"dilation", r.dilation},
                    {"padding", r.padding}, {"size", r.size_out[0] > 0 ? json(r.size_out) : json(nullptr)},
                    {"rf", r.rf}, {"jump", r.jump}, {"start", r.start}});
    const bool conv_like = r.type.find("upsample") == std::string::npos;  // upsampling has no k, s, d, p
    table.push_back({r.path, r.type, conv_like ? pair_str(r.kernel) : "-", conv_like ? pair_str(r.stride) : "-",
                     conv_like ? pair_str(r.dilation) : "-", conv_like ? pair_str(r.padding) : "-",
                     r.size_out[0] > 0 ? pair_str(r.size_out) : "-", dbl_str(r.rf), dbl_str(r.jump), dbl_str(r.start)});
  }
  const CoverageMap& cv = a.coverage;
  json counts = json::array();
  for (int64_t y = 0; y < cv.H; ++y) counts.push_back(std::vector<double>(cv.count.begin() + y * cv.W, cv.count.begin() + (y + 1) * cv.W));
  res.json = {{"source", source},
              {"input_size", sub_in[0] > 0 ? json(sub_in) : json(nullptr)},
              {"from_layer", c.from_layer >= 0 ? json(stack.front().path) : json(nullptr)},
              {"layers", rows},
              {"rf", a.rows.empty() ? json(nullptr) : json(a.rows.back().rf)},
              {"coverage", {{"pixel", a.pixel}, {"origin", {cv.y0, cv.x0}}, {"shape", {cv.H, cv.W}}, {"counts", counts},
                            {"max_count", a.max_count}, {"reached", a.reached}, {"holes", a.holes},
                            {"hole_share", a.hole_share}, {"exact", a.exact}}},
              {"hdc", hdc},
              {"warnings", warnings}};
  if (!stopped.empty()) res.json["stopped_at"] = stopped;

  std::string& t = res.text;
  t = "receptive field of " + source + (c.from_layer >= 0 ? " from " + stack.front().path : "") + "\n";
  t += sub_in[0] > 0 ? "  input " + pair_str(sub_in) + " (real sizes: padding and image borders count)\n"
                     : "  unbounded lattice (no image border)\n";
  if (!stopped.empty()) t += "  analysis stops before " + stopped + ": it connects every pixel\n";
  t += format_table(table);
  t += "  rf: input pixels one output pixel spans; jump: input pixels between neighbouring outputs; start: centre of\n"
       "  output pixel 0's window (input pixel coordinates)\n\n";
  t += "HDC (Wang et al. 2017: M_n = r_n, M_i = max[M_{i+1} - 2r_i, M_{i+1} - 2(M_{i+1} - r_i), r_i], want M_2 <= K;\n"
       "     no common factor > 1)\n";
  if (verdicts.empty()) t += "  no dilated layers\n";
  for (size_t i = 0; i < verdicts.size(); ++i) t += "  " + run_names[i] + ": " + hdc_text(verdicts[i]);
  t += "\ncoverage of output pixel (" + std::to_string(a.pixel[0]) + "," + std::to_string(a.pixel[1]) +
       "): paths to each input pixel (all weights 1)\n";
  if (cv.H == 0) {
    t += "  this output pixel reads no input pixel\n";
  } else {
    t += "  window " + std::to_string(cv.H) + "x" + std::to_string(cv.W) + " at (" + std::to_string(cv.y0) + "," +
         std::to_string(cv.x0) + "), " + std::to_string(a.reached) + " pixels reached, " + std::to_string(a.holes) +
         " holes (" + percent(a.hole_share) + "), max " + fmt(a.max_count, 17) + " paths" +
         (a.exact ? "" : " (counts above 2^53: rounded)") + "\n";
    const auto& rf = a.rows.back().rf;
    if (double(cv.H) < rf[0] || double(cv.W) < rf[1])
      t += "  the window is smaller than rf " + dbl_str(rf) + ": the image border" +
           " (or a transposed conv's output phase) cuts it; holes outside the image are not counted\n";
    if (a.max_count > 9) t += "  (digits: count in ninths of the max, '.' no path)\n";
    t += coverage_text(cv, a.max_count);
  }
  t += "\nverdict: ";
  if (a.holes > 0 && !any_hdc_fail) t += "gridding holes although HDC is satisfied\n";
  else if (a.holes > 0) t += "gridding holes (" + percent(a.hole_share) + " of the window never reaches the output)\n";
  else if (any_hdc_fail) t += "no holes although an HDC condition fails (the rule is sufficient, not necessary)\n";
  else t += "no holes\n";
  for (size_t i = 0; i < verdicts.size(); ++i)
    if (a.holes > 0 && verdicts[i].formula_ok && verdicts[i].common_factor > 1)
      t += "  note: " + run_names[i] + " satisfies M_2 <= K; only the common-factor rule catches its gridding\n";
  for (const auto& w : warnings) t += "warning: " + w + "\n";

  if (!c.png.empty() && cv.H > 0) {
    write_png(c.png, titled_heatmap(cv.count, cv.H, cv.W, {230, 30, 30}, "no path (hole)",
                                    "coverage: paths from output pixel (" + std::to_string(a.pixel[0]) + "," +
                                        std::to_string(a.pixel[1]) + ") to each input pixel"));
    t += "wrote " + c.png + " (paths per input pixel, colour bar 0 .. max below; red: no path)\n";
  }
  return res;
}

}  // namespace convlab
