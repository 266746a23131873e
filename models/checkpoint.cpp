// models/checkpoint.cpp: see checkpoint.h. Every filesystem call goes through error_code overloads (or
// POSIX) so a failure becomes a convlab::Error naming the path, never a std::filesystem_error.
#include "models/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/files.h"
#include "data/json.h"

namespace convlab {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* kManifest = "checkpoint.json";
constexpr const char* kFolder = "checkpoints";
// Every name a trainer has written at the top level of a run folder, in this and older versions.
// The files of the shipped tasks; a RunCheckpoints also knows the names its own task gives (a task of a program
// using the library may name its files differently).
const std::vector<std::string> kKnownFiles = {"model.safetensors", "optimizer.safetensors", "generator.safetensors",
                                              "discriminator.safetensors", "generator_ema.safetensors"};

struct Manifest {
  int64_t step = 0;
  std::string folder;
  std::vector<std::string> files;
  bool published = false;
};

std::string tmp_suffix() { return ".tmp-" + std::to_string(::getpid()); }

// Our own temporaries (".tmp-<pid>") and data/files.h's (".tmp.<pid>.<n>").
bool is_temp_name(const std::string& name) {
  for (const char* mark : {".tmp-", ".tmp."}) {
    const size_t p = name.find(mark);
    if (p != std::string::npos && p + 5 < name.size() && std::isdigit(static_cast<unsigned char>(name[p + 5])))
      return true;
  }
  return false;
}

std::vector<fs::path> entries(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) out.push_back(it->path());
  return out;
}

void remove_all_or_throw(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
  CL_CHECK(!ec, "train: cannot remove " << p.string() << " (" << ec.message() << ")");
}

// Makes a file's bytes (or a folder's entries) durable: a rename is only as safe as what it renames.
void fsync_path(const fs::path& p, bool dir) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | (dir ? O_DIRECTORY : 0));
  CL_CHECK(fd >= 0, "checkpoint " << p.string() << ": cannot open to sync (" << std::strerror(errno) << ")");
  const int r = ::fsync(fd), e = errno;
  ::close(fd);
  CL_CHECK(r == 0 || (dir && e == EINVAL),
           "checkpoint " << p.string() << ": fsync failed (" << std::strerror(e) << ")");
}

void rename_or_throw(const fs::path& from, const fs::path& to) {
  CL_CHECK(std::rename(from.c_str(), to.c_str()) == 0, "checkpoint " << to.string() << ": cannot rename "
                                                                     << from.string() << " into place ("
                                                                     << std::strerror(errno) << ")");
}

// A small file written durably: temporary, fsync, rename, fsync of the folder.
void write_durable(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + tmp_suffix();
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  CL_CHECK(fd >= 0, "checkpoint " << path.string() << ": cannot write (" << std::strerror(errno) << ")");
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) break;
    done += size_t(n);
  }
  bool ok = done == text.size() && ::fsync(fd) == 0;
  ok = ::close(fd) == 0 && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    CL_FAIL("checkpoint " << path.string() << ": write failed (disk full?)");
  }
  rename_or_throw(tmp, path);
  fsync_path(path.parent_path(), true);
}

std::optional<Manifest> read_manifest(const fs::path& dir, const std::vector<std::string>& known) {
  const fs::path p = dir / kManifest;
  if (!file_exists(p.string())) return std::nullopt;
  const std::string where = p.string();
  const json j = json::parse(read_file_bytes(where, "checkpoint manifest"), nullptr, false);
  Manifest m;
  try {
    CL_CHECK(j.is_object(), "not a JSON object");
    CL_CHECK(json_to_int(j.at("step"), m.step), "step " << json_brief(j.at("step")) << " is not an integer");
    m.folder = j.at("folder").get<std::string>();
    m.files = j.at("files").get<std::vector<std::string>>();
    m.published = j.value("published", false);
  } catch (const std::exception& e) {
    CL_FAIL("checkpoint manifest " << where << ": unreadable (" << e.what() << "); start over with --overwrite");
  }
  // Only names this code writes: a hand-edited manifest must not send the loader elsewhere.
  CL_CHECK(m.step >= 0 && m.folder == std::string(kFolder) + "/step_" + std::to_string(m.step) && !m.files.empty(),
           "checkpoint manifest " << where << ": step " << m.step << " and folder '" << m.folder << "' do not match");
  for (const std::string& f : m.files)
    CL_CHECK(std::find(known.begin(), known.end(), f) != known.end(),
             "checkpoint manifest " << where << ": unexpected file '" << f << "'");
  return m;
}

