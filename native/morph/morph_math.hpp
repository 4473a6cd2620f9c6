// Per-element maths of the morph domain, shared by the CPU twins (morph.cpp) and the CUDA kernels
// (morph.cu): half decoding, Rodrigues and 6D rotations with their backward passes, the kinematic chain,
// linear blend skinning, the global rigid transform, vertex normals and the regularisers.
//
// Matrices are row-major float[9] (3x3) or float[12] (3x4: [R | t], rows of 4).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include "core/half.hpp"
#include "core/hd.hpp"
#if defined(__CUDACC__)
#include <cuda_fp16.h>
#endif

namespace fg {
namespace morph {

// float16 (IEEE half bits) <-> float: core/half.hpp
FG_HDI float halfToFloat(uint16_t h) { return halfToFloatFast(h); }
inline uint16_t floatToHalf(float f) { return floatToHalfBits(f); }

// ---------------------------------------------------------------- small vector / matrix helpers
FG_HDI float dot3(const float* a, const float* b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
FG_HDI void cross3(const float* a, const float* b, float* o) {
  o[0] = a[1] * b[2] - a[2] * b[1];
  o[1] = a[2] * b[0] - a[0] * b[2];
  o[2] = a[0] * b[1] - a[1] * b[0];
}
// Exactly rounded cross product (no FMA contraction on either side): the normals twins are bit-identical.
FG_HDI void cross3rn(const float* a, const float* b, float* o) {
  o[0] = sub(mul(a[1], b[2]), mul(a[2], b[1]));
  o[1] = sub(mul(a[2], b[0]), mul(a[0], b[2]));
  o[2] = sub(mul(a[0], b[1]), mul(a[1], b[0]));
}
FG_HDI void matmul33(const float* A, const float* B, float* C) {  // C = A B
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) C[i * 3 + j] = A[i * 3 + 0] * B[0 * 3 + j] + A[i * 3 + 1] * B[1 * 3 + j] + A[i * 3 + 2] * B[2 * 3 + j];
}
FG_HDI void matmulT33(const float* A, const float* B, float* C) {  // C = A^T B
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) C[i * 3 + j] = A[0 * 3 + i] * B[0 * 3 + j] + A[1 * 3 + i] * B[1 * 3 + j] + A[2 * 3 + i] * B[2 * 3 + j];
}
FG_HDI void matmul3T3(const float* A, const float* B, float* C) {  // C = A B^T
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) C[i * 3 + j] = A[i * 3 + 0] * B[j * 3 + 0] + A[i * 3 + 1] * B[j * 3 + 1] + A[i * 3 + 2] * B[j * 3 + 2];
}
FG_HDI void matvec3(const float* A, const float* v, float* o) {
  for (int i = 0; i < 3; ++i) o[i] = A[i * 3 + 0] * v[0] + A[i * 3 + 1] * v[1] + A[i * 3 + 2] * v[2];
}
FG_HDI void matTvec3(const float* A, const float* v, float* o) {
  for (int i = 0; i < 3; ++i) o[i] = A[0 * 3 + i] * v[0] + A[1 * 3 + i] * v[1] + A[2 * 3 + i] * v[2];
}

// ---------------------------------------------------------------- Rodrigues: axis-angle r -> R
// R = I + a(t) K + b(t) K^2 with K = skew(r), t = |r|^2, a = sin(th)/th, b = (1-cos th)/th^2.
// Below th = 0.1 a, b and their t-derivatives use Taylor series (no cancellation, exact at r = 0).
constexpr float kRodriguesSeriesT = 0.01f;

