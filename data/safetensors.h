// data/safetensors.h: checkpoints in the safetensors format, readable by safetensors.torch.load_file or a
// 20-line Python reader (docs/data.md), holding model weights and buffers under PyTorch's names.
//
// Layout: 8 bytes little-endian u64 N, then N bytes of JSON header (padded with spaces so the data
// starts at a multiple of 8), then the raw tensor bytes. The header maps each tensor name to
// {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]} (offsets relative to the data start) and
// may hold "__metadata__": {string: string}. Little-endian, C order. Tensors are float32 in memory; in the
// file they are F32, except the counters PyTorch keeps as int64 (BatchNorm's num_batches_tracked, shape []),
// which are written as I64 so torch.load_state_dict takes them as they are. I64 tensors are read too and
// converted to float32 when |v| <= 2^24 (every value float32 holds exactly), else refused.
//
// load() validates everything before trusting it and throws convlab::Error "checkpoint PATH: ..." for a
// truncated, corrupted or foreign file: file shorter than its header, header not JSON or not an object,
// unknown dtype, bad shape, data_offsets out of range / not matching shape*4 (or *8) / overlapping / leaving
// gaps, duplicate names. save() writes atomically (temp file + rename): a crash never leaves a torn file.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace convlab {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

namespace safetensors {

struct File {
  NamedTensors tensors;                         // in file (data offset) order
  std::map<std::string, std::string> metadata;  // the "__metadata__" entry, empty when absent
  const Tensor* find(const std::string& name) const;  // nullptr when absent
};

// Tensors are written in the order given; names must be unique and non-empty and must not be
// "__metadata__". Tensors are copied as they are (contiguous float32); is_int64_name() ones are written as
// I64 and must hold integers in [0, 2^24].
void save(const std::string& path, const NamedTensors& tensors,
          const std::map<std::string, std::string>& metadata = {});
File load(const std::string& path);
// The same, from bytes in memory (`path` only names the source in error messages).
File parse(const std::string& bytes, const std::string& path);

// True for the names written as I64: "num_batches_tracked" and "<prefix>.num_batches_tracked".
bool is_int64_name(const std::string& name);

// Copies the file's tensors into `targets` (e.g. a module's named_parameters() + named_buffers(), which
// share storage with the module). Every target must be present with the same shape and no tensor may be
// left over, else convlab::Error naming the tensor and both shapes; nothing is copied unless all match.
// A one-element tensor fits either [] or [1] (old convlab checkpoints kept num_batches_tracked as [1]).
void copy_into(const File& file, const NamedTensors& targets, const std::string& path);

}  // namespace safetensors
}  // namespace convlab
