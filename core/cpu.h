// core/cpu.h: which SIMD target the kernels run on, chosen when the program starts.
//
// The hot kernels (the packed SGEMM and its packing in core/gemm.cpp, the depthwise 3x3 kernel, deformable
// sampling) are compiled for every target into one binary and picked at run time from what the CPU
// supports; the rest of the code is compiled for baseline x86-64. Every target gives the same bits: each
// output element is one fixed-order chain of fused multiply-adds (std::fma on the scalar target), blocking
// never depends on the target, reductions use a fixed number of partial sums, and the whole project is
// compiled with -ffp-contract=off so the compiler never fuses a multiply and an add on its own. The choice
// changes speed only. CONVLAB_ISA=avx512|avx2|scalar forces a target; tests compare them bit for bit.
#pragma once
#include <string>
#include <vector>

// CONVLAB_TARGET_AVX2_BEGIN / CONVLAB_TARGET_END: every function defined between them is compiled for
// AVX2 + FMA inside a baseline build (the per-target kernel namespaces of core/depthwise.cpp and
// core/deform_sampling.cpp). GCC takes `#pragma GCC target`; clang ignores that pragma and needs
// `#pragma clang attribute` instead (the fuzz and sanitizer builds use clang).
#if defined(__clang__)
#define CONVLAB_TARGET_AVX2_BEGIN \
  _Pragma("clang attribute push(__attribute__((target(\"avx2,fma\"))), apply_to = function)")
#define CONVLAB_TARGET_END _Pragma("clang attribute pop")
#elif defined(__GNUC__)
#define CONVLAB_TARGET_AVX2_BEGIN _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma\")")
#define CONVLAB_TARGET_END _Pragma("GCC pop_options")
#endif

namespace convlab {

// scalar: plain C++ with std::fma, runs on any CPU; avx2: AVX2 + FMA (8-float ymm lanes); avx512: AVX-512F
// (16-float zmm lanes in the GEMM; the kernels without a zmm version run their AVX2 form).
enum class Isa { scalar, avx2, avx512 };

const char* isa_name(Isa isa);
bool cpu_supports(Isa isa);
std::vector<Isa> available_isas();  // the targets this CPU runs, best first (scalar always last)

// The target in use: CONVLAB_ISA when set and valid, else the best available. Never throws (kernels call
// it inside parallel regions); an invalid CONVLAB_ISA is reported by check_isa_env() at program start.
Isa active_isa();
// Forces a target (tests, benchmarks); throws convlab::Error when this CPU lacks it.
void set_isa(Isa isa);
// Validates CONVLAB_ISA (call first thing in main): an unknown value or one this CPU lacks throws
// convlab::Error naming the value and the targets available.
void check_isa_env();
// "avx512, avx2, scalar": the available targets, best first (for --version and error messages).
std::string available_isa_list();

}  // namespace convlab
