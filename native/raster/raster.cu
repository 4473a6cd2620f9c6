// CUDA twin of the rasteriser passes (the maths is in raster_math.hpp, shared with raster.cpp; docs/raster.md,
// "Launches", has the whole picture).
//
// Forward: a counters memset, 1 prologue launch (vertex transform, normals, UV table, per-(view, triangle) setup
// that cuts each box into chunk work items, key clear), 1 raster launch (silhouette bits, queued big triangles,
// chunk items balanced over the grid), 1 resolve over 32x4 tiles (shading, texture, mask blend, the record of
// each pixel's antialiasing pairs, the silhouette list), 1 colour/grey blend over the silhouette list.
// Backward: the silhouette edges over the list on a side stream, beside 1 per-pixel kernel (shading + texture
// atomics; the position chain goes to per-(view, triangle) edge accumulators through warp-aggregated atomics),
// then per-vertex gathers (vertex normals, positions): no per-vertex atomics. No allocation, no synchronisation.
#include <cuda_runtime.h>
#include <algorithm>
#include <atomic>
#include <utility>
#include "core/cuda_check.hpp"
#include "core/launch.hpp"
#include "raster/raster_impl.hpp"

namespace fg {
namespace raster {

namespace {
constexpr int kThreads = 256;
constexpr int kBigBlocks = 1024;
// Per-pixel passes: a block is a 32x4 tile of one view (a warp = 32 pixels of a row). A block's warps take very
// different times (covered pixels or background), and its slot frees only when the slowest is done: 32x8 -> 32x4
// took the backward pixel pass 38.7 -> 36.3 us and the resolve 30.4 -> 27.9 us at 4x512 (H200).
constexpr int kTileW = 32, kTileH = 4;
// Blocks per SM for a register budget given in blocks of 256 threads (RasterTuning's unit).
constexpr int tileBlocks(int per256) { return per256 * 256 / (kTileW * kTileH); }
constexpr int kLanesPerVertex = 8;      // gathers: lanes per vertex

inline unsigned blocksFor(int64_t n) { return gridFor(n, kThreads); }

// Programmatic dependent launch (sm_90; RasterTuning::pdl): a kernel that lets its successor launch early calls
// pdlTrigger() first; the successor, launched with launchPdl, calls pdlWait() before it reads anything its
// predecessor wrote (griddepcontrol.wait returns once the predecessor has completed and its writes are visible).
// The successor's blocks then fill the SMs that the predecessor's last blocks free, instead of waiting for the
// grid boundary. Elsewhere both are no-ops and launchPdl is a plain launch.
__device__ __forceinline__ void pdlTrigger() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;");
#endif
}
__device__ __forceinline__ void pdlWait() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
// Whether the current device takes programmatic dependent launches (compute capability 9.0 or newer; cached per
// device ordinal: 0 unknown, 1 yes, 2 no).
bool pdlSupported() {
  static std::atomic<int> cache[64];
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return false;
  if (dev >= 0 && dev < 64) {
    const int c = cache[dev].load(std::memory_order_relaxed);
    if (c) return c == 1;
  }
  int major = 0;
  const bool ok = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess && major >= 9;
  if (dev >= 0 && dev < 64) cache[dev].store(ok ? 1 : 2, std::memory_order_relaxed);
  return ok;
}
// cudaLaunchKernelEx with nAttrs launch attributes (0: a plain launch).
template <typename... KArgs, typename... Args>
void launchWith(const cudaLaunchAttribute* attrs, int nAttrs, void (*kernel)(KArgs...), dim3 grid, dim3 block, cudaStream_t st,
                Args&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = 0;
  cfg.stream = st;
  cfg.attrs = const_cast<cudaLaunchAttribute*>(attrs);
  cfg.numAttrs = unsigned(nAttrs);
  FG_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
}
template <typename... KArgs, typename... Args>
void launchPdl(bool pdl, void (*kernel)(KArgs...), dim3 grid, dim3 block, cudaStream_t st, Args&&... args) {
  cudaLaunchAttribute attr;
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  launchWith(&attr, pdl && pdlSupported() ? 1 : 0, kernel, grid, block, st, std::forward<Args>(args)...);
}
inline cudaStream_t cs(StreamHandle s) { return static_cast<cudaStream_t>(s); }
inline dim3 tileGrid(const Kern& k) { return dim3(unsigned((k.W + kTileW - 1) / kTileW), unsigned((k.H + kTileH - 1) / kTileH), unsigned(k.V)); }

// Fire-and-forget 64-bit min (RED.MIN: the result is unused, so the thread does not wait for the memory round
// trip; reading the key first to skip the atomic made every pixel test wait for a global load).
__device__ __forceinline__ void depthTest(unsigned long long* dst, unsigned long long key) { atomicMin(dst, key); }

template <int Lanes = kLanesPerVertex>
__device__ __forceinline__ V3 laneGroupSum(V3 a) {
#pragma unroll
  for (int off = Lanes / 2; off >= 1; off >>= 1) {
    a.x += __shfl_xor_sync(0xffffffffu, a.x, off);
    a.y += __shfl_xor_sync(0xffffffffu, a.y, off);
    a.z += __shfl_xor_sync(0xffffffffu, a.z, off);
  }
  return a;
}
inline int64_t roundUp32(int64_t n) { return (n + 31) / 32 * 32; }

// Per-(view, triangle) setup (thread i of the setup section): cached geometry, facing, bounding box, and the work
// items of its rasterisation. A box of up to bigArea pixels is cut into chunks of `chunk` pixels (row-major box
// order), one (view*T + triangle, chunk) item each, appended to the chunk list (a warp prefix sum, one atomic
// per warp, and a warp-cooperative write); larger boxes, and those of a warp whose items would overflow the
// list, go to the block-per-triangle queue. kRasterChunks then runs the items load-balanced over the whole grid.
// Called by whole warps (the section is warp-aligned); the vertices are transformed here (k.hv is written by
// the same launch).
struct SetupArgs {
  int* queue;
  int2_t* chunks;
  int64_t cap;
  int* counter;
  int chunk, bigArea;
};
__device__ __forceinline__ void setupElem(const Kern& k, int64_t i, const SetupArgs& a, int* sStart, int* sItem) {
  const int tid = int(threadIdx.x), lane = tid & 31, wb = tid & ~31;
  int n = 0;
  if (i < int64_t(k.V) * k.T) {
    const int v = int(i / k.T), t = int(i - int64_t(v) * k.T);
    const TriGeom g = triGeomWorld(k, v, t);
    k.facing[i] = int8_t(g.orient);
    storeTriGeom(k, i, g);
    Box b{1, 1, 0, 0};
    if (triBBox(k, g, b.x0, b.y0, b.x1, b.y1)) {
      const int area = (b.x1 - b.x0 + 1) * (b.y1 - b.y0 + 1);
      if (area > a.bigArea) a.queue[atomicAdd(a.counter, 1)] = int(i);
      else n = (area + a.chunk - 1) / a.chunk;
    } else {
      b = Box{1, 1, 0, 0};
    }
    reinterpret_cast<int4*>(k.bbox)[i] = make_int4(b.x0, b.y0, b.x1, b.y1);
  }
  const unsigned full = 0xffffffffu;
  int incl = n;
#pragma unroll
  for (int d = 1; d < 32; d <<= 1) {
    const int o = __shfl_up_sync(full, incl, d);
    if (lane >= d) incl += o;
  }
  const int total = __shfl_sync(full, incl, 31);
  if (total == 0) return;  // warp-uniform
  int base = 0;
  if (lane == 31) base = atomicAdd(a.counter + 1, total);
  base = __shfl_sync(full, base, 31);
  if (int64_t(base) + total > a.cap) {
    // the list is full: this warp's triangles take the queue (and its reserved range is marked empty)
    if (n > 0) a.queue[atomicAdd(a.counter, 1)] = int(i);
    for (int64_t j = int64_t(base) + lane; j < a.cap && j < int64_t(base) + total; j += 32) a.chunks[j] = int2_t{-1, 0};
    return;
  }
  sStart[tid] = incl - n;
  sItem[tid] = int(i);
  __syncwarp();
  for (int q = lane; q < total; q += 32) {
    // owner: the last lane whose start is <= q (lanes without items share the next lane's start)
    int j = 0;
#pragma unroll
    for (int step = 16; step >= 1; step >>= 1)
      if (sStart[wb + j + step] <= q) j += step;
    a.chunks[base + q] = int2_t{sItem[wb + j], q - sStart[wb + j]};
  }
}

// Forward prologue, one launch of warp-aligned sections: the vertex transform, the vertex normals when wanted
// (kLanesPerVertex lanes per vertex: whole warps, so the lane-group shuffles see converged warps), the
// per-triangle UV table when texturing, the per-(view, triangle) setup (setupElem) and the depth-key clear
// (kKeysPerClear keys per thread). The work-item counters are zeroed before the launch.
constexpr int kKeysPerClear = 8;  // depth keys each thread of the prologue's clear section sets
struct PrologueRanges {
  int64_t n0, n1, n2, n3;  // ends of the vertex, normal, UV-table and setup sections; then the key clear
};
__global__ void __launch_bounds__(kThreads) kPrologue(Kern k, int64_t pix, PrologueRanges r, SetupArgs a) {
  __shared__ int sStart[kThreads];
  __shared__ int sItem[kThreads];
  pdlTrigger();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t VP = int64_t(k.V) * k.P;
  if (i < r.n0) {
    if (i < VP) vertexTransformElem(k, i);
  } else if (i < r.n1) {
    const int64_t q = i - r.n0;
    const int p = int(q / kLanesPerVertex), s = int(q % kLanesPerVertex);
    V3 m = mk(0, 0, 0);
    if (p < k.P)
      for (int j = k.vfOff[p] + s; j < k.vfOff[p + 1]; j += kLanesPerVertex) m = m + faceNormal(k, k.vfList[j] / 3);
    m = laneGroupSum(m);
    if (p < k.P && s == 0) vertexNormalFinish(k, p, m);
  } else if (i < r.n2) {
    const int64_t t = i - r.n1;
    if (t < k.T) uvTableElem(k, int(t));
  } else if (i < r.n3) {
    setupElem(k, i - r.n2, a, sStart, sItem);
  } else {
    const int64_t j = i - r.n3;
    // (kKeysPerClear keys per thread: 16-byte stores a warp-width apart, so each store instruction is coalesced)
    const int64_t w = j / 32, l = j % 32, pairs = pix / 2;
    ulonglong2* k2 = reinterpret_cast<ulonglong2*>(k.keys);
#pragma unroll
    for (int q = 0; q < kKeysPerClear / 2; ++q) {
      const int64_t e = (w * (kKeysPerClear / 2) + q) * 32 + l;
      if (e < pairs) k2[e] = make_ulonglong2(kNoKey, kNoKey);
    }
    if (j == 0 && (pix & 1)) k.keys[pix - 1] = kNoKey;
  }
}

// The silhouette bits (a warp ballot per 32 triangles of a view; all facings are known once kSetup has
// finished), the queued big triangles (a block per triangle) and the chunk items (a thread per item).
__global__ void __launch_bounds__(kThreads) kRasterChunks(Kern k, const int* queue, const int2_t* chunks, int64_t cap, const int* counter, int chunk) {
  __shared__ TriGeom sg;
  __shared__ int sb[4];
  pdlTrigger();
  pdlWait();
  // (the silhouette bits go to the grid's last blocks and the chunk items below to its first ones, so that a thread
  // rarely carries both dependent-load chains in series)
  const int64_t nBits = int64_t(k.V) * k.silWords * 32;  // a multiple of 32: whole warps take each iteration
  for (int64_t i = int64_t(gridDim.x - 1 - blockIdx.x) * blockDim.x + threadIdx.x; i < nBits; i += int64_t(gridDim.x) * blockDim.x) {
    const int v = int(i / (int64_t(k.silWords) * 32)), t = int(i - int64_t(v) * k.silWords * 32);
    const unsigned bits = __ballot_sync(0xffffffffu, t < k.T && silhouetteFlag(k, v, t));
    if ((threadIdx.x & 31) == 0) k.silBits[int64_t(v) * k.silWords + (t >> 5)] = bits;
  }
  const int nBig = counter[0];
  for (int q = blockIdx.x; q < nBig; q += gridDim.x) {
    const int i = queue[q];
    const int v = i / k.T, t = i % k.T;
    if (threadIdx.x == 0) {
      sg = triGeom(k, v, t);
      const Box b = k.bbox[i];
      sb[0] = b.x0; sb[1] = b.y0; sb[2] = b.x1; sb[3] = b.y1;
    }
    __syncthreads();
    const TriRaster g = triRaster(sg);
    const int x0 = sb[0], y0 = sb[1], bw = sb[2] - sb[0] + 1, bh = sb[3] - sb[1] + 1;
    unsigned long long* keys = k.keys + int64_t(v) * k.H * k.W;
    for (int j = threadIdx.x; j < bw * bh; j += blockDim.x) {
      const int x = x0 + j % bw, y = y0 + j / bw;
      float z;
      if (coversR(g, float(x) + 0.5f, float(y) + 0.5f, k.nearZ, k.farZ, z)) depthTest(keys + int64_t(y) * k.W + x, depthKey(z, t));
    }
    __syncthreads();
  }
  const int64_t nc = counter[1] < cap ? counter[1] : cap;
  for (int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < nc; j += int64_t(gridDim.x) * blockDim.x) {
    const int2_t it = chunks[j];
    if (it.x < 0) continue;
    const int v = it.x / k.T, t = it.x - v * k.T;
    const int4 b = __ldg(reinterpret_cast<const int4*>(k.bbox) + it.x);
    const TriRaster g = triRaster(triEdgesC(k, v, t));
    const int bw = b.z - b.x + 1, area = bw * (b.w - b.y + 1);
    const int p0 = it.y * chunk, p1 = p0 + chunk < area ? p0 + chunk : area;
    int yy = p0 / bw, xx = p0 - yy * bw;
    unsigned long long* keys = k.keys + int64_t(v) * k.H * k.W;
    for (int p = p0; p < p1; ++p) {
      const int x = b.x + xx, y = b.y + yy;
      float z;
      if (coversR(g, float(x) + 0.5f, float(y) + 0.5f, k.nearZ, k.farZ, z)) depthTest(keys + int64_t(y) * k.W + x, depthKey(z, t));
      if (++xx == bw) {
        xx = 0;
        ++yy;
      }
    }
  }
}

// (Mip: two trilinear taps per pixel; the register budget of 2 blocks of 256 per SM leaves it the registers it needs without spilling.)
// (Geom: geometry outputs requested; without them their code is compiled out of the pixel. CC: the texture's
// channel count when it is 3 or 4, else 0 = k.C at run time; see writeColor.)
template <bool Mip, bool Geom, int CC>
__global__ void __launch_bounds__(kTileW * kTileH, tileBlocks(Mip ? 2 : 4)) kResolve(Kern k) {
  pdlTrigger();
  pdlWait();
  const int x = int(blockIdx.x) * kTileW + int(threadIdx.x), y = int(blockIdx.y) * kTileH + int(threadIdx.y);
  const int code = x < k.W && y < k.H ? resolvePixel<Mip, Geom, CC>(k, int(blockIdx.z), x, y) : 0;
  if (!k.silList) return;
  // append the pixels with antialiasing pairs to the silhouette list (one atomic per warp)
  const unsigned m = __ballot_sync(0xffffffffu, code != 0);
  if (!m) return;
  const int lane = int(threadIdx.x & 31);
  int base = 0;
  if (lane == 0) base = atomicAdd(k.silCount, __popc(m));
  base = __shfl_sync(0xffffffffu, base, 0);
  if (code) k.silList[base + __popc(m & ((1u << lane) - 1u))] = uint32_t((int64_t(blockIdx.z) * k.H + y) * k.W + x);
}
// The silhouette-list kernels: a fixed grid walks the list (its length is only known on the device).
constexpr int kListBlocks = 512, kListThreads = 128;
// Calls f(v, x, y, blended pairs) for each listed pixel with blended pairs (a thread per list entry).
template <class F>
__device__ __forceinline__ void forBlendedListed(const Kern& k, F f) {
  const int n = *k.silCount;
  for (int j = int(blockIdx.x) * kListThreads + int(threadIdx.x); j < n; j += kListBlocks * kListThreads) {
    const uint32_t pix = k.silList[j];
    const int code = int(k.aaCode[pix]) & 15;
    if (!code) continue;
    int v, x, y;
    pixCoords(k, int64_t(pix), v, x, y);
    f(v, x, y, code);
  }
}
// The colour/grey antialiasing blends of the listed pixels with blended pairs (after kResolve).
__global__ void __launch_bounds__(kListThreads) kResolveBlend(Kern k) {
  pdlWait();
  forBlendedListed(k, [&](int v, int x, int y, int code) { resolveBlendPixel(k, v, x, y, code); });
}
// One level of the mip pyramid from the level above it (textures of more than kMipFusedChannels channels).
__global__ void kMipDown(const float* src, int sw, int sh, float* dst, int dw, int C, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) mipDownElem(src, sw, sh, dst, dw, C, i);
}
// Levels s+1 .. s+n (n <= kMipFusedLevels) of the pyramid in one launch: a block takes a 2^n x 2^n region of level
// s and halves it level by level through shared memory, each element with mipDownElem's arithmetic (so the
// pyramid is bit-identical to the CPU twin's). A region's clamped children never leave it: its origin at every
// level is even, and a clamp only maps to the last row/column of the level.
constexpr int kMipFusedLevels = 5, kMipFusedChannels = 4, kMipThreads = 256;
constexpr int kMipHalf = 1 << (kMipFusedLevels - 1);  // side of the block's region at level s+1
__global__ void __launch_bounds__(kMipThreads) kMipBuild(const float* src, float* pyr, MipTable t, int C, int s, int n) {
  __shared__ float buf[2][kMipHalf * kMipHalf * kMipFusedChannels];
  const int R = 1 << n;
  int pw = 0, pbuf = -1;  // the previous level's region width in shared memory (pbuf < 0: read src, level s)
  for (int j = 1; j <= n; ++j) {
    const int l = s + j;
    const int sw = t.w[l - 1], sh = t.h[l - 1], dw = t.w[l], dh = t.h[l];
    const int px = int(blockIdx.x) * (R >> (j - 1)), py = int(blockIdx.y) * (R >> (j - 1));  // previous level's origin
    const int ox = int(blockIdx.x) * (R >> j), oy = int(blockIdx.y) * (R >> j);
    const int ow = min(R >> j, dw - ox), oh = min(R >> j, dh - oy);
    float* dst = pyr + t.off[l];
    const int cb = j & 1;
    if (ow > 0 && oh > 0) {
      const float* p = pbuf < 0 ? nullptr : buf[pbuf];
      for (int e = int(threadIdx.x); e < ow * oh * C; e += kMipThreads) {
        const int c = e % C, q = e / C, x = ox + q % ow, y = oy + q / ow;
        const float v = mipBoxAt(x, y, sw, sh, [&](int cx, int cy) {
          return p ? p[((cy - py) * pw + (cx - px)) * C + c] : src[(int64_t(cy) * sw + cx) * C + c];
        });
        dst[(int64_t(y) * dw + x) * C + c] = v;
        if (j < n) buf[cb][e] = v;
      }
    }
    __syncthreads();
    pw = ow;
    pbuf = cb;
  }
}
// Level-0 texture gradient element i = its own gradient + a, the pyramid's pushed down (adjoint of the box
// filter). Fixed-point mode (dTex.fx) converts to float into dTexOut; float mode adds in place.
__device__ __forceinline__ void mipReduceStore(const Kern& k, int64_t i, float a) {
  if (k.dTex.fx) k.dTexOut[i] = Sink::fixedToFloat(k.dTex.fx[i], k.dTex.scale) + a;
  else k.dTex.f[i] += a;
}
__global__ void kMipReduce(Kern k, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) mipReduceStore(k, i, mipReduceElem(k, i));
}
// The same per texel, for up to 4 channels and 16 levels, in two passes: the sum over a texel's ancestors is the
// same for the 4 level-0 children of a level-1 texel, so ToCum computes it once per level-1 texel (into
// k.mipCum) and kMipCumApply adds it to each child; a thread's reads of all levels and channels are independent
// and unrolled (so they are in flight together), and the index arithmetic is shared by the channels. The sums run
// in the same order as mipReduceElem's (bit-identical to it).
constexpr int kMipReduceLevels = 16;
template <bool Fixed>
__global__ void kMipReduceTexel(Kern k, int64_t texels) {  // (a thread per level-1 texel: texels = w1 x h1)
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= texels) return;
  const int C = k.C, w1 = k.mipT.w[1];
  int x = int(t % w1), y = int(t / w1);
  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  bool on = true;
  // (no branch around the reads but their predicates: Sink::read's branches would keep them in order)
  const float* mf = k.dMip.f;
  const long long* mx = k.dMip.fx;
  // all reads first (registers, 0 where a level or channel is absent), then the sums in level order
  float v[kMipReduceLevels][4];