FG_HDI void rodriguesCoeffs(float t, float& a, float& b, float& da, float& db) {
  if (t < kRodriguesSeriesT) {
    a = 1.f - t * (1.f / 6.f) + t * t * (1.f / 120.f) - t * t * t * (1.f / 5040.f);
    b = 0.5f - t * (1.f / 24.f) + t * t * (1.f / 720.f) - t * t * t * (1.f / 40320.f);
    da = -1.f / 6.f + t * (2.f / 120.f) - t * t * (3.f / 5040.f);
    db = -1.f / 24.f + t * (2.f / 720.f) - t * t * (3.f / 40320.f);
  } else {
    float th = sqrtf(t);
    float s = sinf(th), c = cosf(th);
    a = s / th;
    b = (1.f - c) / t;
    da = (th * c - s) / (2.f * t * th);
    db = (th * s - 2.f * (1.f - c)) / (2.f * t * t);
  }
}

FG_HDI void skew3(const float* r, float* K) {
  K[0] = 0.f;   K[1] = -r[2]; K[2] = r[1];
  K[3] = r[2];  K[4] = 0.f;   K[5] = -r[0];
  K[6] = -r[1]; K[7] = r[0];  K[8] = 0.f;
}

FG_HDI void rodrigues(const float* r, float* R) {
  float t = dot3(r, r);
  float a, b, da, db;
  rodriguesCoeffs(t, a, b, da, db);
  float K[9], K2[9];
  skew3(r, K);
  matmul33(K, K, K2);
  for (int i = 0; i < 9; ++i) R[i] = a * K[i] + b * K2[i];
  R[0] += 1.f; R[4] += 1.f; R[8] += 1.f;
}

// dr (+=) from G = dL/dR.
FG_HDI void rodriguesBackward(const float* r, const float* G, float* dr) {
  float t = dot3(r, r);
  float a, b, da, db;
  rodriguesCoeffs(t, a, b, da, db);
  float K[9], K2[9];
  skew3(r, K);
  matmul33(K, K, K2);
  float gA = 0.f, gB = 0.f;
  for (int i = 0; i < 9; ++i) { gA += G[i] * K[i]; gB += G[i] * K2[i]; }
  // dK = a G + b (G K^T + K^T G)
  float dK[9], GKt[9], KtG[9];
  matmul3T3(G, K, GKt);
  matmulT33(K, G, KtG);
  for (int i = 0; i < 9; ++i) dK[i] = a * G[i] + b * (GKt[i] + KtG[i]);
  float s = 2.f * (gA * da + gB * db);
  dr[0] += s * r[0] + dK[7] - dK[5];
  dr[1] += s * r[1] + dK[2] - dK[6];
  dr[2] += s * r[2] + dK[3] - dK[1];
}

// ---------------------------------------------------------------- 6D rotation (Zhou et al. 2019): columns a1, a2
// p = (a1x, a1y, a1z, a2x, a2y, a2z); R's columns are b1 = n(a1), b2 = n(a2 - (b1.a2) b1), b3 = b1 x b2.
FG_HDI float norm3(const float* v) { return sqrtf(dot3(v, v)); }

// The Gram-Schmidt frame of p (and the norms and projection the backward needs).
struct Rot6dFrame {
  float b1[3], b2[3], b3[3];
  float n1, n2, s;  // |a1|, |a2 - s b1|, s = b1.a2
};
FG_HDI Rot6dFrame rot6dFrame(const float* p) {
  Rot6dFrame f;
  float u[3];
  f.n1 = fg::maxv(norm3(p), 1e-12f);
  for (int i = 0; i < 3; ++i) f.b1[i] = p[i] / f.n1;
  f.s = dot3(f.b1, p + 3);
  for (int i = 0; i < 3; ++i) u[i] = p[3 + i] - f.s * f.b1[i];
  f.n2 = fg::maxv(norm3(u), 1e-12f);
  for (int i = 0; i < 3; ++i) f.b2[i] = u[i] / f.n2;
  cross3(f.b1, f.b2, f.b3);
  return f;
}

FG_HDI void rot6d(const float* p, float* R) {
  const Rot6dFrame f = rot6dFrame(p);
  for (int i = 0; i < 3; ++i) { R[i * 3 + 0] = f.b1[i]; R[i * 3 + 1] = f.b2[i]; R[i * 3 + 2] = f.b3[i]; }
}

