// CUDA launchers of the morph domain. The per-element maths is in morph_math.hpp (shared with morph.cpp).
//
// Blendshape pass layout: the basis is [Kall, stride] half (mode-major, rows padded to 16 bytes). A block of
// 8 warps owns 32*VEC consecutive output rows; each lane owns VEC rows and loads them with one 16-byte (VEC=8)
// or 8-byte (VEC=4) load per mode; warp w takes the modes k = w (mod 8), so a warp streams 512 (256)
// contiguous bytes per mode and every byte of the basis is read exactly once per pass. Forward sums the 8 warps
// in shared memory (fixed order). Backward keeps g for its rows in registers, reduces each mode's dot product
// over the warp with shuffles, and writes one partial per (block, mode) (deterministic; a second tiny kernel
// sums the blocks in fixed order) or atomically adds it (atomics mode).
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <vector>
#include "core/cuda_check.hpp"
#include "core/launch.hpp"
#include "morph/morph.hpp"

namespace fg {
namespace morph {
namespace cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kSkinBlock = 256;

cudaStream_t st(StreamHandle s) { return static_cast<cudaStream_t>(s); }
int blendVec(int64_t N) { return (N + 255) / 256 >= 264 ? 8 : 4; }
int blendBlocks(int64_t N) { int v = blendVec(N); return int((N + 32 * v - 1) / (32 * v)); }
int skinBlocksFor(int64_t V) { return int((V + kSkinBlock - 1) / kSkinBlock); }

__device__ __forceinline__ float warpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <int VEC>
__device__ __forceinline__ void loadHalfs(const uint16_t* p, float* f) {
  if constexpr (VEC == 8) {
    uint4 raw = __ldg(reinterpret_cast<const uint4*>(p));
    const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) { float2 t = __half22float2(h[i]); f[2 * i] = t.x; f[2 * i + 1] = t.y; }
  } else {
    uint2 raw = __ldg(reinterpret_cast<const uint2*>(p));
    const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
    for (int i = 0; i < 2; ++i) { float2 t = __half22float2(h[i]); f[2 * i] = t.x; f[2 * i + 1] = t.y; }
  }
}

__device__ __forceinline__ float coeffAt(const float* cA, int KA, const float* cB, int k) { return k < KA ? __ldg(cA + k) : __ldg(cB + (k - KA)); }

// ------------------------------------------------------------------ blendshapes
template <int VEC>
__global__ void __launch_bounds__(kThreads) blendFwdKernel(int64_t N, int64_t stride, int Kall, const uint16_t* __restrict__ basis,
                                                           const float* __restrict__ templ, const float* __restrict__ cA, int KA,
                                                           const float* __restrict__ cB, float* __restrict__ out) {
  __shared__ float red[kWarps][32 * VEC];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t base = int64_t(blockIdx.x) * 32 * VEC;
  const int64_t row0 = base + lane * VEC;
  float acc[VEC];
#pragma unroll
  for (int i = 0; i < VEC; ++i) acc[i] = 0.f;
  if (row0 < stride) {
    const uint16_t* p = basis + row0;
#pragma unroll 4
    for (int k = warp; k < Kall; k += kWarps) {
      float b[VEC];
      loadHalfs<VEC>(p + int64_t(k) * stride, b);
      const float c = coeffAt(cA, KA, cB, k);
#pragma unroll
      for (int i = 0; i < VEC; ++i) acc[i] = __fmaf_rn(c, b[i], acc[i]);
    }
  }
#pragma unroll
  for (int i = 0; i < VEC; ++i) red[warp][lane * VEC + i] = acc[i];
  __syncthreads();
  for (int r = threadIdx.x; r < 32 * VEC; r += kThreads) {
    const int64_t row = base + r;
    if (row >= N) continue;
    float v = 0.f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) v = __fadd_rn(v, red[w][r]);
    out[row] = __fadd_rn(templ[row], v);
  }
}

