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

std::string read_file_bytes(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  CL_CHECK(in, what << " " << path << ": cannot open (" << std::strerror(errno) << ")");
  std::ostringstream ss;
  ss << in.rdbuf();
  CL_CHECK(!in.bad(), what << " " << path << ": read error");
  return ss.str();
}

void write_file_bytes_atomic(const std::string& path, const std::string& bytes, const std::string& what) {
  // pid + a process-wide counter: two threads (or two processes) writing the same path never share a temp.
  static std::atomic<unsigned> counter{0};
  const std::string tmp = path + ".tmp." + std::to_string(getpid()) + "." + std::to_string(counter++);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    CL_CHECK(out, what << " " << path << ": cannot write (" << std::strerror(errno) << ")");
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      CL_FAIL(what << " " << path << ": write failed (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    CL_FAIL(what << " " << path << ": cannot rename into place (" << std::strerror(e) << ")");
  }
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace convlab