#pragma unroll
  for (int l = 1; l < kMipReduceLevels; ++l) {
    on = on && l < k.mipL;
    // (level 1: the thread's own texel; above it, mipParent steps up from it)
    const int64_t b = l == 1 ? k.mipT.off[1] + (int64_t(y) * w1 + x) * C : mipParent(k.mipT, l, C, x, y, on);
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      v[l][c] = 0.f;
      if (on && c < C) v[l][c] = Fixed ? Sink::fixedToFloat(mx[b + c], k.dMip.scale) : mf[b + c];
    }
  }
#pragma unroll
  for (int l = 1; l < kMipReduceLevels; ++l)
#pragma unroll
    for (int c = 0; c < 4; ++c)
      if (l < k.mipL) acc[c] += k.mipT.f[l] * v[l][c];
#pragma unroll
  for (int c = 0; c < 4; ++c)
    if (c < C) k.mipCum[t * C + c] = acc[c];
}
// Level-0 texel t: its level-1 parent's ancestor sum (0 where the parent was dropped), stored by mipReduceStore.
__global__ void kMipCumApply(Kern k, int64_t texels) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= texels) return;
  const int C = k.C, X = int(t % k.tw) >> 1, Y = int(t / k.tw) >> 1;
  const bool on = X < k.mipT.w[1] && Y < k.mipT.h[1];
  const float* cum = k.mipCum + (int64_t(Y) * k.mipT.w[1] + X) * C;