template <int VEC>
__global__ void __launch_bounds__(kThreads) blendBwdKernel(int64_t N, int64_t stride, int Kall, const uint16_t* __restrict__ basis,
                                                           const float* __restrict__ g, float* __restrict__ dc, int deterministic,
                                                           float* __restrict__ partial) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t row0 = int64_t(blockIdx.x) * 32 * VEC + lane * VEC;
  float gv[VEC];
#pragma unroll
  for (int i = 0; i < VEC; ++i) gv[i] = (row0 + i < N) ? __ldg(g + row0 + i) : 0.f;
  const bool inRange = row0 < stride;
  const uint16_t* p = basis + (inRange ? row0 : 0);
#pragma unroll 4
  for (int k = warp; k < Kall; k += kWarps) {
    float d = 0.f;
    if (inRange) {
      float b[VEC];
      loadHalfs<VEC>(p + int64_t(k) * stride, b);
#pragma unroll
      for (int i = 0; i < VEC; ++i) d = __fmaf_rn(gv[i], b[i], d);
    }
    d = warpSum(d);
    if (lane == 0) {
      if (deterministic) partial[int64_t(blockIdx.x) * Kall + k] = d;
      else atomicAdd(dc + k, d);
    }
  }
}

// out[c] = sum over rows of partial[row, c], one warp per column, fixed order.
__global__ void reduceColumnsKernel(const float* __restrict__ partial, int rows, int cols, float* __restrict__ out) {
  const int c = blockIdx.x * kWarps + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (c >= cols) return;
  float v = 0.f;
  for (int r = lane; r < rows; r += 32) v += partial[int64_t(r) * cols + c];
  v = warpSum(v);
  if (lane == 0) out[c] = v;
}

// ------------------------------------------------------------------ chain (one block)
__global__ void __launch_bounds__(kThreads) chainFwdKernel(int J, int K, int P, const int32_t* __restrict__ parents,
                                                           const float* __restrict__ jt, const float* __restrict__ jb,
                                                           const float* __restrict__ coeffs, const float* __restrict__ pose,
                                                           float* __restrict__ tape, float* __restrict__ pf) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int jd = warp; jd < 3 * J; jd += kWarps) {
    float v = 0.f;
    for (int k = lane; k < K; k += 32) v += jb[int64_t(jd) * K + k] * coeffs[k];
    v = warpSum(v);
    if (lane == 0) tape[(jd / 3) * kJointTape + kJrest + jd % 3] = jt[jd] + v;
  }
  for (int j = threadIdx.x; j < J; j += kThreads) {
    const float zero[3] = {0.f, 0.f, 0.f};
    rodrigues(pose ? pose + 3 * j : zero, tape + j * kJointTape + kRloc);
  }
  __syncthreads();
  if (threadIdx.x == 0)
    for (int j = 0; j < J; ++j) chainLink(j, parents, tape, P ? pf : nullptr);
}

// ------------------------------------------------------------------ skinning + rigid
__global__ void __launch_bounds__(kSkinBlock) skinFwdKernel(int64_t V, int J, const float* __restrict__ joints,
                                                            const float* __restrict__ weights, const float* __restrict__ vPosed,
                                                            RotationRep rep, const float* rot, const float* trans, const float* scale,
                                                            float* __restrict__ rigidOut, float* __restrict__ out) {
  extern __shared__ float sm[];
  float* rigid = sm;       // 16
  float* A = sm + kRigidFloats;  // 12 J
  if (threadIdx.x == 0) {
    rigidSetup(rep, rot, trans, scale, rigid);
    if (blockIdx.x == 0)
      for (int i = 0; i < kRigidFloats; ++i) rigidOut[i] = rigid[i];
  }
  for (int i = threadIdx.x; i < 12 * J; i += blockDim.x) A[i] = joints[(i / 12) * kJointTape + kA + i % 12];
  __syncthreads();
  const int64_t v = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (v >= V) return;
  float u[3], o[3];
  skinVertex(J, A, J ? weights + v * J : nullptr, vPosed + 3 * v, rigid, u, o);
  out[3 * v] = o[0]; out[3 * v + 1] = o[1]; out[3 * v + 2] = o[2];
}

