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
  FG_TWIN_CALL(d, fillConstantCpu(out, n, value), fillConstantCuda(out, n, value, s));
}

void cfgCombine(Device d, const CfgCombineParams& p, StreamHandle s) {
  NvtxRange range("engines/cfg_combine");
  FG_CHECK_ARG(p.count >= 0, "cfgCombine: count must be >= 0");
  FG_TWIN_CALL(d, cfgCombineCpu(p), cfgCombineCuda(p, s));
}

void accumulate(Device d, const AccumulateParams& p, StreamHandle s) {
  NvtxRange range("engines/accumulate");
  FG_CHECK_ARG(p.count >= 0, "accumulate: count must be >= 0");
  FG_TWIN_CALL(d, accumulateCpu(p), accumulateCuda(p, s));
}

}  // namespace engines
}  // namespace fg
