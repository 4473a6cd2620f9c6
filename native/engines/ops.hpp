// Small elementwise ops the TensorRT-backed denoiser needs around its engines (twin pattern): fill a tensor
// with a constant (timestep / conditioning-scale inputs, without a host copy, so calls stay graph-capturable),
// combine the two CFG halves, and sum ControlNet residuals in float32 or float16 (bit-level fp16 conversions,
// round-to-nearest-even, identical on both sides).
#pragma once
#include <cstdint>
#include <cstring>
#include "core/half.hpp"
#include "core/hd.hpp"
#include "core/memory.hpp"
#include "engines/interfaces.hpp"

namespace fg {
namespace engines {

// fp16 conversions: fg::halfBitsToFloat / fg::floatToHalfBits (core/half.hpp)

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
