// models/op_case/resample_args.cpp: op-case fields of upsample and pooling (see resample_args.h).
// Integer fields go through OpCall::pair (an integer or [h, w]); strings, booleans and real-valued pairs
// are checked here because OpCall.fields is raw JSON.
#include "models/op_case/resample_args.h"


#include "core/error.h"
#include "data/json.h"

namespace convlab {
namespace {

using nlohmann::json;

std::string brief(const json& v) { return json_brief(v, 40); }

bool boolean(const OpCall& c, const std::string& f, bool dflt) {
  if (!c.fields.contains(f)) return dflt;
  const json& v = c.fields[f];
  CL_CHECK(v.is_boolean(), c.op << ": " << f << " must be true or false, got " << brief(v));
  return v.get<bool>();
}

// A number (both axes) or a pair [h, w] of numbers; JSON booleans are not numbers.
std::array<double, 2> real_pair(const OpCall& c, const std::string& f) {
  const json& v = c.fields[f];
  if (v.is_number()) return {v.get<double>(), v.get<double>()};
  CL_CHECK(v.is_array() && v.size() == 2 && v[0].is_number() && v[1].is_number(),
           c.op << ": " << f << " must be a number or a pair [h, w] of numbers, got " << brief(v));
  return {v[0].get<double>(), v[1].get<double>()};
}

Pair kernel_size(const OpCall& c) {
  CL_CHECK(c.fields.contains("kernel_size"), c.op << ": missing field 'kernel_size' (an integer or [h, w])");
  return c.pair("kernel_size", {1, 1});
}

std::optional<Pair> stride(const OpCall& c) {
  if (!c.fields.contains("stride")) return std::nullopt;  // PyTorch: stride defaults to kernel_size
  return c.pair("stride", {1, 1});
}

}  // namespace

UpsampleArgs upsample_args(const OpCall& c) {
  UpsampleArgs a;
  if (c.fields.contains("mode")) {
    const json& m = c.fields["mode"];
    CL_CHECK(m.is_string(), c.op << ": mode must be a string (\"nearest\" or \"bilinear\"), got " << brief(m));
    a.mode = upsample_mode(m.get<std::string>());
  }
  // Like F.interpolate, any align_corners given with mode nearest (even false) is refused.
  CL_CHECK(!(c.fields.contains("align_corners") && a.mode == UpsampleMode::nearest),
           c.op << ": align_corners can only be set with mode bilinear, got mode nearest");
  a.align_corners = boolean(c, "align_corners", false);
  if (c.fields.contains("size")) a.size = c.pair("size", {1, 1});
  if (c.fields.contains("scale_factor")) a.scale = real_pair(c, "scale_factor");
  return a;
}

MaxPool2dArgs max_pool2d_args(const OpCall& c) {
  MaxPool2dArgs a;
  a.kernel_size = kernel_size(c);
  a.stride = stride(c);
  a.padding = c.pair("padding", {0, 0});
  a.dilation = c.pair("dilation", {1, 1});
  a.ceil_mode = boolean(c, "ceil_mode", false);
  return a;
}

AvgPool2dArgs avg_pool2d_args(const OpCall& c) {
  AvgPool2dArgs a;
  a.kernel_size = kernel_size(c);
  a.stride = stride(c);
  a.padding = c.pair("padding", {0, 0});
  a.ceil_mode = boolean(c, "ceil_mode", false);
  a.count_include_pad = boolean(c, "count_include_pad", true);
  return a;
}

}  // namespace convlab