__global__ void __launch_bounds__(kSkinBlock) skinBwdKernel(int64_t V, int J, const float* __restrict__ joints,
                                                            const float* __restrict__ weights, const float* __restrict__ vPosed,
                                                            const float* __restrict__ rigidIn, const float* __restrict__ g,
                                                            float* __restrict__ dvPosed, float* __restrict__ small, int deterministic,
                                                            float* __restrict__ partial) {
  extern __shared__ float sm[];
  const int Q = kRigidGrads + 12 * J;
  float* rigid = sm;
  float* A = sm + kRigidFloats;
  float* red = A + 12 * J;  // [kSkinBlock/32][Q]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int i = threadIdx.x; i < kRigidFloats; i += blockDim.x) rigid[i] = rigidIn[i];
  for (int i = threadIdx.x; i < 12 * J; i += blockDim.x) A[i] = joints[(i / 12) * kJointTape + kA + i % 12];
  __syncthreads();
  const int64_t v = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool valid = v < V;
  const int64_t vv = valid ? v : 0;
  const float zero3[3] = {0.f, 0.f, 0.f};
  float p[3] = {vPosed[3 * vv], vPosed[3 * vv + 1], vPosed[3 * vv + 2]};
  const float* gp = valid ? g + 3 * v : zero3;
  float gl[3] = {gp[0], gp[1], gp[2]};
  float dp[3];
  skinVertexBackward(J, A, J ? weights + vv * J : nullptr, p, rigid, gl, dp, [&](int q, float val) {
    val = warpSum(val);
    if (lane == 0) red[warp * Q + q] = val;
  });
  if (valid) { dvPosed[3 * v] = dp[0]; dvPosed[3 * v + 1] = dp[1]; dvPosed[3 * v + 2] = dp[2]; }
  __syncthreads();
  for (int q = threadIdx.x; q < Q; q += blockDim.x) {
    float s = 0.f;
    for (int w = 0; w < kSkinBlock / 32; ++w) s += red[w * Q + q];
    if (deterministic) partial[int64_t(blockIdx.x) * Q + q] = s;
    else atomicAdd(small + q, s);
  }
}

__global__ void __launch_bounds__(kThreads) chainBwdKernel(int J, int K, int P, const int32_t* __restrict__ parents,
                                                           const float* __restrict__ jb, const float* __restrict__ tape,
                                                           const float* __restrict__ pose, RotationRep rep, const float* rot,
                                                           const float* __restrict__ dcAll, const float* __restrict__ smallSrc,
                                                           int rows, float* gCoeffs, float* gPose, float* gRot, float* gTrans,
                                                           float* gScale) {
  extern __shared__ float sm[];
  const int Q = kRigidGrads + 12 * J;
  float* small = sm;                       // Q
  float* scratch = small + Q;              // J * 15
  float* dR = scratch + kJointScratch * J; // J * 9
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int q = warp; q < Q; q += kWarps) {
    float v = 0.f;
    for (int r = lane; r < rows; r += 32) v += smallSrc[int64_t(r) * Q + q];
    v = warpSum(v);
    if (lane == 0) small[q] = v;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    if (gRot) {
      float d[6] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
      if (rot) rotationBackward(rep, rot, small, d);
      for (int i = 0; i < rotationParams(rep); ++i) gRot[i] = d[i];
    }
    if (gScale) gScale[0] = small[9];
    if (gTrans) for (int i = 0; i < 3; ++i) gTrans[i] = small[10 + i];
  }
  for (int j = threadIdx.x; j < J; j += kThreads) chainBackwardInit(j, tape, small + kRigidGrads, scratch);
  __syncthreads();
  if (threadIdx.x == 0)
    for (int j = J - 1; j >= 0; --j) chainBackwardLink(j, parents, tape, P ? dcAll + K : nullptr, scratch, dR);
  __syncthreads();
  if (gPose)
    for (int j = threadIdx.x; j < J; j += kThreads) {
      const float zero[3] = {0.f, 0.f, 0.f};
      float dr[3] = {0.f, 0.f, 0.f};
      rodriguesBackward(pose ? pose + 3 * j : zero, dR + 9 * j, dr);
      for (int i = 0; i < 3; ++i) gPose[3 * j + i] = dr[i];
    }
  if (gCoeffs)
    for (int k = threadIdx.x; k < K; k += kThreads) {
      float acc = dcAll[k];
      for (int jd = 0; jd < 3 * J; ++jd) acc += jb[int64_t(jd) * K + k] * scratch[(jd / 3) * kJointScratch + 12 + jd % 3];
      gCoeffs[k] = acc;
    }
}

