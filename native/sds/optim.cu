// CUDA launchers of the fused optimisers (optim.hpp). The per-element update is optimElement, shared with
// the CPU twin; the gradient-norm clip is a reduction launch (partials in the workspace) re-summed by every
// block of the update launch in a fixed order.
#include <algorithm>
#include "core/cuda_check.hpp"
#include "core/launch.hpp"
#include "sds/launches.hpp"
#include "sds/optim.hpp"
#include "sds/reduce.cuh"
#include "sds/sds.hpp"

namespace fg {
namespace sds {
namespace {

constexpr int kBlock = 256;

struct NormLaunch {
  const float* grad[kMaxGroupTensors];
  int64_t n[kMaxGroupTensors];
  int count;
  float gradScale;
  double* partials;  // [gridDim.x] of this chunk
};

struct UpdateLaunch {
  OptimTensor t[kMaxGroupTensors];
  int count;
  OptimCoef k;
  int reduce;              // sum partials first
  int clip;                // apply min(1, maxNorm / (norm + clipEps))
  double maxGradNorm, clipEps;
  const double* partials;  // [partialCount]
  int partialCount;
  double* gradNormOut;     // written by block 0 (first chunk only)
  uint32_t* flags;
};

__global__ void normPartialsKernel(NormLaunch L) {
  float acc = 0.f;
  for (int k = 0; k < L.count; ++k) {
    const float* g = L.grad[k];
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < L.n[k]; i += int64_t(gridDim.x) * blockDim.x) {
      float v = fg::mul(L.gradScale, g[i]);
      acc = fg::fma(v, v, acc);
    }
  }
  double s = blockReduceSum(double(acc));
  if (threadIdx.x == 0) L.partials[blockIdx.x] = s;
}

__global__ void optimUpdateKernel(UpdateLaunch L) {
  float scale = L.k.gradScale;
  if (L.reduce) {
    double total = sumPartials(L.partials, L.partialCount);
    double norm = sqrt(total);
    if (L.clip) scale = fg::mul(L.k.gradScale, float(fmin(1.0, L.maxGradNorm / (norm + L.clipEps))));
    if (L.gradNormOut && blockIdx.x == 0 && threadIdx.x == 0) *L.gradNormOut = norm;
  }
  int bad = 0;
  for (int k = 0; k < L.count; ++k) {
    const OptimTensor x = L.t[k];
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < x.n; i += int64_t(gridDim.x) * blockDim.x) {
      float g = fg::mul(scale, x.grad[i]);
      if (!isFiniteF(g)) bad = 1;
      float p = x.param[i], m = x.m[i], v = x.v[i];
      if (L.k.kind == int(OptimKind::Adan)) {
        float d = x.d[i], prev = x.prev[i];
        optimElement(L.k, p, g, m, v, &d, &prev);
        x.d[i] = d;
        x.prev[i] = prev;
      } else {
        optimElement(L.k, p, g, m, v, nullptr, nullptr);
      }
      x.param[i] = p;
      x.m[i] = m;
      x.v[i] = v;
    }
  }
  if (L.flags) {
    if (__syncthreads_or(bad) && threadIdx.x == 0) atomicOr(L.flags, kFlagOptimNonFinite);
  }
}


}  // namespace

void optimStepCuda(const OptimConfig& c, const OptimTensor* t, int count, const OptimStepArgs& a, Workspace* ws, StreamHandle s) {
  OptimCoef k = optimCoefficients(c, a);
  cudaStream_t st = static_cast<cudaStream_t>(s);
  const bool reduce = c.maxGradNorm > 0 || a.gradNormOut;
  const int chunks = (count + kMaxGroupTensors - 1) / kMaxGroupTensors;
  if (chunks == 0) return;
  int64_t total = 0;
  for (int i = 0; i < count; ++i) total += t[i].n;
  const unsigned normGrid = gridFor(total, kBlock, kMaxNormBlocks);
  double* partials = nullptr;
  if (reduce) {
    partials = ws->alloc<double>(size_t(chunks) * normGrid);
    for (int ch = 0; ch < chunks; ++ch) {
      NormLaunch L{};
      L.count = std::min(kMaxGroupTensors, count - ch * kMaxGroupTensors);
      for (int j = 0; j < L.count; ++j) {
        L.grad[j] = t[ch * kMaxGroupTensors + j].grad;
        L.n[j] = t[ch * kMaxGroupTensors + j].n;
      }
      L.gradScale = k.gradScale;
      L.partials = partials + size_t(ch) * normGrid;
      countLaunch();
      normPartialsKernel<<<normGrid, kBlock, 0, st>>>(L);
      FG_CUDA_CHECK_LAUNCH();
    }
  }
  for (int ch = 0; ch < chunks; ++ch) {
    UpdateLaunch L{};
    L.count = std::min(kMaxGroupTensors, count - ch * kMaxGroupTensors);
    int64_t chunkMax = 0;
    for (int j = 0; j < L.count; ++j) {
      L.t[j] = t[ch * kMaxGroupTensors + j];
      chunkMax = std::max(chunkMax, L.t[j].n);
    }
    L.k = k;
    L.reduce = reduce ? 1 : 0;
    L.clip = c.maxGradNorm > 0 ? 1 : 0;
    L.maxGradNorm = c.maxGradNorm;
    L.clipEps = c.clipEps;
    L.partials = partials;
    L.partialCount = reduce ? int(size_t(chunks) * normGrid) : 0;
    L.gradNormOut = ch == 0 ? a.gradNormOut : nullptr;
    L.flags = a.flags;
    countLaunch();
    optimUpdateKernel<<<gridFor(chunkMax, kBlock, kStrideGridCap), kBlock, 0, st>>>(L);
    FG_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace sds
}  // namespace fg
