// The rasteriser's per-element maths (FG_HD: shared by the CPU twin in raster.cpp and the kernels in raster.cu).
// See raster.hpp for the conventions. Functions marked EXACT use only exactly rounded fg:: ops so that both
// twins give bit-identical coverage, depth keys and barycentrics.
#pragma once
#include <cstdint>
#include <cstring>
#include "core/half.hpp"
#include "core/hd.hpp"
#include "raster/raster.hpp"

#if defined(__CUDA_ARCH__)
#define FG_RASTER_UNROLL _Pragma("unroll")
#else
#define FG_RASTER_UNROLL
#endif

namespace fg {
namespace raster {

constexpr unsigned long long kNoKey = ~0ull;
// Per-(view, triangle) accumulators (dW, dN) hold 9 values padded to 12: 48-byte float rows take three aligned
// float4 atomics on CUDA sm_90.
constexpr int kAccStride = 12;
constexpr uint32_t kNoTri = 0xffffffffu;

struct V3 {
  float x, y, z;
};
FG_HDI V3 mk(float x, float y, float z) { return V3{x, y, z}; }
FG_HDI V3 operator+(V3 a, V3 b) { return V3{a.x + b.x, a.y + b.y, a.z + b.z}; }
FG_HDI V3 operator-(V3 a, V3 b) { return V3{a.x - b.x, a.y - b.y, a.z - b.z}; }
FG_HDI V3 operator*(float s, V3 a) { return V3{s * a.x, s * a.y, s * a.z}; }
FG_HDI float dot(V3 a, V3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
FG_HDI V3 cross(V3 a, V3 b) { return V3{a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x}; }
// EXACT cross product (two roundings per product, one per difference; antisymmetric bit for bit).
FG_HDI V3 crossRn(V3 a, V3 b) {
  return V3{sub(mul(a.y, b.z), mul(a.z, b.y)), sub(mul(a.z, b.x), mul(a.x, b.z)), sub(mul(a.x, b.y), mul(a.y, b.x))};
}
// EXACT canonical cross: computed with the lower vertex index first, so cross(a,b) == -cross(b,a) exactly.
FG_HDI V3 canonCross(V3 a, int ia, V3 b, int ib) {
  if (ia <= ib) return crossRn(a, b);
  V3 r = crossRn(b, a);
  return V3{-r.x, -r.y, -r.z};
}

struct Box {
  int x0, y0, x1, y1;  // inclusive pixel range; x0 > x1: culled
};
struct alignas(8) int2_t {
  int x, y;
};

// Gradient sink: plain adds (CPU twin, run in a fixed order), float atomics, or 64-bit fixed-point atomics.
struct Sink {
  float* f = nullptr;
  long long* fx = nullptr;
  float scale = 1.f;
  FG_HDI bool on() const { return f || fx; }
  FG_HDI void add(int64_t i, float v) const {
#if defined(__CUDA_ARCH__)
    if (fx) {
      float s = v * scale;
      s = fminf(fmaxf(s, -9.0e18f), 9.0e18f);
      atomicAdd(reinterpret_cast<unsigned long long*>(fx + i), static_cast<unsigned long long>(__float2ll_rn(s)));
    } else if (f) {
      atomicAdd(f + i, v);
    }
#else
    if (f) f[i] += v;
#endif
  }
  // (fixed point: times the reciprocal of the scale, which the compiler computes once per kernel instead of a
  // double division per read; exact for the default power-of-two scale)
  FG_HDI float read(int64_t i) const { return fx ? fixedToFloat(fx[i], scale) : (f ? f[i] : 0.f); }
  FG_HDI static float fixedToFloat(long long v, float scale) { return float(double(v) * (1.0 / double(scale))); }
};

// Per-level constants of a mip pyramid (setMipTable), so that per-pixel and per-texel code does not recompute them
// level by level: off[l] = mipOffset(.., l), w[l] x h[l] = the level's size, f[l] = the factor of level l's
// gradient in the adjoint of the pyramid at level 0 (mipReduceElem).
constexpr int kMipMaxLevels = 32;
struct MipTable {
  int64_t off[kMipMaxLevels];
  int w[kMipMaxLevels], h[kMipMaxLevels];
  float f[kMipMaxLevels];
};

// Everything a kernel needs (POD, passed by value to CUDA kernels).
struct Kern {
  int V, H, W, P, T, C;
  const float* pos;
  const int32_t* tri;
  const float* uvs;
  const int32_t* uvTri;
  const float* K;
  const float* E;
  float nearZ, farZ;
  const float* tex;
  int tw, th, wrap, flipV;
  const float* background;
  const float* sh;
  int shFrame;
  const float* depthRange;
  int antialias;
  // topology
  const int32_t* adj;
  const int32_t* vfOff;
  const int32_t* vfList;
  // state
  float* hv;
  float* vn;
  float* vlen;
  unsigned long long* keys;
  int8_t* facing;
  float* tg;  // [V,T,12] cached triangle geometry: c[0..2] (9), D, orient, 0 (written by the raster pass)
  Box* bbox;  // [V,T] (CPU twin)
  uint32_t* silBits;  // [V, silWords] silhouette flags, a bit per (view, triangle) (see silhouetteFlag)
  int silWords;       // words per view: ceil(T / 32)
  float* uvT;         // [T,8] per-triangle UVs (u0 v0 u1 v1 u2 v2 0 0), copied from uvs/uvTri by the forward
  uint8_t* aaCode;    // [V,H,W] antialiasing pairs of each pixel (aaCodeOf), written by the forward resolve
  uint32_t* silList;  // CUDA: the pixels with a nonzero aaCode (pixel index), *silCount of them
  int* silCount;
  float* aaAlpha;     // [V,H,W,4] alpha of each active pair of a pixel (valid where its aaCode bit is set)
  float* preShade;    // [V,H,W,C+1] pre-antialiasing colour (C) and grey of the pixels with a nonzero aaCode
  int needNormals;    // vertex normals wanted (grey shading or the normal image)
  // outputs
  int32_t* oTri;
  float* oBary;
  float* oDepth;
  float* oMask;
  float* oNormal;
  float* oGrey;
  float* oColor;
  float* oDepthImg;
  // backward
  const float* gColor;
  const float* gGrey;
  const float* gMask;
  // Per-(view, triangle) accumulators [V,T,kAccStride] (9 used; no per-vertex atomics):
  //   dW: edge-function gradients W_m = sum over pixels of dL/de_m * (px, py, 1) for the 3 edges m, times
  //       wScale() (which brings fixed-point values to the magnitude of position gradients);
  //   dN: dL/d(vertex normal) of the triangle's 3 corners (world frame), summed over its pixels.
  // A per-vertex gather turns them into position gradients (normalsBackward*Elem).
  Sink dTex, dW, dN;
  float* dm;     // [P,3]
  float* dPosOut;  // [P,3] final
  float* dTexOut;  // final texture grads (deterministic conversion)
  int texVec;      // CUDA sm_90: vector texture-gradient atomics (float sink, 3 or 4 channels, 16-byte aligned)
  int texStage;    // CUDA (texVec; the channel count): backwardPixel hands its bilinear or trilinear footprint back
                   // (PixGrad::tap) for the kernel's warp-staged texture-gradient flush instead of adding it itself
  // mip-mapping (mipL == 0: off; the template parameter Mip of the per-pixel functions selects the path)
  const float* mip;  // levels 1..mipL-1 of the pyramid (mipOffset layout)
  int mipL;          // levels in use, including level 0 (the texture itself)
  MipTable mipT;     // per-level offsets, sizes and pyramid-adjoint factors (setMipTable)
  float lodBias;
  Sink dMip;         // texel gradients of levels 1..mipL-1 (same layout), pushed to level 0 by mipReduceElem
  float* mipCum;     // CUDA: per level-1 texel, mipReduceElem's sum over its ancestors (shared by its 4 children)
};

// ---- vertices ---------------------------------------------------------------------------------------------

// EXACT: pixel-homogeneous position of vertex p in view v.
FG_HDI V3 transformVertex(const Kern& k, int v, int p) {
  const float* E = k.E + 12 * v;
  const float* Kv = k.K + 4 * v;
  float wx = k.pos[3 * p], wy = k.pos[3 * p + 1], wz = k.pos[3 * p + 2];
  float X = fma(E[0], wx, fma(E[1], wy, fma(E[2], wz, E[3])));
  float Y = fma(E[4], wx, fma(E[5], wy, fma(E[6], wz, E[7])));
  float Z = fma(E[8], wx, fma(E[9], wy, fma(E[10], wz, E[11])));
  return V3{fma(Kv[0], X, mul(Kv[2], Z)), fma(Kv[1], Y, mul(Kv[3], Z)), Z};
}
FG_HDI void vertexTransformElem(const Kern& k, int64_t i) {
  int v = int(i / k.P), p = int(i % k.P);
  V3 h = transformVertex(k, v, p);
  k.hv[3 * i] = h.x;
  k.hv[3 * i + 1] = h.y;
  k.hv[3 * i + 2] = h.z;
}
FG_HDI V3 loadP(const float* a, int64_t i) { return V3{a[3 * i], a[3 * i + 1], a[3 * i + 2]}; }
FG_HDI V3 faceNormal(const Kern& k, int t) {
  V3 p0 = loadP(k.pos, k.tri[3 * t]), p1 = loadP(k.pos, k.tri[3 * t + 1]), p2 = loadP(k.pos, k.tri[3 * t + 2]);
  return cross(p1 - p0, p2 - p0);
}
// Unit vertex normal from the sum m of its faces' normals (CUDA sums with several lanes per vertex).
FG_HDI void vertexNormalFinish(const Kern& k, int p, V3 m) {
  float len = sqrtf(dot(m, m));
  float inv = len > 0.f ? 1.f / len : 0.f;
  k.vn[3 * p] = m.x * inv;
  k.vn[3 * p + 1] = m.y * inv;
  k.vn[3 * p + 2] = m.z * inv;
  k.vlen[p] = len;
}
FG_HDI void vertexNormalElem(const Kern& k, int p) {
  V3 m = mk(0, 0, 0);
  for (int j = k.vfOff[p]; j < k.vfOff[p + 1]; ++j) m = m + faceNormal(k, k.vfList[j] / 3);
  vertexNormalFinish(k, p, m);
}

// ---- coverage (EXACT) -----------------------------------------------------------------------------------------

struct TriGeom {
  V3 P[3];
  V3 c[3];  // c[i] = P_j x P_k (j = i+1, k = i+2), canonical
  float D;
  int orient;
  int vi[3];
};
// EXACT edge cross products, D and orientation of a triangle from its vertex indices and pixel-homogeneous vertices.
FG_HDI TriGeom triGeomOf(const int* vi, const V3* P) {
  TriGeom g;
  for (int i = 0; i < 3; ++i) {
    g.vi[i] = vi[i];
    g.P[i] = P[i];
  }
  for (int i = 0; i < 3; ++i) {
    int j = (i + 1) % 3, l = (i + 2) % 3;
    g.c[i] = canonCross(g.P[j], g.vi[j], g.P[l], g.vi[l]);
  }
  g.D = fma(g.P[0].x, g.c[0].x, fma(g.P[0].y, g.c[0].y, mul(g.P[0].z, g.c[0].z)));
  g.orient = g.D > 0.f ? 1 : (g.D < 0.f ? -1 : 0);
  return g;
}
// (view v, triangle t) from the transformed vertices k.hv.
FG_HDI TriGeom triGeom(const Kern& k, int v, int t) {
  const float* hv = k.hv + int64_t(v) * k.P * 3;
  int vi[3];
  V3 P[3];
  for (int i = 0; i < 3; ++i) {
    vi[i] = k.tri[3 * t + i];
    P[i] = loadP(hv, vi[i]);
  }
  return triGeomOf(vi, P);
}
// The same from the world positions (transforming the three vertices here: bit-identical to triGeom, for
// passes that run before k.hv is written).
FG_HDI TriGeom triGeomWorld(const Kern& k, int v, int t) {
  int vi[3];
  V3 P[3];
  for (int i = 0; i < 3; ++i) {
    vi[i] = k.tri[3 * t + i];
    P[i] = transformVertex(k, v, vi[i]);
  }
  return triGeomOf(vi, P);
}
// Cache of triGeom's EXACT values (the raster pass computes each (view, triangle) once; the per-pixel passes
// load them instead of recomputing: bit-identical by construction).
FG_HDI void storeTriGeom(const Kern& k, int64_t i, const TriGeom& g) {
  float* d = k.tg + 12 * i;
#if defined(__CUDA_ARCH__)
  float4* d4 = reinterpret_cast<float4*>(d);
  d4[0] = make_float4(g.c[0].x, g.c[0].y, g.c[0].z, g.c[1].x);
  d4[1] = make_float4(g.c[1].y, g.c[1].z, g.c[2].x, g.c[2].y);
  d4[2] = make_float4(g.c[2].z, g.D, float(g.orient), 0.f);
#else
  const float r[12] = {g.c[0].x, g.c[0].y, g.c[0].z, g.c[1].x, g.c[1].y, g.c[1].z, g.c[2].x, g.c[2].y, g.c[2].z, g.D, float(g.orient), 0.f};
  for (int q = 0; q < 12; ++q) d[q] = r[q];
#endif
}
// The edge data of (view v, triangle t) that the per-pixel passes need, from the cache when there is one (no
// vertex loads: the few paths that need the vertices load them themselves).
struct TriEdges {
  V3 c[3];
  float D;
  int orient;
};
FG_HDI TriEdges triEdgesC(const Kern& k, int v, int t) {
  TriEdges g;
  if (!k.tg) {
    const TriGeom f = triGeom(k, v, t);
    for (int q = 0; q < 3; ++q) g.c[q] = f.c[q];
    g.D = f.D;
    g.orient = f.orient;
    return g;
  }
  const int64_t i = int64_t(v) * k.T + t;
#if defined(__CUDA_ARCH__)
  const float4* s4 = reinterpret_cast<const float4*>(k.tg + 12 * i);
  float4 a = __ldg(s4), b = __ldg(s4 + 1), c = __ldg(s4 + 2);
  g.c[0] = V3{a.x, a.y, a.z};
  g.c[1] = V3{a.w, b.x, b.y};
  g.c[2] = V3{b.z, b.w, c.x};
  g.D = c.y;
  g.orient = int(c.z);
#else
  const float* s = k.tg + 12 * i;
  g.c[0] = V3{s[0], s[1], s[2]};
  g.c[1] = V3{s[3], s[4], s[5]};
  g.c[2] = V3{s[6], s[7], s[8]};
  g.D = s[9];
  g.orient = int(s[10]);
#endif
  return g;
}
FG_HDI float edgeAt(V3 c, float px, float py) { return fma(px, c.x, fma(py, c.y, c.z)); }
// Tie rule for a pixel centre exactly on an edge: owned when the oriented edge normal is "positive".
FG_HDI bool ownsTie(V3 c, int orient) {
  float x = orient > 0 ? c.x : -c.x, y = orient > 0 ? c.y : -c.y, z = orient > 0 ? c.z : -c.z;
  return x > 0.f || (x == 0.f && (y > 0.f || (y == 0.f && z > 0.f)));
}
// A triangle's edge functions oriented so that inside is positive, with each edge's tie ownership: the per-pixel
// coverage test (coversR) then needs no orientation or tie logic. EXACT and equivalent to testing the unoriented
// edges: for a negative orientation the oriented edge values are exactly -e_i (round-to-nearest is symmetric),
// S and D both change sign, and z = D / S is the same bits.
struct TriRaster {
  V3 c[3];
  float D;
  unsigned tie;  // bit i: a centre exactly on edge i belongs to this triangle (ownsTie)
  int ok;        // not degenerate
};
template <class G>  // TriGeom or TriEdges
FG_HDI TriRaster triRaster(const G& g) {
  TriRaster r;
  r.ok = g.orient != 0;
  r.tie = 0;
  for (int i = 0; i < 3; ++i) {
    r.c[i] = g.orient > 0 ? g.c[i] : V3{-g.c[i].x, -g.c[i].y, -g.c[i].z};
    if (ownsTie(g.c[i], g.orient)) r.tie |= 1u << i;
  }
  r.D = g.orient > 0 ? g.D : -g.D;
  return r;
}
// Pixel centre (px, py) inside the triangle and within [nearZ, farZ]: returns the camera depth in z. All three
// edges are evaluated (no early exit: the lanes of a warp stay together).
FG_HDI bool coversR(const TriRaster& r, float px, float py, float nearZ, float farZ, float& z) {
  const float e0 = edgeAt(r.c[0], px, py), e1 = edgeAt(r.c[1], px, py), e2 = edgeAt(r.c[2], px, py);
  const bool in = r.ok && (e0 > 0.f || (e0 == 0.f && (r.tie & 1u))) && (e1 > 0.f || (e1 == 0.f && (r.tie & 2u))) &&
                  (e2 > 0.f || (e2 == 0.f && (r.tie & 4u)));
  if (!in) return false;
  z = div(r.D, add(add(e0, e1), e2));
  return z >= nearZ && z <= farZ;
}
// Depth key: z > 0 here, so its float bits order like z; ties go to the lower triangle id.
FG_HDI unsigned long long depthKey(float z, int t) {
  return (static_cast<unsigned long long>(floatBits(z)) << 32) | static_cast<uint32_t>(t);
}
FG_HDI float keyDepth(unsigned long long key) { return bitsFloat(uint32_t(key >> 32)); }

// Conservative pixel bounding box of the part of g in front of the near plane (EXACT ops, so both twins agree).
// Returns false when the triangle cannot cover any pixel.
FG_HDI bool triBBox(const Kern& k, const TriGeom& g, int& x0, int& y0, int& x1, int& y1) {
  if (!g.orient) return false;
  float mnx = 3e38f, mny = 3e38f, mxx = -3e38f, mxy = -3e38f;
  int n = 0, nFar = 0;
  for (int i = 0; i < 3; ++i) {
    V3 a = g.P[i];
    if (a.z > k.farZ) ++nFar;
    if (a.z >= k.nearZ) {
      float x = div(a.x, a.z), y = div(a.y, a.z);
      mnx = fminf(mnx, x); mxx = fmaxf(mxx, x); mny = fminf(mny, y); mxy = fmaxf(mxy, y);
      ++n;
    }
    V3 b = g.P[(i + 1) % 3];
    if ((a.z >= k.nearZ) != (b.z >= k.nearZ)) {
      float s = div(sub(k.nearZ, a.z), sub(b.z, a.z));
      float X = fma(s, sub(b.x, a.x), a.x), Y = fma(s, sub(b.y, a.y), a.y);
      float x = div(X, k.nearZ), y = div(Y, k.nearZ);
      mnx = fminf(mnx, x); mxx = fmaxf(mxx, x); mny = fminf(mny, y); mxy = fmaxf(mxy, y);
    }
  }
  if (n == 0 || nFar == 3) return false;
  if (!(mnx <= mxx) || !(mny <= mxy)) return false;  // NaN
  mnx = fmaxf(mnx, -1e7f); mny = fmaxf(mny, -1e7f); mxx = fminf(mxx, 1e7f); mxy = fminf(mxy, 1e7f);
  // pixel x is sampled at x + 0.5; the margin covers the rounding of the projection and the edge functions
  float ex = fma(1e-5f, fmaxf(fabsf(mnx), fabsf(mxx)), 0.01f), ey = fma(1e-5f, fmaxf(fabsf(mny), fabsf(mxy)), 0.01f);
  x0 = maxv(int(ceilf(sub(sub(mnx, 0.5f), ex))), 0);
  y0 = maxv(int(ceilf(sub(sub(mny, 0.5f), ey))), 0);
  x1 = minv(int(floorf(add(sub(mxx, 0.5f), ex))), k.W - 1);
  y1 = minv(int(floorf(add(sub(mxy, 0.5f), ey))), k.H - 1);
  return x0 <= x1 && y0 <= y1;
}

// ---- shading -------------------------------------------------------------------------------------------------

FG_HDI void shBasis(V3 n, float* Y) {
  Y[0] = 0.282095f;
  Y[1] = 0.488603f * n.y;
  Y[2] = 0.488603f * n.z;
  Y[3] = 0.488603f * n.x;
  Y[4] = 1.092548f * n.x * n.y;
  Y[5] = 1.092548f * n.y * n.z;
  Y[6] = 0.315392f * (3.f * n.z * n.z - 1.f);
  Y[7] = 1.092548f * n.x * n.z;
  Y[8] = 0.546274f * (n.x * n.x - n.y * n.y);
}
// d(sum_k c_k Y_k(n)) / dn
FG_HDI V3 shGrad(V3 n, const float* c) {
  V3 g;
  g.x = 0.488603f * c[3] + 1.092548f * (n.y * c[4] + n.z * c[7]) + 2.f * 0.546274f * n.x * c[8];
  g.y = 0.488603f * c[1] + 1.092548f * (n.x * c[4] + n.z * c[5]) - 2.f * 0.546274f * n.y * c[8];
  g.z = 0.488603f * c[2] + 1.092548f * (n.y * c[5] + n.x * c[7]) + 6.f * 0.315392f * n.z * c[6];
  return g;
}
FG_HDI V3 rotate(const float* E, V3 n) {
  return V3{E[0] * n.x + E[1] * n.y + E[2] * n.z, E[4] * n.x + E[5] * n.y + E[6] * n.z, E[8] * n.x + E[9] * n.y + E[10] * n.z};
}
FG_HDI V3 rotateT(const float* E, V3 n) {
  return V3{E[0] * n.x + E[4] * n.y + E[8] * n.z, E[1] * n.x + E[5] * n.y + E[9] * n.z, E[2] * n.x + E[6] * n.y + E[10] * n.z};
}

// Bilinear footprint of a texture lookup.
struct Tap {
  int idx[4];  // texel indices (row-major texel number; texels x channels < 2^31 is checked)
  int xa, xb, ya, yb;  // their columns (idx[0], idx[2]: xa; idx[1], idx[3]: xb) and rows (idx[0..1]: ya; idx[2..3]: yb)
  float w[4];
  float fx, fy;
  float dtdu, dtdv;  // d(texel x)/du, d(texel y)/dv
};
FG_HDI int wrapIndex(int i, int n, int mode) {
  if (mode == int(Wrap::Repeat)) {
    int r = i % n;
    return r < 0 ? r + n : r;
  }
  return clampv(i, 0, n - 1);
}
FG_HDI Tap texTapDims(const Kern& k, float u, float v, int tw, int th) {
  Tap t;
  float vv = k.flipV ? 1.f - v : v;
  float tx = u * float(tw) - 0.5f, ty = vv * float(th) - 0.5f;
  tx = fminf(fmaxf(tx, -1e6f), 1e6f);  // NaN-safe enough: NaN stays NaN -> floorf(NaN) -> clamp below
  ty = fminf(fmaxf(ty, -1e6f), 1e6f);
  if (!(tx == tx)) tx = 0.f;
  if (!(ty == ty)) ty = 0.f;
  float x0f = floorf(tx), y0f = floorf(ty);
  t.fx = tx - x0f;
  t.fy = ty - y0f;
  int x0 = int(x0f), y0 = int(y0f);
  int xa = wrapIndex(x0, tw, k.wrap), xb = wrapIndex(x0 + 1, tw, k.wrap);
  int ya = wrapIndex(y0, th, k.wrap), yb = wrapIndex(y0 + 1, th, k.wrap);
  t.xa = xa; t.xb = xb; t.ya = ya; t.yb = yb;
  t.idx[0] = ya * tw + xa;
  t.idx[1] = ya * tw + xb;
  t.idx[2] = yb * tw + xa;
  t.idx[3] = yb * tw + xb;
  t.w[0] = (1.f - t.fx) * (1.f - t.fy);
  t.w[1] = t.fx * (1.f - t.fy);
  t.w[2] = (1.f - t.fx) * t.fy;
  t.w[3] = t.fx * t.fy;
  t.dtdu = float(tw);
  t.dtdv = k.flipV ? -float(th) : float(th);
  return t;
}
FG_HDI Tap texTap(const Kern& k, float u, float v) { return texTapDims(k, u, v, k.tw, k.th); }

// ---- mip pyramid ---------------------------------------------------------------------------------------------
// Level l is max(1, n >> l) texels along a side of n (= repeated floor halving, never below 1).
FG_HDI int mipDim(int n, int l) {
  int r = l < 31 ? n >> l : 0;
  return r < 1 ? 1 : r;
}
FG_HDI int mipCount(int tw, int th, int maxLevels) {
  int m = tw > th ? tw : th, n = 1;
  while (n < 31 && (m >> n) > 0) ++n;  // 1 + floor(log2(m))
  return (maxLevels > 0 && maxLevels < n) ? maxLevels : n;
}
// Float offset of level l >= 1 inside the pyramid buffer (levels 1, 2, ... back to back, each rounded up to 4
// floats so that every level is 16-byte aligned); mipOffset(.., L) is the size of levels 1..L-1.
FG_HDI int64_t mipOffset(int tw, int th, int C, int l) {
  int64_t o = 0;
  for (int j = 1; j < l; ++j) o += (int64_t(mipDim(tw, j)) * mipDim(th, j) * C + 3) & ~int64_t(3);
  return o;
}
// Texel (x, y) of a level from the sw x sh level below it, read(cx, cy) giving a child: the mean of its 2x2
// children, reads clamped. The one formula of the pyramid (the CPU twin, and both CUDA builds of it).
template <class Read>
FG_HDI float mipBoxAt(int x, int y, int sw, int sh, Read read) {
  const int x0 = 2 * x, y0 = 2 * y, x1 = minv(x0 + 1, sw - 1), y1 = minv(y0 + 1, sh - 1);
  const float a = read(x0, y0), b = read(x1, y0), d = read(x0, y1), e = read(x1, y1);
  return 0.25f * ((a + b) + (d + e));
}
// Element i (of dw x dh x C) of a level from the level above it (sw x sh).
FG_HDI void mipDownElem(const float* src, int sw, int sh, float* dst, int dw, int C, int64_t i) {
  const int c = int(i % C);
  const int64_t q = i / C;
  dst[i] = mipBoxAt(int(q % dw), int(q / dw), sw, sh, [&](int cx, int cy) { return src[(int64_t(cy) * sw + cx) * C + c]; });
}
// The per-level table of the pyramid of a tw x th x C texture. f[l] is the running product of the factor 1/4 per
// level (1/2 per level along a side of 1, whose clamped read takes the same child twice), in level order.
FG_HDI void setMipTable(MipTable& t, int tw, int th, int C) {
  float f = 1.f;
  for (int l = 0; l < kMipMaxLevels; ++l) {
    t.w[l] = mipDim(tw, l);
    t.h[l] = mipDim(th, l);
    t.off[l] = mipOffset(tw, th, C, l);
    if (l >= 1) f *= 0.25f * (t.w[l - 1] == 1 ? 2.f : 1.f) * (t.h[l - 1] == 1 ? 2.f : 1.f);
    t.f[l] = f;
  }
}
// One step up the ancestors of a level-0 texel: (x, y), its ancestor at level l - 1, moves to level l; returns that
// ancestor's element offset (channel 0) in the pyramid. `on` turns false, for good, at the first ancestor that does
// not exist (a dropped odd row/column).
FG_HDI int64_t mipParent(const MipTable& t, int l, int C, int& x, int& y, bool& on) {
  x >>= 1;
  y >>= 1;
  on = on && x < t.w[l] && y < t.h[l];
  return t.off[l] + (int64_t(y) * t.w[l] + x) * C;
}
// Adjoint of the pyramid for level-0 element i: the sum over its ancestors of (gradient of the ancestor) x
// (d ancestor / d texel), finest first. The chain stops at the first ancestor that does not exist (a dropped odd
// row/column). The reads do not depend on each other, and the loop has no early exit, so they can all be in
// flight together.
FG_HDI float mipReduceElem(const Kern& k, int64_t i) {
  const int C = k.C, c = int(i % C);
  const int64_t q = i / C;
  int x = int(q % k.tw), y = int(q / k.tw);
  bool on = true;
  float acc = 0.f;
  for (int l = 1; l < k.mipL; ++l) {
    const int64_t b = mipParent(k.mipT, l, C, x, y, on);
    if (on) acc += k.mipT.f[l] * k.dMip.read(b + c);
  }
  return acc;
}
FG_HDI const float* mipLevelPtr(const Kern& k, int l) { return l == 0 ? k.tex : k.mip + k.mipT.off[l]; }
// The float texel-gradient buffer of level l (level 0: dTex, above it the pyramid's gradient dMip).
FG_HDI float* mipGradPtr(const Kern& k, int l) { return l == 0 ? k.dTex.f : k.dMip.f + k.mipT.off[l]; }
// Screen-space Jacobian of the UVs of a pixel: with b_i = e_i / S and e_i = p . c_i, db_i/dx = (c_i.x - b_i sum_j
// c_j.x) / S (the same with y), and du/dx = sum_i db_i/dx u_i. Then the level of detail
// lod = log2(max(|(du/dx W, dv/dx H)|, |(du/dy W, dv/dy H)|)) + bias, clamped to [0, mipL - 1] (0 for NaN).
FG_HDI float mipLod(const Kern& k, const float* b, float S, const V3* c, const float (*uvi)[2]) {
  const float cx = c[0].x + c[1].x + c[2].x, cy = c[0].y + c[1].y + c[2].y, inv = 1.f / S;
  float dudx = 0.f, dvdx = 0.f, dudy = 0.f, dvdy = 0.f;
  for (int i = 0; i < 3; ++i) {
    const float bx = (c[i].x - b[i] * cx) * inv, by = (c[i].y - b[i] * cy) * inv;
    dudx += bx * uvi[i][0];
    dvdx += bx * uvi[i][1];
    dudy += by * uvi[i][0];
    dvdy += by * uvi[i][1];
  }
  const float W = float(k.tw), H = float(k.th);
  const float sx = dudx * W * (dudx * W) + dvdx * H * (dvdx * H), sy = dudy * W * (dudy * W) + dvdy * H * (dvdy * H);
  float lod = 0.5f * log2f(fmaxf(sx, sy)) + k.lodBias;
  if (!(lod > 0.f)) lod = 0.f;
  const float top = float(k.mipL - 1);
  return lod < top ? lod : top;
}
// Trilinear footprint: bilinear taps on levels l0 and l1 = min(l0 + 1, mipL - 1), weights 1 - f and f.
struct MipFoot {
  Tap tap[2];
  const float* src[2];
  int lvl[2];
  float f;
};
FG_HDI MipFoot mipFoot(const Kern& k, const float* b, float S, const V3* c, const float (*uvi)[2], float u, float v) {
  MipFoot m;
  const float lod = mipLod(k, b, S, c, uvi);
  const int l0 = int(lod);
  m.f = lod - float(l0);
  m.lvl[0] = l0;
  m.lvl[1] = l0 + 1 < k.mipL ? l0 + 1 : l0;
  FG_RASTER_UNROLL
  for (int j = 0; j < 2; ++j) {
    m.tap[j] = texTapDims(k, u, v, k.mipT.w[m.lvl[j]], k.mipT.h[m.lvl[j]]);
    m.src[j] = mipLevelPtr(k, m.lvl[j]);
  }
  return m;
}
// Channel c of the bilinear footprint tp on a texture (or mip level) src of C channels.
FG_HDI float tapSample(const float* src, int C, const Tap& tp, int c) {
  float r = 0.f;
  for (int j = 0; j < 4; ++j) r += tp.w[j] * src[tp.idx[j] * C + c];
  return r;
}
// Its share of d(colour)/d(texel coordinates), times gc, added to (dtx, dty).
FG_HDI void tapChannelGrad(const float* src, int C, const Tap& tp, int c, float gc, float& dtx, float& dty) {
  const float t0 = src[tp.idx[0] * C + c], t1 = src[tp.idx[1] * C + c], t2 = src[tp.idx[2] * C + c], t3 = src[tp.idx[3] * C + c];
  dtx += gc * ((1.f - tp.fy) * (t1 - t0) + tp.fy * (t3 - t2));
  dty += gc * ((1.f - tp.fx) * (t2 - t0) + tp.fx * (t3 - t1));
}
FG_HDI float mipSample(const Kern& k, const MipFoot& m, int c) {
  const float r = tapSample(m.src[0], k.C, m.tap[0], c);
  if (m.f == 0.f) return r;
  return (1.f - m.f) * r + m.f * tapSample(m.src[1], k.C, m.tap[1], c);
}

// Everything the shading of one covered pixel needs (the depth is pixDepth(pg), computed only where used).
struct PixelGeom {
  TriEdges g;
  float e[3], b[3], S;
  float px, py;
};
FG_HDI bool pixelGeom(const Kern& k, int v, int t, int x, int y, PixelGeom& pg) {
  pg.g = triEdgesC(k, v, t);
  pg.px = float(x) + 0.5f;
  pg.py = float(y) + 0.5f;
  for (int i = 0; i < 3; ++i) pg.e[i] = edgeAt(pg.g.c[i], pg.px, pg.py);
  pg.S = add(add(pg.e[0], pg.e[1]), pg.e[2]);
  for (int i = 0; i < 3; ++i) pg.b[i] = div(pg.e[i], pg.S);
  return pg.S != 0.f;
}
FG_HDI float pixDepth(const PixelGeom& pg) { return div(pg.g.D, pg.S); }  // EXACT (= covers' z)
// The UVs of triangle t's corners: from the per-triangle table when the forward built one (one dependent load
// less than uvTri -> uvs; the same values), else from uvTri/uvs.
FG_HDI void triUvs(const Kern& k, int t, float (*uvi)[2]) {
  if (k.uvT) {
#if defined(__CUDA_ARCH__)
    const float4 a = __ldg(reinterpret_cast<const float4*>(k.uvT + 8 * int64_t(t)));
    const float2 b = __ldg(reinterpret_cast<const float2*>(k.uvT + 8 * int64_t(t) + 4));
    uvi[0][0] = a.x; uvi[0][1] = a.y; uvi[1][0] = a.z; uvi[1][1] = a.w; uvi[2][0] = b.x; uvi[2][1] = b.y;
#else
    const float* s = k.uvT + 8 * int64_t(t);
    for (int i = 0; i < 3; ++i) { uvi[i][0] = s[2 * i]; uvi[i][1] = s[2 * i + 1]; }
#endif
    return;
  }
  for (int i = 0; i < 3; ++i) {
    const int ui = k.uvTri[3 * t + i];
    uvi[i][0] = k.uvs[2 * ui];
    uvi[i][1] = k.uvs[2 * ui + 1];
  }
}
// Element t of the per-triangle UV table.
FG_HDI void uvTableElem(const Kern& k, int t) {
  float* d = k.uvT + 8 * int64_t(t);
  for (int i = 0; i < 3; ++i) {
    const int ui = k.uvTri[3 * t + i];
    d[2 * i] = k.uvs[2 * ui];
    d[2 * i + 1] = k.uvs[2 * ui + 1];
  }
  d[6] = 0.f;
  d[7] = 0.f;
}
FG_HDI void pixCoords(const Kern& k, int64_t pix, int& v, int& x, int& y) {
  const int64_t HW = int64_t(k.H) * k.W;
  v = int(pix / HW);
  int64_t r = pix - int64_t(v) * HW;
  y = int(r / k.W);
  x = int(r - int64_t(y) * k.W);
}
// Interpolated unit normal (world, n) and its camera-frame rotation (nc) of a pixel of triangle t.
FG_HDI void pixNormal(const Kern& k, int v, int t, const PixelGeom& pg, V3& n, V3& nc) {
  V3 m = mk(0, 0, 0);
  for (int i = 0; i < 3; ++i) m = m + pg.b[i] * loadP(k.vn, k.tri[3 * t + i]);
  float len = sqrtf(dot(m, m));
  n = len > 0.f ? (1.f / len) * m : mk(0, 0, 0);
  nc = rotate(k.E + 12 * v, n);
}
FG_HDI float shGrey(const Kern& k, int v, V3 n, V3 nc) {
  float Y[9];
  shBasis(k.shFrame == int(ShFrame::Camera) ? nc : n, Y);
  float s = 0.f;
  for (int i = 0; i < 9; ++i) s += k.sh[9 * v + i] * Y[i];
  return s;
}
// Pre-antialiasing shading of one pixel (the same function in the forward, the antialiasing blend and the
// backward, so a neighbour's value is recomputed instead of stored). `key` is the pixel's depth key.
// Mip = true: trilinear mip-mapped texture (k.mipL > 0); Mip = false: bilinear (the default path, unchanged).
template <bool Mip>
struct PixShadeT {
  int hit;
  float grey;  // SH grey (0 off the mesh or without sh)
  Tap tap;     // bilinear footprint (valid when hit and a texture is bound)
};
template <>
struct PixShadeT<true> {
  int hit;
  float grey;
  MipFoot m = {};  // trilinear footprint (valid when hit and a texture is bound)
};
using PixShade = PixShadeT<false>;
// The pixel's UVs (per corner and interpolated).
FG_HDI void pixUv(const Kern& k, int t, const PixelGeom& pg, float (*uvi)[2], float& u, float& vv) {
  triUvs(k, t, uvi);
  u = 0.f;
  vv = 0.f;
  for (int i = 0; i < 3; ++i) {
    u += pg.b[i] * uvi[i][0];
    vv += pg.b[i] * uvi[i][1];
  }
}
template <bool Mip>
FG_HDI void pixTexture(const Kern& k, int t, const PixelGeom& pg, PixShadeT<Mip>& s) {
  float uvi[3][2], u, vv;
  pixUv(k, t, pg, uvi, u, vv);
  if constexpr (Mip) s.m = mipFoot(k, pg.b, pg.S, pg.g.c, uvi, u, vv);
  else s.tap = texTap(k, u, vv);
}
template <bool Mip = false>
FG_HDI PixShadeT<Mip> pixShade(const Kern& k, int v, int x, int y, unsigned long long key) {
  PixShadeT<Mip> s;
  s.hit = 0;
  s.grey = 0.f;
  if (key == kNoKey) return s;
  int t = int(uint32_t(key));
  PixelGeom pg;
  if (!pixelGeom(k, v, t, x, y, pg)) return s;
  s.hit = 1;
  if (k.sh) {
    V3 n, nc;
    pixNormal(k, v, t, pg, n, nc);
    s.grey = shGrey(k, v, n, nc);
  }
  if (k.tex) pixTexture<Mip>(k, t, pg, s);
  return s;
}
template <bool Mip>
FG_HDI float shadeChannel(const Kern& k, const PixShadeT<Mip>& s, int c) {
  if (!s.hit) return k.background ? k.background[c] : 0.f;
  if constexpr (Mip) return mipSample(k, s.m, c);
  else return tapSample(k.tex, k.C, s.tap, c);
}

// ---- antialiasing ------------------------------------------------------------------------------------------------

// Silhouette flag of (view v, triangle t) (evaluated once every triangle's facing is known, stored as a bit of
// k.silBits): true when the triangle is not degenerate and one of its edges has no neighbour or a neighbour that
// faces the other way in this view. A pair whose nearer triangle has flag 0 can never be active (whatever edge
// the segment leaves it through is interior), so the per-pixel passes reject it after one (cached) load.
FG_HDI bool silhouetteFlag(const Kern& k, int v, int t) {
  const int o = k.facing[int64_t(v) * k.T + t];
  if (o == 0) return false;
  for (int q = 0; q < 3; ++q) {
    const int nb = k.adj[3 * t + q];
    if (nb < 0 || k.facing[int64_t(v) * k.T + nb] != o) return true;
  }
  return false;
}
// Word w of view v of the bitset (the CPU twin; CUDA builds the same word with a warp ballot).
FG_HDI void silhouetteWordElem(const Kern& k, int v, int w) {
  uint32_t bits = 0;
  for (int j = 0; j < 32; ++j) {
    const int t = 32 * w + j;
    if (t < k.T && silhouetteFlag(k, v, t)) bits |= 1u << j;
  }
  k.silBits[int64_t(v) * k.silWords + w] = bits;
}
FG_HDI bool maySilhouette(const Kern& k, int v, int t) {
  if (!k.silBits) return true;
#if defined(__CUDA_ARCH__)
  const uint32_t w = __ldg(k.silBits + int64_t(v) * k.silWords + (t >> 5));
#else
  const uint32_t w = k.silBits[int64_t(v) * k.silWords + (t >> 5)];
#endif
  return (w >> (t & 31)) & 1u;
}

// One antialiasing pair seen from one of its pixels ("me"): active when it blends across a silhouette edge.
struct Pair {
  int active;
  int meBlended;  // 1: this pixel takes alpha of the other one; 0: the other pixel takes alpha of this one
  float alpha, dadt;
  int tri, edge, orient;
  float ef, eo;            // oriented edge values at F's pixel and at the other pixel
  float fpx, fpy, opx, opy;  // pixel centres
};
// Neighbour d of (x, y): 0 left, 1 right, 2 up, 3 down; false outside the image.
FG_HDI bool neighbourOf(const Kern& k, int x, int y, int d, int& nx, int& ny) {
  nx = x + (d == 0 ? -1 : (d == 1 ? 1 : 0));
  ny = y + (d == 2 ? -1 : (d == 3 ? 1 : 0));
  return nx >= 0 && nx < k.W && ny >= 0 && ny < k.H;
}
// The pair of adjacent pixels (x, y) (key ka) and (nx, ny) (key kb) in view v. The nearer pixel's triangle F and
// the edge of F that the segment between the centres leaves F through decide it (symmetric in the two pixels).
FG_HDI Pair evalPair(const Kern& k, int v, int x, int y, unsigned long long ka, int nx, int ny, unsigned long long kb) {
  Pair pr;
  pr.active = 0;
  if (uint32_t(ka) == uint32_t(kb)) return pr;  // same triangle, or both background
  const bool fAtA = ka < kb;                     // nearer (background keys are ~0)
  const int t = int(uint32_t(fAtA ? ka : kb));
  if (!maySilhouette(k, v, t)) return pr;
  const TriEdges g = triEdgesC(k, v, t);
  if (!g.orient) return pr;
  int fx = fAtA ? x : nx, fy = fAtA ? y : ny, ox = fAtA ? nx : x, oy = fAtA ? ny : y;
  float fpx = float(fx) + 0.5f, fpy = float(fy) + 0.5f, opx = float(ox) + 0.5f, opy = float(oy) + 0.5f;
  int best = -1;
  float bestT = 2.f, bef = 0.f, beo = 0.f;
  for (int i = 0; i < 3; ++i) {
    float ef = float(g.orient) * edgeAt(g.c[i], fpx, fpy), eo = float(g.orient) * edgeAt(g.c[i], opx, opy);
    if (eo < 0.f && ef >= 0.f) {
      float tt = ef / (ef - eo);
      if (tt < bestT) { bestT = tt; best = i; bef = ef; beo = eo; }
    }
  }
  if (best < 0) return pr;
  int nb = k.adj[3 * t + best];
  if (nb >= 0 && k.facing[int64_t(v) * k.T + nb] == g.orient) return pr;  // interior edge: no silhouette
  pr.active = 1;
  pr.tri = t;
  pr.edge = best;
  pr.orient = g.orient;
  pr.ef = bef;
  pr.eo = beo;
  pr.fpx = fpx; pr.fpy = fpy; pr.opx = opx; pr.opy = opy;
  // t > 1/2: the other pixel (O) takes (t - 1/2) of F's; else F's pixel takes (1/2 - t) of O's
  if (bestT > 0.5f) { pr.meBlended = fAtA ? 0 : 1; pr.alpha = bestT - 0.5f; pr.dadt = 1.f; }
  else { pr.meBlended = fAtA ? 1 : 0; pr.alpha = 0.5f - bestT; pr.dadt = -1.f; }
  return pr;
}
// aaCode of a pixel (written by the forward resolve when antialiasing): bit d (d = 0 left, 1 right, 2 up, 3 down)
// = the pair with neighbour d is active and this pixel is the blended one; bit 4 + d = active and the neighbour is
// the blended one. The backward evaluates only the pairs whose bits are set (most pixels have none).
FG_HDI float keyMask(unsigned long long key) { return key == kNoKey ? 0.f : 1.f; }

// (Inlined: a non-inlined device function taking the Kern by reference would copy the kernel's whole parameter
// block to local memory in every thread.)
#define FG_RASTER_COLD FG_HDI
// The pre-antialiasing colour of a pixel, all channels, to k.oColor (and to the pixel's preShade record when rec is
// not null). CC > 0: the channel count known at compile time (3, 4: the loops unroll, the four texel rows are
// addressed once; the sums are tapSample's, in its order); CC = 0: k.C at run time.
template <bool Mip, int CC>
FG_HDI void writeColor(const Kern& k, const PixShadeT<Mip>& s, int64_t pix, float* rec) {
  const int S = k.C + 1;
  if constexpr (CC > 0 && !Mip) {
    float cv[CC];
    if (s.hit) {
      const float* p0 = k.tex + s.tap.idx[0] * CC;
      const float* p1 = k.tex + s.tap.idx[1] * CC;
      const float* p2 = k.tex + s.tap.idx[2] * CC;
      const float* p3 = k.tex + s.tap.idx[3] * CC;
      FG_RASTER_UNROLL
      for (int c = 0; c < CC; ++c) {
        float r = 0.f;
        r += s.tap.w[0] * p0[c];
        r += s.tap.w[1] * p1[c];
        r += s.tap.w[2] * p2[c];
        r += s.tap.w[3] * p3[c];
        cv[c] = r;
      }
    } else {
      FG_RASTER_UNROLL
      for (int c = 0; c < CC; ++c) cv[c] = k.background ? k.background[c] : 0.f;
    }
    float* o = k.oColor + pix * CC;
    FG_RASTER_UNROLL
    for (int c = 0; c < CC; ++c) {
#if defined(__CUDA_ARCH__)
      __stcs(o + c, cv[c]);  // (not read again by these passes: evict-first)
#else
      o[c] = cv[c];
#endif
    }
    if (rec)
      FG_RASTER_UNROLL
      for (int c = 0; c < CC; ++c) rec[pix * S + c] = cv[c];
  } else {
    for (int c = 0; c < k.C; ++c) {
      const float cv = shadeChannel(k, s, c);
      k.oColor[pix * k.C + c] = cv;
      if (rec) rec[pix * S + c] = cv;
    }
  }
}

// ---- forward: resolve + shading + antialiasing, one pass per pixel ------------------------------------------------

// Returns the pixel's aaCode (0 without antialiasing). CC: see writeColor (CUDA instantiates 3 and 4). Geom =
// false: none of the geometry outputs (ids, barycentrics, depth, normal, depth image) is requested, and their code
// is compiled out (most of a pixel's instructions are index arithmetic and output checks, not shading). Pixel indices are 32-bit (views x H x W <
// 2^31 is checked); arrays of several values per pixel widen.
template <bool Mip = false, bool Geom = true, int CC = 0>
FG_HDI int resolvePixel(const Kern& k, int v, int x, int y) {
  const int pixI = (v * k.H + y) * k.W + x;
  const int64_t pix = pixI;
  const unsigned long long* kp = k.keys + pix;
  const unsigned long long key = *kp;
  uint32_t tu = uint32_t(key & 0xffffffffull);
  // the neighbours' triangle ids (the low words of their keys), loaded up front so that the four loads overlap
  // each other and the shading's. An out-of-image neighbour reads as this pixel's own id (no pair): its offset is
  // clamped to 0, so the loads need no branches.
  const int noff[4] = {-1, 1, -k.W, k.W};
  uint32_t nid[4] = {tu, tu, tu, tu};
  if (k.antialias) {
    const uint32_t* kp32 = reinterpret_cast<const uint32_t*>(kp);
    nid[0] = kp32[x > 0 ? -2 : 0];
    nid[1] = kp32[x + 1 < k.W ? 2 : 0];
    nid[2] = kp32[y > 0 ? -2 * k.W : 0];
    nid[3] = kp32[y + 1 < k.H ? 2 * k.W : 0];
  }
  PixelGeom pg;
  bool hit = key != kNoKey && pixelGeom(k, v, int(tu), x, y, pg);
  PixShadeT<Mip> own;
  own.hit = hit ? 1 : 0;
  own.grey = 0.f;
  if (!Geom) {
    if (hit && k.sh) {
      V3 n, nc;
      pixNormal(k, v, int(tu), pg, n, nc);
      own.grey = shGrey(k, v, n, nc);
    }
    if (hit && k.tex) pixTexture<Mip>(k, int(tu), pg, own);
  } else if (!hit) {
    if (k.oTri) k.oTri[pix] = -1;
    if (k.oBary) { k.oBary[2 * pix] = 0.f; k.oBary[2 * pix + 1] = 0.f; }
    if (k.oDepth) k.oDepth[pix] = 0.f;
    if (k.oNormal) { k.oNormal[3 * pix] = 0.f; k.oNormal[3 * pix + 1] = 0.f; k.oNormal[3 * pix + 2] = 0.f; }
    if (k.oDepthImg) k.oDepthImg[pix] = 0.f;
  } else {
    int t = int(tu);
    if (k.oTri) k.oTri[pix] = t;
    if (k.oBary) { k.oBary[2 * pix] = pg.b[0]; k.oBary[2 * pix + 1] = pg.b[1]; }
    if (k.oDepth) k.oDepth[pix] = pixDepth(pg);
    if (k.oDepthImg) {
      float dn = k.depthRange ? k.depthRange[2 * v] : k.nearZ, df = k.depthRange ? k.depthRange[2 * v + 1] : k.farZ;
      float d = (df - pixDepth(pg)) / (df - dn);
      k.oDepthImg[pix] = fminf(fmaxf(d, 0.f), 1.f);
    }
    if (k.oNormal || k.sh) {
      V3 n, nc;
      pixNormal(k, v, int(tu), pg, n, nc);
      if (k.oNormal) { k.oNormal[3 * pix] = nc.x; k.oNormal[3 * pix + 1] = nc.y; k.oNormal[3 * pix + 2] = nc.z; }
      if (k.sh) own.grey = shGrey(k, v, n, nc);
    }
    if (k.tex) {
      pixTexture<Mip>(k, t, pg, own);
    }
  }
  const bool wantGrey = k.oGrey && k.sh, wantColor = k.oColor && k.tex;
  const float m0 = keyMask(key);
  if (!k.antialias) {
    if (wantColor) writeColor<Mip, CC>(k, own, pix, nullptr);
    if (k.oMask) k.oMask[pix] = m0;
    if (wantGrey) k.oGrey[pix] = own.grey;
    return 0;
  }
  // antialiasing: find the pixel's active silhouette pairs (most are rejected by the triangle ids or the
  // silhouette bit) and record them in k.aaCode. The mask blend is done here; the colour and grey blends, which
  // need the other pixel's shading, are resolveBlendPixel's (a second pass over the pixels with blended pairs).
  float mo = m0;
  int code = 0;
  // (a pixel whose four neighbours all show its own triangle, or all the background, has no pair: the common case
  // takes one branch)
  if (nid[0] != tu || nid[1] != tu || nid[2] != tu || nid[3] != tu) {
    const bool ownMay = tu != kNoTri && maySilhouette(k, v, int(tu));
    FG_RASTER_UNROLL
    for (int d = 0; d < 4; ++d) {
      if (nid[d] == tu) continue;
      // the nearer triangle of the pair is one of the two: neither silhouette bit set, no pair
      if (!ownMay && (nid[d] == kNoTri || !maySilhouette(k, v, int(nid[d])))) continue;
      int nx, ny;
      neighbourOf(k, x, y, d, nx, ny);
      const unsigned long long nkey = kp[noff[d]];
      const Pair pr = evalPair(k, v, x, y, key, nx, ny, nkey);
      if (!pr.active) continue;
      code |= pr.meBlended ? 1 << d : 16 << d;
      if (k.aaAlpha) k.aaAlpha[pix * 4 + d] = pr.alpha;
      if (pr.meBlended) mo += pr.alpha * (keyMask(nkey) - m0);
    }
  }
  const int S = k.C + 1;
  if (wantColor) writeColor<Mip, CC>(k, own, pix, code ? k.preShade : nullptr);
  if (k.oMask) k.oMask[pix] = mo;
  if (wantGrey) k.oGrey[pix] = own.grey;
  if (code && k.preShade) k.preShade[pix * S + k.C] = own.grey;
  if (k.aaCode) k.aaCode[pix] = uint8_t(code);
  return code;
}
// The antialiasing blend of the colour and grey of a pixel with blended pairs (code & 15 of its aaCode), after
// resolvePixel: each such pair adds alpha (other - own) of the two pixels' pre-antialiasing shading, which
// resolvePixel stored (k.preShade) for every pixel with an active pair, with the pair's alpha (k.aaAlpha).
FG_HDI void resolveBlendPixel(const Kern& k, int v, int x, int y, int code) {
  const bool wantGrey = k.oGrey && k.sh, wantColor = k.oColor && k.tex;
  if (!wantGrey && !wantColor) return;
  const int64_t base = int64_t(v) * k.H * k.W, pix = base + int64_t(y) * k.W + x;
  const int S = k.C + 1;
  const float* own = k.preShade + pix * S;
  float alpha[4] = {0.f, 0.f, 0.f, 0.f};
  int64_t npix[4] = {0, 0, 0, 0};
  FG_RASTER_UNROLL
  for (int d = 0; d < 4; ++d) {
    int nx, ny;
    if (!((code >> d) & 1) || !neighbourOf(k, x, y, d, nx, ny)) continue;
    alpha[d] = k.aaAlpha[pix * 4 + d];
    npix[d] = base + int64_t(ny) * k.W + nx;
  }
  if (wantGrey) {
    float go = own[k.C];
    FG_RASTER_UNROLL
    for (int d = 0; d < 4; ++d)
      if (alpha[d] != 0.f) go += alpha[d] * (k.preShade[npix[d] * S + k.C] - own[k.C]);
    k.oGrey[pix] = go;
  }
  if (!wantColor) return;
  for (int c = 0; c < k.C; ++c) {
    const float cp = own[c];
    float acc = cp;
    FG_RASTER_UNROLL
    for (int d = 0; d < 4; ++d)
      if (alpha[d] != 0.f) acc += alpha[d] * (k.preShade[npix[d] * S + c] - cp);
    k.oColor[pix * k.C + c] = acc;
  }
}
// ---- backward ------------------------------------------------------------------------------------------------------

// Scale of the dW accumulators in fixed-point mode: ~ the factor from an edge-function gradient to a world
// position gradient (|K| |P|), so the fixed-point resolution matches that of the position gradients.
FG_HDI float wScale(const Kern& k, int v, V3 a, V3 b, V3 c) {
  if (!k.dW.fx) return 1.f;
  const float* Kv = k.K + 4 * v;
  float kk = fabsf(Kv[0]) + fabsf(Kv[1]) + fabsf(Kv[2]) + fabsf(Kv[3]);
  float m = fmaxf(fmaxf(fmaxf(fabsf(a.x), fabsf(a.y)), fmaxf(fabsf(a.z), fabsf(b.x))),
                  fmaxf(fmaxf(fabsf(b.y), fabsf(b.z)), fmaxf(fmaxf(fabsf(c.x), fabsf(c.y)), fabsf(c.z))));
  float s = kk * m;
  return (s > 0.f && s < 1e30f) ? s : 1.f;
}
// wScale of triangle t in view v (loads its vertices only in fixed-point mode).
FG_HDI float wScaleTri(const Kern& k, int v, int t) {
  if (!k.dW.fx) return 1.f;
  const float* hv = k.hv + int64_t(v) * k.P * 3;
  return wScale(k, v, loadP(hv, k.tri[3 * t]), loadP(hv, k.tri[3 * t + 1]), loadP(hv, k.tri[3 * t + 2]));
}
// Gradient w.r.t. a pixel-homogeneous vertex of view v -> world position gradient.
FG_HDI V3 hvToWorld(const Kern& k, int v, V3 g) {
  const float* Kv = k.K + 4 * v;
  V3 dc = mk(Kv[0] * g.x, Kv[1] * g.y, Kv[2] * g.x + Kv[3] * g.y + g.z);
  return rotateT(k.E + 12 * v, dc);
}

// Antialiasing backward of one active pair in which this pixel is the blended one: the silhouette edge moves
// (dL/dalpha -> dL/dt -> the edge-function accumulators of the silhouette triangle). Rare (silhouettes only).
// The edge-function gradient of an active pair from its dL/dalpha, added to the dW accumulators.
FG_HDI void aaEdgeAdd(const Kern& k, int v, const Pair& pr, float dLda) {
  if (dLda == 0.f) return;
  float dLdt = dLda * pr.dadt;
  float den = pr.ef - pr.eo;
  float inv2 = 1.f / (den * den);
  float gf = dLdt * (-pr.eo) * inv2 * float(pr.orient), go = dLdt * pr.ef * inv2 * float(pr.orient);
  const float s = wScaleTri(k, v, pr.tri);
  int64_t b = (int64_t(v) * k.T + pr.tri) * kAccStride + 3 * pr.edge;
  k.dW.add(b, (gf * pr.fpx + go * pr.opx) * s);
  k.dW.add(b + 1, (gf * pr.fpy + go * pr.opy) * s);
  k.dW.add(b + 2, (gf + go) * s);
}
// What one pixel contributes to the per-(view, triangle) accumulators of its own triangle (key = v*T + t, or
// -1): w = dW (edge-function gradients, already times wScale), nn = dN (corner normal gradients).
struct PixGrad {
  long long key;
  float w[9];
  float nn[9];
  // k.texStage: the bilinear footprints (slot 1: the second level of a trilinear one) with their mip levels and
  // (antialiasing-adjusted, level-weighted) colour gradients whose texel gradients the kernel adds (tapOn: bit j
  // = slot j in use)
  int tapOn;
  Tap tap[2];
  int tlvl[2];
  float tg[2][4];
};

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
// sm_90 vector atomics for the texture gradient of one bilinear row (texels ia, ib; weights wa, wb) with 3 or 4
// channels (k.texVec: float sink, 16-byte aligned). 3 channels: the 6 floats of two adjacent texels go out as
// 2 to 4 aligned float4/float2/float reductions instead of 6 scalar ones.
__device__ __forceinline__ void texRowAtomics(float* f, int C, int ia, int ib, float wa, float wb, const float* g) {
  if (C == 4) {
    atomicAdd(reinterpret_cast<float4*>(f + ia * 4), make_float4(wa * g[0], wa * g[1], wa * g[2], wa * g[3]));
    atomicAdd(reinterpret_cast<float4*>(f + ib * 4), make_float4(wb * g[0], wb * g[1], wb * g[2], wb * g[3]));
    return;
  }
  const float a0 = wa * g[0], a1 = wa * g[1], a2 = wa * g[2], b0 = wb * g[0], b1 = wb * g[1], b2 = wb * g[2];
  if (ib != ia + 1) {
    float* pa = f + ia * 3;
    float* pb = f + ib * 3;
    atomicAdd(pa, a0); atomicAdd(pa + 1, a1); atomicAdd(pa + 2, a2);
    atomicAdd(pb, b0); atomicAdd(pb + 1, b1); atomicAdd(pb + 2, b2);
    return;
  }
  const int o = ia * 3;
  float* p = f + o;
  switch (o & 3) {
    case 0:
      atomicAdd(reinterpret_cast<float4*>(p), make_float4(a0, a1, a2, b0));
      atomicAdd(reinterpret_cast<float2*>(p + 4), make_float2(b1, b2));
      break;
    case 1:
      atomicAdd(p, a0);
      atomicAdd(reinterpret_cast<float2*>(p + 1), make_float2(a1, a2));
      atomicAdd(reinterpret_cast<float2*>(p + 3), make_float2(b0, b1));
      atomicAdd(p + 5, b2);
      break;
    case 2:
      atomicAdd(reinterpret_cast<float2*>(p), make_float2(a0, a1));
      atomicAdd(reinterpret_cast<float4*>(p + 2), make_float4(a2, b0, b1, b2));
      break;
    default:
      atomicAdd(p, a0);
      atomicAdd(reinterpret_cast<float4*>(p + 1), make_float4(a1, a2, b0, b1));
      atomicAdd(p + 5, b2);
      break;
  }
}
// Both rows of a bilinear footprint tp (texVec), colour gradient g times the texel weights, into f.
__device__ __forceinline__ void tapAtomics(float* f, int C, const Tap& tp, const float* g) {
  texRowAtomics(f, C, tp.idx[0], tp.idx[1], tp.w[0], tp.w[1], g);
  texRowAtomics(f, C, tp.idx[2], tp.idx[3], tp.w[2], tp.w[3], g);
}
#endif

// The whole backward of one pixel (antialiasing, then shading): texture gradients go straight to the dTex sink,
// antialiasing edge gradients to the dW sink of the silhouette triangle, and the gradients of the pixel's own
// triangle are returned in `out` (the caller adds them: serially on the CPU, warp-aggregated on CUDA).
// The antialiasing pairs come from the forward's record (aaCode, aaAlpha): no pair is re-evaluated here.
template <bool Mip = false>
FG_HDI void backwardPixel(const Kern& k, int v, int x, int y, PixGrad& out) {
  // (32-bit pixel index: views x H x W < 2^31 is checked; neighbours are at fixed offsets)
  const int64_t pix = (v * k.H + y) * k.W + x;
  const int noff[4] = {-1, 1, -k.W, k.W};
  // the pairs the forward recorded as active
  const int code = k.antialias && k.aaCode ? int(k.aaCode[pix]) : 0;
  // only the triangle id is needed: the low word of the depth key
  const uint32_t id = reinterpret_cast<const uint32_t*>(k.keys)[2 * pix];
  const unsigned long long key = id == kNoTri ? kNoKey : (unsigned long long)id;
  const bool hit = key != kNoKey;
  const int t = int(uint32_t(key));
  const bool wantC = k.gColor != nullptr && k.tex != nullptr;
  // Loads that depend only on the key go first, ahead of the (rare) antialiasing work: the triangle's cached
  // edges, its UVs and, on the vector-atomic path, the pixel's colour gradient.
  TriEdges ge = {};
  float uvi[3][2] = {{0.f, 0.f}, {0.f, 0.f}, {0.f, 0.f}};
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  float g4[4] = {0.f, 0.f, 0.f, 0.f};
#endif
  if (hit) {
    ge = triEdgesC(k, v, t);
    if (wantC) triUvs(k, t, uvi);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (wantC && k.texVec)
#pragma unroll
      for (int c = 0; c < 4; ++c)
        if (c < k.C) g4[c] = __ldcs(k.gColor + pix * k.C + c);  // (read once: evict-first)
#endif
  }
  float keep = 1.f;
  // pairs where the neighbour blends this pixel in: alpha per direction (registers: constant indices after unrolling)
  float srcAlpha[4] = {0.f, 0.f, 0.f, 0.f};
  int srcMask = 0;
  if (code) {
    FG_RASTER_UNROLL
    for (int d = 0; d < 4; ++d) {
      if (!((code >> d) & 0x11)) continue;
      const float a = k.aaAlpha[pix * 4 + d];
      if ((code >> d) & 1) {
        keep -= a;  // (the silhouette edge's own gradient: aaEdgePixel, a pass over the pixels with blended pairs)
      } else {
        srcAlpha[d] = a;
        srcMask |= 1 << d;
      }
    }
  }
  // shading of the pixel's own triangle
  if (!hit) return;
  float gG = 0.f;
  if (k.gGrey && k.sh) {
    gG = k.gGrey[pix] * keep;
    if (srcMask)
      FG_RASTER_UNROLL
      for (int d = 0; d < 4; ++d) {
        int nx, ny;
        if ((srcMask >> d) & 1 && neighbourOf(k, x, y, d, nx, ny)) gG += srcAlpha[d] * k.gGrey[pix + noff[d]];
      }
  }
  bool wantG = gG != 0.f;
  if (!wantC && !wantG) return;
  if (!ge.orient) return;
  PixelGeom pg;
  pg.g = ge;
  pg.px = float(x) + 0.5f;
  pg.py = float(y) + 0.5f;
  for (int i = 0; i < 3; ++i) pg.e[i] = edgeAt(pg.g.c[i], pg.px, pg.py);
  pg.S = add(add(pg.e[0], pg.e[1]), pg.e[2]);
  if (pg.S == 0.f) return;
  for (int i = 0; i < 3; ++i) pg.b[i] = div(pg.e[i], pg.S);  // EXACT: the forward's barycentrics
  const float invS = 1.f / pg.S;
  float db[3] = {0.f, 0.f, 0.f};
  // the texels' differences (d colour / d texel coordinates) only matter for position gradients: a texture-only
  // backward (the texture phase) skips their loads
  const bool posGrad = k.dW.on();
  if (wantC) {
    float u = 0.f, vv = 0.f;
    for (int i = 0; i < 3; ++i) {
      u += pg.b[i] * uvi[i][0];
      vv += pg.b[i] * uvi[i][1];
    }
    // upstream colour gradient before antialiasing: this pixel's share plus what its neighbours blended in
#define FG_RASTER_GC(c, raw)                                                                             \
  float gc = (raw) * keep;                                                                               \
  if (srcMask)                                                                                           \
    FG_RASTER_UNROLL                                                                                     \
    for (int d = 0; d < 4; ++d) {                                                                        \
      int nx, ny;                                                                                        \
      if ((srcMask >> d) & 1 && neighbourOf(k, x, y, d, nx, ny))                                         \
        gc += srcAlpha[d] * k.gColor[(pix + noff[d]) * k.C + (c)];                                       \
    }
    float du, dv;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    // vector-atomic path: the (antialiasing-adjusted) colour gradient of the first 3-4 channels, once
    if (k.texVec)
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        if (c < k.C) {
          FG_RASTER_GC(c, g4[c])
          g4[c] = gc;
        }
      }
#endif
    if constexpr (Mip) {
      // trilinear: level j of the footprint has weight lw[j]; texel gradients go to level 0 (dTex) or to the
      // pyramid's gradient (dMip, pushed down to level 0 by mipReduceElem); the lod is held constant
      const MipFoot m = mipFoot(k, pg.b, pg.S, pg.g.c, uvi, u, vv);
      const int nl = m.f != 0.f ? 2 : 1;
      const float lw[2] = {1.f - m.f, m.f};
      float dtx[2] = {0.f, 0.f}, dty[2] = {0.f, 0.f};
      int64_t off[2] = {0, 0};
      FG_RASTER_UNROLL
      for (int j = 0; j < 2; ++j) off[j] = m.lvl[j] == 0 ? 0 : k.mipT.off[m.lvl[j]];
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
      if (k.texVec) {
        FG_RASTER_UNROLL
        for (int j = 0; j < 2; ++j) {
          if (j >= nl) break;
          float gj[4];
#pragma unroll
          for (int c = 0; c < 4; ++c) {
            gj[c] = lw[j] * g4[c];
            if (c < k.C && gj[c] != 0.f && posGrad) tapChannelGrad(m.src[j], k.C, m.tap[j], c, gj[c], dtx[j], dty[j]);
          }
          if (k.texStage) {
            out.tapOn |= 1 << j;
            out.tap[j] = m.tap[j];
            out.tlvl[j] = m.lvl[j];
#pragma unroll
            for (int c = 0; c < 4; ++c) out.tg[j][c] = gj[c];
            continue;
          }
          tapAtomics(mipGradPtr(k, m.lvl[j]), k.C, m.tap[j], gj);
        }
      } else
#endif
      {
        for (int c = 0; c < k.C; ++c) {
          FG_RASTER_GC(c, k.gColor[pix * k.C + c])
          if (gc == 0.f) continue;
          FG_RASTER_UNROLL
          for (int j = 0; j < 2; ++j) {
            if (j >= nl) break;
            const float gj = lw[j] * gc;
            if (posGrad) tapChannelGrad(m.src[j], k.C, m.tap[j], c, gj, dtx[j], dty[j]);
            const Sink sk = m.lvl[j] == 0 ? k.dTex : k.dMip;
            if (sk.on())
              for (int q = 0; q < 4; ++q) sk.add(off[j] + m.tap[j].idx[q] * k.C + c, m.tap[j].w[q] * gj);
          }
        }
      }
      du = dtx[0] * m.tap[0].dtdu + dtx[1] * m.tap[1].dtdu;
      dv = dty[0] * m.tap[0].dtdv + dty[1] * m.tap[1].dtdv;
    } else {
      Tap tp = texTap(k, u, vv);
      float dtx = 0.f, dty = 0.f;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
      if (k.texVec) {
#pragma unroll
        for (int c = 0; c < 4; ++c)
          if (c < k.C && g4[c] != 0.f && posGrad) tapChannelGrad(k.tex, k.C, tp, c, g4[c], dtx, dty);
        if (k.texStage) {
          out.tapOn = 1;
          out.tap[0] = tp;
          out.tlvl[0] = 0;
#pragma unroll
          for (int c = 0; c < 4; ++c) out.tg[0][c] = g4[c];
        } else {
          tapAtomics(k.dTex.f, k.C, tp, g4);
        }
      } else
#endif
      {
        for (int c = 0; c < k.C; ++c) {
          FG_RASTER_GC(c, k.gColor[pix * k.C + c])
          if (gc == 0.f) continue;
          if (posGrad) tapChannelGrad(k.tex, k.C, tp, c, gc, dtx, dty);
          if (k.dTex.on())
            for (int j = 0; j < 4; ++j) k.dTex.add(tp.idx[j] * k.C + c, tp.w[j] * gc);
        }
      }
      du = dtx * tp.dtdu;
      dv = dty * tp.dtdv;
    }
#undef FG_RASTER_GC
    for (int i = 0; i < 3; ++i) db[i] += du * uvi[i][0] + dv * uvi[i][1];
  }
  out.key = int64_t(v) * k.T + t;
  if (wantG) {
    V3 nv[3];
    V3 m = mk(0, 0, 0);
    for (int i = 0; i < 3; ++i) {
      nv[i] = loadP(k.vn, k.tri[3 * t + i]);
      m = m + pg.b[i] * nv[i];
    }
    float len = sqrtf(dot(m, m));
    if (len > 0.f) {
      V3 nw = (1.f / len) * m;
      const float* E = k.E + 12 * v;
      V3 dn;
      if (k.shFrame == int(ShFrame::Camera)) dn = rotateT(E, gG * shGrad(rotate(E, nw), k.sh + 9 * v));
      else dn = gG * shGrad(nw, k.sh + 9 * v);
      V3 dmv = (1.f / len) * (dn - dot(nw, dn) * nw);
      for (int i = 0; i < 3; ++i) {
        db[i] += dot(dmv, nv[i]);
        out.nn[3 * i] = pg.b[i] * dmv.x;
        out.nn[3 * i + 1] = pg.b[i] * dmv.y;
        out.nn[3 * i + 2] = pg.b[i] * dmv.z;
      }
    }
  }
  if (!k.dW.on()) return;
  // b_i = e_i / S:  dL/de_m = (dL/db_m - sum_i b_i dL/db_i) / S;  e_m = p . (P_j x P_k)  ->  W_m += dL/de_m p
  float sb = pg.b[0] * db[0] + pg.b[1] * db[1] + pg.b[2] * db[2];
  const float s = wScaleTri(k, v, t) * invS;
  for (int m = 0; m < 3; ++m) {
    float gem = (db[m] - sb) * s;
    out.w[3 * m] = gem * pg.px;
    out.w[3 * m + 1] = gem * pg.py;
    out.w[3 * m + 2] = gem;
  }
}
// The antialiasing edge gradients of pixel (x, y): each pair where it is the blended one (code = its aaCode)
// moves its silhouette edge, by dL/dalpha = sum of the upstream gradients times (other - own) of the two pixels'
// stored pre-antialiasing shading (the mask: of their coverage).
FG_HDI void aaEdgePixel(const Kern& k, int v, int x, int y, int code) {
  const int64_t base = int64_t(v) * k.H * k.W, pix = base + int64_t(y) * k.W + x;
  const unsigned long long key = k.keys[pix];
  const int S = k.C + 1;
  const float* own = k.preShade + pix * S;
  FG_RASTER_UNROLL
  for (int d = 0; d < 4; ++d) {
    int nx, ny;
    if (!((code >> d) & 1) || !neighbourOf(k, x, y, d, nx, ny)) continue;
    const int64_t np = base + int64_t(ny) * k.W + nx;
    const unsigned long long nkey = k.keys[np];
    const Pair pr = evalPair(k, v, x, y, key, nx, ny, nkey);
    if (!pr.active || !pr.meBlended) continue;
    const float* so = k.preShade + np * S;
    float dLda = 0.f;
    if (k.gMask) dLda += k.gMask[pix] * (keyMask(nkey) - keyMask(key));
    if (k.gGrey && k.sh) dLda += k.gGrey[pix] * (so[k.C] - own[k.C]);
    if (k.gColor && k.tex)
      for (int c = 0; c < k.C; ++c) dLda += k.gColor[pix * k.C + c] * (so[c] - own[c]);
    aaEdgeAdd(k, v, pr, dLda);
  }
}
FG_HDI void zeroPixGrad(PixGrad& g) {
  g.key = -1;
  for (int q = 0; q < 9; ++q) { g.w[q] = 0.f; g.nn[q] = 0.f; }
  g.tapOn = 0;
}

// Vertex-normal and position gathers: vertex p's sum runs over "terms" (one per (view, vertex-triangle entry),
// then one per vertex-triangle entry for the face-normal chain). The CPU adds them in order; CUDA gives each
// vertex 8 lanes (term q to lane q % 8) and reduces the lanes with a fixed shuffle tree (deterministic).
FG_HDI int vertexDegree(const Kern& k, int p) { return k.vfOff[p + 1] - k.vfOff[p]; }
// Pass 1 terms: dL/dn_v summed over the vertex's triangles' corners and the views (from dN).
FG_HDI V3 normalGradTerm(const Kern& k, int p, int q) {
  const int deg = vertexDegree(k, p);
  const int v = q / deg, j = k.vfOff[p] + (q - v * deg);
  int64_t b = (int64_t(v) * k.T + k.vfList[j] / 3) * kAccStride + 3 * (k.vfList[j] % 3);
  return mk(k.dN.read(b), k.dN.read(b + 1), k.dN.read(b + 2));
}
// Pass 1 finish: dL/dm_v (m_v = the unnormalised normal sum) from dL/dn_v.
FG_HDI void normalsBackward1Finish(const Kern& k, int p, V3 g) {
  V3 n = loadP(k.vn, p);
  float len = k.vlen[p];
  V3 d = len > 0.f ? (1.f / len) * (g - dot(n, g) * n) : mk(0, 0, 0);
  k.dm[3 * p] = d.x;
  k.dm[3 * p + 1] = d.y;
  k.dm[3 * p + 2] = d.z;
}
FG_HDI void normalsBackward1Elem(const Kern& k, int p) {
  V3 g = mk(0, 0, 0);
  const int n = k.V * vertexDegree(k, p);
  for (int q = 0; q < n; ++q) g = g + normalGradTerm(k, p, q);
  normalsBackward1Finish(k, p, g);
}
// Pass 2 terms: dPositions = edge-function chain (per view, from dW) + face-normal chain.  For corner c of a
// triangle, dL/dP_c = P_{c+1} x W_{c+2} + W_{c+1} x P_{c+2}.
FG_HDI int positionGradTerms(const Kern& k, int p, bool withNormals) {
  const int deg = vertexDegree(k, p);
  return (k.dW.on() ? k.V * deg : 0) + (withNormals ? deg : 0);
}
FG_HDI V3 positionGradTerm(const Kern& k, int p, int q) {
  const int deg = vertexDegree(k, p);
  if (k.dW.on()) {
    if (q < k.V * deg) {
      const int v = q / deg, j = k.vfOff[p] + (q - v * deg);
      const float* hv = k.hv + int64_t(v) * k.P * 3;
      V3 Pc = loadP(hv, p);
      int t = k.vfList[j] / 3, c = k.vfList[j] % 3;
      int c1 = c == 2 ? 0 : c + 1, c2 = c == 0 ? 2 : c - 1;
      V3 P1 = loadP(hv, k.tri[3 * t + c1]), P2 = loadP(hv, k.tri[3 * t + c2]);
      float inv = 1.f / wScale(k, v, Pc, P1, P2);
      int64_t b = (int64_t(v) * k.T + t) * kAccStride;
      V3 W1 = mk(k.dW.read(b + 3 * c1), k.dW.read(b + 3 * c1 + 1), k.dW.read(b + 3 * c1 + 2));
      V3 W2 = mk(k.dW.read(b + 3 * c2), k.dW.read(b + 3 * c2 + 1), k.dW.read(b + 3 * c2 + 2));
      return hvToWorld(k, v, inv * (cross(P1, W2) + cross(W1, P2)));
    }
    q -= k.V * deg;
  }
  const int j = k.vfOff[p] + q;
  int t = k.vfList[j] / 3, corner = k.vfList[j] % 3;
  int i0 = k.tri[3 * t], i1 = k.tri[3 * t + 1], i2 = k.tri[3 * t + 2];
  V3 u = loadP(k.dm, i0) + loadP(k.dm, i1) + loadP(k.dm, i2);
  V3 p0 = loadP(k.pos, i0), p1 = loadP(k.pos, i1), p2 = loadP(k.pos, i2);
  V3 e1 = p1 - p0, e2 = p2 - p0;
  V3 g1 = cross(e2, u), g2 = cross(u, e1);
  if (corner == 0) return mk(0, 0, 0) - (g1 + g2);
  return corner == 1 ? g1 : g2;
}
FG_HDI void normalsBackward2Elem(const Kern& k, int p, bool withNormals) {
  V3 acc = mk(0, 0, 0);
  const int n = positionGradTerms(k, p, withNormals);
  for (int q = 0; q < n; ++q) acc = acc + positionGradTerm(k, p, q);
  k.dPosOut[3 * p] = acc.x;
  k.dPosOut[3 * p + 1] = acc.y;
  k.dPosOut[3 * p + 2] = acc.z;
}
// ---- generic interpolation ------------------------------------------------------------------------------------------
FG_HDI void interpolateElem(const InterpolateParams& p, float* out, int64_t pix) {
  int t = p.triId[pix];
  float* o = out + pix * p.numAttr;
  if (t < 0 || t >= p.numTriangles) {
    for (int a = 0; a < p.numAttr; ++a) o[a] = 0.f;
    return;
  }
  float b0 = p.bary[2 * pix], b1 = p.bary[2 * pix + 1], b2 = 1.f - b0 - b1;
  const float* r0 = p.attr + int64_t(p.attrTri[3 * t]) * p.numAttr;
  const float* r1 = p.attr + int64_t(p.attrTri[3 * t + 1]) * p.numAttr;
  const float* r2 = p.attr + int64_t(p.attrTri[3 * t + 2]) * p.numAttr;
  for (int a = 0; a < p.numAttr; ++a) o[a] = b0 * r0[a] + b1 * r1[a] + b2 * r2[a];
}
FG_HDI void interpolateBackwardElem(const InterpolateParams& p, const float* dOut, const Sink& s, int64_t pix) {
  int t = p.triId[pix];
  if (t < 0 || t >= p.numTriangles) return;
  float b[3] = {p.bary[2 * pix], p.bary[2 * pix + 1], 0.f};
  b[2] = 1.f - b[0] - b[1];
  for (int i = 0; i < 3; ++i) {
    int64_t row = int64_t(p.attrTri[3 * t + i]) * p.numAttr;
    for (int a = 0; a < p.numAttr; ++a) s.add(row + a, b[i] * dOut[pix * p.numAttr + a]);
  }
}

}  // namespace raster
}  // namespace fg