void write_manifest(const fs::path& dir, const Manifest& m) {
  const json j = {{"format", "convlab-checkpoint"}, {"step", m.step}, {"folder", m.folder},
                  {"files", m.files},               {"published", m.published}};
  write_durable(dir / kManifest, j.dump(2) + "\n");
}

// The top-level copies users open: a hard link per file, swapped in by rename.
void publish(const fs::path& dir, const Manifest& m) {
  for (const std::string& name : m.files) {
    const fs::path src = dir / m.folder / name, dst = dir / name, tmp = dst.string() + tmp_suffix();
    std::error_code ec;
    fs::remove(tmp, ec);
    fs::create_hard_link(src, tmp, ec);
    if (ec) {  // e.g. a filesystem without hard links: a durable copy instead
      fs::copy_file(src, tmp, fs::copy_options::overwrite_existing, ec);
      CL_CHECK(!ec, "checkpoint " << dst.string() << ": cannot link or copy " << src.string() << " ("
                                  << ec.message() << ")");
      fsync_path(tmp, false);
    }
    rename_or_throw(tmp, dst);
  }
  fsync_path(dir, true);
}

std::string step_of(const safetensors::File& f) {
  auto it = f.metadata.find("step");
  return it == f.metadata.end() ? "?" : it->second;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

}  // namespace

const safetensors::File& Checkpoint::file(const std::string& name) const {
  auto it = files.find(name);
  CL_CHECK(it != files.end(), "--resume: the checkpoint of step " << step << " (" << source << ") has no " << name);
  return it->second;
}

const std::string& Checkpoint::path(const std::string& name) const {
  file(name);  // the same error when absent
  return paths.at(name);
}

std::string first_nonfinite(const NamedTensors& tensors, const std::string& prefix) {
  for (const auto& [name, t] : tensors) {
    const float* p = t.data();
    for (int64_t i = 0, n = t.numel(); i < n; ++i)
      if (!std::isfinite(p[i])) return prefix + name;
  }
  return "";
}

RunCheckpoints::RunCheckpoints(std::string run_dir, std::vector<std::string> names)
    : dir_(std::move(run_dir)), names_(std::move(names)), known_(kKnownFiles) {
  for (const std::string& n : names_) {
    const std::string ext = ".safetensors";
    CL_CHECK(n.size() > ext.size() && n.compare(n.size() - ext.size(), ext.size(), ext) == 0 &&
                 n.find('/') == std::string::npos && !is_temp_name(n),
             "checkpoint file name '" << n << "': expected a plain file name ending in .safetensors");
    if (std::find(known_.begin(), known_.end(), n) == known_.end()) known_.push_back(n);
  }
}

bool RunCheckpoints::exists() const {
  const fs::path dir(dir_);
  if (file_exists((dir / kManifest).string())) return true;
  // The old layout never has step folders: with one present (a clearing or a first write cut short), the
  // top-level files are leftovers of the new layout, not a checkpoint.
  for (const fs::path& p : entries(dir / kFolder))
    if (p.filename().string().rfind("step_", 0) == 0) return false;
  for (const std::string& n : known_)
    if (file_exists((dir / n).string())) return true;
  return false;
}

