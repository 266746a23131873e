// models/study/study_matrix.cpp: `convlab matrix CASE.json`: the convolution matrix C of a small conv2d case
// (y = C x, rows = output pixels, columns = input pixels), its transpose, and the checks that conv2d is
// C x and that conv_transpose2d (and conv2d's input gradient) is C^T y.
//   C[(co, oh, ow), (g*C_in/G + cl, ih, iw)] = w[co, cl, kh, kw]  with ih = oh*s - p + kh*d, iw likewise,
// for every tap that lands inside the input (taps in the padding multiply zeros and have no column).
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "data/files.h"
#include "models/study/study.h"

namespace convlab {

using nlohmann::json;

namespace {

// The problem the matrix describes: image 0 of the case, or one (c_out, c_in) pair of it.
struct SubProblem {
  Tensor x, w;  // [1, C_in, H, W], [C_out, C_in/G, kH, kW]
  Conv2dArgs a;
  ConvDims d;
};

SubProblem sub_problem(const OpCall& call, const std::vector<int64_t>& pair) {
  CL_CHECK(call.op == "conv2d", "matrix: only conv2d cases have a matrix here, got op '" << call.op << "'");
  CL_CHECK(pair.empty() || pair.size() == 2, "matrix: --pair takes c_out,c_in");
  const Tensor x = call.get("input"), w = call.get("weight");
  SubProblem s;
  s.a = call.conv_args();
  const ConvDims full = conv2d_dims(x.shape(), w.shape(), nullptr, s.a, "matrix");
  const int64_t HW = full.H * full.W;
  if (pair.empty()) {
    s.x = Tensor::from({1, full.C_in, full.H, full.W}, std::vector<float>(x.data(), x.data() + full.C_in * HW));
    s.w = w.detach();
  } else {
    const int64_t co = pair[0], ci = pair[1];
    CL_CHECK(co >= 0 && co < full.C_out && ci >= 0 && ci < full.C_in,
             "matrix: --pair " << co << "," << ci << " is outside C_out=" << full.C_out << ", C_in=" << full.C_in);
    s.x = Tensor::from({1, 1, full.H, full.W}, std::vector<float>(x.data() + ci * HW, x.data() + (ci + 1) * HW));
    s.w = Tensor::zeros({1, 1, full.kH, full.kW});
    const int64_t g = co / full.cout_g(), cl = ci - g * full.cin_g();
    if (cl >= 0 && cl < full.cin_g())  // otherwise the pair is in different groups: C is all zeros
      std::copy_n(w.data() + (co * full.cin_g() + cl) * full.kH * full.kW, full.kH * full.kW, s.w.data());
    s.a.groups = 1;
  }
  s.d = conv2d_dims(s.x.shape(), s.w.shape(), nullptr, s.a, "matrix");
  return s;
}

Tensor build_matrix(const SubProblem& s, int64_t max_entries) {
  const ConvDims& d = s.d;
  const int64_t rows = d.C_out * d.hw_out(), cols = d.C_in * d.H * d.W;
  CL_CHECK(max_entries <= 0 || rows * cols <= max_entries,
           "matrix: C would be " << rows << " x " << cols << " = " << rows * cols << " entries (> " << max_entries
                                 << "); use a smaller case or one channel pair (--pair c_out,c_in)");
  Tensor C = Tensor::zeros({rows, cols});
  float* c = C.data();
  const float* w = s.w.data();
  for (int64_t co = 0; co < d.C_out; ++co) {
    const int64_t g = co / d.cout_g();
    for (int64_t oh = 0; oh < d.H_out; ++oh)
      for (int64_t ow = 0; ow < d.W_out; ++ow) {
        const int64_t row = (co * d.H_out + oh) * d.W_out + ow;
        for (int64_t cl = 0; cl < d.cin_g(); ++cl)
          for (int64_t kh = 0; kh < d.kH; ++kh)
            for (int64_t kw = 0; kw < d.kW; ++kw) {
              const int64_t ih = oh * d.sH - d.pH + kh * d.dH, iw = ow * d.sW - d.pW + kw * d.dW;
              if (ih < 0 || ih >= d.H || iw < 0 || iw >= d.W) continue;  // a padding tap: no column
              const int64_t col = ((g * d.cin_g() + cl) * d.H + ih) * d.W + iw;
              c[row * cols + col] += w[((co * d.cin_g() + cl) * d.kH + kh) * d.kW + kw];
            }
      }
  }
  return C;
}

// y = M v in double (M [R, K] row-major, transposed: M^T v).
std::vector<double> matvec(const Tensor& M, const float* v, bool transposed) {
  const int64_t R = M.size(0), K = M.size(1);
  std::vector<double> y(static_cast<size_t>(transposed ? K : R), 0.0);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t k = 0; k < K; ++k) {
      const double m = M.data()[r * K + k];
      if (transposed) y[static_cast<size_t>(k)] += m * v[r];
      else y[static_cast<size_t>(r)] += m * v[k];
    }
  return y;
}

double max_diff(const std::vector<double>& a, const Tensor& b) {
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i) e = std::max(e, std::fabs(a[i] - double(b.data()[i])));
  return e;
}

