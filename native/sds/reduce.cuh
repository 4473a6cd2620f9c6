// Block-level reductions for the sds kernels: a fixed shuffle tree, so the result depends only on the
// values and the block size (deterministic run to run).
#pragma once
#include <cuda_runtime.h>

namespace fg {
namespace sds {

template <typename T>
__device__ inline T warpReduceSum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the block; the result is valid in every thread. Uses 32 T of shared memory. blockDim.x % 32 == 0.
template <typename T>
__device__ inline T blockReduceSum(T v) {
  __shared__ T warpSums[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warpReduceSum(v);
  __syncthreads();  // warpSums may still be read by a previous call
  if (lane == 0) warpSums[warp] = v;
  __syncthreads();
  T r = lane < warps ? warpSums[lane] : T(0);
  r = warpReduceSum(r);
  return r;
}

// The last-block-done pattern: each block stores its partial, the block that arrives last (counter) gets
// true and may read all partials. The counter is reset by the last block, so it is self-cleaning.
__device__ inline bool lastBlockDone(double partial, double* partials, unsigned int* counter) {
  __shared__ bool amLast;
  __threadfence();  // every thread's global stores (e.g. gradients the last block rescales) before the ticket
  __syncthreads();
  if (threadIdx.x == 0) {
    partials[blockIdx.x] = partial;
    __threadfence();
    unsigned int ticket = atomicAdd(counter, 1u);
    amLast = ticket == gridDim.x - 1;
  }
  __syncthreads();
  if (amLast) __threadfence();
  return amLast;
}

// Sum of partials[0..count) in a fixed order (strided per thread, then the block tree). Every thread gets it.
__device__ inline double sumPartials(const double* partials, int count) {
  double acc = 0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += ((volatile const double*)partials)[i];
  return blockReduceSum(acc);
}

}  // namespace sds
}  // namespace fg
