#include "core/cuda_check.hpp"
#include "core/launch.hpp"
#include "engines/target.hpp"

namespace fg {
namespace engines {
namespace {


__global__ void targetDenoiseKernel(TargetDenoiseParams p) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < p.count; i += int64_t(gridDim.x) * blockDim.x)
    p.eps[i] = targetEpsElement(p, i);
}

__global__ void poolEncodeKernel(PoolEncodeParams p, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x)
    p.latents[i] = poolEncodeElement(p, i);
}

__global__ void poolDecodeKernel(PoolDecodeParams p, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x)
    p.images[i] = poolDecodeElement(p, i);
}

}  // namespace

void targetDenoiseCuda(const TargetDenoiseParams& p, StreamHandle s) {
  if (p.count == 0) return;
  targetDenoiseKernel<<<gridFor(p.count, 256, kStrideGridCap), 256, 0, static_cast<cudaStream_t>(s)>>>(p);
  FG_CUDA_CHECK_LAUNCH();
}

void poolEncodeCuda(const PoolEncodeParams& p, StreamHandle s) {
  int64_t count = int64_t(p.n) * kPoolLatentChannels * (p.height / kPoolFactor) * (p.width / kPoolFactor);
  if (count == 0) return;
  poolEncodeKernel<<<gridFor(count, 128, kStrideGridCap), 128, 0, static_cast<cudaStream_t>(s)>>>(p, count);
  FG_CUDA_CHECK_LAUNCH();
}

void poolDecodeCuda(const PoolDecodeParams& p, StreamHandle s) {
  int64_t count = int64_t(p.n) * 3 * (int64_t(p.height) * kPoolFactor) * (int64_t(p.width) * kPoolFactor);
  if (count == 0) return;
  poolDecodeKernel<<<gridFor(count, 256, kStrideGridCap), 256, 0, static_cast<cudaStream_t>(s)>>>(p, count);
  FG_CUDA_CHECK_LAUNCH();
}

}  // namespace engines
}  // namespace fg
