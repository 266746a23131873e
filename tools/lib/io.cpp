// tools/lib/io.cpp: see io.h (both delegate to data/files.h, which the libraries use directly).
#include "tools/lib/io.h"

#include "data/files.h"

namespace convlab {

std::string read_text_file(const std::string& path) { return read_file_bytes(path, ""); }

void write_file_atomic(const std::string& path, const std::string& contents) {
  write_file_bytes_atomic(path, contents, "");
}

}  // namespace convlab