void RunCheckpoints::start(bool resume, bool overwrite, bool resumable) {
  const fs::path dir(dir_), ck = dir / kFolder;
  std::error_code ec;
  fs::create_directories(dir, ec);
  CL_CHECK(!ec, "train: cannot create the run folder " << dir_ << " (" << ec.message() << ")");
  for (const fs::path& d : {dir, ck})
    for (const fs::path& p : entries(d))
      if (is_temp_name(p.filename().string())) remove_all_or_throw(p);
  if (!resume) {
    if (exists() && !overwrite) {
      const OnDisk d = on_disk();
      const std::string what = d.error.empty() ? "checkpoint of step " + std::to_string(d.step) + ", " + d.source
                                               : "an unusable checkpoint: " + d.error;
      CL_FAIL("train: " << dir_ << " already holds a run (" << what << "); "
                        << (resumable ? "continue it with --resume, or start over with --overwrite (deletes it)"
                                      : "train again with --overwrite (deletes it)"));
    }
    // The manifest first, the step folders last: a kill while clearing leaves no checkpoint (see exists()),
    // or the complete one.
    remove_all_or_throw(dir / kManifest);
    for (const std::string& n : known_) remove_all_or_throw(dir / n);
    remove_all_or_throw(ck);
    for (const fs::path& p : entries(dir)) {
      const std::string n = p.filename().string(), ext = p.extension().string();
      if (n == "metrics.jsonl" || n == "summary.json" || n == "best.safetensors" || n == "curves.svg" || n == "index.html" ||
          (ext == ".png" && (n.rfind("val_", 0) == 0 || n.rfind("samples_", 0) == 0)))
        remove_all_or_throw(p);
    }
    return;
  }
  // Resuming: a step folder the manifest does not name is a write that never committed.
  const std::optional<Manifest> m = read_manifest(dir, known_);
  for (const fs::path& p : entries(ck))
    if (!m || p.filename().string() != fs::path(m->folder).filename().string()) remove_all_or_throw(p);
}

Checkpoint RunCheckpoints::load() const {
  const fs::path dir(dir_);
  Checkpoint c;
  if (const std::optional<Manifest> m = read_manifest(dir, known_)) {
    c.step = m->step;
    c.source = kManifest;
    const fs::path folder = dir / m->folder;
    for (const std::string& name : m->files) {
      const fs::path p = folder / name;
      CL_CHECK(file_exists(p.string()), "--resume: " << p.string() << " is missing, yet " << kManifest << " (step "
                                                     << m->step << ") lists it; start over with --overwrite");
      safetensors::File f = safetensors::load(p.string());
      CL_CHECK(step_of(f) == std::to_string(m->step),
               "--resume: " << p.string() << " is from step " << step_of(f) << ", " << kManifest << " says "
                            << m->step);
      c.files.emplace(name, std::move(f));
      c.paths.emplace(name, p.string());
    }
    if (m->published) {
      for (const std::string& name : m->files)
        CL_CHECK(file_exists((dir / name).string()),
                 "--resume: " << (dir / name).string() << " was removed by hand (" << kManifest << ", step " << m->step
                              << ", lists it); copy it back from " << (folder / name).string()
                              << ", or start over with --overwrite");
    } else {  // killed while publishing: finish it
      publish(dir, *m);
      Manifest done = *m;
      done.published = true;
      write_manifest(dir, done);
    }
    return c;
  }
  // The layout before checkpoint.json: the files at the top level, each with its step in the metadata.
  std::vector<std::string> present, steps;
  for (const std::string& name : names_) {
    const fs::path p = dir / name;
    if (!file_exists(p.string())) continue;
    safetensors::File f = safetensors::load(p.string());
    present.push_back(name);
    steps.push_back(name + " " + step_of(f));
    c.paths.emplace(name, p.string());
    c.files.emplace(name, std::move(f));
  }
  CL_CHECK(!present.empty(), "--resume: no checkpoint in " << dir_ << " (" << kManifest << ")");
  const std::string s0 = step_of(c.files.begin()->second);
  bool same = true;
  for (const auto& [name, f] : c.files) same = same && step_of(f) == s0;
  CL_CHECK(same, "--resume: " << dir_ << " holds checkpoint files from different steps (" << join(steps)
                              << "); start over with --overwrite");
  const auto [end, err] = std::from_chars(s0.data(), s0.data() + s0.size(), c.step);
  CL_CHECK(err == std::errc() && end == s0.data() + s0.size() && c.step >= 0,
           "--resume: " << dir_ << ": the checkpoint's step metadata '" << s0 << "' is not a step number");
  c.source = join(present);
  return c;
}

