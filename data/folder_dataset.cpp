// data/folder_dataset.cpp: see folder_dataset.h.
#include "data/folder_dataset.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/random.h"
#include "data/files.h"
#include "data/png.h"

namespace convlab {

namespace fs = std::filesystem;

namespace {

constexpr int32_t kIgnoredLabel = kFolderIgnoredLabel;

std::string lower_ext(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext;
}
bool is_png(const fs::path& p) { return lower_ext(p) == ".png"; }
// Images may be JPEG (data/jpeg.h); masks are PNG only: JPEG's lossy edges would invent class ids.
bool is_image(const fs::path& p) { return is_png(p) || lower_ext(p) == ".jpg" || lower_ext(p) == ".jpeg"; }

// name (no extension) -> file, for the PNGs of one folder; refuses two files with the same name.
std::map<std::string, fs::path> pngs_in(const fs::path& dir, const std::string& what) {
  std::error_code ec;
  CL_CHECK(fs::is_directory(dir, ec), "data.root: " << dir.string() << " is not a folder (a folder dataset needs "
                                                    << what << "/ beside " << (what == "images" ? "masks" : "images")
                                                    << "/)");
  std::map<std::string, fs::path> out;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec) || !(what == "images" ? is_image(it->path()) : is_png(it->path()))) continue;
    CL_CHECK(out.size() < size_t(kMaxFolderImages),
             "data.root: " << dir.string() << " holds more than " << kMaxFolderImages << " images");
    const std::string name = it->path().stem().string();
    auto [pos, fresh] = out.emplace(name, it->path());
    CL_CHECK(fresh, "data.root: " << pos->second.string() << " and " << it->path().string() << " have the same name");
  }
  CL_CHECK(!ec, "data.root: cannot list " << dir.string() << " (" << ec.message() << ")");
  return out;
}

std::vector<std::string> read_list(const std::string& path, const std::set<std::string>& known, const std::string& key) {
  std::istringstream in(read_file_bytes(path, key, 64 << 20));
  std::vector<std::string> names;
  std::set<std::string> seen;
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    const size_t hash = line.find('#');
    if (hash != std::string::npos) line.erase(hash);
    const size_t b = line.find_first_not_of(" \t\r"), e = line.find_last_not_of(" \t\r");
    if (b == std::string::npos) continue;
    std::string name = line.substr(b, e - b + 1);
    if (is_image(name)) name = fs::path(name).stem().string();  // "a.png" and "a" both name the pair a
    CL_CHECK(known.count(name), key << ": " << path << " line " << line_no << ": '" << name
                                    << "' is not an image of the folder (images/" << name << ".png with masks/" << name
                                    << ".png)");
    CL_CHECK(seen.insert(name).second, key << ": " << path << " line " << line_no << ": '" << name << "' listed twice");
    names.push_back(name);
  }
  CL_CHECK(!names.empty(), key << ": " << path << " lists no images");
  return names;
}

// Bilinear with half-pixel centres (align_corners=False), clamped at the border: [H, W, 3] bytes -> [3, S, S].
Tensor resize_image(const RgbImage& img, int64_t S) {
  Tensor t = Tensor::empty({3, S, S});
  float* out = t.data();
  const double sy = double(img.H) / S, sx = double(img.W) / S;
  for (int64_t y = 0; y < S; ++y) {
    const double fy = std::max(0.0, (y + 0.5) * sy - 0.5);
    const int64_t y0 = std::min<int64_t>(int64_t(fy), img.H - 1), y1 = std::min<int64_t>(y0 + 1, img.H - 1);
    const double wy = fy - y0;
    for (int64_t x = 0; x < S; ++x) {
      const double fx = std::max(0.0, (x + 0.5) * sx - 0.5);
      const int64_t x0 = std::min<int64_t>(int64_t(fx), img.W - 1), x1 = std::min<int64_t>(x0 + 1, img.W - 1);
      const double wx = fx - x0;
      for (int64_t c = 0; c < 3; ++c) {
        const double v = (1 - wy) * ((1 - wx) * img.at(y0, x0)[c] + wx * img.at(y0, x1)[c]) +
                         wy * ((1 - wx) * img.at(y1, x0)[c] + wx * img.at(y1, x1)[c]);
        out[(c * S + y) * S + x] = float(v / 255.0);
      }
    }
  }
  return t;
}

