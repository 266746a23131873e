// core/error.h: the one exception type of convlab and the checking macro that builds its message.
// Messages say what and where: the op or config path, the argument, and the shapes involved, e.g.
//   conv2d: weight [8,3,3,3] expects input with 3 channels (groups=1), got input [2,4,16,16]
// No asserts and no exit() in the library: every user-reachable failure throws convlab::Error.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace convlab {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace convlab

// CL_CHECK(cond, "conv2d: stride must be >= 1, got " << s): throws convlab::Error when cond is false.
#define CL_CHECK(cond, ...)                                  \
  do {                                                       \
    if (!(cond)) {                                           \
      std::ostringstream cl_check_os_;                       \
      cl_check_os_ << __VA_ARGS__;                           \
      throw ::convlab::Error(cl_check_os_.str());            \
    }                                                        \
  } while (0)

#define CL_FAIL(...) CL_CHECK(false, __VA_ARGS__)
