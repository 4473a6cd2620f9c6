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
constexpr int kTileW = 32, kTileH = 8;  // per-pixel passes: a block is a 32x8 tile of one view (a warp = 32 pixels of a row)
constexpr int kLanesPerVertex = 8;      // gathers: lanes per vertex

inline unsigned blocksFor(int64_t n) { return unsigned((n + kThreads - 1) / kThreads); }
inline cudaStream_t cs(StreamHandle s) { return static_cast<cudaStream_t>(s); }
inline dim3 tileGrid(const Kern& k) { return dim3(unsigned((k.W + kTileW - 1) / kTileW), unsigned((k.H + kTileH - 1) / kTileH), unsigned(k.V)); }

// Fire-and-forget 64-bit min (RED.MIN: the result is unused, so the thread does not wait for the memory round
// trip; reading the key first to skip the atomic made every pixel test wait for a global load).
__device__ __forceinline__ void depthTest(unsigned long long* dst, unsigned long long key) { atomicMin(dst, key); }

__device__ __forceinline__ V3 laneGroupSum(V3 a) {
#pragma unroll
  for (int off = kLanesPerVertex / 2; off >= 1; off >>= 1) {
    a.x += __shfl_xor_sync(0xffffffffu, a.x, off);
    a.y += __shfl_xor_sync(0xffffffffu, a.y, off);
    a.z += __shfl_xor_sync(0xffffffffu, a.z, off);
  }
  return a;
}
inline int64_t roundUp32(int64_t n) { return (n + 31) / 32 * 32; }

// Forward prologue, one launch: the queue counter, the vertex transform, the vertex normals (kLanesPerVertex
// lanes per vertex: a warp-aligned range of whole warps, so the lane-group shuffles see converged warps) and the
// depth-key clear (16 bytes per thread).
__global__ void kPrologue(Kern k, int* counter, int64_t pix, int64_t n0, int64_t n1) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t VP = int64_t(k.V) * k.P;
  if (i == 0) *counter = 0;
  if (i < n0) {
    if (i < VP) vertexTransformElem(k, i);
  } else if (i < n1) {
    const int64_t q = i - n0;
    const int p = int(q / kLanesPerVertex), s = int(q % kLanesPerVertex);
    V3 m = mk(0, 0, 0);
    if (p < k.P)
      for (int j = k.vfOff[p] + s; j < k.vfOff[p + 1]; j += kLanesPerVertex) m = m + faceNormal(k, k.vfList[j] / 3);
    m = laneGroupSum(m);
    if (p < k.P && s == 0) vertexNormalFinish(k, p, m);
  } else {
    const int64_t j = i - n1;
    if (j < pix / 2) reinterpret_cast<ulonglong2*>(k.keys)[j] = make_ulonglong2(kNoKey, kNoKey);
    else if (j == pix / 2 && (pix & 1)) k.keys[pix - 1] = kNoKey;
  }
}

// Per-(view, triangle) setup (cached geometry, facing, bounding box) and the small triangles' rasterisation (a
// thread loops over its triangle's pixel box; boxes over kSmallArea pixels are queued for kRasterBig).
__global__ void kRaster(Kern k, int* queue, int* counter) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= int64_t(k.V) * k.T) return;
  const int v = int(i / k.T), t = int(i - int64_t(v) * k.T);
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

// The queued big triangles (a block per triangle), after a grid-stride prologue that writes every (view,
// triangle)'s silhouette flag (all facings are known once kRaster has finished).
__global__ void kRasterBig(Kern k, const int* queue, const int* counter) {
  __shared__ TriGeom sg;
  __shared__ int sb[4];
  const int64_t VT = int64_t(k.V) * k.T;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < VT; i += int64_t(gridDim.x) * blockDim.x)
    silhouetteFlagElem(k, i);
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