// ------------------------------------------------------------------ normals
__global__ void normalsGatherKernel(int64_t V, const float* __restrict__ pos, const int32_t* __restrict__ tris,
                                    const int32_t* __restrict__ off, const int32_t* __restrict__ inc, float* __restrict__ normals) {
  const int64_t v = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (v >= V) return;
  float m[3];
  gatherVertexNormal(v, pos, tris, off, inc, m);
  normalize3(m, normals + 3 * v);
}

__global__ void normalsFaceAtomicKernel(int64_t T, const float* __restrict__ pos, const int32_t* __restrict__ tris, float* __restrict__ m) {
  const int64_t f = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (f >= T) return;
  float n[3];
  faceNormal(pos, tris + 3 * f, n);
  for (int c = 0; c < 3; ++c) {
    int32_t v = tris[3 * f + c];
    atomicAdd(m + 3 * v, n[0]); atomicAdd(m + 3 * v + 1, n[1]); atomicAdd(m + 3 * v + 2, n[2]);
  }
}

__global__ void normalizeKernel(int64_t V, const float* __restrict__ m, float* __restrict__ normals) {
  const int64_t v = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (v >= V) return;
  normalize3(m + 3 * v, normals + 3 * v);
}

__global__ void normalsDmKernel(int64_t V, const float* __restrict__ pos, const int32_t* __restrict__ tris, const int32_t* __restrict__ off,
                                const int32_t* __restrict__ inc, const float* __restrict__ dN, float* __restrict__ dm) {
  const int64_t v = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (v >= V) return;
  float m[3];
  gatherVertexNormal(v, pos, tris, off, inc, m);
  normalizeBackward(m, dN + 3 * v, dm + 3 * v);
}

__global__ void normalsBwdGatherKernel(int64_t V, const float* __restrict__ pos, const int32_t* __restrict__ tris,
                                       const int32_t* __restrict__ off, const int32_t* __restrict__ inc, const float* __restrict__ dm,
                                       float* __restrict__ dPos) {
  const int64_t v = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (v >= V) return;
  float acc[3] = {0.f, 0.f, 0.f};
  gatherFaceNormalGrad(v, pos, tris, off, inc, dm, acc);
  for (int i = 0; i < 3; ++i) dPos[3 * v + i] += acc[i];
}

__global__ void normalsBwdFaceAtomicKernel(int64_t T, const float* __restrict__ pos, const int32_t* __restrict__ tris,
                                           const float* __restrict__ dm, float* __restrict__ dPos) {
  const int64_t f = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (f >= T) return;
  const int32_t* tri = tris + 3 * f;
  float gf[3];
  for (int i = 0; i < 3; ++i) gf[i] = dm[3 * tri[0] + i] + dm[3 * tri[1] + i] + dm[3 * tri[2] + i];
  for (int c = 0; c < 3; ++c) {
    float o[3];
    faceNormalCornerGrad(pos, tri, c, gf, o);
    for (int i = 0; i < 3; ++i) atomicAdd(dPos + 3 * tri[c] + i, o[i]);
  }
}

