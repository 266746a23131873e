// data/files.h: binary file helpers for the data layer (PNG, checkpoints, MNIST).
// Writes go through a temporary file in the same folder followed by rename(), so a reader never sees a
// half-written PNG or checkpoint, even if the writer is killed mid-write.
#pragma once
#include <cstdint>
#include <string>

namespace convlab {

// The whole file as bytes; throws convlab::Error "WHAT PATH: cannot open (reason)" (just "PATH: ..." when
// `what` is empty), also for a path that is not a regular file or holds more than max_bytes.
constexpr int64_t kMaxFileBytes = int64_t(4) << 30;
std::string read_file_bytes(const std::string& path, const std::string& what = "file",
                            int64_t max_bytes = kMaxFileBytes);
// Writes PATH.tmp.<pid>.<n>, then renames it onto PATH; on failure removes the temporary and throws.
void write_file_bytes_atomic(const std::string& path, const std::string& bytes, const std::string& what = "file");
bool file_exists(const std::string& path);

// Text files of configs, op cases, experiments and reports: the same, with the path alone in messages.
std::string read_text_file(const std::string& path);  // read_file_bytes(path, "")
void write_file_atomic(const std::string& path, const std::string& contents);  // write_file_bytes_atomic(path, contents, "")

}  // namespace convlab
