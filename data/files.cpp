// data/files.cpp: see files.h.
#include "data/files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace convlab {

std::string read_file_bytes(const std::string& path, const std::string& what, int64_t max_bytes) {
  const std::string name = what.empty() ? path : what + " " + path;
  // A regular file of bounded size: a folder, a FIFO or /dev/zero named as a config must not hang or
  // grow without end.
  struct stat st {};
  CL_CHECK(::stat(path.c_str(), &st) == 0, name << ": cannot open (" << std::strerror(errno) << ")");
  CL_CHECK(S_ISREG(st.st_mode), name << ": not a regular file");
  CL_CHECK(st.st_size <= max_bytes, name << ": " << st.st_size << " bytes, more than the " << max_bytes
                                         << " this reader accepts");
  std::ifstream in(path, std::ios::binary);
  CL_CHECK(in, name << ": cannot open (" << std::strerror(errno) << ")");
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  CL_CHECK(!in.bad() && in.gcount() == static_cast<std::streamsize>(bytes.size()),
           name << ": read error (the file changed while it was read?)");
  return bytes;
}

void write_file_bytes_atomic(const std::string& path, const std::string& bytes, const std::string& what) {
  // pid + a process-wide counter: two threads (or two processes) writing the same path never share a temp.
  static std::atomic<unsigned> counter{0};
  const std::string tmp = path + ".tmp." + std::to_string(getpid()) + "." + std::to_string(counter++);
  const std::string name = what.empty() ? path : what + " " + path;
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    CL_CHECK(out, name << ": cannot write (" << std::strerror(errno) << ")");
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      CL_FAIL(name << ": write failed (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    CL_FAIL(name << ": cannot rename into place (" << std::strerror(e) << ")");
  }
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string read_text_file(const std::string& path) { return read_file_bytes(path, ""); }

void write_file_atomic(const std::string& path, const std::string& contents) {
  write_file_bytes_atomic(path, contents, "");
}

}  // namespace convlab
