#include "core/cuda_check.hpp"
#include "core/launch.hpp"
#include "core/rng_math.hpp"

namespace fg {
namespace {

__global__ void rngFillKernel(RngRequest r, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = rngElement(r, static_cast<uint64_t>(i));
}

__global__ void rngRawKernel(uint64_t seed, uint64_t stream, uint64_t offset, uint32_t* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = rngRawElement(seed, stream, offset + static_cast<uint64_t>(i));
}


}  // namespace

void rngFillCuda(const RngRequest& r, float* out, int64_t n, StreamHandle s) {
  if (n == 0) return;
  rngFillKernel<<<gridFor(n, 256, kStrideGridCap), 256, 0, static_cast<cudaStream_t>(s)>>>(r, out, n);
  FG_CUDA_CHECK_LAUNCH();
}

void rngRawCuda(uint64_t seed, uint64_t stream, uint64_t offset, uint32_t* out, int64_t n, StreamHandle s) {
  if (n == 0) return;
  rngRawKernel<<<gridFor(n, 256, kStrideGridCap), 256, 0, static_cast<cudaStream_t>(s)>>>(seed, stream, offset, out, n);
  FG_CUDA_CHECK_LAUNCH();
}

}  // namespace fg
