// IEEE binary16 <-> binary32 conversions written with integer operations only, so that host and device
// produce the same bits (round to nearest even; NaN stays NaN, overflow becomes Inf). Used where a
// TensorRT engine consumes or produces fp16 tensors.
#pragma once
#include <cstdint>
#include "core/hd.hpp"

namespace fg {

FG_HDI uint32_t floatBits(float f) {
  union { float f; uint32_t u; } c;
  c.f = f;
  return c.u;
}
FG_HDI float bitsFloat(uint32_t u) {
  union { uint32_t u; float f; } c;
  c.u = u;
  return c.f;
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

}  // namespace fg
