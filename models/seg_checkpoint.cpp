// models/seg_checkpoint.cpp: the config a segmentation checkpoint is rebuilt with, checked against the one it
// was trained with (see seg_task.h). Weights of the same shapes fit networks that differ in dilation,
// padding or stride: loading them into such a network "works" and measures something else (gridding_seg's
// config on hdc_seg's weights reports 26% mIoU instead of 77%), so a difference is refused, not warned about.
#include "core/error.h"
#include "models/config.h"
#include "models/seg_task.h"

namespace convlab {

using nlohmann::json;

SegCheckpointConfig seg_checkpoint_config(const safetensors::File& file, const std::string& checkpoint,
                                          const std::string& config_path, const std::vector<std::string>& sets,
                                          const std::string& cmd) {
  const bool stored = file.metadata.count("config") > 0;
  if (config_path.empty()) {
    CL_CHECK(stored, cmd << ": checkpoint " << checkpoint
                         << " holds no config in its metadata (a plain state dict, e.g. written by PyTorch): "
                         << "give the config it was trained with, --config CONFIG");
  }
  SegCheckpointConfig out;
  const std::string stored_source = "the config stored in " + checkpoint;
  if (!config_path.empty()) {
    out.config = load_config(config_path, sets);
    out.source = config_path;
  } else {
    out.config = checkpoint_config(file.metadata, checkpoint);
    for (const std::string& s : sets) apply_set(out.config, s);
    out.source = stored_source + (sets.empty() ? "" : " with --set");
  }
  if (stored && (!config_path.empty() || !sets.empty())) {
    const json original = checkpoint_config(file.metadata, checkpoint);
    json trained_record;
    try {
      trained_record = make_seg_task(original, /*with_data=*/false).layer_record;
    } catch (const Error& e) {
      CL_FAIL(cmd << ": " << stored_source << " does not build a segmentation network (" << e.what() << ")");
    }
    const std::string d = network_difference(trained_record, make_seg_task(out.config, false).layer_record);
    CL_CHECK(d.empty(), cmd << ": " << d << " (" << out.source << " does not build the network " << checkpoint
                            << " was trained with; leave out --config and the model --set to use the checkpoint's own)");
  }
  return out;
}

LoadedSegModel load_seg_checkpoint(const std::string& checkpoint, const std::string& config_path,
                                   const std::vector<std::string>& sets, const std::string& cmd, bool with_data) {
  const safetensors::File f = safetensors::load(checkpoint);
  SegCheckpointConfig c = seg_checkpoint_config(f, checkpoint, config_path, sets, cmd);
  LoadedSegModel m{.task = make_seg_task(c.config, with_data), .config_source = c.source};
  try {
    safetensors::copy_into(f, m.task.model->state_dict(), checkpoint);
  } catch (const Error& e) {
    CL_FAIL(cmd << ": the checkpoint does not fit " << c.source << ": " << e.what());
  }
  return m;
}

}  // namespace convlab
