// CUDA twins of native/pipeline/kernels.hpp. Launchers never allocate or synchronise; gradient scatters use 64-bit
// fixed-point integer atomics into caller-zeroed scratch plus a conversion pass, reductions a fixed-order block
// tree: both deterministic (bit-reproducible run to run).
#include "core/cuda_check.hpp"
#include "core/launch.hpp"
#include "pipeline/kernels.hpp"

namespace fg {
namespace pipe {
namespace {

constexpr int kThreads = 256;
inline unsigned blocksFor(int64_t n, int threads = kThreads) { return gridFor(n, threads); }
inline cudaStream_t cs(StreamHandle s) { return static_cast<cudaStream_t>(s); }

template <typename P, typename F>
__global__ void elementKernel(P p, int64_t n, F f) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) f(p, i);
}

struct ClipF { __device__ void operator()(const ClipParams& p, int64_t i) const { clipElement(p, i); } };
struct ClipGradF { __device__ void operator()(const ClipParams& p, int64_t i) const { clipGradElement(p, i); } };
struct ShadeF { __device__ void operator()(const ShadeParams& p, int64_t i) const { shadePixel(p, i); } };
struct ElemF { __device__ void operator()(const ElementParams& p, int64_t i) const { elementOp(p, i); } };
struct AdjF { __device__ void operator()(const CodecAdjointParams& p, int64_t i) const { codecAdjointElement(p, i); } };
struct TransposeF { __device__ void operator()(const TransposeParams& p, int64_t j) const { transposePixel(p, j); } };
struct ComposeF { __device__ void operator()(const ComposeParams& p, int64_t i) const { composeElement(p, i); } };
struct ComposeGradF { __device__ void operator()(const ComposeParams& p, int64_t i) const { composeGradElement(p, i); } };
struct LayoutF { __device__ void operator()(const LayoutParams& p, int64_t i) const { layoutElement(p, i); } };
template <typename P, typename F>
void launchElements(const P& p, int64_t n, F f, StreamHandle s) {
  if (n <= 0) return;
  unsigned b = blocksFor(n);
  if (b > 65535u * 8u) b = 65535u * 8u;
  elementKernel<<<b, kThreads, 0, cs(s)>>>(p, n, f);
  FG_CUDA_CHECK_LAUNCH();
}

// 64-bit fixed-point scatter (deterministic: integer atomics commute). `flag` is the scratch's extra last element.
__device__ __forceinline__ void fixedAdd(long long* fx, long long* flag, int64_t i, float v) {
  if (!(fabsf(v) <= kShadeFixedMaxAbs)) {  // NaN, Inf or a single term that could wrap the accumulator
    atomicOr(reinterpret_cast<unsigned long long*>(flag), 1ull);
    return;
  }
  // v · 2^32 is exact in float (power-of-two scale, |v| ≤ 2^30 keeps it finite); round half to even to an integer.
  const long long q = __float2ll_rn(v * kShadeFixedScale);
  atomicAdd(reinterpret_cast<unsigned long long*>(fx + i), static_cast<unsigned long long>(q));  // two's complement
}

__global__ void shadeGeomGradKernel(ShadeParams p, int64_t n) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n || p.triId[i] < 0) return;
  PixelGeomGrad g = shadeGeomGradPixel(p, i);
  if (!g.any) return;
  int view = int(i / (int64_t(p.width) * p.height));
  long long* nFlag = p.gradNormals ? p.gradNormalsFixed + shadeGradNormalsCount(p) : nullptr;
  long long* cFlag = p.gradClip ? p.gradClipFixed + shadeGradClipCount(p) : nullptr;
  for (int k = 0; k < 3; ++k) {
    if (p.gradNormals)
      for (int c = 0; c < 3; ++c) fixedAdd(p.gradNormalsFixed, nFlag, 3 * int64_t(g.v[k]) + c, g.gN[k][c]);
    if (p.gradClip) {
      const int64_t base = 4 * (int64_t(view) * p.V + g.v[k]);
      for (int c = 0; c < 4; ++c) fixedAdd(p.gradClipFixed, cFlag, base + c, g.gClip[k][c]);
    }
  }
}

