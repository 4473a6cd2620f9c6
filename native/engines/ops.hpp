// Small elementwise ops the TensorRT-backed denoiser needs around its engines (twin pattern): fill a tensor
// with a constant (timestep / conditioning-scale inputs, without a host copy, so calls stay graph-capturable),
// combine the two CFG halves, and sum ControlNet residuals in float32 or float16 (bit-level fp16 conversions,
// round-to-nearest-even, identical on both sides).
#pragma once
#include <cstdint>
#include <cstring>
#include "core/hd.hpp"
#include "core/memory.hpp"
#include "engines/interfaces.hpp"

namespace fg {
namespace engines {

FG_HDI float halfBitsToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) bits = sign;
    else {  // subnormal: normalise
      int e = -1;
      do { ++e; man <<= 1; } while ((man & 0x400u) == 0);
      bits = sign | (uint32_t(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
    }
  } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
  else bits = sign | ((exp + 112u) << 23) | (man << 13);
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

FG_HDI uint16_t floatToHalfBits(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) return uint16_t(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0u));  // inf / nan
  if (absx >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to >= 65520: overflow to inf
  if (absx < 0x38800000u) {  // subnormal half (or zero)
    if (absx < 0x33000000u) return uint16_t(sign);  // < 2^-25: rounds to zero
    uint32_t e = absx >> 23;
    uint32_t m = (absx & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - e;  // 14..24
    uint32_t r = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return uint16_t(sign | r);
  }
  uint32_t r = ((absx >> 13) - (112u << 10));
  uint32_t rem = absx & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
  return uint16_t(sign | r);
}

void fillConstant(Device d, float* out, int64_t n, float value, StreamHandle s = nullptr);
void fillConstantCpu(float* out, int64_t n, float value);
void fillConstantCuda(float* out, int64_t n, float value, StreamHandle s);

// eps[i] = u + g (c − u), u/c taken from the [2n] batch `both` in `order`; count = n·C·h·w.
struct CfgCombineParams {
  const float* both = nullptr;
  float* eps = nullptr;
  int64_t count = 0;
  float guidance = 1.f;
  CfgOrder order = CfgOrder::UncondFirst;
};
FG_HDI float cfgCombineElement(const CfgCombineParams& p, int64_t i) {
  float first = p.both[i], second = p.both[p.count + i];
  float u = p.order == CfgOrder::UncondFirst ? first : second;
  float c = p.order == CfgOrder::UncondFirst ? second : first;
  return add(u, mul(p.guidance, sub(c, u)));
}
void cfgCombine(Device d, const CfgCombineParams& p, StreamHandle s = nullptr);
void cfgCombineCpu(const CfgCombineParams& p);
void cfgCombineCuda(const CfgCombineParams& p, StreamHandle s);

// y[i] += x[i] (float32, or float16 when half = true: the sum is formed in float32 and rounded once).
struct AccumulateParams {
  void* y = nullptr;
  const void* x = nullptr;
  int64_t count = 0;
  bool half = false;
};
FG_HDI void accumulateElement(const AccumulateParams& p, int64_t i) {
  if (p.half) {
    uint16_t* y = static_cast<uint16_t*>(p.y);
    const uint16_t* x = static_cast<const uint16_t*>(p.x);
    y[i] = floatToHalfBits(add(halfBitsToFloat(y[i]), halfBitsToFloat(x[i])));
  } else {
    float* y = static_cast<float*>(p.y);
    const float* x = static_cast<const float*>(p.x);
    y[i] = add(y[i], x[i]);
  }
}
void accumulate(Device d, const AccumulateParams& p, StreamHandle s = nullptr);
void accumulateCpu(const AccumulateParams& p);
void accumulateCuda(const AccumulateParams& p, StreamHandle s);

}  // namespace engines
}  // namespace fg
