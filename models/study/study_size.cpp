// models/study/study_size.cpp: `convlab size`: the output size of a conv / transposed conv / pool for given
// hyper-parameters (through the core ops' own shape functions, so the answer is the one the op gives), and
// the inverse for transposed convs: every (padding, output_padding, dilation) that turns `in` into `out`.
//
// Why output_padding exists (the confusion of pytorch#56328, #106450): conv2d floors, so with stride s up to
// s input sizes give the same output size; the transposed conv, as conv2d's adjoint, has to be told which of
// them to produce. output_padding adds that many rows at the bottom/right (and must be < stride or < dilation).
#include <algorithm>
#include <cstdlib>

#include "core/error.h"
#include "core/pool.h"
#include "models/study/study.h"

namespace convlab {

using nlohmann::json;

std::vector<TransposedSolution> transposed_solutions(int64_t in, int64_t out, int64_t kernel, int64_t stride,
                                                     int64_t max_dilation) {
  std::vector<TransposedSolution> sol;
  for (int64_t d = 1; d <= max_dilation; ++d)
    for (int64_t p = 0; p <= kernel * d; ++p)
      for (int64_t op = 0; op < std::max(stride, d); ++op) {
        try {
          const ConvDims dims = conv_transpose2d_dims({1, 1, in, in}, {1, 1, kernel, kernel}, nullptr,
                                                      ConvTranspose2dArgs{{stride, stride}, {p, p}, {op, op}, {d, d}, 1});
          if (dims.H == out) sol.push_back({p, op, d});
        } catch (const Error&) {
        }
      }
  return sol;
}

namespace {

std::string s(int64_t v) { return std::to_string(v); }

// The input sizes that conv2d (k, s, p, d) maps to `out`: [lo, lo + s - 1] when the padded input fits.
std::pair<int64_t, int64_t> conv_preimage(int64_t out, int64_t k, int64_t st, int64_t p, int64_t d) {
  const int64_t lo = (out - 1) * st - 2 * p + d * (k - 1) + 1;
  return {std::max<int64_t>(lo, 1), lo + st - 1};
}

StudyResult transposed_inverse(const SizeCommand& c) {
  // The search tries every padding, output_padding and dilation: kept to sizes a person would ask about.
  CL_CHECK(c.kernel <= 64 && c.stride <= 64,
           "size --out: kernel and stride must be at most 64 for the search, got kernel " << c.kernel << ", stride "
                                                                                         << c.stride);
  StudyResult r;
  const auto sol = transposed_solutions(c.in, c.out, c.kernel, c.stride);
  json list = json::array();
  std::vector<std::vector<std::string>> rows = {
      {"padding", "output_padding", "dilation", "conv2d maps to " + s(c.in), "adjoint of conv2d " + s(c.out) + "->" + s(c.in)}};
  bool not_adjoint = false;
  for (const auto& x : sol) {
    const auto [lo, hi] = conv_preimage(c.in, c.kernel, c.stride, x.padding, x.dilation);
    const bool adj = c.out >= lo && c.out <= hi;
    not_adjoint |= !adj;
    list.push_back({{"padding", x.padding}, {"output_padding", x.output_padding}, {"dilation", x.dilation},
                    {"conv2d_inputs", {lo, hi}}, {"adjoint", adj}});
    rows.push_back({s(x.padding), s(x.output_padding), s(x.dilation), lo == hi ? s(lo) : s(lo) + ".." + s(hi),
                    adj ? "yes" : "no"});
  }
  r.json = {{"op", "conv_transpose2d"}, {"in", c.in}, {"out", c.out}, {"kernel", c.kernel}, {"stride", c.stride},
            {"solutions", list}};
  r.text = "conv_transpose2d " + s(c.in) + " -> " + s(c.out) + " with kernel " + s(c.kernel) + ", stride " + s(c.stride) +
           ":  out = (in-1)*s - 2p + d(k-1) + output_padding + 1, output_padding < max(s, d)\n";
  if (!sol.empty()) {
    r.text += "  " + s(static_cast<int64_t>(sol.size())) + " choices (padding <= k*d, dilation <= 4):\n" + format_table(rows);
    r.text += "  output_padding picks which of the conv2d input sizes that give " + s(c.in) + " comes back.\n";
    if (not_adjoint)
      r.text += "  'no': output_padding >= stride (allowed because it is < dilation): no conv2d with these parameters\n"
                "  maps " + s(c.out) + " back to " + s(c.in) + ", so this transposed conv is not the gradient of one.\n";
    return r;
  }
  // None: show the nearest sizes that can be reached, and why.
  int64_t below = -1, above = -1;
  TransposedSolution bs{}, as{};
  for (int64_t d = 1; d <= 4; ++d)
    for (int64_t p = 0; p <= c.kernel * d; ++p)
      for (int64_t op = 0; op < std::max(c.stride, d); ++op) {
        const int64_t o = (c.in - 1) * c.stride - 2 * p + d * (c.kernel - 1) + op + 1;
        if (o < 1) continue;
        if (o < c.out && o > below) below = o, bs = {p, op, d};
        if (o > c.out && (above < 0 || o < above)) above = o, as = {p, op, d};
      }
  std::string why;
  if (above < 0)
    why = "the largest output reachable is " + s(below) + " (the size grows by at most d(k-1) + output_padding over (in-1)*s + 1)";
  else if (below < 0)
    why = "the smallest output reachable is " + s(above) + " (padding <= k*d)";
  else
    why = "2p moves the size in steps of 2 and output_padding < max(stride, dilation) does not bridge the gap";
  r.json["reason"] = why;
  r.json["nearest"] = json::array();
  r.text += "  none works: " + why + ".\n";
  if (below > 0) {
    r.text += "  nearest below: " + s(below) + " (padding " + s(bs.padding) + ", output_padding " + s(bs.output_padding) +
              ", dilation " + s(bs.dilation) + ")\n";
    r.json["nearest"].push_back({{"out", below}, {"padding", bs.padding}, {"output_padding", bs.output_padding}, {"dilation", bs.dilation}});
  }
  if (above > 0) {
    r.text += "  nearest above: " + s(above) + " (padding " + s(as.padding) + ", output_padding " + s(as.output_padding) +
              ", dilation " + s(as.dilation) + ")\n";
    r.json["nearest"].push_back({{"out", above}, {"padding", as.padding}, {"output_padding", as.output_padding}, {"dilation", as.dilation}});
  }
  return r;
}

}  // namespace

StudyResult size_command(const SizeCommand& c) {
  CL_CHECK(c.in >= 1, "size: --in must be >= 1, got " << c.in);
  CL_CHECK(c.kernel >= 1, "size: --kernel must be >= 1, got " << c.kernel);
  CL_CHECK(c.stride >= 1, "size: --stride must be >= 1, got " << c.stride);
  CL_CHECK(c.dilation >= 1, "size: --dilation must be >= 1, got " << c.dilation);
  CL_CHECK(c.padding >= 0, "size: --padding must be >= 0, got " << c.padding);
  CL_CHECK(c.output_padding >= 0, "size: --output-padding must be >= 0, got " << c.output_padding);
  CL_CHECK(c.out < 0 || c.op == "conv_transpose2d", "size: --out (the inverse) is for conv_transpose2d, not " << c.op);
  CL_CHECK(c.output_padding == 0 || c.op == "conv_transpose2d", "size: --output-padding is for conv_transpose2d only");
  if (c.out >= 0) {
    CL_CHECK(c.out >= 1, "size: --out must be >= 1, got " << c.out);
    return transposed_inverse(c);
  }
  const Shape x = {1, 1, c.in, c.in};
  const int64_t k = c.kernel, st = c.stride, p = c.padding, d = c.dilation;
  StudyResult r;
  int64_t out = 0;
  std::string formula, note;
  if (c.op == "conv2d") {
    out = conv2d_dims(x, {1, 1, k, k}, nullptr, Conv2dArgs{{st, st}, {p, p}, {d, d}, 1}).H_out;
    formula = "floor((in + 2p - d(k-1) - 1) / s) + 1 = floor((" + s(c.in) + " + " + s(2 * p) + " - " + s(d * (k - 1)) +
              " - 1) / " + s(st) + ") + 1";
    const int64_t unread = (c.in + 2 * p - d * (k - 1) - 1) % st;
    if (unread > 0) note += "  the last " + s(unread) + " row(s) of the padded input are never read (the division floors)\n";
    const auto [lo, hi] = conv_preimage(out, k, st, p, d);
    if (hi > lo)
      note += "  inputs " + s(lo) + ".." + s(hi) + " all give " + s(out) +
              ": the transposed conv back needs output_padding (0.." + s(hi - lo) + ") to pick one\n";
  } else if (c.op == "conv_transpose2d") {
    out = conv_transpose2d_dims(x, {1, 1, k, k}, nullptr, ConvTranspose2dArgs{{st, st}, {p, p}, {c.output_padding, c.output_padding}, {d, d}, 1}).H;
    formula = "(in-1)*s - 2p + d(k-1) + output_padding + 1 = " + s(c.in - 1) + "*" + s(st) + " - " + s(2 * p) + " + " +
              s(d * (k - 1)) + " + " + s(c.output_padding) + " + 1";
    note = "  conv2d with the same kernel, stride, padding and dilation maps " + s(out) + " back to " + s(c.in) + "\n";
  } else if (c.op == "max_pool2d" || c.op == "avg_pool2d") {
    CL_CHECK(c.op == "max_pool2d" || d == 1, "size: avg_pool2d has no dilation, got --dilation " << d);
    const PoolDims pd = c.op == "max_pool2d"
                            ? max_pool2d_dims(x, MaxPool2dArgs{{k, k}, Pair{st, st}, {p, p}, {d, d}, c.ceil_mode})
                            : avg_pool2d_dims(x, AvgPool2dArgs{{k, k}, Pair{st, st}, {p, p}, c.ceil_mode, true});
    out = pd.H_out;
    formula = std::string(c.ceil_mode ? "ceil" : "floor") + "((in + 2p - d(k-1) - 1) / s) + 1" +
              (c.ceil_mode ? ", minus 1 if the last window starts in the right padding" : "");
    note = "  (the default pool stride is the kernel size; here --stride " + s(st) + ")\n";
  } else {
    CL_FAIL("size: unknown --op '" << c.op << "' (conv2d, conv_transpose2d, max_pool2d, avg_pool2d)");
  }
  r.json = {{"op", c.op}, {"in", c.in}, {"out", out}, {"kernel", k}, {"stride", st}, {"padding", p}, {"dilation", d}};
  if (c.op == "conv_transpose2d") r.json["output_padding"] = c.output_padding;
  if (c.op != "conv2d" && c.op != "conv_transpose2d") r.json["ceil_mode"] = c.ceil_mode;
  r.text = c.op + ": " + s(c.in) + " -> " + s(out) + "\n  out = " + formula + " = " + s(out) + "\n" + note;
  return r;
}

}  // namespace convlab