__global__ void shadeTexGradKernel(ShadeParams p, int64_t n) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  Bilinear bl;
  const float* go;
  if (!shadeTexPixel(p, i, bl, go)) return;
  const int64_t plane = int64_t(p.width) * p.height;
  const bool grad = p.gradTex && go;
  long long* tFlag = grad ? p.gradTexFixed + shadeGradTexCount(p) : nullptr;
  for (int k = 0; k < 4; ++k) {
    if (bl.w[k] == 0.f) continue;  // adds exactly 0 (the CPU twin adds it; same sums)
    if (p.texWeight) atomicAdd(p.texWeight + bl.idx[k], bl.w[k]);
    if (grad)
      for (int c = 0; c < p.channels; ++c) fixedAdd(p.gradTexFixed, tFlag, bl.idx[k] * p.channels + c, bl.w[k] * go[c * plane]);
  }
}

// dst[i] += fixed[i] / 2^32 (NaN everywhere when the scratch's flag element is set). Scale by the exact power of
// two 2^-32 in double (exact for |fixed| < 2^53), one rounding to float.
__global__ void fixedToFloatAddKernel(const long long* fx, int64_t n, float* dst) {
  const bool bad = fx[n] != 0;
  const double inv = 1.0 / double(kShadeFixedScale);
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] += bad ? __int_as_float(0x7fc00000) : float(double(fx[i]) * inv);
}

void fixedToFloatAdd(const long long* fx, int64_t n, float* dst, StreamHandle s) {
  if (n <= 0) return;
  fixedToFloatAddKernel<<<gridFor(n, kThreads, kStrideGridCap), kThreads, 0, cs(s)>>>(fx, n, dst);
  FG_CUDA_CHECK_LAUNCH();
}

// Single block, fixed order: deterministic (the fallback without scratch).
__global__ void sumSqKernel(SumSqParams p) {
  __shared__ float sh[2][1024];
  const bool two = p.out2 != nullptr;
  float s = 0.f, s2 = 0.f;
  for (int64_t i = threadIdx.x; i < p.count; i += blockDim.x) {
    s += sumSqTerm(p, i);
    if (two) s2 += sumSqTerm2(p, i);
  }
  sh[0][threadIdx.x] = s;
  sh[1][threadIdx.x] = s2;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w >>= 1) {
    if (int(threadIdx.x) < w) {
      sh[0][threadIdx.x] += sh[0][threadIdx.x + w];
      sh[1][threadIdx.x] += sh[1][threadIdx.x + w];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    *p.out = p.accumulate ? *p.out + sh[0][0] : sh[0][0];
    if (two) *p.out2 = p.accumulate ? *p.out2 + sh[1][0] : sh[1][0];
  }
}

// Fixed grid of kSumSqBlocks x kSumSqThreads; every thread sums a fixed grid-stride slice, each block a fixed
// tree, the last block (atomic ticket) adds the block partials in block order. Deterministic for a given count.
__device__ __forceinline__ void blockTree2(float (*sh)[kSumSqThreads], float& a, float& b) {
  sh[0][threadIdx.x] = a;
  sh[1][threadIdx.x] = b;
  __syncthreads();
  for (int w = kSumSqThreads / 2; w > 0; w >>= 1) {
    if (int(threadIdx.x) < w) {
      sh[0][threadIdx.x] += sh[0][threadIdx.x + w];
      sh[1][threadIdx.x] += sh[1][threadIdx.x + w];
    }
    __syncthreads();
  }
  a = sh[0][0];
  b = sh[1][0];
}

