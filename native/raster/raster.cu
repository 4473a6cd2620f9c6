// CUDA twin of the rasteriser passes (the maths is in raster_math.hpp, shared with raster.cpp).
//
// Forward: 1 vertex kernel (transform + vertex normals), 1 per-triangle raster kernel (small triangles loop
// over their few pixels; large ones are queued), 1 fixed-grid kernel for the queued large triangles (a block
// per triangle), 1 fused resolve kernel (ids, barycentrics, depth, normals, SH grey, texture, depth image),
// 1 antialiasing kernel. Backward: antialiasing (gather) -> shading (atomics or fixed-point atomics) ->
// vertex-normal chain (gather over each vertex's triangles, no atomics). No allocation, no synchronisation.
#include <cuda_runtime.h>
#include "core/cuda_check.hpp"
#include "raster/raster_impl.hpp"

namespace fg {
namespace raster {

namespace {
constexpr int kThreads = 256;
constexpr int kSmallArea = 64;  // triangles whose pixel box is larger go to the block-per-triangle queue
constexpr int kBigBlocks = 1024;

inline unsigned blocksFor(int64_t n) { return unsigned((n + kThreads - 1) / kThreads); }
inline cudaStream_t cs(StreamHandle s) { return static_cast<cudaStream_t>(s); }

__device__ __forceinline__ void depthTest(unsigned long long* dst, unsigned long long key) {
  if (key < *dst) atomicMin(dst, key);
}

__global__ void kVertex(Kern k) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t VP = int64_t(k.V) * k.P;
  if (i < VP) vertexTransformElem(k, i);
  else if (i < VP + k.P) vertexNormalElem(k, int(i - VP));
}

__global__ void kRaster(Kern k, int* queue, int* counter) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= int64_t(k.V) * k.T) return;
  int v = int(i / k.T), t = int(i % k.T);
  TriGeom g = triGeom(k, v, t);
  k.facing[i] = int8_t(g.orient);
  int x0, y0, x1, y1;
  if (!triBBox(k, g, x0, y0, x1, y1)) return;
  if ((x1 - x0 + 1) * (y1 - y0 + 1) > kSmallArea) {
    queue[atomicAdd(counter, 1)] = int(i);
    return;
  }
  unsigned long long* keys = k.keys + int64_t(v) * k.H * k.W;
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) {
      float e[3], z;
      if (covers(g, float(x) + 0.5f, float(y) + 0.5f, k.nearZ, k.farZ, e, z)) depthTest(keys + int64_t(y) * k.W + x, depthKey(z, t));
    }
}

__global__ void kRasterBig(Kern k, const int* queue, const int* counter) {
  __shared__ TriGeom sg;
  __shared__ int sb[4];
  int n = *counter;
  for (int q = blockIdx.x; q < n; q += gridDim.x) {
    int i = queue[q];
    int v = i / k.T, t = i % k.T;
    if (threadIdx.x == 0) {
      sg = triGeom(k, v, t);
      triBBox(k, sg, sb[0], sb[1], sb[2], sb[3]);
    }
    __syncthreads();
    TriGeom g = sg;
    int x0 = sb[0], y0 = sb[1], bw = sb[2] - sb[0] + 1, bh = sb[3] - sb[1] + 1;
    unsigned long long* keys = k.keys + int64_t(v) * k.H * k.W;
    for (int j = threadIdx.x; j < bw * bh; j += blockDim.x) {
      int x = x0 + j % bw, y = y0 + j / bw;
      float e[3], z;
      if (covers(g, float(x) + 0.5f, float(y) + 0.5f, k.nearZ, k.farZ, e, z)) depthTest(keys + int64_t(y) * k.W + x, depthKey(z, t));
    }
    __syncthreads();
  }
}

__global__ void kResolve(Kern k) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < int64_t(k.V) * k.H * k.W) resolveElem(k, i);
}
__global__ void kAntialias(Kern k) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < int64_t(k.V) * k.H * k.W) antialiasElem(k, i);
}
__global__ void kAntialiasBackward(Kern k) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < int64_t(k.V) * k.H * k.W) antialiasBackwardElem(k, i);
}
__global__ void kShadeBackward(Kern k) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < int64_t(k.V) * k.H * k.W) shadeBackwardElem(k, i);
}
__global__ void kNormals1(Kern k) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < k.P) normalsBackward1Elem(k, i);
}
__global__ void kNormals2(Kern k, bool withNormals) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < k.P) normalsBackward2Elem(k, i, withNormals);
}
__global__ void kFixedToFloat(const long long* src, float* dst, int64_t n, float scale) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = float(double(src[i]) / double(scale));
}
__global__ void kInterp(InterpolateParams p, float* out) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < p.numPixels) interpolateElem(p, out, i);
}
__global__ void kInterpBackward(InterpolateParams p, const float* dOut, Sink s) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < p.numPixels) interpolateBackwardElem(p, dOut, s, i);
}
}  // namespace

