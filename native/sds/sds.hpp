// The fused SDS step (score distillation sampling, Poole et al. 2022) as two kernels around the denoiser:
//
//   sdsNoise : eps ~ N(0, I) from Philox (seed, rng_stream::kSdsNoise, noiseOffset + i),
//              x_t = sqrt(abar) x0 + sqrt(1 - abar) eps, written `copies` times (the CFG batch
//              [uncond half | cond half]) in float32 or fp16.
//   (the pipeline runs the denoiser engine on that batch: out = [eps_u | eps_c], or v-predictions)
//   sdsGrad  : classifier-free guidance (either anchor), v -> eps when the model predicts v, the weighted
//              residual grad = w(t) (eps_hat - eps), an optional elementwise clamp, an optional
//              normalisation by its L2 norm (an in-kernel reduction, deterministic), the image-space target
//              x0_hat = (x_t - sqrt(1 - abar) eps_hat) / sqrt(abar), and a non-finite flag written to device
//              memory (never a host sync).
//
// Gradient path (b) (image-space target) uses sdsImageLoss; path (c) (linear latent<->RGB) the
// latentRgb* ops. docs/sds.md derives each.
//
// All launchers: no allocation, no synchronisation; scratch comes from SdsScratch, carved once from a
// caller-reserved fg::Workspace (sdsWorkspaceBytes()). sdsNoise zeroes the scratch counters, so call it
// before the reductions of the same iteration (sdsGrad / sdsImageLoss) with the same scratch.
#pragma once
#include <cstdint>
#include <string>
#include "core/memory.hpp"
#include "core/philox.hpp"
#include "core/rng.hpp"
#include "sds/half.hpp"
#include "sds/schedule.hpp"

