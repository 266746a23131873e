// core/separable.cpp: depthwise_separable_conv2d = depthwise conv2d then pointwise (1x1) conv2d.
// The shape checks come first and name the separable op's own tensors (depthwise_weight, pointwise_weight),
// so a user never sees an error about an intermediate conv2d call they did not write.
// Speed: the depthwise step runs core/depthwise.cpp's direct kernel (conv2d dispatches on is_depthwise),
// the pointwise step the "columns are the input" GEMM path of core/conv2d.cpp.
#include "core/separable.h"

#include "core/error.h"
#include "core/ops.h"

namespace convlab {
namespace {

constexpr const char* kOp = "depthwise_separable_conv2d";

void check_shapes(const Tensor& x, const Tensor& dw, const Tensor& dwb, const Tensor& pw, const Tensor& pwb,
                  const Conv2dArgs& a) {
  CL_CHECK(x.defined() && dw.defined() && pw.defined(),
           kOp << ": input, depthwise_weight and pointwise_weight are required");
  CL_CHECK(a.groups == 1, kOp << ": groups must be 1 (the depthwise step always uses groups = C_in), got "
                              << a.groups);
  const Shape &xs = x.shape(), &ws = dw.shape(), &ps = pw.shape();
  CL_CHECK(xs.size() == 4, kOp << ": input must be 4-D [N, C_in, H, W], got input " << shape_str(xs));
  for (int64_t v : xs) CL_CHECK(v >= 1, kOp << ": input " << shape_str(xs) << " has an empty dimension");
  const int64_t C_in = xs[1];
  // depthwise_weight [C_in*multiplier, 1, kH, kW]
  CL_CHECK(ws.size() == 4, kOp << ": depthwise_weight must be 4-D [C_in*multiplier, 1, kH, kW], got depthwise_weight "
                               << shape_str(ws));
  CL_CHECK(ws[1] == 1, kOp << ": depthwise_weight " << shape_str(ws)
                           << " must have 1 channel per group in dim 1 ([C_in*multiplier, 1, kH, kW]), input "
                           << shape_str(xs));
  CL_CHECK(ws[0] >= 1 && ws[0] % C_in == 0,
           kOp << ": depthwise_weight " << shape_str(ws) << " has " << ws[0]
               << " output channels, expected a multiple of C_in=" << C_in << " (input " << shape_str(xs) << ")");
  const int64_t C_mid = ws[0];
  if (dwb.defined())
    CL_CHECK(dwb.shape() == Shape{C_mid}, kOp << ": depthwise_bias " << shape_str(dwb.shape()) << " must be ["
                                              << C_mid << "] for depthwise_weight " << shape_str(ws));
  // pointwise_weight [C_out, C_in*multiplier, 1, 1]
  CL_CHECK(ps.size() == 4 && ps[1] == C_mid && ps[2] == 1 && ps[3] == 1,
           kOp << ": pointwise_weight " << shape_str(ps) << ", expected [" << (ps.empty() ? 1 : ps[0]) << ","
               << C_mid << ",1,1] (C_out, C_in*multiplier = " << C_mid << " channels of depthwise_weight "
               << shape_str(ws) << ", 1, 1)");
  if (pwb.defined())
    CL_CHECK(pwb.shape() == Shape{ps[0]}, kOp << ": pointwise_bias " << shape_str(pwb.shape()) << " must be ["
                                              << ps[0] << "] for pointwise_weight " << shape_str(ps));
}

}  // namespace

Tensor depthwise_separable_conv2d(const Tensor& x, const Tensor& dw, const Tensor& dwb, const Tensor& pw,
                                  const Tensor& pwb, const Conv2dArgs& a) {
  check_shapes(x, dw, dwb, pw, pwb, a);
  Conv2dArgs da = a;
  da.groups = x.size(1);
  // Remaining checks (stride/padding/dilation values, kernel vs padded input) come from conv2d_dims; their
  // messages name the separable op.
  conv2d_dims(x.shape(), dw.shape(), dwb.defined() ? &dwb.shape() : nullptr, da, kOp);
  const Tensor mid = conv2d(x, dw, dwb, da);  // [N, C_in*multiplier, H_out, W_out]
  return conv2d(mid, pw, pwb, Conv2dArgs{});  // [N, C_out, H_out, W_out]
}

}  // namespace convlab