#pragma unroll
  for (int c = 0; c < 4; ++c)
    if (c < C) mipReduceStore(k, t * C + c, on ? cum[c] : 0.f);
}

// Adds the 9 values of one (view, triangle) to its accumulator row b: three float4 atomics on a float sink with
// sm_90 (the row is 48-byte aligned; a block of zeros is skipped), else one atomic per nonzero value.
__device__ __forceinline__ void accAdd(const Sink& s, int64_t b, const float* w) {
  if (!s.on()) return;
#if __CUDA_ARCH__ >= 900
  if (s.f) {
    float4* p = reinterpret_cast<float4*>(s.f + b);
    if (w[0] != 0.f || w[1] != 0.f || w[2] != 0.f || w[3] != 0.f) atomicAdd(p, make_float4(w[0], w[1], w[2], w[3]));
    if (w[4] != 0.f || w[5] != 0.f || w[6] != 0.f || w[7] != 0.f) atomicAdd(p + 1, make_float4(w[4], w[5], w[6], w[7]));
    if (w[8] != 0.f) atomicAdd(p + 2, make_float4(w[8], 0.f, 0.f, 0.f));
    return;
  }
#endif
#pragma unroll
  for (int q = 0; q < 9; ++q)
    if (w[q] != 0.f) s.add(b + q, w[q]);
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
  const int64_t b = g.key * kAccStride;
  accAdd(k.dW, b, g.w);
  if (withN) accAdd(k.dN, b, g.nn);
}

