// The pipeline's own small kernels (twin pattern: FG_HD functions here, CPU loops in kernels.cpp, CUDA kernels in
// kernels.cu, dispatchers in kernels.cpp): the glue between the raster / morph / sds / engines domains.
//
//   * the camera-space NORMAL render and its backward (to clip positions and vertex normals): the raster domain
//     does not differentiate its normal output, and FaceG2E's geometry phase alternates grey and normal renders;
//     it shades the raster's triId/bary with our clip matrices (equivalent to the raster's pinhole camera);
//   * texel visibility (total bilinear sample weight per texel) for the PSNR over visible texels;
//   * layout moves (NHWC <-> NCHW, HWC texture <-> NCHW image with resampling), grey/depth compositing;
//   * the pooling/identity codec's adjoint (the latent path needs d encode / d image);
//   * fixed-order sums of squares (loss curves, metrics).
//
// Conventions: images NCHW [n, C, H, W], row 0 at the top; textures HWC [H, W, C], row 0 at v = 1 (OBJ UVs have
// their origin bottom-left); clip positions [n, V, 4]; matrices row-major, clip = M · (x, y, z, 1).
// Reductions into shared outputs (gradients) are serial on the CPU (fixed order: bit-reproducible). On CUDA the
// gradient scatters of the shading backward are 64-bit fixed-point atomics (integer addition is associative, so
// the result does not depend on the order the atomics land in: bit-reproducible too), converted to float by one
// pass at the end of the launcher (see ShadeParams::*Fixed below).
#pragma once
#include <cstdint>
#include "core/hd.hpp"
#include "core/memory.hpp"
#include "core/philox.hpp"