FG_HDI void rot6dBackward(const float* p, const float* G, float* dp) {
  const Rot6dFrame f = rot6dFrame(p);
  const float *b1 = f.b1, *b2 = f.b2;
  const float n1 = f.n1, n2 = f.n2, s = f.s;
  float g1[3], g2[3], g3[3], t[3];
  for (int i = 0; i < 3; ++i) { g1[i] = G[i * 3 + 0]; g2[i] = G[i * 3 + 1]; g3[i] = G[i * 3 + 2]; }
  cross3(b2, g3, t);  // b3 = b1 x b2: d/db1 = b2 x g3, d/db2 = g3 x b1
  for (int i = 0; i < 3; ++i) g1[i] += t[i];
  cross3(g3, b1, t);
  for (int i = 0; i < 3; ++i) g2[i] += t[i];
  float gu[3];
  float d2 = dot3(b2, g2);
  for (int i = 0; i < 3; ++i) gu[i] = (g2[i] - b2[i] * d2) / n2;
  float gub1 = dot3(gu, b1);
  for (int i = 0; i < 3; ++i) {
    dp[3 + i] += gu[i] - gub1 * b1[i];
    g1[i] += -s * gu[i] - gub1 * p[3 + i];
  }
  float d1 = dot3(b1, g1);
  for (int i = 0; i < 3; ++i) dp[i] += (g1[i] - b1[i] * d1) / n1;
}

enum class RotationRep : int { AxisAngle = 0, SixD = 1 };
FG_HDI int rotationParams(RotationRep rep) { return rep == RotationRep::SixD ? 6 : 3; }

FG_HDI void rotationFromParams(RotationRep rep, const float* p, float* R) {
  if (!p) {
    for (int i = 0; i < 9; ++i) R[i] = (i % 4 == 0) ? 1.f : 0.f;
    return;
  }
  if (rep == RotationRep::SixD) rot6d(p, R);
  else rodrigues(p, R);
}
FG_HDI void rotationBackward(RotationRep rep, const float* p, const float* G, float* dp) {
  if (rep == RotationRep::SixD) rot6dBackward(p, G, dp);
  else rodriguesBackward(p, G, dp);
}

// ---------------------------------------------------------------- the rigid/global state, 16 floats
// [0..8] R (row-major), [9] scale, [10..12] translation.
constexpr int kRigidFloats = 16;
FG_HDI void rigidSetup(RotationRep rep, const float* rot, const float* trans, const float* scale, float* out) {
  rotationFromParams(rep, rot, out);
  out[9] = scale ? scale[0] : 1.f;
  for (int i = 0; i < 3; ++i) out[10 + i] = trans ? trans[i] : 0.f;
  out[13] = out[14] = out[15] = 0.f;
}

// ---------------------------------------------------------------- kinematic chain
// Per joint the tape keeps 36 floats: Rloc[9] Rw[9] Tw[3] Jrest[3] A[12].
constexpr int kJointTape = 36;
constexpr int kRloc = 0, kRw = 9, kTw = 18, kJrest = 21, kA = 24;

// One link of the chain (joints in order, parents[j] < j): needs Rloc (rodrigues of pose j) and Jrest of joint j,
// and the finished links of its parent. Writes Rw, Tw, A, and the pose feature pf[9(j-1)..] = flatten(Rloc - I)
// for j >= 1 (FLAME order) when pf is non-null.
FG_HDI void chainLink(int j, const int32_t* parents, float* tape, float* pf) {
  float* tj = tape + j * kJointTape;
  int p = parents[j];
  if (p < 0) {
    for (int i = 0; i < 9; ++i) tj[kRw + i] = tj[kRloc + i];
    for (int i = 0; i < 3; ++i) tj[kTw + i] = tj[kJrest + i];
  } else {
    const float* tp = tape + p * kJointTape;
    matmul33(tp + kRw, tj + kRloc, tj + kRw);
    float d[3], o[3];
    for (int i = 0; i < 3; ++i) d[i] = tj[kJrest + i] - tp[kJrest + i];
    matvec3(tp + kRw, d, o);
    for (int i = 0; i < 3; ++i) tj[kTw + i] = o[i] + tp[kTw + i];
  }
  // A = [Rw | Tw - Rw Jrest]
  float rj[3];
  matvec3(tj + kRw, tj + kJrest, rj);
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) tj[kA + r * 4 + c] = tj[kRw + r * 3 + c];
    tj[kA + r * 4 + 3] = tj[kTw + r] - rj[r];
  }
  if (j >= 1 && pf)
    for (int i = 0; i < 9; ++i) pf[9 * (j - 1) + i] = tj[kRloc + i] - ((i % 4 == 0) ? 1.f : 0.f);
}

