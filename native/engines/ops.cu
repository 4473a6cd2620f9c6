#include "core/cuda_check.hpp"
#include "core/launch.hpp"
#include "engines/ops.hpp"

namespace fg {
namespace engines {
namespace {
__global__ void fillKernel(float* out, int64_t n, float v) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) out[i] = v;
}
__global__ void cfgKernel(CfgCombineParams p) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < p.count; i += int64_t(gridDim.x) * blockDim.x) p.eps[i] = cfgCombineElement(p, i);
}
__global__ void accumulateKernel(AccumulateParams p) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < p.count; i += int64_t(gridDim.x) * blockDim.x) accumulateElement(p, i);
}
}  // namespace

void fillConstantCuda(float* out, int64_t n, float value, StreamHandle s) {
  if (n == 0) return;
  fillKernel<<<gridFor(n, 256, kStrideGridCap), 256, 0, static_cast<cudaStream_t>(s)>>>(out, n, value);
  FG_CUDA_CHECK_LAUNCH();
}
void cfgCombineCuda(const CfgCombineParams& p, StreamHandle s) {
  if (p.count == 0) return;
  cfgKernel<<<gridFor(p.count, 256, kStrideGridCap), 256, 0, static_cast<cudaStream_t>(s)>>>(p);
  FG_CUDA_CHECK_LAUNCH();
}
void accumulateCuda(const AccumulateParams& p, StreamHandle s) {
  if (p.count == 0) return;
  accumulateKernel<<<gridFor(p.count, 256, kStrideGridCap), 256, 0, static_cast<cudaStream_t>(s)>>>(p);
  FG_CUDA_CHECK_LAUNCH();
}

}  // namespace engines
}  // namespace fg
