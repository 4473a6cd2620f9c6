// CUDA twin of the rasteriser passes (the maths is in raster_math.hpp, shared with raster.cpp).
//
// Forward: 1 vertex kernel (transform + vertex normals), 1 per-triangle raster kernel (small triangles loop
// over their few pixels; large ones are queued), 1 fixed-grid kernel for the queued large triangles (a block
// per triangle), 1 fused resolve kernel (ids, barycentrics, depth, normals, SH grey, texture, depth image and
// the antialiasing blend, which recomputes the few neighbour shadings it needs instead of storing them).
// Backward: 1 per-pixel kernel (antialiasing + shading + texture atomics; the position chain goes to
// per-(view, triangle) edge accumulators through warp-aggregated atomics), then per-vertex gathers (vertex
// normals, positions): no per-vertex atomics. No allocation, no synchronisation.
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
  storeTriGeom(k, i, g);
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

// Adds one warp's per-pixel PixGrads to the per-(view, triangle) accumulators: a segmented reduction over runs
// of lanes with the same key (neighbouring pixels of a row mostly share a triangle), then one set of atomics per
// run. Runs are contiguous lane ranges, so a key that occurs in two separate runs is just added twice. The
// order of the additions is fixed, so fixed-point (deterministic) mode stays bitwise reproducible.
__device__ __forceinline__ void warpAccumulate(const Kern& k, PixGrad& g, bool withN) {
  const unsigned full = 0xffffffffu;
  const int lane = int(threadIdx.x & 31);
  long long prev = __shfl_up_sync(full, g.key, 1);
  bool head = lane == 0 || prev != g.key;
  unsigned heads = __ballot_sync(full, head);
  if (__all_sync(full, g.key < 0)) return;
  int run = __popc(heads & (0xffffffffu >> (31 - lane)));
#pragma unroll
  for (int d = 1; d < 32; d <<= 1) {
    int orun = __shfl_down_sync(full, run, d);
    bool take = lane + d < 32 && orun == run;
#pragma unroll
    for (int q = 0; q < 9; ++q) {
      float o = __shfl_down_sync(full, g.w[q], d);
      if (take) g.w[q] += o;
    }
    if (withN) {
#pragma unroll
      for (int q = 0; q < 9; ++q) {
        float o = __shfl_down_sync(full, g.nn[q], d);
        if (take) g.nn[q] += o;
      }
    }
  }
  if (!head || g.key < 0) return;
  const int64_t b = g.key * 9;
  if (k.dW.on())
#pragma unroll
    for (int q = 0; q < 9; ++q)
      if (g.w[q] != 0.f) k.dW.add(b + q, g.w[q]);
  if (withN)
#pragma unroll
    for (int q = 0; q < 9; ++q)
      if (g.nn[q] != 0.f) k.dN.add(b + q, g.nn[q]);
}

__global__ void kBackward(Kern k) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  PixGrad g;
  zeroPixGrad(g);
  if (i < int64_t(k.V) * k.H * k.W) backwardPixel(k, i, g);
  warpAccumulate(k, g, k.dN.on());
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

StageTimer* gStageTimer = nullptr;
inline void mark(const char* stage, cudaStream_t st) {
  if (gStageTimer) gStageTimer->mark(stage, st);
}
}  // namespace

void setStageTimer(StageTimer* t) { gStageTimer = t; }

