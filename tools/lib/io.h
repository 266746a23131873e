// tools/lib/io.h: small file helpers shared by the commands.
#pragma once
#include <string>

namespace convlab {

std::string read_text_file(const std::string& path);  // throws convlab::Error naming the path
// Writes through a temporary file in the same folder and renames it: never a half-written file.
void write_file_atomic(const std::string& path, const std::string& contents);

}  // namespace convlab
