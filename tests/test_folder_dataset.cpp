// tests/test_folder_dataset.cpp: "dataset": "folder", a user's images/ and masks/ (data/folder_dataset.h), on the
// committed example tests/data/seg_folder/ (written by its make.py): loading, VOC palette and ignored pixels,
// the two ways to split, every refusal naming its file, and a short training run through the binary.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/folder_dataset.h"
#include "data/png.h"
#include "models/config.h"
#include "models/seg_task.h"
#include "tests/testing.h"

namespace convlab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::source_path;

FolderDatasetOptions example() {
  FolderDatasetOptions o;
  o.root = source_path("tests/data/seg_folder");
  o.classes = {"background", "square", "disc"};
  o.image_size = 16;
  return o;
}

using testing::error_of;

TEST(FolderDataset, VocColourMap) {
  EXPECT_EQ(voc_colour(0), (std::array<uint8_t, 3>{0, 0, 0}));
  EXPECT_EQ(voc_colour(1), (std::array<uint8_t, 3>{128, 0, 0}));
  EXPECT_EQ(voc_colour(2), (std::array<uint8_t, 3>{0, 128, 0}));
  EXPECT_EQ(voc_colour(15), (std::array<uint8_t, 3>{192, 128, 128}));  // VOC's "person"
  EXPECT_EQ(voc_colour(255), (std::array<uint8_t, 3>{224, 224, 192}));  // VOC's "void" border
}

TEST(FolderDataset, LoadsPairsResizedWithPaletteAndIgnoredPixels) {
  FolderDatasetOptions o = example();
  o.val_list = source_path("tests/data/seg_folder/val.txt");
  const FolderDataset train(o, "train"), val(o, "val");
  EXPECT_EQ(val.names(), (std::vector<std::string>{"b", "e"}));  // "e.png" in the list names e
  EXPECT_EQ(train.names(), (std::vector<std::string>{"a", "c", "d", "f"}));
  EXPECT_EQ(train.num_classes(), 3);
  EXPECT_EQ(train.class_names()[2], "disc");
  for (const FolderDataset* ds : {&train, &val})
    for (int64_t i = 0; i < ds->size(); ++i) {
      const SegSample s = ds->get(i);
      EXPECT_EQ(s.image.shape(), (Shape{3, 16, 16}));  // 24x24 files, resized to image_size
      EXPECT_EQ(s.label.size(), 256u);
      for (int32_t l : s.label) EXPECT_TRUE(l == kFolderIgnoredLabel || (l >= 0 && l < 3)) << l;
    }
  // f's mask is a VOC palette PNG holding a disc (class 2); e's outline is 255 = ignored.
  const SegSample f = train.get(3);
  EXPECT_GT(std::count(f.label.begin(), f.label.end(), 2), 10);
  const SegSample e = val.get(1);
  EXPECT_GT(std::count(e.label.begin(), e.label.end(), kFolderIgnoredLabel), 0);
  // Without ignore_index, 255 is an id out of range: refused naming the file and the pixel.
  o.ignore_index = -1;
  const std::string err = error_of([&] { FolderDataset(o, "val"); });
  EXPECT_NE(err.find("masks/e.png: pixel ("), std::string::npos) << err;
  EXPECT_NE(err.find("is class 255, but data.classes names 3"), std::string::npos) << err;
}

TEST(FolderDataset, RatioSplitIsSeededDisjointAndComplete) {
  FolderDatasetOptions o = example();
  o.val_ratio = 0.34;
  const auto train = folder_split(o, "train"), val = folder_split(o, "val");
  EXPECT_EQ(val.size(), 2u);
  std::set<std::string> all(train.begin(), train.end());
  for (const std::string& v : val) EXPECT_TRUE(all.insert(v).second) << v << " in both splits";
  EXPECT_EQ(all.size(), 6u);
  EXPECT_EQ(folder_split(o, "val"), val);  // the same seed, the same split
  o.seed = 1;
  const auto other = folder_split(o, "val");
  o.seed = 2;
  EXPECT_TRUE(other != val || folder_split(o, "val") != val) << "the seed never changes the split";
  o.val_ratio = 1.5;
  EXPECT_NE(error_of([&] { folder_split(o, "val"); }).find("data.val_ratio"), std::string::npos);
}

// A copy of the example to break one file at a time.
std::string broken_copy(const std::string& name) {
  const std::string dir = testing::temp_dir("folder_" + name);
  fs::copy(source_path("tests/data/seg_folder"), dir, fs::copy_options::recursive);
  return dir;
}

