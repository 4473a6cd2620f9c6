#include "engines/ops.hpp"
#include "core/device.hpp"
#include "core/nvtx.hpp"
#include "core/parallel.hpp"

namespace fg {
namespace engines {

void fillConstantCpu(float* out, int64_t n, float value) {
  for (int64_t i = 0; i < n; ++i) out[i] = value;
}
void cfgCombineCpu(const CfgCombineParams& p) {
  parallelFor(p.count, [&](int64_t i) { p.eps[i] = cfgCombineElement(p, i); });
}
void accumulateCpu(const AccumulateParams& p) {
  parallelFor(p.count, [&](int64_t i) { accumulateElement(p, i); });
}

void fillConstant(Device d, float* out, int64_t n, float value, StreamHandle s) {
  NvtxRange range("engines/fill");
  FG_CHECK_ARG(n >= 0, "fillConstant: n must be >= 0");
  if (d == Device::CPU) return fillConstantCpu(out, n, value);
#if FG_HAVE_CUDA
  fillConstantCuda(out, n, value, s);
#else
  (void)s;
  requireCuda();
#endif
}

void cfgCombine(Device d, const CfgCombineParams& p, StreamHandle s) {
  NvtxRange range("engines/cfg_combine");
  FG_CHECK_ARG(p.count >= 0, "cfgCombine: count must be >= 0");
  if (d == Device::CPU) return cfgCombineCpu(p);
#if FG_HAVE_CUDA
  cfgCombineCuda(p, s);
#else
  (void)s;
  requireCuda();
#endif
}

void accumulate(Device d, const AccumulateParams& p, StreamHandle s) {
  NvtxRange range("engines/accumulate");
  FG_CHECK_ARG(p.count >= 0, "accumulate: count must be >= 0");
  if (d == Device::CPU) return accumulateCpu(p);
#if FG_HAVE_CUDA
  accumulateCuda(p, s);
#else
  (void)s;
  requireCuda();
#endif
}

}  // namespace engines
}  // namespace fg
