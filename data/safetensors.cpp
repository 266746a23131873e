// data/safetensors.cpp: see safetensors.h. The checks follow the reference implementation's
// (huggingface/safetensors validate()): header length within the file, JSON object, offsets that tile
// the data section exactly (sorted, starting at 0, no overlap, no gap, ending at the file's end).
#include "data/safetensors.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <string_view>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/files.h"
#include "data/json.h"

namespace convlab::safetensors {

static_assert(std::endian::native == std::endian::little,
              "safetensors stores little-endian floats; convlab copies raw bytes and needs a little-endian host");

namespace {

constexpr uint64_t kMaxHeader = 100'000'000;  // the reference implementation's limit
constexpr const char* kMeta = "__metadata__";

#define CKPT_CHECK(cond, ...) CL_CHECK(cond, "checkpoint " << path << ": " << __VA_ARGS__)

std::string shape_of(const nlohmann::json& j) { return json_brief(j); }

struct Entry {
  std::string name;
  Shape shape;
  uint64_t begin = 0, end = 0;
  bool i64 = false;  // stored as little-endian int64 (converted to float32 on load)
};

// float32 holds every integer up to 2^24 exactly; a counter beyond that would not survive the round trip.
constexpr int64_t kMaxExactInt = int64_t(1) << 24;

}  // namespace

bool is_int64_name(const std::string& name) {
  constexpr std::string_view kCounter = "num_batches_tracked";
  return name.size() >= kCounter.size() && name.compare(name.size() - kCounter.size(), kCounter.size(), kCounter) == 0 &&
         (name.size() == kCounter.size() || name[name.size() - kCounter.size() - 1] == '.');
}

const Tensor* File::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

void save(const std::string& path, const NamedTensors& tensors, const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header[kMeta] = m;
  }
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    CKPT_CHECK(!name.empty() && name != kMeta, "invalid tensor name '" << name << "'");
    CKPT_CHECK(seen.insert(name).second, "tensor '" << name << "' given twice");
    CKPT_CHECK(t.defined(), "tensor '" << name << "' is undefined");
    const bool i64 = is_int64_name(name);
    if (i64) {
      const float* p = t.data();
      for (int64_t i = 0; i < t.numel(); ++i)
        CKPT_CHECK(p[i] >= 0 && p[i] <= float(kMaxExactInt) && p[i] == std::floor(p[i]),
                   "tensor '" << name << "' is a counter (written as I64, like PyTorch), yet holds " << p[i]);
    }
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * (i64 ? 8 : 4);
    header[name] = {{"dtype", i64 ? "I64" : "F32"}, {"shape", t.shape()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string h = header.dump();
  h.append((8 - (h.size() % 8)) % 8, ' ');  // data section 8-byte aligned (8 + |h| is a multiple of 8)
  std::string out(8, '\0');
  const uint64_t n = h.size();
  std::memcpy(out.data(), &n, 8);  // little-endian host (static_assert above)
  out += h;
  out.reserve(out.size() + offset);
  for (const auto& [name, t] : tensors) {
    if (!is_int64_name(name)) {
      out.append(reinterpret_cast<const char*>(t.data()), static_cast<size_t>(t.numel()) * 4);
      continue;
    }
    for (int64_t i = 0; i < t.numel(); ++i) {
      const int64_t v = static_cast<int64_t>(t.data()[i]);  // checked above: an integer in [0, 2^24]
      out.append(reinterpret_cast<const char*>(&v), 8);
    }
  }
  write_file_bytes_atomic(path, out, "checkpoint");
}

File parse(const std::string& bytes, const std::string& path) {
  CKPT_CHECK(bytes.size() >= 8, "file is " << bytes.size() << " bytes, too short for the 8-byte header length "
                                           << "(truncated, or not a safetensors file)");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CKPT_CHECK(n <= bytes.size() - 8 && n <= kMaxHeader,
             "header length " << n << " does not fit the file's " << bytes.size()
                              << " bytes (truncated, or not a safetensors file)");
  CKPT_CHECK(n >= 2 && bytes[8] == '{', "header does not start with '{' (not a safetensors file)");
  const std::string_view text(bytes.data() + 8, n);

  // Parse with a callback that spots duplicate top-level names (plain parsing would keep one silently).
  std::set<std::string> names;
  std::string duplicate;
  nlohmann::json::parser_callback_t cb = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& j) {
    if (ev == nlohmann::json::parse_event_t::key && depth == 1 && !names.insert(j.get<std::string>()).second)
      duplicate = j.get<std::string>();
    return true;
  };
  CKPT_CHECK(json_depth(text) <= kMaxJsonDepth, "header is not valid JSON (nested deeper than " << kMaxJsonDepth
                                                                                               << " levels)");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text, cb);
  } catch (const nlohmann::json::exception& e) {
    CKPT_CHECK(false, "header is not valid JSON (" << e.what() << ")");
  }
  CKPT_CHECK(header.is_object(), "header is not a JSON object");
  CKPT_CHECK(duplicate.empty(), "tensor '" << duplicate << "' appears twice in the header");

  File f;
  std::vector<Entry> entries;
  for (const auto& [name, v] : header.items()) {
    if (name == kMeta) {
      CKPT_CHECK(v.is_object(), "__metadata__ must be an object of strings");
      for (const auto& [k, s] : v.items()) {
        CKPT_CHECK(s.is_string(), "__metadata__ value of '" << k << "' is not a string");
        f.metadata[k] = s.get<std::string>();
      }
      continue;
    }
    CKPT_CHECK(v.is_object() && v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"),
               "tensor '" << name << "' needs dtype, shape and data_offsets, got " << json_brief(v));
    CKPT_CHECK(v["dtype"].is_string(), "tensor '" << name << "': dtype is not a string");
    const std::string dtype = v["dtype"].get<std::string>();
    CKPT_CHECK(dtype == "F32" || dtype == "I64", "tensor '" << name << "' has dtype " << dtype
                                          << "; convlab reads F32 (and I64 counters) only (convert with .float())");
    Entry e;
    e.name = name;
    e.i64 = dtype == "I64";
    const uint64_t elem = e.i64 ? 8 : 4;
    const auto& sh = v["shape"];
    CKPT_CHECK(sh.is_array(), "tensor '" << name << "': shape " << shape_of(sh) << " is not an array");
    uint64_t numel = 1;
    for (const auto& d : sh) {
      CKPT_CHECK(d.is_number_unsigned() && d.get<uint64_t>() < (1ull << 40),
                 "tensor '" << name << "': bad shape " << shape_of(sh));
      CKPT_CHECK(!__builtin_mul_overflow(numel, d.get<uint64_t>(), &numel) && numel <= uint64_t(max_tensor_elements()),
                 "tensor '" << name << "': shape " << shape_of(sh) << " is too large");
      e.shape.push_back(d.get<int64_t>());
    }
    const auto& off = v["data_offsets"];
    CKPT_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
               "tensor '" << name << "': data_offsets " << json_brief(off) << " must be two non-negative integers");
    e.begin = off[0].get<uint64_t>();
    e.end = off[1].get<uint64_t>();
    CKPT_CHECK(e.begin <= e.end, "tensor '" << name << "': data_offsets " << json_brief(off) << " are reversed");
    CKPT_CHECK(e.end - e.begin == numel * elem, "tensor '" << name << "': shape " << shape_of(sh) << " needs "
                                                        << numel * elem << " bytes of " << dtype << ", data_offsets "
                                                        << json_brief(off) << " span " << e.end - e.begin);
    entries.push_back(std::move(e));
  }

  // The tensors must tile the data section exactly.
  const uint64_t data_size = bytes.size() - 8 - n;
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  uint64_t expected = 0;
  std::string prev = "the start of the data";
  for (const Entry& e : entries) {
    CKPT_CHECK(e.begin >= expected, "tensor '" << e.name << "' (bytes " << e.begin << ".." << e.end
                                               << ") overlaps '" << prev << "' (ends at " << expected << ")");
    CKPT_CHECK(e.begin == expected, "gap of " << e.begin - expected << " bytes before tensor '" << e.name << "'");
    CKPT_CHECK(e.end <= data_size, "tensor '" << e.name << "' (bytes " << e.begin << ".." << e.end
                                              << ") runs past the end of the data (" << data_size
                                              << " bytes): the file is truncated");
    expected = e.end;
    prev = e.name;
  }
  CKPT_CHECK(expected == data_size,
             data_size - expected << " unexplained bytes after the last tensor (corrupted or not convlab's)");

  const char* data = bytes.data() + 8 + n;
  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape);
    if (!e.i64) {
      if (e.end > e.begin) std::memcpy(t.data(), data + e.begin, e.end - e.begin);
    } else {
      for (int64_t i = 0, n = t.numel(); i < n; ++i) {
        int64_t v = 0;
        std::memcpy(&v, data + e.begin + uint64_t(i) * 8, 8);
        CKPT_CHECK(v >= -kMaxExactInt && v <= kMaxExactInt,
                   "tensor '" << e.name << "' (I64) holds " << v << ", which float32 cannot hold exactly (|v| <= 2^24)");
        t.data()[i] = float(v);
      }
    }
    f.tensors.emplace_back(e.name, std::move(t));
  }
  return f;
}

