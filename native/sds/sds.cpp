// CPU twins and dispatchers of the fused SDS ops (sds.hpp). The per-element maths is shared with sds.cu.
#include "sds/sds.hpp"
#include <cmath>
#include <vector>
#include "core/linalg.hpp"
#include "core/device.hpp"
#include "core/nvtx.hpp"
#include "core/parallel.hpp"
#include "core/philox.hpp"
#include "core/rng.hpp"
#include "sds/launches.hpp"

namespace fg {
namespace sds {

void throwIfNumerical(uint32_t flags, const std::string& context) {
  if (!flags) return;
  std::string what;
  auto add = [&](const char* s) { what += (what.empty() ? "" : ", "); what += s; };
  if (flags & kFlagSdsNonFinite) add("the SDS gradient (denoiser output, guidance or rendered latents)");
  if (flags & kFlagLossNonFinite) add("the image-space SDS loss");
  if (flags & kFlagOptimNonFinite) add("an optimiser gradient");
  if (what.empty()) add("an unknown quantity");
  fail(ErrorCode::Numerical, "non-finite value (NaN/Inf) in " + what + (context.empty() ? "" : " during " + context) +
                                 "; lower the learning rate or guidance scale, enable gradient clipping, or check the inputs");
}

size_t sdsWorkspaceBytes() {
  return Workspace::aligned(kSdsCounters * sizeof(uint32_t)) + Workspace::aligned(kMaxReduceBlocks * sizeof(double));
}

SdsScratch sdsScratch(Workspace& ws) {
  SdsScratch s;
  s.counters = ws.alloc<uint32_t>(kSdsCounters);
  s.partials = ws.alloc<double>(kMaxReduceBlocks);
  return s;
}

namespace {

void checkCoeffs(float sa, float s1a) {
  FG_CHECK_ARG(sa > 0.f && sa <= 1.f && std::isfinite(sa), "sqrtAlphaBar: expected a value in (0, 1], got " + std::to_string(sa));
  FG_CHECK_ARG(s1a >= 0.f && s1a < 1.f && std::isfinite(s1a), "sqrtOneMinusAlphaBar: expected a value in [0, 1), got " + std::to_string(s1a));
}

void checkNoise(Device d, const SdsNoiseParams& p) {
  FG_CHECK_ARG(p.n >= 0, "n: expected >= 0, got " + std::to_string(p.n));
  FG_CHECK_ARG(p.copies == 1 || p.copies == 2, "copies: expected 1 or 2, got " + std::to_string(p.copies));
  FG_CHECK_ARG(p.n == 0 || (p.x0 && p.eps), "x0, eps: required");
  FG_CHECK_ARG(p.n == 0 || p.xt || p.xtHalf, "xt: an output (float32 xt or fp16 xtHalf) is required");
  checkCoeffs(p.sqrtAlphaBar, p.sqrtOneMinusAlphaBar);
  if (d == Device::CUDA) FG_CHECK_ARG(p.scratch.counters != nullptr, "scratch: required on CUDA (sdsScratch(workspace))");
}

void checkGrad(Device d, const SdsGradParams& p) {
  FG_CHECK_ARG(p.n >= 0, "n: expected >= 0, got " + std::to_string(p.n));
  FG_CHECK_ARG(p.copies == 1 || p.copies == 2, "copies: expected 1 or 2, got " + std::to_string(p.copies));
  FG_CHECK_ARG(p.n == 0 || (p.x0 && p.eps && p.grad), "x0, eps, grad: required");
  FG_CHECK_ARG(p.n == 0 || (p.modelOut != nullptr) != (p.modelOutHalf != nullptr), "modelOut: exactly one of modelOut (float32) and modelOutHalf (fp16) is required");
  FG_CHECK_ARG(std::isfinite(p.guidanceScale), "guidanceScale: expected a finite number");
  FG_CHECK_ARG(std::isfinite(p.weight), "weight: expected a finite number");
  FG_CHECK_ARG(std::isfinite(p.clampValue) && p.clampValue >= 0.f, "clamp: expected a finite number >= 0 (0 = off)");
  FG_CHECK_ARG(std::isfinite(p.normScale) && p.normScale > 0.f, "normScale: expected a finite number > 0");
  checkCoeffs(p.sqrtAlphaBar, p.sqrtOneMinusAlphaBar);
  if (d == Device::CUDA && (p.normalize || p.stats))
    FG_CHECK_ARG(p.scratch.counters && p.scratch.partials, "scratch: required on CUDA when normalize or stats (sdsScratch(workspace))");
}

}  // namespace

// ---------------- sdsNoise

void sdsNoiseCpu(const SdsNoiseParams& p) {
  countLaunch();
  parallelFor(p.n, [&](int64_t i) { sdsNoiseElem(p, i); }, 2048);
}

void sdsNoise(Device d, const SdsNoiseParams& p, StreamHandle s) {
  NvtxRange range("sds/noise");
  checkNoise(d, p);
  FG_TWIN_CALL(d, sdsNoiseCpu(p), sdsNoiseCuda(p, s));
}

// ---------------- sdsGrad

namespace {
// One element of sdsGrad; returns the (clamped, unnormalised) gradient. Shared maths in sds.hpp.
inline float gradElementCpu(const SdsGradParams& p, int64_t i, bool& bad) {
  float x0 = p.x0[i], e = p.eps[i];
  float sa = p.sqrtAlphaBar, s1a = p.sqrtOneMinusAlphaBar;
  float xt = sdsXt(x0, e, sa, s1a);
  auto load = [&](int64_t j) { return p.modelOut ? p.modelOut[j] : halfBitsToFloat(p.modelOutHalf[j]); };
  float oc = load(p.copies == 2 ? p.n + i : i);
  float ou = p.copies == 2 ? load(i) : oc;
  // guidance in the model's output space, then one v -> eps conversion (it is affine with weights summing
  // to 1, so this equals guiding the converted predictions, without amplifying their rounding by s)
  float guided = p.copies == 2 ? sdsGuide(ou, oc, p.guidanceScale, p.anchor) : oc;
  float eh = p.prediction == Prediction::VPrediction ? sdsVToEps(guided, xt, sa, s1a) : guided;
  float g = fg::mul(p.weight, fg::sub(eh, e));
  if (!isFiniteF(g)) bad = true;
  if (p.clampValue > 0.f) g = fg::clampv(g, -p.clampValue, p.clampValue);
  if (p.x0Pred) p.x0Pred[i] = sdsX0FromEps(xt, eh, sa, s1a);
  if (p.epsPred) p.epsPred[i] = eh;
  return g;
}
}  // namespace

void sdsGradCpu(const SdsGradParams& p) {
  countLaunch();
  const int64_t chunk = 4096;
  const int64_t chunks = (p.n + chunk - 1) / chunk;
  std::vector<uint8_t> bad(size_t(std::max<int64_t>(chunks, 1)), 0);
  std::vector<double> part(size_t(std::max<int64_t>(chunks, 1)), 0.0);
  parallelFor(chunks, [&](int64_t c) {
    bool b = false;
    double acc = 0;
    for (int64_t i = c * chunk, e = std::min(p.n, i + chunk); i < e; ++i) {
      float g = gradElementCpu(p, i, b);
      p.grad[i] = g;
      acc += double(g) * double(g);
    }
    bad[size_t(c)] = b;
    part[size_t(c)] = acc;
  }, 1);
  double total = 0;
  bool anyBad = false;
  for (int64_t c = 0; c < chunks; ++c) {
    total += part[size_t(c)];
    anyBad = anyBad || bad[size_t(c)];
  }
  if (anyBad && p.flags) *p.flags |= kFlagSdsNonFinite;
  double after = total;
  if (p.normalize) {
    double scaleD = double(p.normScale) / std::max(std::sqrt(total), 1e-12);
    float scale = float(scaleD);
    parallelFor(p.n, [&](int64_t i) { p.grad[i] = fg::mul(p.grad[i], scale); });
    after = total * scaleD * scaleD;
  }
  if (p.stats) {
    p.stats[0] = total;
    p.stats[1] = after;
  }
}

void sdsGrad(Device d, const SdsGradParams& p, StreamHandle s) {
  NvtxRange range("sds/grad");
  checkGrad(d, p);
  FG_TWIN_CALL(d, sdsGradCpu(p), sdsGradCuda(p, s));
}

// ---------------- sdsImageLoss

void sdsImageLossCpu(const SdsImageLossParams& p) {
  countLaunch();
  double acc = 0;
  bool bad = false;
  float twoW = fg::mul(2.f, p.weight);
  for (int64_t i = 0; i < p.n; ++i) {
    float r = fg::sub(p.render[i], p.target[i]);
    float g = fg::mul(twoW, r);
    if (!isFiniteF(g)) bad = true;
    p.grad[i] = g;
    acc += double(r) * double(r);
  }
  if (p.loss) *p.loss = double(p.weight) * acc;
  if (bad && p.flags) *p.flags |= kFlagLossNonFinite;
}

void sdsImageLoss(Device d, const SdsImageLossParams& p, StreamHandle s) {
  NvtxRange range("sds/image_loss");
  FG_CHECK_ARG(p.n >= 0, "n: expected >= 0");
  FG_CHECK_ARG(p.n == 0 || (p.render && p.target && p.grad), "render, target, grad: required");
  FG_CHECK_ARG(std::isfinite(p.weight), "weight: expected a finite number");
  if (d == Device::CUDA && p.loss) FG_CHECK_ARG(p.scratch.counters && p.scratch.partials, "scratch: required on CUDA for the loss value");
  FG_TWIN_CALL(d, sdsImageLossCpu(p), sdsImageLossCuda(p, s));
}

// ---------------- path (c): linear latent <-> RGB

LatentRgbMap makeLatentRgbMap(const float m[12], const float bias[3]) {
  LatentRgbMap r{};
  for (int k = 0; k < 4; ++k)
    for (int c = 0; c < 3; ++c) {
      FG_CHECK_ARG(std::isfinite(m[k * 3 + c]), "matrix: expected finite values");
      r.m[k][c] = m[k * 3 + c];
    }
  for (int c = 0; c < 3; ++c) {
    FG_CHECK_ARG(std::isfinite(bias[c]), "bias: expected finite values");
    r.bias[c] = bias[c];
  }
  // the encoder's least-squares inverse, in float64: pinv[k][c] = ((MᵀM)⁻¹Mᵀ)[c][k]
  double mm[4][3], p[3][4];
  for (int k = 0; k < 4; ++k)
    for (int a = 0; a < 3; ++a) mm[k][a] = double(m[k * 3 + a]);
  FG_CHECK_ARG(pinv4x3(mm, p), "matrix: the 4x3 latent->RGB matrix must have rank 3");
  for (int k = 0; k < 4; ++k)
    for (int c = 0; c < 3; ++c) r.pinv[k][c] = float(p[c][k]);
  return r;
}

LatentRgbMap latentRgbMapSd15(bool range01) {
  // ComfyUI comfy/latent_formats.py, SD15.latent_rgb_factors (rows: latent channels; columns: R, G, B).
  static const float kSd15[12] = {0.3512f, 0.2297f, 0.3227f, 0.3250f, 0.4974f, 0.2350f,
                                  -0.2829f, 0.1762f, 0.2721f, -0.2120f, -0.2616f, -0.7177f};
  float m[12], b[3] = {0.f, 0.f, 0.f};
  for (int i = 0; i < 12; ++i) m[i] = range01 ? 0.5f * kSd15[i] : kSd15[i];
  if (range01) b[0] = b[1] = b[2] = 0.5f;
  return makeLatentRgbMap(m, b);
}

int64_t latentRgbInElements(const LatentRgbParams& p) {
  int64_t lat = int64_t(p.batch) * 4 * p.latentH * p.latentW;
  int64_t rgb = int64_t(p.batch) * 3 * p.latentH * p.factor * p.latentW * p.factor;
  return p.op == LatentRgbOp::Encode ? rgb : lat;
}
int64_t latentRgbOutElements(const LatentRgbParams& p) {
  int64_t lat = int64_t(p.batch) * 4 * p.latentH * p.latentW;
  int64_t rgb = int64_t(p.batch) * 3 * p.latentH * p.factor * p.latentW * p.factor;
  return p.op == LatentRgbOp::Encode ? lat : rgb;
}

void latentRgbCpu(const LatentRgbParams& p) {
  countLaunch();
  parallelFor(latentRgbOutElements(p), [&](int64_t i) { p.out[i] = latentRgbElement(p, i); });
}

void latentRgb(Device d, const LatentRgbParams& p, StreamHandle s) {
  NvtxRange range("sds/latent_rgb");
  FG_CHECK_ARG(p.batch >= 1 && p.latentH >= 1 && p.latentW >= 1, "batch, latentHeight, latentWidth: expected >= 1");
  FG_CHECK_ARG(p.factor >= 1 && p.factor <= 64, "factor: expected an integer in [1, 64], got " + std::to_string(p.factor));
  FG_CHECK_ARG(p.in && p.out, "input, output: required");
  FG_CHECK_ARG(int(p.op) >= 0 && int(p.op) <= 2, "op: expected 'decode', 'encode' or 'encodeBackward'");
  FG_TWIN_CALL(d, latentRgbCpu(p), latentRgbCuda(p, s));
}

}  // namespace sds
}  // namespace fg
