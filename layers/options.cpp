// layers/options.cpp: see options.h.
#include "layers/options.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "data/json.h"

namespace convlab {

using nlohmann::json;

namespace {
constexpr size_t kMaxList = 4096;  // entries of an integer list option (seeds, budgets, dilations)
std::string brief(const json& v) { return json_brief(v, 40); }
std::string expected_int(int64_t min) {
  if (min == 1) return "a positive integer";
  if (min == 0) return "a non-negative integer";
  if (min == INT64_MIN) return "an integer";
  return "an integer >= " + std::to_string(min);
}
// "expected a positive integer, got 0" below the range; the whole range above it.
std::string out_of_range(int64_t min, int64_t max, int64_t got) {
  return got < min ? expected_int(min) : expected_int(min) + " at most " + std::to_string(max);
}
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}
}  // namespace

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  return best;
}

Options::Options(const json& j, std::string path) : j_(j), path_(std::move(path)) {
  CL_CHECK(j.is_object(), path_ << ": expected an object, got " << brief(j));
}

bool Options::has(const std::string& key) const { return j_.contains(key); }

const json& Options::raw(const std::string& key) {
  known_.insert(key);
  used_.insert(key);
  return j_.at(key);
}

int64_t Options::integer(const std::string& key, std::optional<int64_t> dflt, int64_t min, int64_t max) {
  known_.insert(key);
  if (!has(key)) {
    CL_CHECK(dflt.has_value(), at(key) << ": missing (expected " << expected_int(min) << ")");
    return note(key, *dflt);
  }
  const json& v = raw(key);
  int64_t out;
  CL_CHECK(json_to_int(v, out), at(key) << ": expected " << expected_int(min) << ", got " << brief(v));
  CL_CHECK(out >= min && out <= max, at(key) << ": expected " << out_of_range(min, max, out) << ", got " << brief(v));
  return note(key, out);
}

double Options::number(const std::string& key, std::optional<double> dflt) {
  known_.insert(key);
  if (!has(key)) {
    CL_CHECK(dflt.has_value(), at(key) << ": missing (expected a number)");
    return note(key, *dflt);
  }
  const json& v = raw(key);
  CL_CHECK(v.is_number() && std::isfinite(v.get<double>()), at(key) << ": expected a number, got " << brief(v));
  return note(key, v.get<double>());
}

bool Options::boolean(const std::string& key, std::optional<bool> dflt) {
  known_.insert(key);
  if (!has(key)) {
    CL_CHECK(dflt.has_value(), at(key) << ": missing (expected true or false)");
    return note(key, *dflt);
  }
  const json& v = raw(key);
  CL_CHECK(v.is_boolean(), at(key) << ": expected true or false, got " << brief(v));
  return note(key, v.get<bool>());
}

std::string Options::string(const std::string& key, std::optional<std::string> dflt,
                            const std::vector<std::string>& allowed) {
  known_.insert(key);
  std::string s;
  if (!has(key)) {
    CL_CHECK(dflt.has_value(), at(key) << ": missing (expected a string)");
    s = *dflt;
  } else {
    const json& v = raw(key);
    CL_CHECK(v.is_string(), at(key) << ": expected a string, got " << brief(v));
    s = v.get<std::string>();
  }
  if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    const std::string hint = did_you_mean(s, allowed);
    CL_FAIL(at(key) << ": '" << s << "' is not one of " << list
                    << (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
  }
  return note(key, s);
}

Pair Options::pair(const std::string& key, std::optional<Pair> dflt, int64_t min, int64_t max) {
  const Pair p = read_pair(key, dflt, min, max);
  effective_[key] = p[0] == p[1] ? json(p[0]) : json({p[0], p[1]});
  return p;
}

void Options::resolve(const std::string& key, Pair value) {
  effective_[key] = value[0] == value[1] ? json(value[0]) : json({value[0], value[1]});
}

Pair Options::read_pair(const std::string& key, std::optional<Pair> dflt, int64_t min, int64_t max) {
  known_.insert(key);
  if (!has(key)) {
    CL_CHECK(dflt.has_value(), at(key) << ": missing (expected " << expected_int(min) << " or a pair [h, w])");
    return *dflt;
  }
  const json& v = raw(key);
  int64_t a, b;
  if (json_to_int(v, a)) {
    CL_CHECK(a >= min && a <= max, at(key) << ": expected " << out_of_range(min, max, a) << ", got " << brief(v));
    return {a, a};
  }
  CL_CHECK(v.is_array() && v.size() == 2, at(key) << ": expected " << expected_int(min) << " or a pair [h, w], got "
                                                  << brief(v));
  for (size_t i = 0; i < 2; ++i) {
    int64_t& x = i ? b : a;
    CL_CHECK(json_to_int(v[i], x), at(key) << "[" << i << "]: expected " << expected_int(min) << ", got " << brief(v[i]));
    CL_CHECK(x >= min && x <= max,
             at(key) << "[" << i << "]: expected " << out_of_range(min, max, x) << ", got " << brief(v[i]));
  }
  return {a, b};
}

std::vector<int64_t> Options::int_list(const std::string& key, std::optional<std::vector<int64_t>> dflt,
                                       int64_t min, int64_t max) {
  known_.insert(key);
  if (!has(key)) {
    CL_CHECK(dflt.has_value(), at(key) << ": missing (expected a list of integers)");
    return note(key, *dflt);
  }
  const json& v = raw(key);
  CL_CHECK(v.is_array() && !v.empty() && v.size() <= kMaxList,
           at(key) << ": expected a non-empty list of at most " << kMaxList << " integers, got " << brief(v));
  std::vector<int64_t> out;
  for (size_t i = 0; i < v.size(); ++i) {
    int64_t x;
    CL_CHECK(json_to_int(v[i], x), at(key) << "[" << i << "]: expected " << expected_int(min) << ", got " << brief(v[i]));
    CL_CHECK(x >= min && x <= max,
             at(key) << "[" << i << "]: expected " << out_of_range(min, max, x) << ", got " << brief(v[i]));
    out.push_back(x);
  }
  return note(key, out);
}

void Options::finish(const std::vector<std::string>& also) const {
  std::vector<std::string> known(known_.begin(), known_.end());
  known.insert(known.end(), also.begin(), also.end());
  for (const auto& [k, v] : j_.items()) {
    if (std::find(known.begin(), known.end(), k) != known.end()) continue;
    const std::string hint = did_you_mean(k, known);
    CL_FAIL(at(k) << ": unknown key" << (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
  }
}

}  // namespace convlab
