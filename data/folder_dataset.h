// data/folder_dataset.h: a user's own segmentation data, `"data": {"dataset": "folder", "root": DIR, ...}`.
//
// DIR/images/<name>.png (or .jpg / .jpeg: data/jpeg.h) and DIR/masks/<name>.png are pairs (matched by file name
// without extension; masks are PNG only: JPEG's lossy edges would invent class ids). A mask is
//  - a class-index PNG: 8-bit grey (or grey + alpha), pixel value = class id; or
//  - a colour / palette PNG in the PASCAL VOC colours (class k has VOC's colour map entry k: 0 black,
//    1 (128,0,0), 2 (0,128,0), ...; 255 (224,224,192) is VOC's "void" border), decoded back to ids.
// Pixels whose id equals `ignore_index` (VOC: 255) are not learned and not scored: their label in a sample is
// kFolderIgnoredLabel (-100, the loss's default ignore_index; metrics skip every negative label). Any other
// id must be < classes.size(). Images are RGB (grey / alpha are expanded / dropped).
//
// Every sample is resized to image_size x image_size (image: bilinear, half-pixel centres as
// align_corners=False; mask: nearest), so a folder of mixed sizes trains at the model's size; the random
// crop and flips of data.crop / hflip / vflip apply after that. Train / val split: by file lists (text
// files of names, one a line, '#' comments) or by `val_ratio` (a seeded shuffle of the sorted names;
// at least one image in each split). All files are read, checked and resized when the dataset is built: an
// unreadable file, an image without a mask (or the reverse), an image and mask of different sizes, a class
// id out of range or a colour outside VOC's map is refused with convlab::Error naming the file (and the
// pixel). Samples live in memory (the count is bounded before anything is decoded).
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace convlab {

struct FolderDatasetOptions {
  std::string root;                  // holds images/ and masks/
  std::vector<std::string> classes;  // names, background (id 0) first: at least 2, at most 256
  int64_t image_size = 64;
  int64_t ignore_index = 255;        // mask value of ignored pixels; -1: none
  std::string train_list, val_list;  // files of names; both empty: split by val_ratio
  double val_ratio = 0.2;
  uint64_t seed = 0;                 // the val_ratio shuffle
};

inline constexpr int64_t kMaxFolderImages = 100'000;
inline constexpr int32_t kFolderIgnoredLabel = -100;

class FolderDataset : public SegDataset {
 public:
  // `split`: "train" or "val".
  FolderDataset(const FolderDatasetOptions& opt, const std::string& split);
  int64_t size() const override { return static_cast<int64_t>(samples_.size()); }
  SegSample get(int64_t i) const override;
  int64_t num_classes() const override { return static_cast<int64_t>(opt_.classes.size()); }
  std::vector<std::string> class_names() const override { return opt_.classes; }
  const std::vector<std::string>& names() const { return names_; }  // file names (no extension), in order

 private:
  FolderDatasetOptions opt_;
  std::vector<std::string> names_;
  std::vector<SegSample> samples_;
};

// The file names (without extension) of the split, as FolderDataset uses them; checks the folder's pairs.
std::vector<std::string> folder_split(const FolderDatasetOptions& opt, const std::string& split);

// VOC's colour for class id k (0..255): the bit-interleaved colour map of the VOC devkit.
std::array<uint8_t, 3> voc_colour(int k);

}  // namespace convlab
