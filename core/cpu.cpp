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
  return false;
}

std::string available_list() {
  std::string s;
  for (Isa i : available_isas()) s += (s.empty() ? "" : ", ") + std::string(isa_name(i));
  return s;
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

const char* isa_name(Isa isa) { return isa == Isa::avx512 ? "avx512" : "avx2"; }

bool cpu_supports(Isa isa) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (isa == Isa::avx512) return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return isa == Isa::avx2;
#endif
}

std::vector<Isa> available_isas() {
  std::vector<Isa> out;
  if (cpu_supports(Isa::avx512)) out.push_back(Isa::avx512);
  out.push_back(Isa::avx2);  // the build's baseline for the GEMM (its AVX2 kernels, or their portable twin)
  return out;
}

Isa active_isa() { return static_cast<Isa>(current().load(std::memory_order_relaxed)); }

void set_isa(Isa isa) {
  CL_CHECK(cpu_supports(isa) || isa == Isa::avx2,
           "isa: this CPU does not support " << isa_name(isa) << " (available: " << available_list() << ")");
  current().store(static_cast<int>(isa), std::memory_order_relaxed);
}

void check_isa_env() {
  const char* env = std::getenv("CONVLAB_ISA");
  if (!env) return;
  Isa isa;
  CL_CHECK(parse_isa(env, isa), "CONVLAB_ISA=" << env << ": not a target (available on this CPU: " << available_list()
                                               << ")");
  CL_CHECK(cpu_supports(isa) || isa == Isa::avx2,
           "CONVLAB_ISA=" << env << ": this CPU does not support it (available: " << available_list() << ")");
  set_isa(isa);
}

}  // namespace convlab