// Class ids of a mask file at its own size: grey value, or VOC colour looked up.
std::vector<int32_t> mask_ids(const PngImage& m, const std::string& path, const FolderDatasetOptions& opt) {
  static const std::map<uint32_t, int32_t> colours = [] {
    std::map<uint32_t, int32_t> c;
    for (int k = 0; k < 256; ++k) {
      const auto rgb = voc_colour(k);
      c.emplace((uint32_t(rgb[0]) << 16) | (uint32_t(rgb[1]) << 8) | rgb[2], k);
    }
    return c;
  }();
  const int64_t n = m.W * m.H, ch = m.channels, classes = int64_t(opt.classes.size());
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* p = m.pixels.data() + i * ch;
    int32_t id;
    if (ch <= 2) {
      id = p[0];
    } else {
      const auto it = colours.find((uint32_t(p[0]) << 16) | (uint32_t(p[1]) << 8) | p[2]);
      CL_CHECK(it != colours.end(), "data: mask " << path << ": pixel (" << i % m.W << "," << i / m.W << ") has colour ("
                                                  << int(p[0]) << "," << int(p[1]) << "," << int(p[2])
                                                  << "), not one of the VOC palette's (a colour mask must use them; "
                                                  << "or write class ids as an 8-bit grey PNG)");
      id = it->second;
    }
    if (id == opt.ignore_index) {
      ids[i] = kIgnoredLabel;
      continue;
    }
    CL_CHECK(id < classes, "data: mask " << path << ": pixel (" << i % m.W << "," << i / m.W << ") is class " << id
                                         << ", but data.classes names " << classes << " (0.." << classes - 1 << ")"
                                         << (opt.ignore_index >= 0 ? "; data.ignore_index is " + std::to_string(opt.ignore_index) : ""));
    ids[i] = id;
  }
  return ids;
}

}  // namespace

std::array<uint8_t, 3> voc_colour(int k) {
  std::array<uint8_t, 3> c = {0, 0, 0};
  for (int bit = 7; bit >= 0 && k > 0; --bit, k >>= 3)
    for (int ch = 0; ch < 3; ++ch) c[ch] = uint8_t(c[ch] | (((k >> ch) & 1) << bit));
  return c;
}

std::vector<std::string> folder_split(const FolderDatasetOptions& opt, const std::string& split) {
  CL_CHECK(split == "train" || split == "val", "data: unknown split '" << split << "'");
  const fs::path root(opt.root);
  const auto images = pngs_in(root / "images", "images"), masks = pngs_in(root / "masks", "masks");
  for (const auto& [name, path] : images)
    CL_CHECK(masks.count(name), "data: image " << path.string() << " has no mask (expected " << (root / "masks" / (name + ".png")).string() << ")");
  // (masks: PNG only; an images/ file of another extension pairs with masks/<name>.png)
  for (const auto& [name, path] : masks)
    CL_CHECK(images.count(name), "data: mask " << path.string() << " has no image (expected " << (root / "images" / (name + ".png")).string() << " or .jpg)");
  CL_CHECK(images.size() >= 2, "data.root: " << opt.root << " holds " << images.size()
                                             << " image/mask pairs; a train and a val split need at least 2");
  std::set<std::string> all;
  for (const auto& [name, path] : images) all.insert(name);

  std::vector<std::string> train, val;
  if (!opt.train_list.empty() || !opt.val_list.empty()) {
    if (!opt.train_list.empty()) train = read_list(opt.train_list, all, "data.train_list");
    if (!opt.val_list.empty()) val = read_list(opt.val_list, all, "data.val_list");
    const std::vector<std::string>& given = opt.val_list.empty() ? train : val;
    std::vector<std::string>& rest = opt.val_list.empty() ? val : train;
    if (opt.train_list.empty() || opt.val_list.empty()) {  // the other split is every name not listed
      const std::set<std::string> listed(given.begin(), given.end());
      for (const std::string& n : all)
        if (!listed.count(n)) rest.push_back(n);
      CL_CHECK(!rest.empty(), "data: " << (opt.val_list.empty() ? opt.train_list : opt.val_list)
                                       << " lists every image, leaving none for the "
                                       << (opt.val_list.empty() ? "val" : "train") << " split");
    } else {
      const std::set<std::string> t(train.begin(), train.end());
      for (const std::string& n : val)
        CL_CHECK(!t.count(n), "data: '" << n << "' is in both " << opt.train_list << " and " << opt.val_list);
    }
  } else {
    CL_CHECK(opt.val_ratio > 0 && opt.val_ratio < 1, "data.val_ratio: expected a number in (0, 1), got " << opt.val_ratio);
    std::vector<std::string> order(all.begin(), all.end());
    Rng rng(opt.seed);
    for (int64_t i = int64_t(order.size()) - 1; i > 0; --i) std::swap(order[size_t(i)], order[size_t(rng.randint(i + 1))]);
    const int64_t n = int64_t(order.size());
    const int64_t n_val = std::clamp<int64_t>(std::llround(opt.val_ratio * double(n)), 1, n - 1);
    val.assign(order.begin(), order.begin() + n_val);
    train.assign(order.begin() + n_val, order.end());
    std::sort(val.begin(), val.end());
    std::sort(train.begin(), train.end());
  }
  return split == "train" ? train : val;
}

