// data/json.h: reading JSON that a user (or a file of unknown origin) wrote: configs, op cases, experiment
// files, safetensors headers, --set values.
//
// nlohmann's parser itself is iterative, but copies, dump(), comparisons and our own merge/walk functions
// recurse once per nesting level, so 10^5 brackets would overflow the stack far from the parser. parse_json
// refuses such text before parsing: nothing convlab reads needs more than a handful of levels.
#pragma once
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace convlab {

constexpr int kMaxJsonDepth = 64;

// Parses `text`; throws convlab::Error "WHERE: not valid JSON (reason)" for malformed text, numbers out of
// range (1e400) or nesting deeper than kMaxJsonDepth ("not valid JSON (...)" when `where` is empty, for a
// caller that prefixes its own context).
nlohmann::json parse_json(std::string_view text, const std::string& where);
// Whether `text` parses as JSON within the depth limit (for "JSON if it parses, else a string" inputs).
bool is_json(std::string_view text);
// Nesting depth of the arrays and objects in `text` (strings skipped); stops counting past `limit`.
int json_depth(std::string_view text, int limit = kMaxJsonDepth + 1);
// A short excerpt of a value for error messages: scalars as JSON (cut to max_chars), containers as
// "a list of N items" / "an object with N keys" unless small and flat. Never recurses into nested values.
std::string json_brief(const nlohmann::json& v, size_t max_chars = 60);
// An integer JSON value: 3 or 3.0 (a float with an exact integer value below 9e15) are integers; 1.5, true,
// "3" and unsigned values past INT64_MAX (which get<int64_t>() would wrap to negatives) are not.
bool json_to_int(const nlohmann::json& v, int64_t& out);
// Whether `s` is valid UTF-8 (nlohmann refuses to dump strings that are not).
bool is_utf8(std::string_view s);

}  // namespace convlab
