// CUDA launchers of the fused SDS ops (sds.hpp): one kernel each, no allocation, no synchronisation.
#include "core/cuda_check.hpp"
#include "core/launch.hpp"
#include "core/philox.hpp"
#include "core/rng.hpp"
#include "sds/launches.hpp"
#include "sds/reduce.cuh"
#include "sds/sds.hpp"

namespace fg {
namespace sds {
namespace {

constexpr int kBlock = 256;
constexpr int kGradBlock = 512;


__global__ void sdsNoiseKernel(SdsNoiseParams p) {
  if (blockIdx.x == 0 && threadIdx.x < kSdsCounters) p.scratch.counters[threadIdx.x] = 0u;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < p.n; i += int64_t(gridDim.x) * blockDim.x)
    sdsNoiseElem(p, i);
}

__device__ inline float loadOut(const SdsGradParams& p, int64_t j) {
  return p.modelOut ? p.modelOut[j] : halfBitsToFloat(p.modelOutHalf[j]);
}

__global__ void __launch_bounds__(kGradBlock) sdsGradKernel(SdsGradParams p, bool reduce) {
  const float sa = p.sqrtAlphaBar, s1a = p.sqrtOneMinusAlphaBar;
  float acc = 0.f;
  int bad = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < p.n; i += int64_t(gridDim.x) * blockDim.x) {
    float x0 = p.x0[i], e = p.eps[i];
    float xt = sdsXt(x0, e, sa, s1a);
    float oc = loadOut(p, p.copies == 2 ? p.n + i : i);
    float ou = p.copies == 2 ? loadOut(p, i) : oc;
    // guidance in the model's output space, then one v -> eps conversion (it is affine with weights summing
    // to 1, so this equals guiding the converted predictions, without amplifying their rounding by s)
    float guided = p.copies == 2 ? sdsGuide(ou, oc, p.guidanceScale, p.anchor) : oc;
    float eh = p.prediction == Prediction::VPrediction ? sdsVToEps(guided, xt, sa, s1a) : guided;
    float g = fg::mul(p.weight, fg::sub(eh, e));
    if (!isFiniteF(g)) bad = 1;
    if (p.clampValue > 0.f) g = fg::clampv(g, -p.clampValue, p.clampValue);
    if (p.x0Pred) p.x0Pred[i] = sdsX0FromEps(xt, eh, sa, s1a);
    if (p.epsPred) p.epsPred[i] = eh;
    p.grad[i] = g;
    acc = fg::fma(g, g, acc);
  }
  if (p.flags) {
    if (__syncthreads_or(bad) && threadIdx.x == 0) atomicOr(p.flags, kFlagSdsNonFinite);
  }
  if (!reduce) return;
  double blockSum = blockReduceSum(double(acc));
  if (!lastBlockDone(blockSum, p.scratch.partials, p.scratch.counters + 0)) return;
  double total = sumPartials(p.scratch.partials, gridDim.x);
  double after = total;
  if (p.normalize) {
    double scaleD = double(p.normScale) / fmax(sqrt(total), 1e-12);
    float scale = float(scaleD);
    // the other blocks' stores are visible (threadfence before their ticket); rescale everything
    volatile float* gv = p.grad;  // written by other blocks in this launch: bypass L1
    int64_t i = threadIdx.x;
    for (; i + 3 * int64_t(blockDim.x) < p.n; i += 4 * int64_t(blockDim.x)) {
      float a = gv[i], b = gv[i + blockDim.x], c = gv[i + 2 * blockDim.x], d = gv[i + 3 * blockDim.x];
      p.grad[i] = fg::mul(a, scale);
      p.grad[i + blockDim.x] = fg::mul(b, scale);
      p.grad[i + 2 * blockDim.x] = fg::mul(c, scale);
      p.grad[i + 3 * blockDim.x] = fg::mul(d, scale);
    }
    for (; i < p.n; i += blockDim.x) p.grad[i] = fg::mul(gv[i], scale);
    after = total * scaleD * scaleD;
  }
  if (threadIdx.x == 0) {
    if (p.stats) {
      p.stats[0] = total;
      p.stats[1] = after;
    }
    p.scratch.counters[0] = 0u;
  }
}

__global__ void sdsImageLossKernel(SdsImageLossParams p, bool reduce) {
  float twoW = fg::mul(2.f, p.weight);
  float acc = 0.f;
  int bad = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < p.n; i += int64_t(gridDim.x) * blockDim.x) {
    float r = fg::sub(p.render[i], p.target[i]);
    float g = fg::mul(twoW, r);
    if (!isFiniteF(g)) bad = 1;
    p.grad[i] = g;
    acc = fg::fma(r, r, acc);
  }
  if (p.flags) {
    if (__syncthreads_or(bad) && threadIdx.x == 0) atomicOr(p.flags, kFlagLossNonFinite);
  }
  if (!reduce) return;
  double blockSum = blockReduceSum(double(acc));
  if (!lastBlockDone(blockSum, p.scratch.partials, p.scratch.counters + 1)) return;
  double total = sumPartials(p.scratch.partials, gridDim.x);
  if (threadIdx.x == 0) {
    *p.loss = double(p.weight) * total;
    p.scratch.counters[1] = 0u;
  }
}

__global__ void latentRgbKernel(LatentRgbParams p, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    p.out[i] = latentRgbElement(p, i);
}

}  // namespace

void sdsNoiseCuda(const SdsNoiseParams& p, StreamHandle s) {
  countLaunch();
  sdsNoiseKernel<<<gridFor(p.n, kBlock, kStrideGridCap), kBlock, 0, static_cast<cudaStream_t>(s)>>>(p);
  FG_CUDA_CHECK_LAUNCH();
}

void sdsGradCuda(const SdsGradParams& p, StreamHandle s) {
  if (p.n == 0) {
    // nothing to reduce; keep the outputs consistent without a launch
    if (p.stats) FG_CUDA_CHECK(cudaMemsetAsync(p.stats, 0, 2 * sizeof(double), static_cast<cudaStream_t>(s)));
    return;
  }
  bool reduce = p.normalize || p.stats != nullptr;
  countLaunch();
  sdsGradKernel<<<gridFor(p.n, kGradBlock, reduce ? kMaxReduceBlocks : kStrideGridCap), kGradBlock, 0, static_cast<cudaStream_t>(s)>>>(p, reduce);
  FG_CUDA_CHECK_LAUNCH();
}

void sdsImageLossCuda(const SdsImageLossParams& p, StreamHandle s) {
  if (p.n == 0) {
    if (p.loss) FG_CUDA_CHECK(cudaMemsetAsync(p.loss, 0, sizeof(double), static_cast<cudaStream_t>(s)));
    return;
  }
  bool reduce = p.loss != nullptr;
  countLaunch();
  sdsImageLossKernel<<<gridFor(p.n, kBlock, reduce ? kMaxReduceBlocks : kStrideGridCap), kBlock, 0, static_cast<cudaStream_t>(s)>>>(p, reduce);
  FG_CUDA_CHECK_LAUNCH();
}

void latentRgbCuda(const LatentRgbParams& p, StreamHandle s) {
  int64_t n = latentRgbOutElements(p);
  if (n == 0) return;
  countLaunch();
  latentRgbKernel<<<gridFor(n, kBlock, kStrideGridCap), kBlock, 0, static_cast<cudaStream_t>(s)>>>(p, n);
  FG_CUDA_CHECK_LAUNCH();
}

}  // namespace sds
}  // namespace fg
