// tools/lib/io.cpp: see io.h.
#include "tools/lib/io.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace convlab {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CL_CHECK(in, path << ": cannot open (" << std::strerror(errno) << ")");
  std::ostringstream ss;
  ss << in.rdbuf();
  CL_CHECK(!in.bad(), path << ": read error");
  return ss.str();
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    CL_CHECK(out, path << ": cannot write (" << std::strerror(errno) << ")");
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      CL_FAIL(path << ": write failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    CL_FAIL(path << ": cannot rename into place (" << std::strerror(e) << ")");
  }
}

}  // namespace convlab
