// Optimisers: host-side coefficients, the CPU twin and the dispatcher (optim.hpp).
#include "sds/optim.hpp"
#include <algorithm>
#include <atomic>
#include <cmath>
#include "core/device.hpp"
#include "core/nvtx.hpp"
#include "core/parallel.hpp"
#include "sds/launches.hpp"
#include "sds/sds.hpp"

namespace fg {
namespace sds {

OptimKind parseOptimKind(const std::string& s) {
  if (s == "adam") return OptimKind::Adam;
  if (s == "adamw") return OptimKind::AdamW;
  if (s == "adan") return OptimKind::Adan;
  fail(ErrorCode::InvalidArgument, "optimizer: expected 'adam', 'adamw' or 'adan', got '" + s + "'");
}

int optimStateBuffers(OptimKind k) { return k == OptimKind::Adan ? 4 : 2; }

OptimConfig adanDefaults() {
  OptimConfig c;
  c.kind = OptimKind::Adan;
  c.beta1 = 0.98;
  c.beta2 = 0.92;
  c.beta3 = 0.99;
  return c;
}

void validate(const OptimConfig& c) {
  FG_CHECK_ARG(c.kind == OptimKind::Adam || c.kind == OptimKind::AdamW || c.kind == OptimKind::Adan, "optimizer: expected 'adam', 'adamw' or 'adan'");
  auto beta = [](double b, const char* name) {
    FG_CHECK_ARG(std::isfinite(b) && b >= 0 && b < 1, std::string(name) + ": expected a number in [0, 1), got " + std::to_string(b));
  };
  beta(c.beta1, "beta1");
  beta(c.beta2, "beta2");
  if (c.kind == OptimKind::Adan) beta(c.beta3, "beta3");
  FG_CHECK_ARG(std::isfinite(c.eps) && c.eps > 0, "eps: expected a number > 0");
  FG_CHECK_ARG(std::isfinite(c.weightDecay) && c.weightDecay >= 0, "weightDecay: expected a number >= 0");
  FG_CHECK_ARG(std::isfinite(c.maxGradNorm) && c.maxGradNorm >= 0, "maxGradNorm: expected a number >= 0 (0 = off)");
  FG_CHECK_ARG(std::isfinite(c.clipEps) && c.clipEps >= 0, "clipEps: expected a number >= 0");
}

OptimCoef optimCoefficients(const OptimConfig& c, const OptimStepArgs& a) {
  validate(c);
  FG_CHECK_ARG(a.step >= 1, "step: expected an integer >= 1 (1-based), got " + std::to_string(a.step));
  FG_CHECK_ARG(std::isfinite(a.lr) && a.lr >= 0, "lr: expected a finite number >= 0");
  FG_CHECK_ARG(std::isfinite(a.gradScale), "gradScale: expected a finite number");
  const double k = double(a.step);
  const double bc1 = 1.0 - std::pow(c.beta1, k), bc2 = 1.0 - std::pow(c.beta2, k), bc3 = 1.0 - std::pow(c.beta3, k);
  OptimCoef r{};
  r.kind = int(c.kind);
  r.b1 = float(c.beta1);
  r.omb1 = float(1.0 - c.beta1);
  r.b2 = float(c.beta2);
  r.omb2 = float(1.0 - c.beta2);
  r.b3 = float(c.beta3);
  r.omb3 = float(1.0 - c.beta3);
  r.stepSize = float(a.lr / bc1);
  r.eps = float(c.eps);
  r.gradScale = a.gradScale;
  r.l2 = 0.f;
  r.decayMul = 1.f;
  r.proxDiv = 1.f;
  r.firstStep = a.step == 1 ? 1 : 0;
  switch (c.kind) {
    case OptimKind::Adam:
      r.sqrtBc = float(std::sqrt(bc2));
      r.l2 = float(c.weightDecay);
      break;
    case OptimKind::AdamW:
      r.sqrtBc = float(std::sqrt(bc2));
      r.decayMul = float(1.0 - a.lr * c.weightDecay);
      break;
    case OptimKind::Adan:
      r.sqrtBc = float(std::sqrt(bc3));
      r.stepSizeDiff = float(a.lr * c.beta2 / bc2);
      if (c.adanNoProx) r.decayMul = float(1.0 - a.lr * c.weightDecay);
      else r.proxDiv = float(1.0 + a.lr * c.weightDecay);
      break;
  }
  return r;
}

size_t optimWorkspaceBytes(const OptimConfig& c, int tensorCount) {
  (void)c;
  int chunks = (tensorCount + kMaxGroupTensors - 1) / kMaxGroupTensors;
  return Workspace::aligned(size_t(std::max(chunks, 1)) * kMaxNormBlocks * sizeof(double));
}

int optimLaunches(const OptimConfig& c, int tensorCount, bool gradNormOut) {
  int chunks = (tensorCount + kMaxGroupTensors - 1) / kMaxGroupTensors;
  return (c.maxGradNorm > 0 || gradNormOut) ? 2 * chunks : chunks;
}

namespace {
void checkTensors(const OptimConfig& c, const OptimTensor* t, int count) {
  FG_CHECK_ARG(count >= 0 && (count == 0 || t), "tensors: expected an array of parameter tensors");
  for (int i = 0; i < count; ++i) {
    const std::string at = "tensors[" + std::to_string(i) + "]";
    FG_CHECK_ARG(t[i].n >= 0, at + ".n: expected >= 0");
    if (t[i].n == 0) continue;
    FG_CHECK_ARG(t[i].param && t[i].grad && t[i].m && t[i].v, at + ": param, grad, m and v are required");
    if (c.kind == OptimKind::Adan) FG_CHECK_ARG(t[i].d && t[i].prev, at + ": Adan needs its d (exp_avg_diff) and prev (previous gradient) buffers");
  }
}
}  // namespace

void optimStepCpu(const OptimConfig& c, const OptimTensor* t, int count, const OptimStepArgs& a) {
  OptimCoef k = optimCoefficients(c, a);
  countLaunch(uint64_t(optimLaunches(c, count, a.gradNormOut != nullptr)));
  double coef = 1.0;
  if (c.maxGradNorm > 0 || a.gradNormOut) {
    double sum = 0;  // fixed order: tensor by tensor, element by element
    for (int i = 0; i < count; ++i)
      for (int64_t j = 0; j < t[i].n; ++j) {
        float g = fg::mul(k.gradScale, t[i].grad[j]);
        sum += double(g) * double(g);
      }
    double norm = std::sqrt(sum);
    if (a.gradNormOut) *a.gradNormOut = norm;
    if (c.maxGradNorm > 0) coef = std::min(1.0, c.maxGradNorm / (norm + c.clipEps));
  }
  const float scale = fg::mul(k.gradScale, float(coef));
  std::atomic<bool> bad{false};
  for (int i = 0; i < count; ++i) {
    const OptimTensor& x = t[i];
    parallelFor(x.n, [&](int64_t j) {
      float g = fg::mul(scale, x.grad[j]);
      if (!isFiniteF(g)) bad.store(true, std::memory_order_relaxed);
      optimElement(k, x.param[j], g, x.m[j], x.v[j], x.d ? x.d + j : nullptr, x.prev ? x.prev + j : nullptr);
    });
  }
  if (bad.load() && a.flags) *a.flags |= kFlagOptimNonFinite;
}

void optimStep(Device d, const OptimConfig& c, const OptimTensor* t, int count, const OptimStepArgs& a, Workspace* ws, StreamHandle s) {
  NvtxRange range("sds/optim_step");
  validate(c);
  checkTensors(c, t, count);
  if (d == Device::CPU) return optimStepCpu(c, t, count, a);
#if FG_HAVE_CUDA
  if (c.maxGradNorm > 0 || a.gradNormOut) {
    FG_CHECK_ARG(ws != nullptr && ws->device() == Device::CUDA,
                 "workspace: gradient-norm clipping (or gradNormOut) on CUDA needs a CUDA workspace of optimWorkspaceBytes() bytes");
  }
  optimStepCuda(c, t, count, a, ws, s);
#else
  (void)ws;
  (void)s;
  requireCuda();
#endif
}

}  // namespace sds
}  // namespace fg
