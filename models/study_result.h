// models/study_result.h: what an analysis of the library returns to its caller: the JSON result (a command's
// --json) and the plain-text report, both computed, neither printed (the convlab commands print them).
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace convlab {

struct StudyResult {
  nlohmann::json json;
  std::string text;
  bool ok = true;  // identities / gradcheck: every check passed
};

}  // namespace convlab