// ------------------------------------------------------------------ regularisers (one block, fixed-order reduction)
__device__ float blockSum(float v, float* sm) {
  sm[threadIdx.x] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sm[threadIdx.x] += sm[threadIdx.x + s];
    __syncthreads();
  }
  return sm[0];
}

__global__ void __launch_bounds__(kThreads) coefL2Kernel(int n, const float* x, const float* sd, float w, float* value, float* grad) {
  __shared__ float sm[kThreads];
  float acc = 0.f;
  for (int i = threadIdx.x; i < n; i += kThreads) {
    const float s = sd ? sd[i] : 1.f;
    acc += coefL2Value(x[i], s, w);
    if (grad) grad[i] += coefL2Grad(x[i], s, w);
  }
  float t = blockSum(acc, sm);
  if (threadIdx.x == 0) value[0] = t;
}

__global__ void __launch_bounds__(kThreads) boundsKernel(int n, const float* x, const float* lo, const float* hi, float loS, float hiS,
                                                         float w, float* value, float* grad) {
  __shared__ float sm[kThreads];
  float acc = 0.f;
  for (int i = threadIdx.x; i < n; i += kThreads) {
    const float l = lo ? lo[i] : loS, h = hi ? hi[i] : hiS;
    acc += boundsValue(x[i], l, h, w);
    if (grad) grad[i] += boundsGrad(x[i], l, h, w);
  }
  float t = blockSum(acc, sm);
  if (threadIdx.x == 0) value[0] = t;
}

__global__ void projectKernel(int n, float* x, const float* lo, const float* hi, float loS, float hiS) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  x[i] = fg::clampv(x[i], lo ? lo[i] : loS, hi ? hi[i] : hiS);
}

}  // namespace

// ------------------------------------------------------------------ launchers
void blendForward(int64_t N, int64_t stride, int Kall, const uint16_t* basis, const float* templ, const float* cA, int KA, const float* cB,
                  float* out, StreamHandle s) {
  if (N == 0) return;
  if (blendVec(N) == 8) blendFwdKernel<8><<<blendBlocks(N), kThreads, 0, st(s)>>>(N, stride, Kall, basis, templ, cA, KA, cB, out);
  else blendFwdKernel<4><<<blendBlocks(N), kThreads, 0, st(s)>>>(N, stride, Kall, basis, templ, cA, KA, cB, out);
  FG_CUDA_CHECK_LAUNCH();
}

int blendBackwardBlocks(int64_t N) { return blendBlocks(N); }

void blendBackward(int64_t N, int64_t stride, int Kall, const uint16_t* basis, const float* g, float* dc, bool deterministic, float* partial,
                   StreamHandle s) {
  if (Kall == 0) return;
  const int blocks = blendBlocks(N);
  if (blendVec(N) == 8) blendBwdKernel<8><<<blocks, kThreads, 0, st(s)>>>(N, stride, Kall, basis, g, dc, deterministic, partial);
  else blendBwdKernel<4><<<blocks, kThreads, 0, st(s)>>>(N, stride, Kall, basis, g, dc, deterministic, partial);
  FG_CUDA_CHECK_LAUNCH();
  if (deterministic) reducePartials(partial, blocks, Kall, dc, s);
}

void reducePartials(const float* partial, int rows, int cols, float* out, StreamHandle s) {
  if (cols == 0) return;
  reduceColumnsKernel<<<gridFor(cols, kWarps), kThreads, 0, st(s)>>>(partial, rows, cols, out);
  FG_CUDA_CHECK_LAUNCH();
}

void chainForward(const MorphModel& m, const MorphInputs& in, RotationRep rep, const MorphTape& tape, StreamHandle s) {
  (void)rep;
  if (m.J == 0) return;
  chainFwdKernel<<<1, kThreads, 0, st(s)>>>(m.J, m.K, m.P, m.parents, m.jointTemplate, m.jointBasis, in.coeffs, in.pose, tape.joints, tape.pf);
  FG_CUDA_CHECK_LAUNCH();
}

