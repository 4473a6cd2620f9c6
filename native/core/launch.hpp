// Grid sizes for CUDA launches (host code of CUDA translation units).
#pragma once
#include <cstdint>

namespace fg {

// Grid-stride kernels cap their grid here and loop over the rest.
constexpr int64_t kStrideGridCap = 65535 * 8;

// Blocks for n items of `block` threads each: at least 1, at most `cap` (by default the CUDA limit).
inline unsigned gridFor(int64_t n, int block, int64_t cap = 2147483647) {
  int64_t g = (n + block - 1) / block;
  if (g < 1) g = 1;
  return static_cast<unsigned>(g < cap ? g : cap);
}

}  // namespace fg
