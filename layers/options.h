// layers/options.h: reading a layer's options from its JSON object, with the JSON path in every message
// ("model.layers[3].dilation: expected an integer >= 1, got 0") and unknown keys refused with a
// did-you-mean suggestion. Each layer's options struct is filled next to its definition with one of these.
#pragma once
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/conv.h"

namespace convlab {

constexpr int64_t kMaxOptionInt = int64_t(1) << 30;  // default upper bound of an integer option
constexpr int64_t kMaxChannels = 65536;               // channels / features of one layer

class Options {
 public:
  Options(const nlohmann::json& j, std::string path);  // j must be an object; it must outlive the Options
  Options(const nlohmann::json&& j, std::string path) = delete;  // a temporary would leave j_ dangling
  const std::string& path() const { return path_; }
  bool has(const std::string& key) const;
  const nlohmann::json& raw(const std::string& key);  // marks the key as used

  // Integers are bounded above as well as below: sizes typed in a config must not reach an allocation or
  // a loop unchecked. The message names the accepted range.
  int64_t integer(const std::string& key, std::optional<int64_t> dflt, int64_t min = INT64_MIN,
                  int64_t max = kMaxOptionInt);
  double number(const std::string& key, std::optional<double> dflt);
  bool boolean(const std::string& key, std::optional<bool> dflt);
  std::string string(const std::string& key, std::optional<std::string> dflt,
                     const std::vector<std::string>& allowed = {});
  // An integer for both axes or a pair [h, w], each in [min, max] (kernel, stride, padding, dilation).
  Pair pair(const std::string& key, std::optional<Pair> dflt, int64_t min, int64_t max = kMaxConvArg);
  std::vector<int64_t> int_list(const std::string& key, std::optional<std::vector<int64_t>> dflt, int64_t min,
                                int64_t max = kMaxOptionInt);

  // Refuses keys that were never read, suggesting the closest known key. `also` lists keys the caller
  // handles itself (e.g. "type").
  void finish(const std::vector<std::string>& also = {}) const;

  // Every option read through the typed getters above with the value in effect: the config's, normalised
  // (a pair of equal values as one integer), or the default. Two layers with equal effective() and type
  // are the same layer, however their configs spell it (models/config.h: network_difference()).
  const nlohmann::json& effective() const { return effective_; }
  // Records `value` as the effective value of `key` when a spelling resolves to it (conv padding "same" is
  // d(k-1)/2, "valid" is 0): configs that spell the same layer differently then have equal effective().
  void resolve(const std::string& key, Pair value);

 private:
  template <class T>
  T note(const std::string& key, T value) {
    effective_[key] = value;
    return value;
  }
  std::string at(const std::string& key) const { return path_ + "." + key; }
  Pair read_pair(const std::string& key, std::optional<Pair> dflt, int64_t min, int64_t max);
  const nlohmann::json& j_;
  std::string path_;
  std::set<std::string> used_, known_;
  nlohmann::json effective_ = nlohmann::json::object();
};

// The closest of `candidates` to `word` (edit distance), or "" when none is close.
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace convlab