// Warp-staged texture gradients (k.texStage; 3 or 4 channels, float sink): one footprint slot of the warp's pixels
// (bilinear, or one level of a trilinear footprint) on a texture or mip level f of tw x th texels is summed in a
// per-warp shared-memory box of texels (rows ymin..ymax, columns xmin..xmax), each box row staged from the 16-byte
// boundary at or before its first float, and then added to f with aligned float4 reductions over consecutive
// chunks: the lanes of one reduction instruction cover 512 contiguous bytes, so the L2 receives about one request
// per sector instead of one per texel row of each pixel. The box sums in 32-bit fixed point (shared memory has
// native integer atomics only; float ones are compare-and-swap loops) scaled to the warp's largest contribution
// M: 2^-22 M resolution, each sum exact, one rounding to float per staged value. A warp whose box does not fit (a
// UV seam, wrapping, strong minification) or whose M is not in a normal float range (zero: nothing to add;
// inf/NaN, tiny) adds its footprints directly (texRowAtomics).
constexpr int kStageInts = 1024;  // per warp (4 KB; 16 KB per block of kTileH = 4 warps)
template <int CC>
__device__ __forceinline__ void texStagedAdd(bool on, const Tap& tap, const float* tg, float* f, int tw, int th, int* buf) {
  const unsigned full = 0xffffffffu;
  const int lane = int(threadIdx.x & 31);
  const int x0 = on ? min(tap.xa, tap.xb) : INT_MAX, x1 = on ? max(tap.xa, tap.xb) : INT_MIN;
  const int y0 = on ? min(tap.ya, tap.yb) : INT_MAX, y1 = on ? max(tap.ya, tap.yb) : INT_MIN;
  const int xmin = __reduce_min_sync(full, x0), xmax = __reduce_max_sync(full, x1);
  const int ymin = __reduce_min_sync(full, y0), ymax = __reduce_max_sync(full, y1);
  const int cols = xmax - xmin + 1, rows = ymax - ymin + 1;
  const int pitch = (cols * CC + 6) & ~3;  // the row's values plus up to 3 of alignment, in whole 4-vectors
  // the largest |contribution| of the warp (weights are in [0, 1]; NaN and inf sort above every finite float)
  float gm = 0.f, wm = 0.f;
  if (on) {
    bool nan = false;
#pragma unroll
    for (int c = 0; c < CC; ++c) {
      gm = fmaxf(gm, fabsf(tg[c]));  // (fmaxf skips NaN: flagged apart)
      nan = nan || tg[c] != tg[c];
    }
    wm = fmaxf(fmaxf(tap.w[0], tap.w[1]), fmaxf(tap.w[2], tap.w[3]));
    if (nan) gm = __int_as_float(0x7fc00000);
  }
  const unsigned mb = __reduce_max_sync(full, __float_as_uint(wm * gm));
  if (mb == 0u) return;  // every contribution is zero
  const int e = int(mb >> 23) - 127;  // M in [2^e, 2^(e+1))
  if (rows > kStageInts || cols > kStageInts || rows * pitch > kStageInts || e < -100 || e > 100) {  // (no int overflow)
    if (on) tapAtomics(f, CC, tap, tg);
    return;
  }
  // |q| <= 2^23 per contribution: a texel's sum of at most 32 lanes x 4 taps stays below 2^30
  const float scale = __int_as_float((127 + 22 - e) << 23), inv = __int_as_float((127 - 22 + e) << 23);
  const int n4 = rows * pitch / 4, q4 = pitch / 4;
  int4* b4 = reinterpret_cast<int4*>(buf);
  for (int i = lane; i < n4; i += 32) b4[i] = make_int4(0, 0, 0, 0);
  __syncwarp();
  if (on) {
    const int ys[2] = {tap.ya, tap.yb}, xs[2] = {tap.xa, tap.xb};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int y = ys[j >> 1], x = xs[j & 1];
      const int start = (y * tw + xmin) * CC;  // the box row's first value in f
      int* d = buf + (y - ymin) * pitch + (start & 3) + (x - xmin) * CC;
      const float ws = tap.w[j] * scale;
#pragma unroll
      for (int c = 0; c < CC; ++c) atomicAdd(d + c, __float2int_rn(ws * tg[c]));
    }
  }
  __syncwarp();
  const int total = tw * th * CC;
  for (int i = lane; i < n4; i += 32) {
    const int4 q = b4[i];
    if ((q.x | q.y | q.z | q.w) == 0) continue;
    const float4 v = make_float4(float(q.x) * inv, float(q.y) * inv, float(q.z) * inv, float(q.w) * inv);
    const int r = i / q4;
    const int o = (((ymin + r) * tw + xmin) * CC & ~3) + 4 * (i - r * q4);
    if (o + 4 <= total) {
      atomicAdd(reinterpret_cast<float4*>(f + o), v);
    } else {
      const float ev[4] = {v.x, v.y, v.z, v.w};
      for (int c = 0; c < 4 && o + c < total; ++c)
        if (ev[c] != 0.f) atomicAdd(f + o + c, ev[c]);
    }
  }
  __syncwarp();  // (the buffer is reused by the next slot)
}
// The warp's texel gradients of PixGrad's footprint slots: bilinear (slot 0, level 0) or trilinear (slots 0 and 1);
// a slot whose lanes are on different mip levels is added directly.
template <int CC>
__device__ __forceinline__ void texStagedSlots(const Kern& k, const PixGrad& g, int* buf) {
  const unsigned full = 0xffffffffu;
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    const bool on = (g.tapOn >> j) & 1;
    if (!__any_sync(full, on)) continue;
    const int l0 = __reduce_min_sync(full, on ? g.tlvl[j] : INT_MAX), l1 = __reduce_max_sync(full, on ? g.tlvl[j] : -1);
    if (l0 == l1)
      texStagedAdd<CC>(on, g.tap[j], g.tg[j], mipGradPtr(k, l0), l0 == 0 ? k.tw : k.mipT.w[l0], l0 == 0 ? k.th : k.mipT.h[l0], buf);
    else if (on) tapAtomics(mipGradPtr(k, g.tlvl[j]), CC, g.tap[j], g.tg[j]);
  }
}