template <bool Two>
__global__ void __launch_bounds__(kSumSqThreads) sumSqGridKernel(SumSqParams p) {
  __shared__ float sh[2][kSumSqThreads];
  __shared__ bool isLast;
  const int64_t stride = int64_t(kSumSqBlocks) * kSumSqThreads;
  float s = 0.f, s2 = 0.f;
#pragma unroll 4
  for (int64_t i = int64_t(blockIdx.x) * kSumSqThreads + threadIdx.x; i < p.count; i += stride) {
    s += sumSqTerm(p, i);
    if (Two) s2 += sumSqTerm2(p, i);
  }
  blockTree2(sh, s, s2);
  if (threadIdx.x == 0) {
    p.partials[blockIdx.x] = s;
    if (Two) p.partials[kSumSqBlocks + blockIdx.x] = s2;
    __threadfence();
    unsigned int ticket = atomicAdd(p.counter, 1u);
    isLast = ticket == unsigned(kSumSqBlocks - 1);
  }
  __syncthreads();
  if (!isLast) return;
  __threadfence();
  const volatile float* vp = p.partials;
  float a = 0.f, b = 0.f;
  for (int k = threadIdx.x; k < kSumSqBlocks; k += kSumSqThreads) {
    a += vp[k];
    if (Two) b += vp[kSumSqBlocks + k];
  }
  __syncthreads();  // (sh is reused)
  blockTree2(sh, a, b);
  if (threadIdx.x == 0) {
    *p.out = p.accumulate ? *p.out + a : a;
    if (Two) *p.out2 = p.accumulate ? *p.out2 + b : b;
    *p.counter = 0u;  // ready for the next launch (stream order)
  }
}

}  // namespace

void clipTransformCuda(const ClipParams& p, StreamHandle s) { launchElements(p, int64_t(p.nViews) * p.V, ClipF{}, s); }
void clipTransformBackwardCuda(const ClipParams& p, StreamHandle s) { launchElements(p, p.V, ClipGradF{}, s); }
void shadeCuda(const ShadeParams& p, StreamHandle s) { launchElements(p, int64_t(p.nViews) * p.width * p.height, ShadeF{}, s); }
void shadeBackwardGeometryCuda(const ShadeParams& p, StreamHandle s) {
  int64_t n = int64_t(p.nViews) * p.width * p.height;
  if (n <= 0) return;
  shadeGeomGradKernel<<<blocksFor(n), kThreads, 0, cs(s)>>>(p, n);
  FG_CUDA_CHECK_LAUNCH();
  if (p.gradNormals) fixedToFloatAdd(p.gradNormalsFixed, shadeGradNormalsCount(p), p.gradNormals, s);
  if (p.gradClip) fixedToFloatAdd(p.gradClipFixed, shadeGradClipCount(p), p.gradClip, s);
}
void shadeBackwardTextureCuda(const ShadeParams& p, StreamHandle s) {
  int64_t n = int64_t(p.nViews) * p.width * p.height;
  if (n <= 0) return;
  shadeTexGradKernel<<<blocksFor(n), kThreads, 0, cs(s)>>>(p, n);
  FG_CUDA_CHECK_LAUNCH();
  if (p.gradTex && p.gradOut) fixedToFloatAdd(p.gradTexFixed, shadeGradTexCount(p), p.gradTex, s);
}
void elementwiseCuda(const ElementParams& p, StreamHandle s) { launchElements(p, p.count, ElemF{}, s); }
void codecAdjointCuda(const CodecAdjointParams& p, StreamHandle s) { launchElements(p, int64_t(p.n) * 3 * p.height * p.width, AdjF{}, s); }
void layoutCuda(const LayoutParams& p, int64_t dstCount, StreamHandle s) { launchElements(p, dstCount, LayoutF{}, s); }
void sumSquaresCuda(const SumSqParams& p, StreamHandle s) {
  if (p.partials && p.counter) {
    if (p.out2) sumSqGridKernel<true><<<kSumSqBlocks, kSumSqThreads, 0, cs(s)>>>(p);
    else sumSqGridKernel<false><<<kSumSqBlocks, kSumSqThreads, 0, cs(s)>>>(p);
  } else {
    sumSqKernel<<<1, 1024, 0, cs(s)>>>(p);
  }
  FG_CUDA_CHECK_LAUNCH();
}

void transposeCuda(const TransposeParams& p, StreamHandle s) { launchElements(p, int64_t(p.n) * p.height * p.width, TransposeF{}, s); }
void composeCuda(const ComposeParams& p, StreamHandle s) { launchElements(p, int64_t(p.n) * 3 * p.height * p.width, ComposeF{}, s); }
void composeBackwardCuda(const ComposeParams& p, StreamHandle s) { launchElements(p, int64_t(p.n) * p.height * p.width, ComposeGradF{}, s); }

}  // namespace pipe
}  // namespace fg
