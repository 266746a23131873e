// core/cpu.h: which SIMD target the kernels run on, chosen when the program starts.
//
// Kernels are compiled for each target and picked at run time from what the CPU supports; every target
// gives the same bits (each output element is one fixed-order FMA chain; blocking never depends on the
// target), so the choice changes speed only. CONVLAB_ISA=avx512|avx2 forces a target; tests compare them.
// This covers the packed SGEMM (core/gemm.cpp), where the conv time goes; the other kernels are compiled
// for the build's target.
#pragma once
#include <string>
#include <vector>

namespace convlab {

enum class Isa { avx2, avx512 };

const char* isa_name(Isa isa);
bool cpu_supports(Isa isa);
std::vector<Isa> available_isas();  // the targets this build carries and this CPU runs, best first

// The target in use: CONVLAB_ISA when set and valid, else the best available. Never throws (kernels call
// it inside parallel regions); an invalid CONVLAB_ISA is reported by check_isa_env() at program start.
Isa active_isa();
// Forces a target (tests, benchmarks); throws convlab::Error when this CPU or build lacks it.
void set_isa(Isa isa);
// Validates CONVLAB_ISA (call first thing in main): an unknown value or one this CPU lacks throws
// convlab::Error naming the value and the targets available.
void check_isa_env();

}  // namespace convlab