File load(const std::string& path) { return parse(read_file_bytes(path, "checkpoint"), path); }

namespace {
// A scalar [] and a one-element [1] hold the same value: older convlab checkpoints keep BatchNorm's
// num_batches_tracked as float32 [1], PyTorch (and convlab now) as int64 [].
bool one_element(const Shape& s) { return s.empty() || (s.size() == 1 && s[0] == 1); }
}  // namespace

void copy_into(const File& file, const NamedTensors& targets, const std::string& path) {
  std::set<std::string> wanted;
  for (const auto& [name, t] : targets) {
    wanted.insert(name);
    const Tensor* src = file.find(name);
    CKPT_CHECK(src != nullptr, "tensor '" << name << "' " << shape_str(t.shape()) << " is missing");
    CKPT_CHECK(src->shape() == t.shape() || (one_element(src->shape()) && one_element(t.shape())), "tensor '" << name << "' is " << shape_str(src->shape())
                                                     << " in the checkpoint, the model expects "
                                                     << shape_str(t.shape()));
  }
  for (const auto& [name, t] : file.tensors)
    CKPT_CHECK(wanted.count(name) != 0,
               "unexpected tensor '" << name << "' " << shape_str(t.shape()) << " (not in the model)");
  for (const auto& [name, t] : targets) {
    Tensor dst = t;  // shares storage with the caller's tensor
    std::memcpy(dst.data(), file.find(name)->data(), static_cast<size_t>(t.numel()) * 4);
  }
}

#undef CKPT_CHECK

}  // namespace convlab::safetensors