void skinForward(const MorphModel& m, const MorphInputs& in, RotationRep rep, const MorphTape& tape, float* vertices, StreamHandle s) {
  size_t smem = sizeof(float) * (kRigidFloats + 12 * m.J);
  skinFwdKernel<<<skinBlocksFor(m.V), kSkinBlock, smem, st(s)>>>(m.V, m.J, tape.joints, m.weights, tape.vPosed, rep, in.rotation,
                                                                 in.translation, in.scale, tape.rigid, vertices);
  FG_CUDA_CHECK_LAUNCH();
}

int skinBackwardBlocks(int64_t V) { return skinBlocksFor(V); }

void skinBackward(const MorphModel& m, const MorphTape& tape, const float* g, float* dvPosed, float* accum, bool deterministic,
                  float* partial, StreamHandle s) {
  const int Q = kRigidGrads + 12 * m.J;
  size_t smem = sizeof(float) * (kRigidFloats + 12 * m.J + (kSkinBlock / 32) * Q);
  // J <= 64 keeps this under the 48 KB default (13 + 768 terms x 8 warps + A).
  skinBwdKernel<<<skinBlocksFor(m.V), kSkinBlock, smem, st(s)>>>(m.V, m.J, tape.joints, m.weights, tape.vPosed, tape.rigid, g, dvPosed,
                                                                 accum, deterministic, partial);
  FG_CUDA_CHECK_LAUNCH();
}

void chainBackward(const MorphModel& m, const MorphInputs& in, RotationRep rep, const MorphTape& tape, const float* dcAll,
                   const float* smallSrc, int smallRows, const MorphGrads& g, StreamHandle s) {
  const int Q = kRigidGrads + 12 * m.J;
  size_t smem = sizeof(float) * (Q + (kJointScratch + 9) * m.J);
  chainBwdKernel<<<1, kThreads, smem, st(s)>>>(m.J, m.K, m.P, m.parents, m.jointBasis, tape.joints, in.pose, rep, in.rotation, dcAll,
                                               smallSrc, smallRows, m.J ? g.coeffs : nullptr, g.pose, g.rotation, g.translation, g.scale);
  FG_CUDA_CHECK_LAUNCH();
  if (m.J == 0 && g.coeffs && m.K)  // no joints: dc is the blendshape gradient itself
    FG_CUDA_CHECK(cudaMemcpyAsync(g.coeffs, dcAll, sizeof(float) * m.K, cudaMemcpyDeviceToDevice, st(s)));
}

void normalsForward(const MeshView& mesh, const float* pos, float* normals, bool deterministic, float* scratch, StreamHandle s) {
  if (mesh.V == 0) return;
  if (deterministic) {
    normalsGatherKernel<<<gridFor(mesh.V, 128), 128, 0, st(s)>>>(mesh.V, pos, mesh.tris, mesh.vfOffsets, mesh.vfIncidence, normals);
    FG_CUDA_CHECK_LAUNCH();
    return;
  }
  FG_CUDA_CHECK(cudaMemsetAsync(scratch, 0, sizeof(float) * 3 * mesh.V, st(s)));
  if (mesh.T) {
    normalsFaceAtomicKernel<<<gridFor(mesh.T, 256), 256, 0, st(s)>>>(mesh.T, pos, mesh.tris, scratch);
    FG_CUDA_CHECK_LAUNCH();
  }
  normalizeKernel<<<gridFor(mesh.V, 256), 256, 0, st(s)>>>(mesh.V, scratch, normals);
  FG_CUDA_CHECK_LAUNCH();
}