FolderDataset::FolderDataset(const FolderDatasetOptions& opt, const std::string& split) : opt_(opt) {
  CL_CHECK(opt.classes.size() >= 2 && opt.classes.size() <= 256,
           "data.classes: a folder dataset names its classes, background first (2 to 256 names), got "
               << opt.classes.size());
  CL_CHECK(opt.ignore_index >= -1 && opt.ignore_index <= 255,
           "data.ignore_index: expected a mask value in 0..255 (or -1: none), got " << opt.ignore_index);
  CL_CHECK(opt.ignore_index < 0 || opt.ignore_index >= int64_t(opt.classes.size()),
           "data.ignore_index: " << opt.ignore_index << " is also class '" << opt.classes[size_t(opt.ignore_index)]
                                 << "' of data.classes");
  const int64_t S = opt.image_size;
  CL_CHECK(S >= 1 && S <= kMaxImageSize, "data.image_size: expected 1.." << kMaxImageSize << ", got " << S);
  names_ = folder_split(opt, split);
  CL_CHECK(int64_t(names_.size()) * S * S * 3 <= max_tensor_elements(),
           "data: " << names_.size() << " images of " << S << "x" << S << " do not fit in memory (limit "
                    << max_tensor_elements() << " values)");
  const fs::path root(opt.root);
  const auto images = pngs_in(root / "images", "images");
  for (const std::string& name : names_) {
    const std::string ipath = images.at(name).string(), mpath = (root / "masks" / (name + ".png")).string();
    const RgbImage img = to_rgb(read_image(ipath));  // PNG or JPEG
    const PngImage mask = read_png(mpath);
    CL_CHECK(img.W == mask.W && img.H == mask.H, "data: image " << ipath << " is " << img.W << "x" << img.H << " but its mask "
                                                                << mpath << " is " << mask.W << "x" << mask.H);
    const std::vector<int32_t> ids = mask_ids(mask, mpath, opt);
    SegSample s;
    s.H = s.W = S;
    s.image = resize_image(img, S);
    s.label.resize(static_cast<size_t>(S * S));
    for (int64_t y = 0; y < S; ++y) {  // nearest: the source pixel whose centre is closest
      const int64_t sy = std::min<int64_t>(img.H - 1, int64_t((y + 0.5) * double(img.H) / S));
      for (int64_t x = 0; x < S; ++x) {
        const int64_t sx = std::min<int64_t>(img.W - 1, int64_t((x + 0.5) * double(img.W) / S));
        s.label[size_t(y * S + x)] = ids[size_t(sy * img.W + sx)];
      }
    }
    s.bucket.assign(static_cast<size_t>(S * S), kBucketBackground);  // no object sizes in a user's masks
    samples_.push_back(std::move(s));
  }
}

SegSample FolderDataset::get(int64_t i) const {
  CL_CHECK(i >= 0 && i < size(), "folder dataset: sample " << i << " out of range [0, " << size() << ")");
  SegSample s = samples_[size_t(i)];
  s.image = s.image.clone();  // callers may write into the batch; the stored sample stays as read
  return s;
}

}  // namespace convlab