void forwardCuda(const Kern& k, const ForwardScratch& s, StreamHandle stream) {
  const int64_t VP = int64_t(k.V) * k.P, VT = int64_t(k.V) * k.T, pix = int64_t(k.V) * k.H * k.W;
  cudaStream_t st = cs(stream);
  FG_CUDA_CHECK(cudaMemsetAsync(k.keys, 0xff, size_t(pix) * 8, st));
  FG_CUDA_CHECK(cudaMemsetAsync(s.counter, 0, 4, st));
  mark("fwd clear (depth keys)", st);
  kVertex<<<blocksFor(VP + k.P), kThreads, 0, st>>>(k);
  FG_CUDA_CHECK_LAUNCH();
  mark("fwd vertices + normals", st);
  kRaster<<<blocksFor(VT), kThreads, 0, st>>>(k, s.queue, s.counter);
  FG_CUDA_CHECK_LAUNCH();
  mark("fwd raster (small tris)", st);
  kRasterBig<<<kBigBlocks, kThreads, 0, st>>>(k, s.queue, s.counter);
  FG_CUDA_CHECK_LAUNCH();
  mark("fwd raster (queued big tris)", st);
  kResolve<<<blocksFor(pix), kThreads, 0, st>>>(k);
  FG_CUDA_CHECK_LAUNCH();
  mark("fwd resolve+shade+texture+antialias", st);
}

void backwardCuda(const Kern& k, bool withNormals, bool texConvert, int64_t texElems, StreamHandle stream) {
  const int64_t pix = int64_t(k.V) * k.H * k.W;
  cudaStream_t st = cs(stream);
  mark("bwd clear (accumulators, dTexture)", st);
  kBackward<<<blocksFor(pix), kThreads, 0, st>>>(k);
  FG_CUDA_CHECK_LAUNCH();
  mark("bwd pixels (antialias+shade+texture)", st);
  if (k.dPosOut) {
    if (withNormals) {
      kNormals1<<<blocksFor(k.P), kThreads, 0, st>>>(k);
      FG_CUDA_CHECK_LAUNCH();
      mark("bwd vertex-normal gather", st);
    }
    kNormals2<<<blocksFor(k.P), kThreads, 0, st>>>(k, withNormals);
    FG_CUDA_CHECK_LAUNCH();
    mark("bwd position gather", st);
  }
  if (texConvert && texElems > 0) {
    kFixedToFloat<<<blocksFor(texElems), kThreads, 0, st>>>(k.dTex.fx, k.dTexOut, texElems, k.dTex.scale);
    FG_CUDA_CHECK_LAUNCH();
    mark("bwd texture fixed->float", st);
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

namespace {
struct EventTimer : StageTimer {
  std::vector<cudaEvent_t> events;
  std::vector<std::string> names;
  size_t used = 0;
  void mark(const char* stage, StreamHandle stream) override {
    if (used == events.size()) {
      cudaEvent_t e;
      FG_CUDA_CHECK(cudaEventCreate(&e));
      events.push_back(e);
    }
    if (names.size() <= used) names.emplace_back(stage);
    FG_CUDA_CHECK(cudaEventRecord(events[used], cs(stream)));
    ++used;
  }
  ~EventTimer() override {
    for (auto e : events) cudaEventDestroy(e);
  }
};
}  // namespace

std::vector<std::pair<std::string, double>> stageBreakdownCuda(const std::function<void()>& body, int warmup, int iters,
                                                               StreamHandle stream) {
  EventTimer timer;
  std::vector<double> sums;
  setStageTimer(&timer);
  try {
    for (int it = 0; it < warmup + iters; ++it) {
      timer.used = 0;
      timer.mark("start", stream);
      body();
      FG_CUDA_CHECK(cudaEventSynchronize(timer.events[timer.used - 1]));
      if (it < warmup) continue;
      if (sums.size() < timer.used) sums.resize(timer.used, 0.0);
      for (size_t i = 1; i < timer.used; ++i) {
        float ms = 0.f;
        FG_CUDA_CHECK(cudaEventElapsedTime(&ms, timer.events[i - 1], timer.events[i]));
        sums[i] += double(ms) * 1000.0;
      }
    }
  } catch (...) {
    setStageTimer(nullptr);
    throw;
  }
  setStageTimer(nullptr);
  std::vector<std::pair<std::string, double>> r;
  for (size_t i = 1; i < sums.size(); ++i) r.emplace_back(timer.names[i], sums[i] / double(iters > 0 ? iters : 1));
  return r;
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
