// data/safetensors.h: checkpoints in the safetensors format, readable by safetensors.torch.load_file or a
// 20-line Python reader (docs/data.md), holding model weights and buffers under PyTorch's names.
//
// Layout: 8 bytes little-endian u64 N, then N bytes of JSON header (padded with spaces so the data
// starts at a multiple of 8), then the raw tensor bytes. The header maps each tensor name to
// {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]} (offsets relative to the data start) and
// may hold "__metadata__": {string: string}. convlab writes and reads F32 only, little-endian, C order.
//
// load() validates everything before trusting it and throws convlab::Error "checkpoint PATH: ..." for a
// truncated, corrupted or foreign file: file shorter than its header, header not JSON or not an object,
// unknown dtype, bad shape, data_offsets out of range / not matching shape*4 / overlapping / leaving
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
// "__metadata__". Tensors are copied as they are (contiguous float32).
void save(const std::string& path, const NamedTensors& tensors,
          const std::map<std::string, std::string>& metadata = {});
File load(const std::string& path);
// The same, from bytes in memory (`path` only names the source in error messages).
File parse(const std::string& bytes, const std::string& path);

// Copies the file's tensors into `targets` (e.g. a module's named_parameters() + named_buffers(), which
// share storage with the module). Every target must be present with the same shape and no tensor may be
// left over, else convlab::Error naming the tensor and both shapes; nothing is copied unless all match.
void copy_into(const File& file, const NamedTensors& targets, const std::string& path);

}  // namespace safetensors
}  // namespace convlab