// WithN: vertex-normal accumulators (grey shading) in use; without them the nn half of PixGrad is dead code.
// MinB: the register budget, counted in blocks of 256 threads per SM (RasterTuning::bwdMinBlocks / bwdMipMinBlocks).
template <bool WithN, bool Mip, int MinB>
__global__ void __launch_bounds__(kTileW * kTileH, tileBlocks(MinB)) kBackward(Kern k) {
  __shared__ __align__(16) int sStage[kTileH * kStageInts];
  const int x = int(blockIdx.x) * kTileW + int(threadIdx.x), y = int(blockIdx.y) * kTileH + int(threadIdx.y);
  PixGrad g;
  zeroPixGrad(g);
  if (x < k.W && y < k.H) backwardPixel<Mip>(k, int(blockIdx.z), x, y, g);
#if __CUDA_ARCH__ >= 900
  int* buf = sStage + int(threadIdx.y) * kStageInts;
  if (k.texStage == 3) texStagedSlots<3>(k, g, buf);
  else if (k.texStage == 4) texStagedSlots<4>(k, g, buf);
#endif
  warpAccumulate(k, g, WithN);
}
// The silhouette edges' gradients (aaEdgePixel) of the listed pixels with blended pairs (a thread each: few
// pixels, each with a short chain of loads).
__global__ void __launch_bounds__(kListThreads) kAaEdges(Kern k) {
  forBlendedListed(k, [&](int v, int x, int y, int code) { aaEdgePixel(k, v, x, y, code); });
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
  if (i < n) dst[i] = Sink::fixedToFloat(src[i], scale);
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
RasterTuning gTuning;
inline void mark(const char* stage, cudaStream_t st) {
  if (gStageTimer) gStageTimer->mark(stage, st);
}
}  // namespace

