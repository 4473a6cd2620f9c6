// Bit casts and IEEE binary16 <-> binary32 conversions, identical on host and device: float -> half with
// integer operations only (round to nearest even; NaN stays NaN, overflow becomes Inf); half -> float is exact
// (halfToFloatFast uses the hardware conversion on the device). Used for fp16 model bases (morph), fp16 engine tensors
// (engines, sds) and depth keys (raster).
#pragma once
#include <cstdint>
#include <cstring>
#include "core/hd.hpp"
#if defined(__CUDACC__)
#include <cuda_fp16.h>
#endif

namespace fg {

FG_HDI uint32_t floatBits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}
FG_HDI float bitsFloat(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

FG_HDI uint16_t floatToHalfBits(float f) {
  uint32_t x = floatBits(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t a = x & 0x7FFFFFFFu;
  if (a >= 0x7F800000u) return static_cast<uint16_t>(sign | (a > 0x7F800000u ? 0x7E00u : 0x7C00u));
  if (a >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // >= 65520 rounds to Inf
  if (a < 0x38800000u) {                                                // below 2^-14: half subnormal or zero
    if (a < 0x33000000u) return static_cast<uint16_t>(sign);            // <= 2^-25 rounds to (even) zero
    uint32_t e = a >> 23;
    uint32_t m = (a & 0x7FFFFFu) | 0x800000u;
    uint32_t shift = 126u - e;  // in [14, 24]
    uint32_t r = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1u);
    uint32_t halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (r & 1u))) ++r;
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t r = (a - 0x38000000u) >> 13;
  uint32_t rem = a & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
  return static_cast<uint16_t>(sign | r);
}

FG_HDI float halfBitsToFloat(uint16_t h) {
  uint32_t sign = (uint32_t(h) & 0x8000u) << 16;
  uint32_t e = (uint32_t(h) >> 10) & 0x1Fu;
  uint32_t m = uint32_t(h) & 0x3FFu;
  uint32_t x;
  if (e == 0) {
    if (m == 0) {
      x = sign;
    } else {
      e = 113;
      while (!(m & 0x400u)) { m <<= 1; --e; }
      x = sign | (e << 23) | ((m & 0x3FFu) << 13);
    }
  } else if (e == 31) {
    x = sign | 0x7F800000u | (m << 13);
  } else {
    x = sign | ((e + 112u) << 23) | (m << 13);
  }
  return bitsFloat(x);
}

// The same value through the hardware conversion on the device (exact for every non-NaN half; NaN payloads may
// differ): for bandwidth-bound loops such as the blendshape bases.
FG_HDI float halfToFloatFast(uint16_t h) {
#if defined(__CUDA_ARCH__)
  return __half2float(__ushort_as_half(h));
#else
  return halfBitsToFloat(h);
#endif
}

}  // namespace fg
