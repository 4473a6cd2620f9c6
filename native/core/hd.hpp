// The CPU/CUDA twin pattern, part 1: qualifiers and exactly-rounded arithmetic.
//
// Every kernel in faceg2e-native is written once as a `FG_HD` function (compiled for host and device)
// and launched twice: by a CUDA launcher (`*.cu`) and by a CPU loop (`*.cpp`). Where a twin must be
// bit-identical (the RNG) the maths uses the helpers below, which never contract a*b+c into an FMA
// behind our back: `fg::mul`/`fg::add` are single IEEE roundings on both sides, and `fg::fma` is a real
// fused multiply-add on both sides. (The host build also uses -ffp-contract=off.)
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define FG_HD __host__ __device__
#define FG_DEVICE __device__
#define FG_GLOBAL __global__
#else
#define FG_HD
#define FG_DEVICE
#define FG_GLOBAL
#endif
#define FG_HDI FG_HD inline

namespace fg {

enum class Device : int { CPU = 0, CUDA = 1 };

FG_HDI float mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
FG_HDI float add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
FG_HDI float sub(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
FG_HDI float fma(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
FG_HDI float div(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
FG_HDI float sqrt_rn(float a) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(a);
#else
  return std::sqrt(a);
#endif
}

template <typename T> FG_HDI T clampv(T v, T lo, T hi) { return v < lo ? lo : (v > hi ? hi : v); }
template <typename T> FG_HDI T minv(T a, T b) { return a < b ? a : b; }
template <typename T> FG_HDI T maxv(T a, T b) { return a > b ? a : b; }

}  // namespace fg