void setStageTimer(StageTimer* t) { gStageTimer = t; }
void setRasterTuning(const RasterTuning& t) { gTuning = t; }
RasterTuning rasterTuning() { return gTuning; }

void mipBuildCuda(const float* tex, int tw, int th, int C, int L, float* pyr, StreamHandle stream) {
  cudaStream_t st = cs(stream);
  if (C <= kMipFusedChannels) {
    // up to kMipFusedLevels levels per launch (two launches for a 1024² texture instead of ten)
    MipTable t;
    setMipTable(t, tw, th, C);
    for (int s = 0; s < L - 1;) {
      const int n = std::min(kMipFusedLevels, L - 1 - s), R = 1 << n;
      const dim3 grid(unsigned((t.w[s] + R - 1) / R), unsigned((t.h[s] + R - 1) / R));
      kMipBuild<<<grid, kMipThreads, 0, st>>>(s == 0 ? tex : pyr + t.off[s], pyr, t, C, s, n);
      FG_CUDA_CHECK_LAUNCH();
      s += n;
    }
    return;
  }
  for (int l = 1; l < L; ++l) {
    const float* src = l == 1 ? tex : pyr + mipOffset(tw, th, C, l - 1);
    float* dst = pyr + mipOffset(tw, th, C, l);
    const int sw = mipDim(tw, l - 1), sh = mipDim(th, l - 1), dw = mipDim(tw, l), dh = mipDim(th, l);
    const int64_t n = int64_t(dw) * dh * C;
    kMipDown<<<blocksFor(n), kThreads, 0, st>>>(src, sw, sh, dst, dw, C, n);
    FG_CUDA_CHECK_LAUNCH();
  }
}