void normalsBackward(const MeshView& mesh, const float* pos, const float* dNormals, float* dPos, bool deterministic, float* scratch,
                     StreamHandle s) {
  if (mesh.V == 0) return;
  normalsDmKernel<<<gridFor(mesh.V, 128), 128, 0, st(s)>>>(mesh.V, pos, mesh.tris, mesh.vfOffsets, mesh.vfIncidence, dNormals, scratch);
  FG_CUDA_CHECK_LAUNCH();
  if (deterministic) {
    normalsBwdGatherKernel<<<gridFor(mesh.V, 128), 128, 0, st(s)>>>(mesh.V, pos, mesh.tris, mesh.vfOffsets, mesh.vfIncidence, scratch, dPos);
  } else {
    if (mesh.T == 0) return;
    normalsBwdFaceAtomicKernel<<<gridFor(mesh.T, 256), 256, 0, st(s)>>>(mesh.T, pos, mesh.tris, scratch, dPos);
  }
  FG_CUDA_CHECK_LAUNCH();
}

void coefL2(int n, const float* x, const float* stdv, float w, float* value, float* grad, StreamHandle s) {
  coefL2Kernel<<<1, kThreads, 0, st(s)>>>(n, x, stdv, w, value, grad);
  FG_CUDA_CHECK_LAUNCH();
}

void boundsPenalty(int n, const float* x, const float* lo, const float* hi, float loS, float hiS, float w, float* value, float* grad,
                   StreamHandle s) {
  boundsKernel<<<1, kThreads, 0, st(s)>>>(n, x, lo, hi, loS, hiS, w, value, grad);
  FG_CUDA_CHECK_LAUNCH();
}

void projectBounds(int n, float* x, const float* lo, const float* hi, float loS, float hiS, StreamHandle s) {
  if (n == 0) return;
  projectKernel<<<gridFor(n, 256), 256, 0, st(s)>>>(n, x, lo, hi, loS, hiS);
  FG_CUDA_CHECK_LAUNCH();
}