void RunCheckpoints::check_finite(int64_t step, const std::vector<CheckpointFile>& files) const {
  for (const CheckpointFile& f : files) {
    const std::string bad = first_nonfinite(f.tensors);
    CL_CHECK(bad.empty(), "train: " << bad << " (" << f.name << ") is not finite after step " << step
                                    << ", so no checkpoint of it is written; " << kept());
  }
}

void RunCheckpoints::defer(int64_t step, std::vector<CheckpointFile> files) {
  pending_.reset();  // an uncommitted one is dropped: its successor supersedes it
  check_finite(step, files);
  for (CheckpointFile& f : files)
    for (auto& [name, t] : f.tensors) t = t.clone();
  pending_ = Pending{.step = step, .files = std::move(files)};
}

void RunCheckpoints::commit_pending() {
  if (!pending_) return;
  const Pending p = std::move(*pending_);
  pending_.reset();
  save(p.step, p.files);
}

void RunCheckpoints::save(int64_t step, const std::vector<CheckpointFile>& files) {
  check_finite(step, files);
  const fs::path dir(dir_), ck = dir / kFolder;
  Manifest m{.step = step, .folder = std::string(kFolder) + "/step_" + std::to_string(step), .files = {}};
  for (const CheckpointFile& f : files) m.files.push_back(f.name);
  const std::optional<Manifest> old = read_manifest(dir, known_);
  CL_CHECK(!old || old->folder != m.folder, "train: the checkpoint of step " << step << " is already in " << dir_);
  const fs::path final_dir = dir / m.folder, tmp = final_dir.string() + tmp_suffix();
  std::error_code ec;
  fs::create_directories(ck, ec);
  remove_all_or_throw(tmp);
  fs::create_directory(tmp, ec);
  CL_CHECK(!ec, "checkpoint " << tmp.string() << ": cannot create (" << ec.message() << ")");
  for (const CheckpointFile& f : files) {
    std::map<std::string, std::string> meta = f.metadata;
    meta["step"] = std::to_string(step);
    safetensors::save((tmp / f.name).string(), f.tensors, meta);
    fsync_path(tmp / f.name, false);
  }
  fsync_path(tmp, true);
  remove_all_or_throw(final_dir);  // an uncommitted write of this step (start() normally removed it)
  rename_or_throw(tmp, final_dir);
  fsync_path(ck, true);
  fsync_path(dir, true);
  write_manifest(dir, m);  // the commit point
  publish(dir, m);
  m.published = true;
  write_manifest(dir, m);
  for (const fs::path& p : entries(ck))
    if (p != final_dir) remove_all_or_throw(p);
}

RunCheckpoints::OnDisk RunCheckpoints::on_disk() const {
  try {
    if (const std::optional<Manifest> m = read_manifest(dir_, known_)) return {.step = m->step, .source = kManifest, .error = ""};
    const Checkpoint c = load();  // the old layout
    return {.step = c.step, .source = c.source, .error = ""};
  } catch (const Error& e) {
    return {.step = -1, .source = "", .error = e.what()};
  }
}

std::string RunCheckpoints::kept() const {
  if (!exists()) return "no last good checkpoint exists in " + dir_ + " (none was written)";
  const OnDisk d = on_disk();
  if (!d.error.empty()) return "the checkpoint in " + dir_ + " is unusable: " + d.error;
  return "the last good checkpoint (step " + std::to_string(d.step) + ") is kept in " + dir_ + " (" + d.source + ")";
}

void RunCheckpoints::trim_metrics(int64_t step) const {
  const fs::path p = fs::path(dir_) / "metrics.jsonl";
  if (!file_exists(p.string())) return;
  std::istringstream in(read_file_bytes(p.string(), "metrics log"));
  std::string kept_lines;
  for (std::string line; std::getline(in, line);) {
    const json j = json::parse(line, nullptr, false);
    int64_t s = 0;
    if (j.is_object() && (!j.contains("step") || (json_to_int(j["step"], s) && s <= step)))
      kept_lines += line + "\n";
  }
  write_file_bytes_atomic(p.string(), kept_lines, "metrics log");
}

}  // namespace convlab