namespace fg {
namespace sds {

// Bits OR-ed into the caller's device flag word; the pipeline reads it asynchronously (e.g. once per
// iteration group) and calls throwIfNumerical().
enum : uint32_t {
  kFlagSdsNonFinite = 1u,    // NaN/Inf in the SDS gradient (model output, guidance or inputs)
  kFlagLossNonFinite = 2u,   // NaN/Inf in the image-space loss / its gradient
  kFlagOptimNonFinite = 4u,  // NaN/Inf in a gradient given to an optimiser
};
// Throws fg::Error(E_NUMERICAL) naming what went non-finite and `context` (e.g. "texture phase, iterations 40..49").
void throwIfNumerical(uint32_t flags, const std::string& context);

constexpr int kSdsCounters = 4;
constexpr int kMaxReduceBlocks = 512;
struct SdsScratch {
  uint32_t* counters = nullptr;  // [kSdsCounters], device memory
  double* partials = nullptr;    // [kMaxReduceBlocks] block partial sums
};
size_t sdsWorkspaceBytes();
SdsScratch sdsScratch(Workspace& ws);  // carves sdsWorkspaceBytes() from ws

// The by-convention noise offset of an iteration: iteration * n, so that any iteration can be replayed
// (resumed) without drawing the ones before it.
inline uint64_t sdsNoiseOffset(uint64_t iteration, int64_t n) { return iteration * static_cast<uint64_t>(n); }

// ---- per-element maths (shared by the twins)

FG_HDI float sdsXt(float x0, float eps, float sa, float s1a) { return fg::fma(sa, x0, fg::mul(s1a, eps)); }
// v-prediction (Salimans & Ho 2022): v = sqrt(abar) eps - sqrt(1-abar) x0  =>  eps = sqrt(abar) v + sqrt(1-abar) x_t
FG_HDI float sdsVToEps(float v, float xt, float sa, float s1a) { return fg::fma(sa, v, fg::mul(s1a, xt)); }
FG_HDI float sdsGuide(float epsU, float epsC, float scale, GuidanceAnchor a) {
  return fg::fma(scale, fg::sub(epsC, epsU), a == GuidanceAnchor::Uncond ? epsU : epsC);
}
FG_HDI float sdsX0FromEps(float xt, float epsHat, float sa, float s1a) { return fg::div(fg::sub(xt, fg::mul(s1a, epsHat)), sa); }
FG_HDI bool isFiniteF(float v) { return (floatBits(v) & 0x7F800000u) != 0x7F800000u; }

// ---- sdsNoise

struct SdsNoiseParams {
  int64_t n = 0;                // elements of the rendered latent batch x0 (B*C*H*W)
  const float* x0 = nullptr;    // [n]
  float* eps = nullptr;         // [n] out (required: sdsGrad reads it)
  float* xt = nullptr;          // [copies*n] out, float32 ...
  uint16_t* xtHalf = nullptr;   // ... or fp16 bits (either or both)
  int copies = 2;               // 2 for classifier-free guidance ([uncond | cond]), 1 without
  uint64_t seed = 0;
  uint64_t noiseOffset = 0;     // Philox index of eps[0] in stream kSdsNoise (sdsNoiseOffset(iteration, n))
  float sqrtAlphaBar = 0.f, sqrtOneMinusAlphaBar = 0.f;  // from SdsCoefficients
  SdsScratch scratch;           // CUDA: its counters are zeroed here
};
// Element i of sdsNoise: its Philox draw eps and x_t in every copy (both twins).
FG_HDI void sdsNoiseElem(const SdsNoiseParams& p, int64_t i) {
  const float e = philox::normalAt(p.seed, rng_stream::kSdsNoise, p.noiseOffset + uint64_t(i));
  const float xt = sdsXt(p.x0[i], e, p.sqrtAlphaBar, p.sqrtOneMinusAlphaBar);
  p.eps[i] = e;
  for (int c = 0; c < p.copies; ++c) {
    if (p.xt) p.xt[c * p.n + i] = xt;
    if (p.xtHalf) p.xtHalf[c * p.n + i] = floatToHalfBits(xt);
  }
}
void sdsNoiseCpu(const SdsNoiseParams& p);
void sdsNoiseCuda(const SdsNoiseParams& p, StreamHandle s);
void sdsNoise(Device d, const SdsNoiseParams& p, StreamHandle s = nullptr);

// ---- sdsGrad

struct SdsGradParams {
  int64_t n = 0;
  const float* x0 = nullptr;             // [n] the rendered latents (x_t is recomputed bit-exactly from x0, eps)
  const float* eps = nullptr;            // [n] the noise of sdsNoise
  const float* modelOut = nullptr;       // [copies*n] float32 model output: [uncond | cond] (copies=2) or [cond]
  const uint16_t* modelOutHalf = nullptr;  // ... or fp16 bits
  int copies = 2;
  Prediction prediction = Prediction::Epsilon;
  GuidanceAnchor anchor = GuidanceAnchor::Uncond;
  float guidanceScale = 100.f;
  float sqrtAlphaBar = 0.f, sqrtOneMinusAlphaBar = 0.f, weight = 0.f;  // from SdsCoefficients
  float clampValue = 0.f;                // > 0: grad = clamp(grad, -c, c)
  bool normalize = false;                // grad *= normScale / max(||grad||_2, 1e-12) (after the clamp)
  float normScale = 1.f;
  float* grad = nullptr;                 // [n] out
  float* x0Pred = nullptr;               // [n] out, optional: x0_hat for the image-space path (b)
  float* epsPred = nullptr;              // [n] out, optional: the guided eps_hat
  uint32_t* flags = nullptr;             // optional: |= kFlagSdsNonFinite
  double* stats = nullptr;               // optional [2]: sum grad^2 before normalisation, and after
  SdsScratch scratch;                    // used when normalize or stats (CUDA)
};
void sdsGradCpu(const SdsGradParams& p);
void sdsGradCuda(const SdsGradParams& p, StreamHandle s);
void sdsGrad(Device d, const SdsGradParams& p, StreamHandle s = nullptr);

// ---- path (b): image-space target.  loss = weight * sum (render - target)^2 ; grad = 2 weight (render - target)
// (target = decode(x0_hat) is a constant: stop-gradient.)

struct SdsImageLossParams {
  int64_t n = 0;
  const float* render = nullptr;  // [n]
  const float* target = nullptr;  // [n] the decoded x0_hat
  float weight = 1.f;             // w(t) (times any normalisation, e.g. 1/n for a mean)
  float* grad = nullptr;          // [n] out: d loss / d render
  double* loss = nullptr;         // optional [1] out
  uint32_t* flags = nullptr;      // optional: |= kFlagLossNonFinite
  SdsScratch scratch;
};
void sdsImageLossCpu(const SdsImageLossParams& p);
void sdsImageLossCuda(const SdsImageLossParams& p, StreamHandle s);
void sdsImageLoss(Device d, const SdsImageLossParams& p, StreamHandle s = nullptr);

// ---- path (c): the linear latent<->RGB approximation.
//   decode:  rgb_c = sum_k z_k M[k][c] + b_c                 (4x3 M: latent channel k -> colour c)
//   encode:  z_k   = sum_c P[k][c] (avgpool_f(rgb)_c - b_c),  P = M (M^T M)^-1  (least squares / min-norm)
//   the encode's adjoint: g_rgb(pixel) = P g_z(patch) / f^2   (transposed per channel)

struct LatentRgbMap {
  float m[4][3];
  float bias[3];
  float pinv[4][3];
};
// ComfyUI's SD1.x factors (comfy/latent_formats.py, class SD15) for scaled latents (x 0.18215) to RGB in
// [-1, 1]; range01 = true rescales to RGB in [0, 1] (M/2, bias 1/2).
LatentRgbMap latentRgbMapSd15(bool range01);
LatentRgbMap makeLatentRgbMap(const float m[12], const float bias[3]);  // computes P in float64

enum class LatentRgbOp : int { Decode = 0, Encode = 1, EncodeBackward = 2 };
struct LatentRgbParams {
  LatentRgbOp op = LatentRgbOp::Decode;
  int batch = 1, latentH = 64, latentW = 64, factor = 8;  // RGB is (latentH*factor) x (latentW*factor)
  bool channelsLast = false;  // RGB layout: [B,H,W,3] when true, [B,3,H,W] otherwise; latents are always [B,4,h,w]
  LatentRgbMap map;
  const float* in = nullptr;  // Decode: z; Encode: rgb; EncodeBackward: g_z
  float* out = nullptr;       // Decode: rgb (nearest-upsampled by factor); Encode: z; EncodeBackward: g_rgb
};
int64_t latentRgbInElements(const LatentRgbParams& p);
int64_t latentRgbOutElements(const LatentRgbParams& p);

// out[idx] of the op; shared by the twins.
FG_HDI float latentRgbElement(const LatentRgbParams& p, int64_t idx) {
  const int h = p.latentH, w = p.latentW, f = p.factor, H = h * f, W = w * f;
  if (p.op == LatentRgbOp::Encode) {  // idx over z [B,4,h,w]
    int64_t r = idx;
    int lx = int(r % w); r /= w;
    int ly = int(r % h); r /= h;
    int k = int(r % 4);
    int64_t b = r / 4;
    float sum[3] = {0.f, 0.f, 0.f};
    for (int dy = 0; dy < f; ++dy)
      for (int dx = 0; dx < f; ++dx) {
        int64_t y = int64_t(ly) * f + dy, x = int64_t(lx) * f + dx;
        for (int c = 0; c < 3; ++c) {
          int64_t at = p.channelsLast ? ((b * H + y) * W + x) * 3 + c : ((b * 3 + c) * H + y) * W + x;
          sum[c] = fg::add(sum[c], p.in[at]);
        }
      }
    float inv = fg::div(1.f, float(f * f));
    float z = 0.f;
    for (int c = 0; c < 3; ++c) z = fg::fma(p.map.pinv[k][c], fg::sub(fg::mul(sum[c], inv), p.map.bias[c]), z);
    return z;
  }
  // Decode / EncodeBackward: idx over the RGB image
  int64_t r = idx;
  int c, x, y;
  int64_t b;
  if (p.channelsLast) {
    c = int(r % 3); r /= 3;
    x = int(r % W); r /= W;
    y = int(r % H); b = r / H;
  } else {
    x = int(r % W); r /= W;
    y = int(r % H); r /= H;
    c = int(r % 3); b = r / 3;
  }
  int ly = y / f, lx = x / f;
  float acc = 0.f;
  for (int k = 0; k < 4; ++k) {
    float zk = p.in[((b * 4 + k) * h + ly) * w + lx];
    acc = fg::fma(p.op == LatentRgbOp::Decode ? p.map.m[k][c] : p.map.pinv[k][c], zk, acc);
  }
  if (p.op == LatentRgbOp::Decode) return fg::add(acc, p.map.bias[c]);
  return fg::div(acc, float(f * f));
}
void latentRgbCpu(const LatentRgbParams& p);
void latentRgbCuda(const LatentRgbParams& p, StreamHandle s);
void latentRgb(Device d, const LatentRgbParams& p, StreamHandle s = nullptr);

}  // namespace sds
}  // namespace fg