// Backward of the chain, part 1 (per joint, any order): from dA_j (12 floats) initialise the joint's 15 scratch
// floats: dRw (9), dTw (3), dJ (3).
constexpr int kJointScratch = 15;
FG_HDI void chainBackwardInit(int j, const float* tape, const float* dA, float* scratch) {
  float* s = scratch + j * kJointScratch;
  const float* tj = tape + j * kJointTape;
  const float* g = dA + 12 * j;
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) s[r * 3 + c] = g[r * 4 + c] - g[r * 4 + 3] * tj[kJrest + c];
    s[9 + r] = g[r * 4 + 3];
  }
  float gt[3] = {g[3], g[7], g[11]}, o[3];
  matTvec3(tj + kRw, gt, o);
  for (int i = 0; i < 3; ++i) s[12 + i] = -o[i];
}

// Part 2 (sequential, j = J-1 .. 0): propagate to the parent and write dRloc_j (9 floats at dRloc + 9j), adding
// the pose-feature gradient dpf (may be null). After it, scratch holds dJ_j at +12.
FG_HDI void chainBackwardLink(int j, const int32_t* parents, const float* tape, const float* dpf, float* scratch, float* dRloc) {
  float* s = scratch + j * kJointScratch;
  const float* tj = tape + j * kJointTape;
  float* dR = dRloc + 9 * j;
  int p = parents[j];
  if (p < 0) {
    for (int i = 0; i < 9; ++i) dR[i] = s[i];
    for (int i = 0; i < 3; ++i) s[12 + i] += s[9 + i];
  } else {
    float* sp = scratch + p * kJointScratch;
    const float* tp = tape + p * kJointTape;
    float t[3], m[9];
    for (int i = 0; i < 3; ++i) t[i] = tj[kJrest + i] - tp[kJrest + i];
    matmul3T3(s, tj + kRloc, m);  // dRw_j Rloc^T
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) sp[r * 3 + c] += m[r * 3 + c] + s[9 + r] * t[c];
    matmulT33(tp + kRw, s, dR);  // Rw_p^T dRw_j
    float dt[3];
    matTvec3(tp + kRw, s + 9, dt);
    for (int i = 0; i < 3; ++i) {
      sp[9 + i] += s[9 + i];
      s[12 + i] += dt[i];
      sp[12 + i] -= dt[i];
    }
  }
  if (j >= 1 && dpf)
    for (int i = 0; i < 9; ++i) dR[i] += dpf[9 * (j - 1) + i];
}

// ---------------------------------------------------------------- skinning + rigid, one vertex
// The linear-blend-skinned point u = sum_j w_j (A_j [p;1]) (u = p when J == 0), with the blended transform T (when
// J > 0; the backward needs it).
FG_HDI void skinBlend(int J, const float* A, const float* w, const float* p, float* u, float* T) {
  if (J == 0) {
    u[0] = p[0]; u[1] = p[1]; u[2] = p[2];
    return;
  }
  for (int i = 0; i < 12; ++i) T[i] = 0.f;
  for (int j = 0; j < J; ++j) {
    float wj = w[j];
    if (wj == 0.f) continue;
    for (int i = 0; i < 12; ++i) T[i] += wj * A[12 * j + i];
  }
  for (int r = 0; r < 3; ++r) u[r] = T[r * 4] * p[0] + T[r * 4 + 1] * p[1] + T[r * 4 + 2] * p[2] + T[r * 4 + 3];
}
// u = skinBlend(...); out = s R u + t.
FG_HDI void skinVertex(int J, const float* A, const float* w, const float* p, const float* rigid, float* u, float* out) {
  float T[12];
  skinBlend(J, A, w, p, u, T);
  float Ru[3];
  matvec3(rigid, u, Ru);
  for (int i = 0; i < 3; ++i) out[i] = rigid[9] * Ru[i] + rigid[10 + i];
}