namespace {
// A side stream of the calling thread (created once, non-blocking) and two events, for work that runs beside the
// main stream's: forked and joined with events, which also works under CUDA-graph stream capture.
struct SideStream {
  cudaStream_t s = nullptr;
  cudaEvent_t fork = nullptr, join = nullptr;    // the backward's silhouette edges; the forward's mip pyramid
  cudaEvent_t fork2 = nullptr, join2 = nullptr;  // the backward's mip gradient reduce
  int device = -1;
  int priority = 0;  // the stream's (the highest); its kernels also carry it as a launch attribute, for graphs
  void release() {
    for (cudaEvent_t e : {fork, join, fork2, join2})
      if (e) cudaEventDestroy(e);
    if (s) cudaStreamDestroy(s);
    *this = SideStream();
  }
  ~SideStream() { release(); }
};
SideStream& sideStream() {  // (also called by prepareSideStreamCuda, before any graph capture)
  thread_local SideStream ss;
  int dev = 0;
  FG_CUDA_CHECK(cudaGetDevice(&dev));
  if (ss.s && ss.device != dev) ss.release();
  if (!ss.s) {
    // the highest priority: its blocks are dispatched ahead of the main stream's pending ones (a side pass
    // launched beside a big kernel would otherwise wait for that kernel's last blocks)
    int least = 0, greatest = 0;
    FG_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
    FG_CUDA_CHECK(cudaStreamCreateWithPriority(&ss.s, cudaStreamNonBlocking, greatest));
    ss.priority = greatest;
    FG_CUDA_CHECK(cudaEventCreateWithFlags(&ss.fork, cudaEventDisableTiming));
    FG_CUDA_CHECK(cudaEventCreateWithFlags(&ss.join, cudaEventDisableTiming));
    FG_CUDA_CHECK(cudaEventCreateWithFlags(&ss.fork2, cudaEventDisableTiming));
    FG_CUDA_CHECK(cudaEventCreateWithFlags(&ss.join2, cudaEventDisableTiming));
    ss.device = dev;
  }
  return ss;
}
// Work launched on ss.s after forkSide() runs after everything enqueued on st before it; st's work enqueued after
// joinSide() runs after ss.s's work enqueued before it.
void forkSide(SideStream& ss, cudaEvent_t ev, cudaStream_t st) {
  FG_CUDA_CHECK(cudaEventRecord(ev, st));
  FG_CUDA_CHECK(cudaStreamWaitEvent(ss.s, ev, 0));
}
void joinSide(SideStream& ss, cudaEvent_t ev, cudaStream_t st) {
  FG_CUDA_CHECK(cudaEventRecord(ev, ss.s));
  FG_CUDA_CHECK(cudaStreamWaitEvent(st, ev, 0));
}
}  // namespace


void forwardCuda(const Kern& k, const ForwardScratch& s, StreamHandle stream) {
  const int64_t VP = int64_t(k.V) * k.P, VT = int64_t(k.V) * k.T, pix = int64_t(k.V) * k.H * k.W;
  cudaStream_t st = cs(stream);
  // the mip pyramid (needed by the resolve only) is built on the side stream, beside the geometry passes
  SideStream* side = nullptr;
  if (k.mipL > 1) {
    side = &sideStream();
    forkSide(*side, side->fork, st);
    mipBuildCuda(k.tex, k.tw, k.th, k.C, k.mipL, const_cast<float*>(k.mip), side->s);
  }
  PrologueRanges r;
  r.n0 = roundUp32(VP);
  r.n1 = r.n0 + (k.needNormals ? roundUp32(int64_t(k.P) * kLanesPerVertex) : 0);
  r.n2 = r.n1 + (k.uvT ? roundUp32(k.T) : 0);
  r.n3 = r.n2 + roundUp32(VT);
  SetupArgs a{s.queue, s.chunks, s.chunkCapacity, s.counter, gTuning.chunk, gTuning.bigArea};
  FG_CUDA_CHECK(cudaMemsetAsync(s.counter, 0, 3 * sizeof(int), st));
  kPrologue<<<blocksFor(r.n3 + roundUp32((pix / 2 + kKeysPerClear / 2 - 1) / (kKeysPerClear / 2))), kThreads, 0, st>>>(k, pix, r, a);
  FG_CUDA_CHECK_LAUNCH();
  mark("fwd clear keys + vertices + normals + triangle setup", st);
  const bool pdl = gTuning.pdl != 0;
  launchPdl(pdl, kRasterChunks, dim3(kBigBlocks), dim3(kThreads), st, k, (const int*)s.queue, (const int2_t*)s.chunks, s.chunkCapacity,
            (const int*)s.counter, gTuning.chunk);
  FG_CUDA_CHECK_LAUNCH();
  mark("fwd silhouette bits + raster", st);
  if (side) {
    joinSide(*side, side->join, st);
    mark("fwd mip pyramid (side stream, joined)", st);
  }
  const bool geom = k.oTri || k.oBary || k.oDepth || k.oNormal || k.oDepthImg;
  auto resolve = [&](auto kernel) { launchPdl(pdl, kernel, tileGrid(k), dim3(kTileW, kTileH), st, k); };
  const int cc = k.tex && (k.C == 3 || k.C == 4) ? k.C : 0;
  if (k.mipL > 0) {
    if (geom) resolve(kResolve<true, true, 0>);
    else resolve(kResolve<true, false, 0>);
  } else if (cc == 3) {
    if (geom) resolve(kResolve<false, true, 3>);
    else resolve(kResolve<false, false, 3>);
  } else if (cc == 4) {
    if (geom) resolve(kResolve<false, true, 4>);
    else resolve(kResolve<false, false, 4>);
  } else {
    if (geom) resolve(kResolve<false, true, 0>);
    else resolve(kResolve<false, false, 0>);
  }
  FG_CUDA_CHECK_LAUNCH();
  mark("fwd resolve+shade+texture+antialias", st);
  if (k.silList && ((k.oColor && k.tex) || (k.oGrey && k.sh))) {
    launchPdl(pdl, kResolveBlend, dim3(kListBlocks), dim3(kListThreads), st, k);
    FG_CUDA_CHECK_LAUNCH();
    mark("fwd antialiasing blends", st);
  }
}