// ------------------------------------------------------------------ timing helper (benchmarks only)
// Captures one forward and one backward into two CUDA graphs (possible because the launchers neither allocate
// nor synchronise) and replays them: per-iteration events give forward and backward means; `totalUs` is a
// back-to-back loop of forward+backward. flushL2 overwrites 256 MB between the timed pieces (not timed) so that
// the basis comes from DRAM, not from the 50 MB L2 of an H100.
MorphTiming timeMorph(const MorphModel& m, const MorphOptions& o, const MorphInputs& in, float* vertices, float* normals,
                      const float* dVertices, const float* dNormals, const MorphGrads& g, Workspace& ws, int iters, int warmup,
                      bool flushL2) {
  FG_CHECK_ARG(iters > 0 && iters <= 100000 && warmup >= 0, "timeMorph: iterations must be in [1, 100000]");
  cudaStream_t stream;
  FG_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  Buffer<uint8_t> flush;
  const size_t flushBytes = size_t(256) << 20;
  if (flushL2) flush = Buffer<uint8_t>(Device::CUDA, flushBytes);
  MorphOutputs out{vertices, normals};
  MorphTiming t;
  auto capture = [&](auto&& body) {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    FG_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    body();
    FG_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    FG_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    cudaGraphDestroy(graph);
    return exec;
  };
  auto measure = [&](cudaGraphExec_t gf, cudaGraphExec_t gb, double& fUs, double& bUs, double* totalUs) {
    for (int i = 0; i < warmup; ++i) {
      FG_CUDA_CHECK(cudaGraphLaunch(gf, stream));
      FG_CUDA_CHECK(cudaGraphLaunch(gb, stream));
    }
    std::vector<cudaEvent_t> ev(size_t(4) * iters);
    for (auto& e : ev) FG_CUDA_CHECK(cudaEventCreate(&e));
    for (int i = 0; i < iters; ++i) {
      if (flushL2) FG_CUDA_CHECK(cudaMemsetAsync(flush.data(), i & 0xff, flushBytes, stream));
      FG_CUDA_CHECK(cudaEventRecord(ev[4 * i], stream));
      FG_CUDA_CHECK(cudaGraphLaunch(gf, stream));
      FG_CUDA_CHECK(cudaEventRecord(ev[4 * i + 1], stream));
      if (flushL2) FG_CUDA_CHECK(cudaMemsetAsync(flush.data(), i & 0xff, flushBytes, stream));
      FG_CUDA_CHECK(cudaEventRecord(ev[4 * i + 2], stream));
      FG_CUDA_CHECK(cudaGraphLaunch(gb, stream));
      FG_CUDA_CHECK(cudaEventRecord(ev[4 * i + 3], stream));
    }
    FG_CUDA_CHECK(cudaStreamSynchronize(stream));
    double f = 0, b = 0;
    for (int i = 0; i < iters; ++i) {
      float a = 0, c = 0;
      FG_CUDA_CHECK(cudaEventElapsedTime(&a, ev[4 * i], ev[4 * i + 1]));
      FG_CUDA_CHECK(cudaEventElapsedTime(&c, ev[4 * i + 2], ev[4 * i + 3]));
      f += a;
      b += c;
    }
    fUs = f * 1e3 / iters;
    bUs = b * 1e3 / iters;
    if (totalUs) {
      FG_CUDA_CHECK(cudaEventRecord(ev[0], stream));
      for (int i = 0; i < iters; ++i) {
        FG_CUDA_CHECK(cudaGraphLaunch(gf, stream));
        FG_CUDA_CHECK(cudaGraphLaunch(gb, stream));
      }
      FG_CUDA_CHECK(cudaEventRecord(ev[1], stream));
      FG_CUDA_CHECK(cudaEventSynchronize(ev[1]));
      float ms = 0;
      FG_CUDA_CHECK(cudaEventElapsedTime(&ms, ev[0], ev[1]));
      *totalUs = double(ms) * 1e3 / iters;
    }
    for (auto& e : ev) cudaEventDestroy(e);
  };
  // full pipeline
  ws.reset();
  MorphTape tape = morphAllocTape(m, ws);
  cudaGraphExec_t gf = capture([&] { morphForward(m, o, in, out, tape, ws, stream); });
  cudaGraphExec_t gb = capture([&] { morphBackward(m, o, in, tape, dVertices, dNormals, g, ws, stream); });
  double total = 0;
  measure(gf, gb, t.forwardUs, t.backwardUs, flushL2 ? nullptr : &total);
  t.totalUs = flushL2 ? t.forwardUs + t.backwardUs : total;
  cudaGraphExecDestroy(gf);
  cudaGraphExecDestroy(gb);
  // blendshape pass alone (forward, then basis^T g)
  ws.reset();
  float* vp = ws.alloc<float>(size_t(m.N));
  float* pf = ws.alloc<float>(size_t(m.P) + 1);
  float* dc = ws.alloc<float>(size_t(m.Kall) + 1);
  float* part = ws.alloc<float>(size_t(blendBlocks(m.N)) * m.Kall + 1);
  FG_CUDA_CHECK(cudaMemsetAsync(pf, 0, sizeof(float) * (m.P + 1), stream));
  gf = capture([&] { blendForward(m.N, m.stride, m.Kall, m.basis, m.templ, in.coeffs, m.K, pf, vp, stream); });
  gb = capture([&] {
    if (!o.deterministic) FG_CUDA_CHECK(cudaMemsetAsync(dc, 0, sizeof(float) * m.Kall, stream));
    blendBackward(m.N, m.stride, m.Kall, m.basis, dVertices, dc, o.deterministic, part, stream);
  });
  measure(gf, gb, t.blendForwardUs, t.blendBackwardUs, nullptr);
  cudaGraphExecDestroy(gf);
  cudaGraphExecDestroy(gb);
  FG_CUDA_CHECK(cudaStreamSynchronize(stream));
  cudaStreamDestroy(stream);
  return t;
}

}  // namespace cuda
}  // namespace morph
}  // namespace fg