namespace fg {
namespace pipe {

constexpr int kMaxViews = 16;

// ================================================================ clip transform
struct ClipParams {
  const float* pos = nullptr;  // [V,3]
  int64_t V = 0;
  int nViews = 0;
  float mvp[kMaxViews][16];
  float* clip = nullptr;       // [n,V,4]
  // backward: gradPos[v] += Σ_views M[:, :3]ᵀ gradClip[view, v]
  const float* gradClip = nullptr;
  float* gradPos = nullptr;
};

FG_HDI void clipElement(const ClipParams& p, int64_t i) {  // i over n*V
  int view = int(i / p.V);
  int64_t v = i % p.V;
  const float* m = p.mvp[view];
  const float* x = p.pos + 3 * v;
  for (int r = 0; r < 4; ++r)
    p.clip[4 * i + r] = fg::add(fg::add(fg::add(fg::mul(m[4 * r], x[0]), fg::mul(m[4 * r + 1], x[1])), fg::mul(m[4 * r + 2], x[2])), m[4 * r + 3]);
}

FG_HDI void clipGradElement(const ClipParams& p, int64_t v) {
  float acc[3] = {0.f, 0.f, 0.f};
  for (int view = 0; view < p.nViews; ++view) {
    const float* m = p.mvp[view];
    const float* g = p.gradClip + 4 * (int64_t(view) * p.V + v);
    for (int c = 0; c < 3; ++c) acc[c] += m[c] * g[0] + m[4 + c] * g[1] + m[8 + c] * g[2] + m[12 + c] * g[3];
  }
  for (int c = 0; c < 3; ++c) p.gradPos[3 * v + c] += acc[c];
}

// ================================================================ raster
FG_HDI float pixelNdcX(int x, int width) { return fg::sub(fg::div(fg::mul(2.f, fg::add(float(x), 0.5f)), float(width)), 1.f); }
FG_HDI float pixelNdcY(int y, int height) { return fg::sub(1.f, fg::div(fg::mul(2.f, fg::add(float(y), 0.5f)), float(height))); }

// Perspective-correct barycentrics of pixel (px, py) in clip space: β ∝ cross products of a_i = x_i − px w_i,
// c_i = y_i − py w_i (the solution of Σβ(x − px w) = Σβ(y − py w) = 0, Σβ = 1).
FG_HDI void clipBary(const float* c0, const float* c1, const float* c2, float px, float py, float b[3], float u[3]) {
  float a0 = fg::sub(c0[0], fg::mul(px, c0[3])), a1 = fg::sub(c1[0], fg::mul(px, c1[3])), a2 = fg::sub(c2[0], fg::mul(px, c2[3]));
  float d0 = fg::sub(c0[1], fg::mul(py, c0[3])), d1 = fg::sub(c1[1], fg::mul(py, c1[3])), d2 = fg::sub(c2[1], fg::mul(py, c2[3]));
  u[0] = fg::sub(fg::mul(a1, d2), fg::mul(a2, d1));
  u[1] = fg::sub(fg::mul(a2, d0), fg::mul(a0, d2));
  u[2] = fg::sub(fg::mul(a0, d1), fg::mul(a1, d0));
  float S = fg::add(fg::add(u[0], u[1]), u[2]);
  float inv = S != 0.f ? fg::div(1.f, S) : 0.f;
  b[0] = fg::mul(u[0], inv);
  b[1] = fg::mul(u[1], inv);
  b[2] = fg::mul(u[2], inv);
}

// ================================================================ spherical harmonics (9 coefficients, real basis)
FG_HDI void shBasis(const float n[3], float y[9]) {
  float x = n[0], yy = n[1], z = n[2];
  y[0] = 0.282095f;
  y[1] = 0.488603f * yy;
  y[2] = 0.488603f * z;
  y[3] = 0.488603f * x;
  y[4] = 1.092548f * x * yy;
  y[5] = 1.092548f * yy * z;
  y[6] = 0.315392f * (3.f * z * z - 1.f);
  y[7] = 1.092548f * x * z;
  y[8] = 0.546274f * (x * x - yy * yy);
}

FG_HDI float shEval(const float* c, const float n[3]) {
  float y[9];
  shBasis(n, y);
  float s = 0.f;
  for (int j = 0; j < 9; ++j) s += c[j] * y[j];
  return s;
}

FG_HDI void shGrad(const float* c, const float n[3], float g[3]) {  // ∂E/∂n
  float x = n[0], y = n[1], z = n[2];
  g[0] = 0.488603f * c[3] + 1.092548f * (c[4] * y + c[7] * z) + 0.546274f * 2.f * c[8] * x;
  g[1] = 0.488603f * c[1] + 1.092548f * (c[4] * x + c[5] * z) - 0.546274f * 2.f * c[8] * y;
  g[2] = 0.488603f * c[2] + 1.092548f * (c[5] * y + c[7] * x) + 0.315392f * 6.f * c[6] * z;
}

// ================================================================ texture sampling (bilinear, clamp to edge)
struct Bilinear {
  int64_t idx[4];  // texel indices (y*W + x)
  float w[4];
};

FG_HDI Bilinear bilinearSetup(float u, float v, int W, int H) {
  float tx = u * float(W) - 0.5f;
  float ty = (1.f - v) * float(H) - 0.5f;
  tx = fg::clampv(tx, 0.f, float(W - 1));
  ty = fg::clampv(ty, 0.f, float(H - 1));
  int x0 = int(tx), y0 = int(ty);
  int x1 = fg::minv(x0 + 1, W - 1), y1 = fg::minv(y0 + 1, H - 1);
  float fx = tx - float(x0), fy = ty - float(y0);
  Bilinear b;
  b.idx[0] = int64_t(y0) * W + x0; b.w[0] = (1.f - fx) * (1.f - fy);
  b.idx[1] = int64_t(y0) * W + x1; b.w[1] = fx * (1.f - fy);
  b.idx[2] = int64_t(y1) * W + x0; b.w[2] = (1.f - fx) * fy;
  b.idx[3] = int64_t(y1) * W + x1; b.w[3] = fx * fy;
  return b;
}

// ================================================================ shading
enum ShadeMode : int {
  kShadeGrey = 0,      // albedo · E_sh(n̂), 3 equal channels
  kShadeNormal = 1,    // (R n̂ + 1)/2, camera-space normal
  kShadeTexture = 2,   // bilinear texture sample, C channels
  kShadeDepth = 3,     // (far − w)/(far − near) clamped to [0,1], 3 channels (ControlNet depth)
  kShadeTexturedLit = 4,  // texture (3 channels) · E_sh(n̂)
  kShadeMask = 5,      // 1 inside, 0 outside (1 channel)
};

struct ShadeParams {
  int mode = kShadeGrey;
  int nViews = 0, width = 0, height = 0, channels = 3;
  int64_t V = 0;
  const int32_t* triId = nullptr;
  const float* bary = nullptr;
  const int32_t* tri = nullptr;
  const int32_t* uvTri = nullptr;
  const float* uv = nullptr;       // [U,2]
  const float* normals = nullptr;  // [V,3] world
  const float* clip = nullptr;     // [n,V,4]
  const float* tex = nullptr;      // [texH, texW, C]
  int texW = 0, texH = 0;
  float rot[kMaxViews][9];         // world -> camera rotation (row-major)
  float sh[kMaxViews][9];          // grey SH environment per view
  float depthNear[kMaxViews], depthFar[kMaxViews];
  float albedo = 0.8f;
  float bg[4] = {0, 0, 0, 0};
  float* out = nullptr;            // [n,C,H,W]
  // backward
  const float* gradOut = nullptr;  // [n,C,H,W]
  float* gradClip = nullptr;       // [n,V,4] (+=)
  float* gradNormals = nullptr;    // [V,3] (+=)
  float* gradTex = nullptr;        // [texH,texW,C] (+=)
  float* texWeight = nullptr;      // [texH,texW] (+=): total bilinear weight (visibility; float atomics on CUDA,
                                   // order-dependent in the last bits, only ever compared with 0)
  // CUDA only (the CPU twin ignores them and scatters serially): 64-bit fixed-point scratch for the three gradient
  // scatters, required on CUDA for each gradient requested. Each holds (elements of its float target + 1) values
  // and must be ZERO before the backward launch (the caller memsets it on the same stream: the launchers never
  // allocate or synchronise). Every contribution v is added as llrint(v · kShadeFixedScale) with an integer atomic,
  // then the launcher's conversion pass does target[i] += float(fixed[i] / kShadeFixedScale). The extra last
  // element is a flag: a NaN/Inf or out-of-range contribution sets it and the conversion then writes NaN into the
  // whole target (a bad gradient stays loud, as it was with float atomics, instead of wrapping silently).
  long long* gradClipFixed = nullptr;     // [nViews*V*4 + 1]
  long long* gradNormalsFixed = nullptr;  // [V*3 + 1]
  long long* gradTexFixed = nullptr;      // [texH*texW*C + 1]
};

// 2^32, as the raster's deterministic backward: resolution 2.3e-10 per contribution (round to nearest), each
// accumulated sum must stay below 2^31 ≈ 2.1e9 in magnitude. A single contribution is rejected (flag) beyond
// kShadeFixedMaxAbs = 2^30 so one term can never wrap the accumulator. The pipeline's shading gradients are
// SDS/MSE image gradients (|g| ≲ 1 per pixel) pushed through barycentric/normal Jacobians: sums of order
// 1e-6..1e6, comfortably inside both bounds; the rounding (≤ 1.2e-10 per term) is far below the float32
// rounding of the serial CPU sum for gradients of that size.
constexpr float kShadeFixedScale = 4294967296.0f;
constexpr float kShadeFixedMaxAbs = 1073741824.0f;
FG_HDI int64_t shadeGradClipCount(const ShadeParams& p) { return int64_t(p.nViews) * p.V * 4; }
FG_HDI int64_t shadeGradNormalsCount(const ShadeParams& p) { return p.V * 3; }
FG_HDI int64_t shadeGradTexCount(const ShadeParams& p) { return int64_t(p.texH) * p.texW * p.channels; }

FG_HDI void pixelNormal(const ShadeParams& p, int64_t f, const float b[3], float n[3], float m[3], float& len) {
  m[0] = m[1] = m[2] = 0.f;
  for (int k = 0; k < 3; ++k) {
    const float* nv = p.normals + 3 * int64_t(p.tri[3 * f + k]);
    m[0] += b[k] * nv[0]; m[1] += b[k] * nv[1]; m[2] += b[k] * nv[2];
  }
  len = sqrtf(m[0] * m[0] + m[1] * m[1] + m[2] * m[2]);
  float inv = len > 1e-20f ? 1.f / len : 0.f;
  n[0] = m[0] * inv; n[1] = m[1] * inv; n[2] = m[2] * inv;
}

FG_HDI void pixelUv(const ShadeParams& p, int64_t f, const float b[3], float& u, float& v) {
  u = 0.f; v = 0.f;
  for (int k = 0; k < 3; ++k) {
    const float* t = p.uv + 2 * int64_t(p.uvTri[3 * f + k]);
    u += b[k] * t[0]; v += b[k] * t[1];
  }
}

// The texture footprint of pixel i (over n*H*W) for the texture backward: false for a background pixel, else its
// bilinear taps and, when p.gradOut is set, its upstream gradient (channel c at go[c * plane]; else null).
FG_HDI bool shadeTexPixel(const ShadeParams& p, int64_t i, Bilinear& bl, const float*& go) {
  const int32_t f = p.triId[i];
  if (f < 0) return false;
  const int64_t plane = int64_t(p.width) * p.height;
  const int view = int(i / plane);
  const int64_t pix = i % plane;
  float b[3] = {p.bary[2 * i], p.bary[2 * i + 1], 0.f};
  b[2] = 1.f - b[0] - b[1];
  float u, v;
  pixelUv(p, f, b, u, v);
  bl = bilinearSetup(u, v, p.texW, p.texH);
  go = p.gradOut ? p.gradOut + int64_t(view) * p.channels * plane + pix : nullptr;
  return true;
}

FG_HDI void shadePixel(const ShadeParams& p, int64_t i) {  // i over n*H*W
  const int64_t plane = int64_t(p.width) * p.height;
  int view = int(i / plane);
  int64_t pix = i % plane;
  float* o = p.out + int64_t(view) * p.channels * plane + pix;
  int32_t f = p.triId[i];
  if (f < 0) {
    for (int c = 0; c < p.channels; ++c) o[c * plane] = p.mode == kShadeMask ? 0.f : p.bg[c < 4 ? c : 3];
    return;
  }
  float b[3] = {p.bary[2 * i], p.bary[2 * i + 1], 0.f};
  b[2] = 1.f - b[0] - b[1];
  switch (p.mode) {
    case kShadeGrey: {
      float n[3], m[3], len;
      pixelNormal(p, f, b, n, m, len);
      float s = p.albedo * shEval(p.sh[view], n);
      for (int c = 0; c < p.channels; ++c) o[c * plane] = s;
      break;
    }
    case kShadeNormal: {
      float n[3], m[3], len;
      pixelNormal(p, f, b, n, m, len);
      const float* R = p.rot[view];
      for (int c = 0; c < p.channels && c < 3; ++c) o[c * plane] = 0.5f * (R[3 * c] * n[0] + R[3 * c + 1] * n[1] + R[3 * c + 2] * n[2]) + 0.5f;
      break;
    }
    case kShadeTexture:
    case kShadeTexturedLit: {
      float u, v;
      pixelUv(p, f, b, u, v);
      Bilinear bl = bilinearSetup(u, v, p.texW, p.texH);
      float light = 1.f;
      if (p.mode == kShadeTexturedLit) {
        float n[3], m[3], len;
        pixelNormal(p, f, b, n, m, len);
        light = shEval(p.sh[view], n);
      }
      for (int c = 0; c < p.channels; ++c) {
        float s = 0.f;
        for (int k = 0; k < 4; ++k) s += bl.w[k] * p.tex[bl.idx[k] * p.channels + c];
        o[c * plane] = s * light;
      }
      break;
    }
    case kShadeDepth: {
      const float* base = p.clip + 4 * int64_t(view) * p.V;
      float w = 0.f;
      for (int k = 0; k < 3; ++k) w += b[k] * base[4 * int64_t(p.tri[3 * f + k]) + 3];
      float d = fg::clampv((p.depthFar[view] - w) / (p.depthFar[view] - p.depthNear[view]), 0.f, 1.f);
      for (int c = 0; c < p.channels; ++c) o[c * plane] = d;
      break;
    }
    default:
      for (int c = 0; c < p.channels; ++c) o[c * plane] = 1.f;
  }
}

// Per-pixel gradient of a geometry render (grey / normal) w.r.t. the three vertex normals and clip positions.
struct PixelGeomGrad {
  int32_t v[3];
  float gN[3][3];
  float gClip[3][4];
  bool any;
};

FG_HDI PixelGeomGrad shadeGeomGradPixel(const ShadeParams& p, int64_t i) {
  PixelGeomGrad r;
  r.any = false;
  const int64_t plane = int64_t(p.width) * p.height;
  int view = int(i / plane);
  int64_t pix = i % plane;
  int32_t f = p.triId[i];
  if (f < 0 || (p.mode != kShadeGrey && p.mode != kShadeNormal)) return r;
  const float* go = p.gradOut + int64_t(view) * p.channels * plane + pix;
  float b[3] = {p.bary[2 * i], p.bary[2 * i + 1], 0.f};
  b[2] = 1.f - b[0] - b[1];
  float n[3], m[3], len;
  pixelNormal(p, f, b, n, m, len);
  float gn[3] = {0.f, 0.f, 0.f};
  if (p.mode == kShadeGrey) {
    float gs = 0.f;
    for (int c = 0; c < p.channels; ++c) gs += go[c * plane];
    float d[3];
    shGrad(p.sh[view], n, d);
    for (int k = 0; k < 3; ++k) gn[k] = p.albedo * gs * d[k];
  } else {
    const float* R = p.rot[view];
    for (int c = 0; c < 3 && c < p.channels; ++c) {
      float g = 0.5f * go[c * plane];
      gn[0] += R[3 * c] * g; gn[1] += R[3 * c + 1] * g; gn[2] += R[3 * c + 2] * g;
    }
  }
  if (!(len > 1e-20f)) return r;
  float dn = n[0] * gn[0] + n[1] * gn[1] + n[2] * gn[2];
  float gm[3];
  for (int k = 0; k < 3; ++k) gm[k] = (gn[k] - n[k] * dn) / len;
  // m = Σ b_k N_k
  float gb[3];
  for (int k = 0; k < 3; ++k) {
    r.v[k] = p.tri[3 * f + k];
    const float* nv = p.normals + 3 * int64_t(r.v[k]);
    gb[k] = nv[0] * gm[0] + nv[1] * gm[1] + nv[2] * gm[2];
    for (int c = 0; c < 3; ++c) r.gN[k][c] = b[k] * gm[c];
  }
  // barycentrics -> clip: b_k = u_k / S
  const float* base = p.clip + 4 * int64_t(view) * p.V;
  const float* c0 = base + 4 * int64_t(r.v[0]);
  const float* c1 = base + 4 * int64_t(r.v[1]);
  const float* c2 = base + 4 * int64_t(r.v[2]);
  int x = int(pix % p.width), y = int(pix / p.width);
  float px = pixelNdcX(x, p.width), py = pixelNdcY(y, p.height);
  float bb[3], u[3];
  clipBary(c0, c1, c2, px, py, bb, u);
  float S = u[0] + u[1] + u[2];
  if (S == 0.f) return r;
  float dot = gb[0] * bb[0] + gb[1] * bb[1] + gb[2] * bb[2];
  float gu[3] = {(gb[0] - dot) / S, (gb[1] - dot) / S, (gb[2] - dot) / S};
  float a[3] = {c0[0] - px * c0[3], c1[0] - px * c1[3], c2[0] - px * c2[3]};
  float d[3] = {c0[1] - py * c0[3], c1[1] - py * c1[3], c2[1] - py * c2[3]};
  // u0 = a1 d2 − a2 d1, u1 = a2 d0 − a0 d2, u2 = a0 d1 − a1 d0
  float ga[3], gd[3];
  ga[0] = -gu[1] * d[2] + gu[2] * d[1];
  ga[1] = gu[0] * d[2] - gu[2] * d[0];
  ga[2] = -gu[0] * d[1] + gu[1] * d[0];
  gd[0] = gu[1] * a[2] - gu[2] * a[1];
  gd[1] = -gu[0] * a[2] + gu[2] * a[0];
  gd[2] = gu[0] * a[1] - gu[1] * a[0];
  for (int k = 0; k < 3; ++k) {
    r.gClip[k][0] = ga[k];
    r.gClip[k][1] = gd[k];
    r.gClip[k][2] = 0.f;
    r.gClip[k][3] = -px * ga[k] - py * gd[k];
  }
  r.any = true;
  return r;
}

// ================================================================ elementwise helpers
// Elementwise tail ops: grad = w(ε̂ − ε) (clipped); x̂0 = (x_t − √(1−ᾱ) ε̂)/√ᾱ; grad = w (render − decoded).
enum ElementOp : int { kOpSdsGrad = 0, kOpX0 = 1, kOpImageGrad = 2, kOpAxpy = 3, kOpScale = 4 };

struct ElementParams {
  int op = kOpSdsGrad;
  const float* a = nullptr;  // SdsGrad: ε̂; X0: x_t; ImageGrad: render; Axpy: x
  const float* b = nullptr;  // SdsGrad: ε;  X0: ε̂;  ImageGrad: decoded
  float* out = nullptr;      // Axpy: out += alpha·a; Scale: out *= alpha
  int64_t count = 0;
  float alpha = 1.f, beta = 0.f, clip = 0.f;
  bool accumulate = false;
};

FG_HDI void elementOp(const ElementParams& p, int64_t i) {
  float r;
  switch (p.op) {
    case kOpSdsGrad: r = p.alpha * (p.a[i] - p.b[i]); break;
    case kOpX0: r = (p.a[i] - p.beta * p.b[i]) / p.alpha; break;
    case kOpImageGrad: r = p.alpha * (p.a[i] - p.b[i]); break;
    case kOpAxpy: r = p.alpha * p.a[i]; break;
    default: r = p.alpha * p.out[i]; p.out[i] = r; return;
  }
  if (p.clip > 0.f) r = fg::clampv(r, -p.clip, p.clip);
  if (r != r) r = 0.f;  // NaN never reaches the parameters (the pipeline checks the loss separately)
  p.out[i] = p.accumulate ? p.out[i] + r : r;
}

// Pooling codec adjoint: gImg[n,k,Y,X] (+)= Σ_c M[c][k] gLat[n,c,Y/8,X/8] / 64 (identity: channels copied).
struct CodecAdjointParams {
  const float* gradLatent = nullptr;
  float* gradImage = nullptr;
  int n = 0, height = 0, width = 0;  // image size
  int factor = 1, latentChannels = 3;
  float m[8][3];
  bool accumulate = false;
};

FG_HDI void codecAdjointElement(const CodecAdjointParams& p, int64_t i) {
  const int W = p.width, H = p.height;
  int X = int(i % W), Y = int((i / W) % H), k = int((i / (int64_t(W) * H)) % 3);
  int64_t n = i / (int64_t(W) * H * 3);
  int h = H / p.factor, w = W / p.factor;
  int y = Y / p.factor, x = X / p.factor;
  float s = 0.f;
  if (p.factor == 1) {
    s = p.gradLatent[((n * p.latentChannels + k) * h + y) * int64_t(w) + x];
  } else {
    float inv = 1.f / float(p.factor * p.factor);
    for (int c = 0; c < p.latentChannels; ++c) s += p.m[c][k] * p.gradLatent[((n * p.latentChannels + c) * h + y) * int64_t(w) + x];
    s *= inv;
  }
  p.gradImage[i] = p.accumulate ? p.gradImage[i] + s : s;
}

// Layout moves between an HWC texture and an NCHW image (n = 1), with an optional bilinear resample.
struct LayoutParams {
  const float* src = nullptr;
  float* dst = nullptr;
  int channels = 3;
  int srcW = 0, srcH = 0, dstW = 0, dstH = 0;
  bool srcHwc = true, dstHwc = false;
  float lo = -3.0e38f, hi = 3.0e38f;  // clamp
};

FG_HDI void layoutElement(const LayoutParams& p, int64_t i) {  // i over dst elements
  int c, x, y;
  if (p.dstHwc) { c = int(i % p.channels); x = int((i / p.channels) % p.dstW); y = int(i / (int64_t(p.channels) * p.dstW)); }
  else { x = int(i % p.dstW); y = int((i / p.dstW) % p.dstH); c = int(i / (int64_t(p.dstW) * p.dstH)); }
  float v;
  auto at = [&](int xx, int yy) -> float {
    return p.srcHwc ? p.src[(int64_t(yy) * p.srcW + xx) * p.channels + c] : p.src[(int64_t(c) * p.srcH + yy) * p.srcW + xx];
  };
  if (p.srcW == p.dstW && p.srcH == p.dstH) {
    v = at(x, y);
  } else {
    float sx = fg::clampv((float(x) + 0.5f) * float(p.srcW) / float(p.dstW) - 0.5f, 0.f, float(p.srcW - 1));
    float sy = fg::clampv((float(y) + 0.5f) * float(p.srcH) / float(p.dstH) - 0.5f, 0.f, float(p.srcH - 1));
    int x0 = int(sx), y0 = int(sy), x1 = fg::minv(x0 + 1, p.srcW - 1), y1 = fg::minv(y0 + 1, p.srcH - 1);
    float fx = sx - float(x0), fy = sy - float(y0);
    float top = at(x0, y0) * (1.f - fx) + at(x1, y0) * fx;
    float bot = at(x0, y1) * (1.f - fx) + at(x1, y1) * fx;
    v = top * (1.f - fy) + bot * fy;
  }
  p.dst[i] = fg::clampv(v, p.lo, p.hi);
}


// Batched NHWC <-> NCHW moves (optionally scaled, optionally accumulated into dst).
struct TransposeParams {
  const float* src = nullptr;
  float* dst = nullptr;
  int n = 1, height = 0, width = 0, channels = 0;
  bool toNchw = true;  // src NHWC -> dst NCHW; false: src NCHW -> dst NHWC
  float scale = 1.f;
  bool accumulate = false;
};

FG_HDI void transposeElement(const TransposeParams& p, int64_t i) {  // i over dst
  const int64_t plane = int64_t(p.width) * p.height;
  int64_t srcIdx;
  if (p.toNchw) {
    int64_t pix = i % plane;
    int c = int((i / plane) % p.channels);
    int64_t n = i / (plane * p.channels);
    srcIdx = (n * plane + pix) * p.channels + c;
  } else {
    int c = int(i % p.channels);
    int64_t pix = (i / p.channels) % plane;
    int64_t n = i / (plane * p.channels);
    srcIdx = (n * p.channels + c) * plane + pix;
  }
  float v = p.scale * p.src[srcIdx];
  p.dst[i] = p.accumulate ? p.dst[i] + v : v;
}

// The same values one pixel at a time (j over n·H·W, all channels): what the launchers run (one index split per
// pixel instead of per element; coalesced on both sides across a warp).
FG_HDI void transposePixel(const TransposeParams& p, int64_t j) {
  const int64_t plane = int64_t(p.width) * p.height;
  const int64_t n = j / plane, pix = j - n * plane;
  const int64_t hwc = j * p.channels, chw = n * p.channels * plane + pix;
  for (int c = 0; c < p.channels; ++c) {
    int64_t s = p.toNchw ? hwc + c : chw + c * plane;
    int64_t d = p.toNchw ? chw + c * plane : hwc + c;
    float v = p.scale * p.src[s];
    p.dst[d] = p.accumulate ? p.dst[d] + v : v;
  }
}

// A one-channel render (grey shading, depth image) composited over a background colour into NCHW with 3
// channels: out[n,c] = value + (1 − mask)·bg[c] (mask null: out = value). Backward: dValue = Σ_c g_c,
// dMask = −Σ_c g_c bg_c.
struct ComposeParams {
  const float* value = nullptr;  // [n,H,W]
  const float* mask = nullptr;   // [n,H,W] or null
  float bg[3] = {0, 0, 0};
  int n = 1, height = 0, width = 0;
  float* out = nullptr;          // [n,3,H,W]
  const float* gradOut = nullptr;  // backward: [n,3,H,W]
  float* gradValue = nullptr;    // backward: [n,H,W] (overwritten)
  float* gradMask = nullptr;     // backward: [n,H,W] (overwritten, optional)
};

FG_HDI void composeElement(const ComposeParams& p, int64_t i) {  // i over n*3*H*W
  const int64_t plane = int64_t(p.width) * p.height;
  int64_t pix = i % plane;
  int c = int((i / plane) % 3);
  int64_t n = i / (plane * 3);
  float v = p.value[n * plane + pix];
  if (p.mask) v += (1.f - p.mask[n * plane + pix]) * p.bg[c];
  p.out[i] = v;
}

FG_HDI void composeGradElement(const ComposeParams& p, int64_t i) {  // i over n*H*W
  const int64_t plane = int64_t(p.width) * p.height;
  int64_t pix = i % plane;
  int64_t n = i / plane;
  float g = 0.f, gm = 0.f;
  for (int c = 0; c < 3; ++c) {
    float gc = p.gradOut[(n * 3 + c) * plane + pix];
    g += gc;
    gm -= gc * p.bg[c];
  }
  p.gradValue[i] = g;
  if (p.gradMask) p.gradMask[i] = gm;
}

// ================================================================ reductions (fixed order on both twins)
// out = Σ_i weight_i (a_i − b_i)²   (b, weight optional; weight indexed i / weightStride)
// and, in the same pass when out2 is set, out2 = Σ_i weight_i (a2_i − b2_i)² over the same count (b2 optional).
// CUDA: with `partials` [2 * kSumSqBlocks] and `counter` (one unsigned int, zero before the first call; the
// launch leaves it zero again) the sum runs on a fixed grid of kSumSqBlocks blocks, each reducing a fixed
// grid-stride slice, and the last block to finish adds the partials in block order: deterministic, one launch,
// no host synchronisation, graph-capturable. Without scratch: one block (slow on large images).
constexpr int kSumSqBlocks = 256;
constexpr int kSumSqThreads = 256;
struct SumSqParams {
  const float* a = nullptr;
  const float* b = nullptr;
  const float* weight = nullptr;
  int weightStride = 1;
  int64_t count = 0;
  float* out = nullptr;
  bool accumulate = false;
  const float* a2 = nullptr;
  const float* b2 = nullptr;
  float* out2 = nullptr;
  float* partials = nullptr;
  unsigned int* counter = nullptr;
};

FG_HDI float sumSqTerm(const SumSqParams& p, int64_t i) {
  float d = p.b ? p.a[i] - p.b[i] : p.a[i];
  float w = p.weight ? p.weight[i / p.weightStride] : 1.f;
  return w * d * d;
}
FG_HDI float sumSqTerm2(const SumSqParams& p, int64_t i) {
  float d = p.b2 ? p.a2[i] - p.b2[i] : p.a2[i];
  float w = p.weight ? p.weight[i / p.weightStride] : 1.f;
  return w * d * d;
}

// ================================================================ launchers (twins) and dispatchers
void clipTransform(Device d, const ClipParams& p, StreamHandle s);
void clipTransformBackward(Device d, const ClipParams& p, StreamHandle s);     // gradPos +=
void shade(Device d, const ShadeParams& p, StreamHandle s);
void shadeBackwardGeometry(Device d, const ShadeParams& p, StreamHandle s);    // gradClip, gradNormals +=
void shadeBackwardTexture(Device d, const ShadeParams& p, StreamHandle s);     // gradTex (+=), texWeight (+=, optional)
void elementwise(Device d, const ElementParams& p, StreamHandle s);
void codecAdjoint(Device d, const CodecAdjointParams& p, StreamHandle s);
void layout(Device d, const LayoutParams& p, int64_t dstCount, StreamHandle s);
void sumSquares(Device d, const SumSqParams& p, StreamHandle s);
void transpose(Device d, const TransposeParams& p, StreamHandle s);
void compose(Device d, const ComposeParams& p, StreamHandle s);
void composeBackward(Device d, const ComposeParams& p, StreamHandle s);

#if FG_HAVE_CUDA
void clipTransformCuda(const ClipParams& p, StreamHandle s);
void clipTransformBackwardCuda(const ClipParams& p, StreamHandle s);
void shadeCuda(const ShadeParams& p, StreamHandle s);
void shadeBackwardGeometryCuda(const ShadeParams& p, StreamHandle s);
void shadeBackwardTextureCuda(const ShadeParams& p, StreamHandle s);
void elementwiseCuda(const ElementParams& p, StreamHandle s);
void codecAdjointCuda(const CodecAdjointParams& p, StreamHandle s);
void layoutCuda(const LayoutParams& p, int64_t dstCount, StreamHandle s);
void sumSquaresCuda(const SumSqParams& p, StreamHandle s);
void transposeCuda(const TransposeParams& p, StreamHandle s);
void composeCuda(const ComposeParams& p, StreamHandle s);
void composeBackwardCuda(const ComposeParams& p, StreamHandle s);
#endif

}  // namespace pipe
}  // namespace fg