// Right-aligned numbers, one line per row.
std::string matrix_text(const std::vector<double>& v, int64_t R, int64_t K) {
  std::vector<std::string> cells;
  size_t width = 1;
  for (double x : v) cells.push_back(x == 0 ? "0" : fmt(x, 5)), width = std::max(width, cells.back().size());
  std::string s;
  for (int64_t r = 0; r < R; ++r) {
    s += "   ";
    for (int64_t k = 0; k < K; ++k) {
      const std::string& c = cells[static_cast<size_t>(r * K + k)];
      s += std::string(width + 1 - c.size(), ' ') + c;
    }
    s += "\n";
  }
  return s;
}

json rows_json(const std::vector<double>& v, int64_t R, int64_t K) {
  json j = json::array();
  for (int64_t r = 0; r < R; ++r) j.push_back(std::vector<double>(v.begin() + r * K, v.begin() + (r + 1) * K));
  return j;
}

}  // namespace

Tensor conv_matrix(const OpCall& call, const std::vector<int64_t>& pair) {
  return build_matrix(sub_problem(call, pair), 0);
}

StudyResult matrix_command(const MatrixCommand& c) {
  const OpCall call = parse_case(read_text_file(c.case_path));
  const SubProblem s = sub_problem(call, c.pair);
  const Tensor C = build_matrix(s, c.max_entries);
  const ConvDims& d = s.d;
  const int64_t R = C.size(0), K = C.size(1);
  const std::vector<double> cm(C.data(), C.data() + R * K);
  std::vector<double> ct(static_cast<size_t>(R * K));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t k = 0; k < K; ++k) ct[static_cast<size_t>(k * R + r)] = cm[static_cast<size_t>(r * K + k)];

  // y = C x against conv2d; C^T g against conv_transpose2d and conv2d's input gradient.
  Tensor x = s.x.clone().set_requires_grad(true);
  const Tensor y = conv2d(x, s.w, Tensor(), s.a);
  const std::vector<double> cx = matvec(C, x.data(), false);
  const double fwd_err = max_diff(cx, y);
  Tensor g = Tensor::ones(y.shape());
  const Tensor go = call.grad_output;
  if (go.defined()) {  // image 0 of the case's grad_output (channel c_out of it for a pair)
    const int64_t off = c.pair.empty() ? 0 : c.pair[0] * d.hw_out();
    CL_CHECK(go.dim() == 4 && go.size(2) == d.H_out && go.size(3) == d.W_out && go.numel() >= off + g.numel(),
             "matrix: grad_output " << shape_str(go.shape()) << " does not match the conv output " << shape_str(y.shape())
                                    << (c.pair.empty() ? "" : " of the whole case"));
    std::copy_n(go.data() + off, g.numel(), g.data());
  }
  const std::vector<double> ctg = matvec(C, g.data(), true);
  y.backward(g);
  const double grad_err = max_diff(ctg, x.grad());
  const Pair out_pad = {d.H - ((d.H_out - 1) * d.sH - 2 * d.pH + d.dH * (d.kH - 1) + 1),
                        d.W - ((d.W_out - 1) * d.sW - 2 * d.pW + d.dW * (d.kW - 1) + 1)};
  const Tensor yt = conv_transpose2d(g, s.w, Tensor(), ConvTranspose2dArgs{s.a.stride, s.a.padding, out_pad, s.a.dilation, s.a.groups});
  const double ct_err = max_diff(ctg, yt);

  StudyResult r;
  const std::string what = c.pair.empty() ? "all channels" : "channel pair c_out " + std::to_string(c.pair[0]) + ", c_in " + std::to_string(c.pair[1]);
  r.json = {{"case", c.case_path}, {"channels", what}, {"input", s.x.shape()}, {"weight", s.w.shape()},
            {"stride", s.a.stride}, {"padding", s.a.padding}, {"dilation", s.a.dilation}, {"groups", s.a.groups},
            {"shape", {R, K}}, {"matrix", rows_json(cm, R, K)}, {"transpose", rows_json(ct, K, R)},
            {"Cx", {{"shape", y.shape()}, {"data", cx}}},
            {"y", std::vector<double>(g.data(), g.data() + g.numel())},
            {"transpose_times_y", {{"shape", s.x.shape()}, {"data", ctg}}},
            {"output_padding", out_pad},
            {"max_abs_diff", {{"conv2d_vs_Cx", fwd_err}, {"conv_transpose2d_vs_CTy", ct_err}, {"input_grad_vs_CTy", grad_err}}}};
  std::string& t = r.text;
  t = "conv2d " + c.case_path + " (" + what + ", image 0): input " + shape_str(s.x.shape()) + ", weight " + shape_str(s.w.shape()) +
      ", stride " + shape_str({d.sH, d.sW}) + ", padding " + shape_str({d.pH, d.pW}) + ", dilation " + shape_str({d.dH, d.dW}) +
      ", groups " + std::to_string(d.G) + "\n";
  t += "convolution matrix C [" + std::to_string(R) + " x " + std::to_string(K) +
       "]: y = C x, rows (c_out, oh, ow), columns (c_in, ih, iw)\n" + matrix_text(cm, R, K);
  t += "C^T [" + std::to_string(K) + " x " + std::to_string(R) + "]\n" + matrix_text(ct, K, R);
  t += "C x (= conv2d(x)), shown as " + shape_str(y.shape()) + ":\n" + matrix_text(cx, d.C_out * d.H_out, d.W_out);
  t += "y (" + std::string(go.defined() ? "the case's grad_output" : "ones") + "): " + shape_str(y.shape()) + "\n" +
       matrix_text(std::vector<double>(g.data(), g.data() + g.numel()), d.C_out * d.H_out, d.W_out);
  t += "C^T y, shown as " + shape_str(s.x.shape()) + ":\n" + matrix_text(ctg, d.C_in * d.H, d.W);
  t += "max |diff|: conv2d(x) vs C x " + fmt(fwd_err) + "; conv_transpose2d(y, w, output_padding " +
       shape_str({out_pad[0], out_pad[1]}) + ") vs C^T y " + fmt(ct_err) + "; conv2d input gradient vs C^T y " + fmt(grad_err) + "\n";
  t += "(conv_transpose2d is multiplication by C^T: the adjoint of conv2d, not its inverse)\n";
  if (!c.png.empty()) {
    write_png(c.png, diverging_heatmap(cm, R, K, cell_size(R, K)));
    t += "wrote " + c.png + " (C: red positive, blue negative, grey zero)\n";
  }
  return r;
}

}  // namespace convlab
