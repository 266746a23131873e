// core/cpu.cpp: see cpu.h.
#include "core/cpu.h"

#include <atomic>
#include <cstdlib>

#include "core/error.h"

namespace convlab {
namespace {

bool parse_isa(const std::string& s, Isa& out) {
  if (s == "avx512") return out = Isa::avx512, true;
  if (s == "avx2") return out = Isa::avx2, true;
  if (s == "scalar") return out = Isa::scalar, true;
  return false;
}

Isa initial_isa() {
  const char* env = std::getenv("CONVLAB_ISA");
  Isa isa;
  if (env && parse_isa(env, isa) && cpu_supports(isa)) return isa;
  return available_isas().front();
}

std::atomic<int>& current() {
  static std::atomic<int> isa{static_cast<int>(initial_isa())};
  return isa;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "scalar";
  }
}

bool cpu_supports(Isa isa) {
  if (isa == Isa::scalar) return true;
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (isa == Isa::avx512) return avx2 && __builtin_cpu_supports("avx512f");
  return avx2;
#else
  return false;
#endif
}

std::vector<Isa> available_isas() {
  std::vector<Isa> out;
  for (Isa i : {Isa::avx512, Isa::avx2, Isa::scalar})
    if (cpu_supports(i)) out.push_back(i);
  return out;
}

std::string available_isa_list() {
  std::string s;
  for (Isa i : available_isas()) s += (s.empty() ? "" : ", ") + std::string(isa_name(i));
  return s;
}

Isa active_isa() { return static_cast<Isa>(current().load(std::memory_order_relaxed)); }

void set_isa(Isa isa) {
  CL_CHECK(cpu_supports(isa), "isa: this CPU does not support " << isa_name(isa) << " (available: "
                                                                << available_isa_list() << ")");
  current().store(static_cast<int>(isa), std::memory_order_relaxed);
}

void check_isa_env() {
  const char* env = std::getenv("CONVLAB_ISA");
  if (!env) return;
  Isa isa;
  CL_CHECK(parse_isa(env, isa), "CONVLAB_ISA=" << env << ": not a target (available on this CPU: "
                                               << available_isa_list() << ")");
  CL_CHECK(cpu_supports(isa), "CONVLAB_ISA=" << env << ": this CPU does not support it (available: "
                                             << available_isa_list() << ")");
  set_isa(isa);
}

}  // namespace convlab