// Per-vertex backward: g = dL/dout. Writes dp (dL/dv_posed) and the per-vertex reduction terms via emit(q, value):
// q in [0, 13): dR (9), ds (1), dt (3); q = 13 + 12 j + i: dA_j[i].
constexpr int kRigidGrads = 13;
template <typename Emit>
FG_HDI void skinVertexBackward(int J, const float* A, const float* w, const float* p, const float* rigid, const float* g, float* dp,
                               Emit&& emit) {
  float u[3], T[12];
  skinBlend(J, A, w, p, u, T);
  const float s = rigid[9];
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) emit(r * 3 + c, s * g[r] * u[c]);
  float Ru[3];
  matvec3(rigid, u, Ru);
  emit(9, dot3(g, Ru));
  for (int i = 0; i < 3; ++i) emit(10 + i, g[i]);
  float du[3];
  matTvec3(rigid, g, du);
  for (int i = 0; i < 3; ++i) du[i] *= s;
  if (J == 0) {
    dp[0] = du[0]; dp[1] = du[1]; dp[2] = du[2];
    return;
  }
  for (int c = 0; c < 3; ++c) dp[c] = T[c] * du[0] + T[4 + c] * du[1] + T[8 + c] * du[2];
  for (int j = 0; j < J; ++j) {
    float wj = w[j];
    for (int r = 0; r < 3; ++r) {
      float a = wj * du[r];
      emit(kRigidGrads + 12 * j + r * 4 + 0, a * p[0]);
      emit(kRigidGrads + 12 * j + r * 4 + 1, a * p[1]);
      emit(kRigidGrads + 12 * j + r * 4 + 2, a * p[2]);
      emit(kRigidGrads + 12 * j + r * 4 + 3, a);
    }
  }
}

// ---------------------------------------------------------------- vertex normals
// Face normal (area-weighted): (p1 - p0) x (p2 - p0), exactly rounded so that the CPU and CUDA twins agree bitwise.
FG_HDI void faceNormal(const float* pos, const int32_t* tri, float* n) {
  const float* p0 = pos + 3 * tri[0];
  const float* p1 = pos + 3 * tri[1];
  const float* p2 = pos + 3 * tri[2];
  float e1[3] = {sub(p1[0], p0[0]), sub(p1[1], p0[1]), sub(p1[2], p0[2])};
  float e2[3] = {sub(p2[0], p0[0]), sub(p2[1], p0[1]), sub(p2[2], p0[2])};
  cross3rn(e1, e2, n);
}

// Sum of incident face normals of vertex v over the CSR incidence list (face*3 + corner), in list order.
FG_HDI void gatherVertexNormal(int64_t v, const float* pos, const int32_t* tris, const int32_t* off, const int32_t* inc, float* m) {
  m[0] = m[1] = m[2] = 0.f;
  for (int32_t e = off[v]; e < off[v + 1]; ++e) {
    int32_t f = inc[e] / 3;
    float n[3];
    faceNormal(pos, tris + 3 * f, n);
    m[0] = add(m[0], n[0]); m[1] = add(m[1], n[1]); m[2] = add(m[2], n[2]);
  }
}

constexpr float kNormalEps = 1e-20f;  // |m|^2 below this: a degenerate vertex, normal 0, gradient 0