void forwardCuda(const Kern& k, const ForwardScratch& s, StreamHandle stream) {
  const int64_t VP = int64_t(k.V) * k.P, VT = int64_t(k.V) * k.T, pix = int64_t(k.V) * k.H * k.W;
  cudaStream_t st = cs(stream);
  FG_CUDA_CHECK(cudaMemsetAsync(k.keys, 0xff, size_t(pix) * 8, st));
  FG_CUDA_CHECK(cudaMemsetAsync(s.counter, 0, 4, st));
  kVertex<<<blocksFor(VP + k.P), kThreads, 0, st>>>(k);
  FG_CUDA_CHECK_LAUNCH();
  kRaster<<<blocksFor(VT), kThreads, 0, st>>>(k, s.queue, s.counter);
  FG_CUDA_CHECK_LAUNCH();
  kRasterBig<<<kBigBlocks, kThreads, 0, st>>>(k, s.queue, s.counter);
  FG_CUDA_CHECK_LAUNCH();
  kResolve<<<blocksFor(pix), kThreads, 0, st>>>(k);
  FG_CUDA_CHECK_LAUNCH();
  if (k.antialias) {
    kAntialias<<<blocksFor(pix), kThreads, 0, st>>>(k);
    FG_CUDA_CHECK_LAUNCH();
  }
}

void backwardCuda(const Kern& k, bool withNormals, bool texConvert, int64_t texElems, StreamHandle stream) {
  const int64_t pix = int64_t(k.V) * k.H * k.W;
  cudaStream_t st = cs(stream);
  if (k.antialias) {
    kAntialiasBackward<<<blocksFor(pix), kThreads, 0, st>>>(k);
    FG_CUDA_CHECK_LAUNCH();
  }
  kShadeBackward<<<blocksFor(pix), kThreads, 0, st>>>(k);
  FG_CUDA_CHECK_LAUNCH();
  if (k.dPosOut) {
    if (withNormals) {
      kNormals1<<<blocksFor(k.P), kThreads, 0, st>>>(k);
      FG_CUDA_CHECK_LAUNCH();
    }
    kNormals2<<<blocksFor(k.P), kThreads, 0, st>>>(k, withNormals);
    FG_CUDA_CHECK_LAUNCH();
  }
  if (texConvert && texElems > 0) {
    kFixedToFloat<<<blocksFor(texElems), kThreads, 0, st>>>(k.dTex.fx, k.dTexOut, texElems, k.dTex.scale);
    FG_CUDA_CHECK_LAUNCH();
  }
}

double timeCudaUs(const std::function<void()>& body, int warmup, int iters, StreamHandle stream) {
  cudaStream_t st = cs(stream);
  for (int i = 0; i < warmup; ++i) body();
  cudaEvent_t a, b;
  FG_CUDA_CHECK(cudaEventCreate(&a));
  FG_CUDA_CHECK(cudaEventCreate(&b));
  FG_CUDA_CHECK(cudaEventRecord(a, st));
  for (int i = 0; i < iters; ++i) body();
  FG_CUDA_CHECK(cudaEventRecord(b, st));
  FG_CUDA_CHECK(cudaEventSynchronize(b));
  float ms = 0.f;
  FG_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return double(ms) * 1000.0 / double(iters > 0 ? iters : 1);
}

void interpolateCuda(const InterpolateParams& p, float* out, StreamHandle s) {
  if (p.numPixels == 0) return;
  kInterp<<<blocksFor(p.numPixels), kThreads, 0, cs(s)>>>(p, out);
  FG_CUDA_CHECK_LAUNCH();
}
void interpolateBackwardCuda(const InterpolateParams& p, const float* dOut, float* dAttr, StreamHandle s) {
  FG_CUDA_CHECK(cudaMemsetAsync(dAttr, 0, size_t(p.numRows) * p.numAttr * 4, cs(s)));
  if (p.numPixels == 0) return;
  Sink sk;
  sk.f = dAttr;
  kInterpBackward<<<blocksFor(p.numPixels), kThreads, 0, cs(s)>>>(p, dOut, sk);
  FG_CUDA_CHECK_LAUNCH();
}

}  // namespace raster
}  // namespace fg