void prepareSideStreamCuda() { sideStream(); }

void backwardCuda(const Kern& k, const TexZero& texZero, bool withNormals, bool texConvert, int64_t texElems, StreamHandle stream) {
  cudaStream_t st = cs(stream);
  mark("bwd clear (accumulators)", st);
  const bool mip = k.mipL > 0;
  // the silhouette edges (a short latency-bound pass over few pixels) run on a side stream, beside the pixel pass
  const bool edges = k.antialias && k.silList && k.dW.on();
  SideStream* side = nullptr;
  if (edges) {
    side = &sideStream();
    forkSide(*side, side->fork, st);
    // (the priority as a launch attribute too: a captured graph keeps it per node, see timeCudaGraphUs)
    cudaLaunchAttribute attr;
    attr.id = cudaLaunchAttributePriority;
    attr.val.priority = side->priority;
    launchWith(&attr, 1, kAaEdges, dim3(kListBlocks), dim3(kListThreads), side->s, k);
    FG_CUDA_CHECK_LAUNCH();
    FG_CUDA_CHECK(cudaEventRecord(side->join, side->s));
  }
  for (int i = 0; i < 2; ++i)
    if (texZero.p[i]) FG_CUDA_CHECK(cudaMemsetAsync(texZero.p[i], 0, texZero.bytes[i], st));
  mark("bwd clear (dTexture)", st);
  const dim3 grid = tileGrid(k), block(kTileW, kTileH);
  // (with vertex normals, the grey path's extra state needs the 3-block budget: 4 blocks spill)
  const bool b3 = gTuning.bwdMinBlocks == 3 || k.dN.on(), m3 = gTuning.bwdMipMinBlocks == 3;
  if (k.dN.on()) {
    if (mip && m3) kBackward<true, true, 3><<<grid, block, 0, st>>>(k);
    else if (mip) kBackward<true, true, 2><<<grid, block, 0, st>>>(k);
    else if (b3) kBackward<true, false, 3><<<grid, block, 0, st>>>(k);
    else kBackward<true, false, 4><<<grid, block, 0, st>>>(k);
  } else {
    if (mip && m3) kBackward<false, true, 3><<<grid, block, 0, st>>>(k);
    else if (mip) kBackward<false, true, 2><<<grid, block, 0, st>>>(k);
    else if (b3) kBackward<false, false, 3><<<grid, block, 0, st>>>(k);
    else kBackward<false, false, 4><<<grid, block, 0, st>>>(k);
  }
  FG_CUDA_CHECK_LAUNCH();
  mark("bwd pixels (shade+texture)", st);
  if (side) {
    FG_CUDA_CHECK(cudaStreamWaitEvent(st, side->join, 0));
    mark("bwd silhouette edges (side stream, joined)", st);
  }
  // the mip gradient reduce (texels) runs on the side stream beside the position gathers
  const bool mipReduce = k.mipL > 1 && k.dMip.on() && texElems > 0;
  SideStream* rside = mipReduce && k.dPosOut ? &sideStream() : nullptr;
  auto reduce = [&](cudaStream_t rs) {
    if (k.C <= 4 && k.mipL <= kMipReduceLevels && k.mipCum) {
      const int64_t t1 = int64_t(k.mipT.w[1]) * k.mipT.h[1];
      if (k.dMip.fx) kMipReduceTexel<true><<<blocksFor(t1), kThreads, 0, rs>>>(k, t1);
      else kMipReduceTexel<false><<<blocksFor(t1), kThreads, 0, rs>>>(k, t1);
      FG_CUDA_CHECK_LAUNCH();
      kMipCumApply<<<blocksFor(texElems / k.C), kThreads, 0, rs>>>(k, texElems / k.C);
    }
    else kMipReduce<<<blocksFor(texElems), kThreads, 0, rs>>>(k, texElems);
    FG_CUDA_CHECK_LAUNCH();
  };
  if (rside) {
    forkSide(*rside, rside->fork2, st);
    reduce(rside->s);
  }
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
  if (mipReduce) {
    if (rside) joinSide(*rside, rside->join2, st);
    else reduce(st);
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
  // (per-node priorities: the backward's side-stream kernels run ahead of the main stream's pending blocks)
  FG_CUDA_CHECK(cudaGraphInstantiateWithFlags(&exec, graph, cudaGraphInstantiateFlagUseNodePriority));
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