FG_HDI void normalize3(const float* m, float* n) {
  float l2 = add(add(mul(m[0], m[0]), mul(m[1], m[1])), mul(m[2], m[2]));
  if (l2 < kNormalEps) { n[0] = n[1] = n[2] = 0.f; return; }
  float l = sqrt_rn(l2);
  n[0] = div(m[0], l); n[1] = div(m[1], l); n[2] = div(m[2], l);
}

// dm = (g - n (n.g)) / |m|
FG_HDI void normalizeBackward(const float* m, const float* g, float* dm) {
  float l2 = m[0] * m[0] + m[1] * m[1] + m[2] * m[2];
  if (l2 < kNormalEps) { dm[0] = dm[1] = dm[2] = 0.f; return; }
  float l = sqrtf(l2);
  float n[3] = {m[0] / l, m[1] / l, m[2] / l};
  float d = dot3(n, g);
  for (int i = 0; i < 3; ++i) dm[i] = (g[i] - n[i] * d) / l;
}

// Gradient of one face's (p1-p0)x(p2-p0) w.r.t. the vertex at `corner`, given gf = dL/dn_f.
FG_HDI void faceNormalCornerGrad(const float* pos, const int32_t* tri, int corner, const float* gf, float* out) {
  const float* p0 = pos + 3 * tri[0];
  const float* p1 = pos + 3 * tri[1];
  const float* p2 = pos + 3 * tri[2];
  float e1[3] = {p1[0] - p0[0], p1[1] - p0[1], p1[2] - p0[2]};
  float e2[3] = {p2[0] - p0[0], p2[1] - p0[1], p2[2] - p0[2]};
  float de1[3], de2[3];
  cross3(e2, gf, de1);
  cross3(gf, e1, de2);
  if (corner == 1) { out[0] = de1[0]; out[1] = de1[1]; out[2] = de1[2]; }
  else if (corner == 2) { out[0] = de2[0]; out[1] = de2[1]; out[2] = de2[2]; }
  else { out[0] = -(de1[0] + de2[0]); out[1] = -(de1[1] + de2[1]); out[2] = -(de1[2] + de2[2]); }
}
// Vertex v's position gradient through the face normals around it, given dm = dL/d(unnormalised vertex normal):
// each incident face f contributes its corner's share of dL/dn_f = dm of its three vertices (added to acc).
FG_HDI void gatherFaceNormalGrad(int64_t v, const float* pos, const int32_t* tris, const int32_t* off, const int32_t* inc, const float* dm,
                                 float* acc) {
  for (int32_t e = off[v]; e < off[v + 1]; ++e) {
    const int32_t f = inc[e] / 3, corner = inc[e] % 3;
    const int32_t* tri = tris + 3 * f;
    float gf[3];
    for (int i = 0; i < 3; ++i) gf[i] = dm[3 * tri[0] + i] + dm[3 * tri[1] + i] + dm[3 * tri[2] + i];
    float o[3];
    faceNormalCornerGrad(pos, tri, corner, gf, o);
    for (int i = 0; i < 3; ++i) acc[i] += o[i];
  }
}

// ---------------------------------------------------------------- regularisers (per element)
// Coefficient L2 scaled by the mode's standard deviation: w (x/std)^2, gradient 2 w x / std^2.
FG_HDI float coefL2Value(float x, float sd, float w) { float z = x / sd; return w * z * z; }
FG_HDI float coefL2Grad(float x, float sd, float w) { return 2.f * w * x / (sd * sd); }
// Smooth (C1) bound penalty: w (lo - x)^2 below lo, w (x - hi)^2 above hi, 0 inside.
FG_HDI float boundsValue(float x, float lo, float hi, float w) {
  float d = x < lo ? lo - x : (x > hi ? x - hi : 0.f);
  return w * d * d;
}
FG_HDI float boundsGrad(float x, float lo, float hi, float w) {
  return x < lo ? -2.f * w * (lo - x) : (x > hi ? 2.f * w * (x - hi) : 0.f);
}

}  // namespace morph
}  // namespace fg