// (Mip: two trilinear taps per pixel; 2 blocks per SM leaves it the registers it needs without spilling.)
template <bool Mip>
__global__ void __launch_bounds__(kTileW * kTileH, Mip ? 2 : 3) kResolve(Kern k) {
  const int x = int(blockIdx.x) * kTileW + int(threadIdx.x), y = int(blockIdx.y) * kTileH + int(threadIdx.y);
  if (x < k.W && y < k.H) resolvePixel<Mip>(k, int(blockIdx.z), x, y);
}
// One level of the mip pyramid from the level above it.
__global__ void kMipDown(const float* src, int sw, int sh, float* dst, int dw, int C, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) mipDownElem(src, sw, sh, dst, dw, C, i);
}
// Level-0 texture gradient = its own gradient + the pyramid's pushed down (adjoint of the box filter). Fixed-point
// mode (dTex.fx) converts to float into dTexOut; float mode adds in place.
__global__ void kMipReduce(Kern k, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float a = mipReduceElem(k, i);
  if (k.dTex.fx) k.dTexOut[i] = float(double(k.dTex.fx[i]) / double(k.dTex.scale)) + a;
  else k.dTex.f[i] += a;
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

// WithN: vertex-normal accumulators (grey shading) in use; without them the nn half of PixGrad is dead code.
template <bool WithN, bool Mip>
__global__ void __launch_bounds__(kTileW * kTileH) kBackward(Kern k) {
  const int x = int(blockIdx.x) * kTileW + int(threadIdx.x), y = int(blockIdx.y) * kTileH + int(threadIdx.y);
  PixGrad g;
  zeroPixGrad(g);
  if (x < k.W && y < k.H) backwardPixel<Mip>(k, int(blockIdx.z), x, y, g);
  warpAccumulate(k, g, WithN);
}
__global__ void kNormals1(Kern k) {
  const int64_t gi = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int p = int(gi / kLanesPerVertex), s = int(gi % kLanesPerVertex);
  V3 g = mk(0, 0, 0);
  if (p < k.P) {
    const int n = k.V * vertexDegree(k, p);
    for (int q = s; q < n; q += kLanesPerVertex) g = g + normalGradTerm(k, p, q);
  }
  g = laneGroupSum(g);
  if (p < k.P && s == 0) normalsBackward1Finish(k, p, g);
}
__global__ void kNormals2(Kern k, bool withNormals) {
  const int64_t gi = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int p = int(gi / kLanesPerVertex), s = int(gi % kLanesPerVertex);
  V3 acc = mk(0, 0, 0);
  if (p < k.P) {
    const int n = positionGradTerms(k, p, withNormals);
    for (int q = s; q < n; q += kLanesPerVertex) acc = acc + positionGradTerm(k, p, q);
  }
  acc = laneGroupSum(acc);
  if (p < k.P && s == 0) {
    k.dPosOut[3 * p] = acc.x;
    k.dPosOut[3 * p + 1] = acc.y;
    k.dPosOut[3 * p + 2] = acc.z;
  }
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

void mipBuildCuda(const float* tex, int tw, int th, int C, int L, float* pyr, StreamHandle stream) {
  cudaStream_t st = cs(stream);
  for (int l = 1; l < L; ++l) {
    const float* src = l == 1 ? tex : pyr + mipOffset(tw, th, C, l - 1);
    float* dst = pyr + mipOffset(tw, th, C, l);
    const int sw = mipDim(tw, l - 1), sh = mipDim(th, l - 1), dw = mipDim(tw, l), dh = mipDim(th, l);
    const int64_t n = int64_t(dw) * dh * C;
    kMipDown<<<blocksFor(n), kThreads, 0, st>>>(src, sw, sh, dst, dw, C, n);
    FG_CUDA_CHECK_LAUNCH();
  }
}

void forwardCuda(const Kern& k, const ForwardScratch& s, StreamHandle stream) {
  const int64_t VP = int64_t(k.V) * k.P, VT = int64_t(k.V) * k.T, pix = int64_t(k.V) * k.H * k.W;
  cudaStream_t st = cs(stream);
  if (k.mipL > 1) {
    mipBuildCuda(k.tex, k.tw, k.th, k.C, k.mipL, const_cast<float*>(k.mip), stream);
    mark("fwd mip pyramid", st);
  }
  const int64_t n0 = roundUp32(VP), n1 = n0 + roundUp32(int64_t(k.P) * kLanesPerVertex);
  kPrologue<<<blocksFor(n1 + pix / 2 + 1), kThreads, 0, st>>>(k, s.counter, pix, n0, n1);
  FG_CUDA_CHECK_LAUNCH();
  mark("fwd clear keys + vertices + normals", st);
  kRaster<<<blocksFor(VT), kThreads, 0, st>>>(k, s.queue, s.counter);
  FG_CUDA_CHECK_LAUNCH();
  mark("fwd setup + raster (small tris)", st);
  kRasterBig<<<kBigBlocks, kThreads, 0, st>>>(k, s.queue, s.counter);
  FG_CUDA_CHECK_LAUNCH();
  mark("fwd silhouette flags + big tris", st);
  if (k.mipL > 0) kResolve<true><<<tileGrid(k), dim3(kTileW, kTileH), 0, st>>>(k);
  else kResolve<false><<<tileGrid(k), dim3(kTileW, kTileH), 0, st>>>(k);
  FG_CUDA_CHECK_LAUNCH();
  mark("fwd resolve+shade+texture+antialias", st);
}

void backwardCuda(const Kern& k, bool withNormals, bool texConvert, int64_t texElems, StreamHandle stream) {
  cudaStream_t st = cs(stream);
  mark("bwd clear (accumulators, dTexture)", st);
  const bool mip = k.mipL > 0;
  if (k.dN.on()) {
    if (mip) kBackward<true, true><<<tileGrid(k), dim3(kTileW, kTileH), 0, st>>>(k);
    else kBackward<true, false><<<tileGrid(k), dim3(kTileW, kTileH), 0, st>>>(k);
  } else {
    if (mip) kBackward<false, true><<<tileGrid(k), dim3(kTileW, kTileH), 0, st>>>(k);
    else kBackward<false, false><<<tileGrid(k), dim3(kTileW, kTileH), 0, st>>>(k);
  }
  FG_CUDA_CHECK_LAUNCH();
  mark("bwd pixels (antialias+shade+texture)", st);
  if (k.dPosOut) {
    const int64_t lanes = int64_t(k.P) * kLanesPerVertex;
    if (withNormals) {
      kNormals1<<<blocksFor(lanes), kThreads, 0, st>>>(k);
      FG_CUDA_CHECK_LAUNCH();
      mark("bwd vertex-normal gather", st);
    }
    kNormals2<<<blocksFor(lanes), kThreads, 0, st>>>(k, withNormals);
    FG_CUDA_CHECK_LAUNCH();
    mark("bwd position gather", st);
  }
  if (k.mipL > 1 && k.dMip.on() && texElems > 0) {
    kMipReduce<<<blocksFor(texElems), kThreads, 0, st>>>(k, texElems);
    FG_CUDA_CHECK_LAUNCH();
    mark("bwd mip gradient reduce", st);
  } else if (texConvert && texElems > 0) {
    kFixedToFloat<<<blocksFor(texElems), kThreads, 0, st>>>(k.dTex.fx, k.dTexOut, texElems, k.dTex.scale);
    FG_CUDA_CHECK_LAUNCH();
    mark("bwd texture fixed->float", st);
  }
}

double timeCudaGraphUs(const std::function<void()>& body, int warmup, int iters, StreamHandle stream) {
  cudaStream_t st = cs(stream);
  body();  // first run outside the capture (lazy module loading)
  FG_CUDA_CHECK(cudaStreamSynchronize(st));
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  FG_CUDA_CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
  try {
    body();
  } catch (...) {
    cudaStreamEndCapture(st, &graph);
    if (graph) cudaGraphDestroy(graph);
    throw;
  }
  FG_CUDA_CHECK(cudaStreamEndCapture(st, &graph));
  FG_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  double us = 0.0;
  try {
    us = timeCudaUs([&] { FG_CUDA_CHECK(cudaGraphLaunch(exec, st)); }, warmup, iters, stream);
  } catch (...) {
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    throw;
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  return us;
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
