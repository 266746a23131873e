// data/json.cpp: see json.h.
#include "data/json.h"

#include <cmath>
#include <cstdint>

#include "core/error.h"

namespace convlab {

int json_depth(std::string_view text, int limit) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > max_depth && (max_depth = depth) >= limit) return max_depth;
    } else if (c == ']' || c == '}') {
      if (depth > 0) --depth;
    }
  }
  return max_depth;
}

nlohmann::json parse_json(std::string_view text, const std::string& where) {
  const std::string at = where.empty() ? "" : where + ": ";
  CL_CHECK(json_depth(text) <= kMaxJsonDepth, at << "not valid JSON (nested deeper than " << kMaxJsonDepth << " levels)");
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for numbers like 1e400
    std::string what = e.what();
    const size_t colon = what.find(": ");
    CL_FAIL(at << "not valid JSON (" << (colon == std::string::npos ? what : what.substr(colon + 2)) << ")");
  }
}

bool is_json(std::string_view text) {
  if (json_depth(text) > kMaxJsonDepth) return false;
  return nlohmann::json::accept(text);
}

std::string json_brief(const nlohmann::json& v, size_t max_chars) {
  std::string s;
  if (v.is_array() || v.is_object()) {
    bool flat = v.size() <= 8;
    for (const auto& e : v)
      if (e.is_array() || e.is_object()) flat = false;
    if (!flat)
      return v.is_array() ? "a list of " + std::to_string(v.size()) + " items"
                          : "an object with " + std::to_string(v.size()) + " keys";
  }
  s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return s.size() > max_chars ? s.substr(0, max_chars) + "..." : s;
}

bool json_to_int(const nlohmann::json& v, int64_t& out) {
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > uint64_t(INT64_MAX)) return false;
    out = static_cast<int64_t>(v.get<uint64_t>());
    return true;
  }
  if (v.is_number_integer()) {
    out = v.get<int64_t>();
    return true;
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) {
      out = static_cast<int64_t>(d);
      return true;
    }
  }
  return false;
}

bool is_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n;  // continuation bytes
    uint32_t cp;
    if ((c >> 5) == 0x6) n = 1, cp = c & 0x1F;
    else if ((c >> 4) == 0xE) n = 2, cp = c & 0x0F;
    else if ((c >> 3) == 0x1E) n = 3, cp = c & 0x07;
    else return false;
    if (s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

}  // namespace convlab