TEST(FolderDataset, EveryBadFileIsRefusedByName) {
  FolderDatasetOptions o = example();
  {
    o.root = broken_copy("nomask");
    fs::remove(o.root + "/masks/c.png");
    EXPECT_NE(error_of([&] { FolderDataset(o, "train"); }).find("image " + o.root + "/images/c.png has no mask"), std::string::npos);
  }
  {
    o.root = broken_copy("noimage");
    fs::remove(o.root + "/images/d.png");
    EXPECT_NE(error_of([&] { FolderDataset(o, "train"); }).find("mask " + o.root + "/masks/d.png has no image"), std::string::npos);
  }
  {
    o.root = broken_copy("size");
    write_png(o.root + "/images/a.png", RgbImage(20, 24, 9));
    const std::string e = error_of([&] { FolderDataset(o, "train"); FolderDataset(o, "val"); });
    EXPECT_NE(e.find("image " + o.root + "/images/a.png is 20x24 but its mask " + o.root + "/masks/a.png is 24x24"),
              std::string::npos) << e;
  }
  {
    o.root = broken_copy("colour");
    RgbImage m(24, 24, 0);
    m.at(5, 7)[0] = 17;  // not a VOC colour
    write_png(o.root + "/masks/b.png", m);
    const std::string e = error_of([&] { FolderDataset(o, "train"); FolderDataset(o, "val"); });
    EXPECT_NE(e.find("mask " + o.root + "/masks/b.png: pixel (7,5) has colour (17,0,0)"), std::string::npos) << e;
  }
  {
    o.root = broken_copy("text");
    std::ofstream(o.root + "/images/a.png") << "not a png";
    const std::string e = error_of([&] { FolderDataset(o, "train"); FolderDataset(o, "val"); });
    EXPECT_NE(e.find(o.root + "/images/a.png"), std::string::npos) << e;
  }
  o = example();
  o.val_list = testing::temp_file("bad_val.txt", "b\nzebra\n");
  EXPECT_NE(error_of([&] { FolderDataset(o, "val"); }).find("line 2: 'zebra' is not an image of the folder"), std::string::npos);
  o.val_list = testing::temp_file("all_val.txt", "a\nb\nc\nd\ne\nf\n");
  EXPECT_NE(error_of([&] { FolderDataset(o, "train"); }).find("leaving none for the train split"), std::string::npos);
  o = example();
  o.classes = {"background"};
  EXPECT_NE(error_of([&] { FolderDataset(o, "train"); }).find("data.classes"), std::string::npos);
  o = example();
  o.root = source_path("tests/data");
  EXPECT_NE(error_of([&] { FolderDataset(o, "train"); }).find("is not a folder"), std::string::npos);
}

TEST(FolderDataset, ConfigKeysAreChecked) {
  const json base = load_config(source_path("configs/examples/folder_seg.json"),
                                {"data.root=" + source_path("tests/data/seg_folder"),
                                 "data.val_list=" + source_path("tests/data/seg_folder/val.txt")});
  const SegTask t = make_seg_task(base);
  EXPECT_EQ(t.train_set->size(), 4);
  EXPECT_EQ(t.val_set->size(), 2);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"data.train_size=100", "data.train_size: a folder dataset has as many samples as its files"},
      {"loss.ignore_index=255", "loss.ignore_index: a folder dataset marks the pixels of data.ignore_index"},
      {"data.classes=\"cats\"", "data.classes: expected a list of class names"},
      {"data.rooot=x", "data.rooot: unknown key (did you mean 'root'?)"},
  };
  for (const auto& [set, want] : bad) {
    json c = base;
    apply_set(c, set);
    const std::string e = error_of([&] { make_seg_task(c); });
    EXPECT_NE(e.find(want), std::string::npos) << set << ": " << e;
  }
  json no_root = base;
  no_root["data"].erase("root");
  EXPECT_NE(error_of([&] { make_seg_task(no_root); }).find("data.root: missing"), std::string::npos);
}

TEST(FolderDataset, TrainsAndEvaluatesThroughTheBinary) {
  const std::string runs = testing::temp_dir("folder_runs");
  const std::string sets = " --set data.root=" + source_path("tests/data/seg_folder") + " --set data.val_list=" +
                           source_path("tests/data/seg_folder/val.txt") + " --set train.steps=4 --set train.val_every=4";
  const testing::CliRun r = testing::run_cli("train " + source_path("configs/examples/folder_seg.json") + " --runs " + runs +
                                             sets + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const json s = json::parse(r.out);
  EXPECT_TRUE(s["final"]["class_iou"].contains("disc")) << s.dump();
  // The checkpoint's stored config names the folder (here by its absolute path): eval needs nothing else.
  const testing::CliRun ev = testing::run_cli("eval --checkpoint " + runs + "/folder_seg/model.safetensors --json");
  ASSERT_EQ(ev.code, 0) << ev.err;
  EXPECT_EQ(json::parse(ev.out)["class_iou"].size(), 3u) << ev.out;
}

}  // namespace
}  // namespace convlab
