// Fused optimisers (CPU twin + CUDA): Adam (Kingma & Ba 2015), AdamW (Loshchilov & Hutter 2019) and Adan
// (Xie et al. 2022, "Adan: Adaptive Nesterov Momentum Algorithm", as in the reference implementation
// sail-sg/Adan), with an optional global gradient-norm clip over a parameter group.
//
// State lives in caller-provided buffers (zero them before step 1). One launch updates a whole parameter
// group (up to kMaxGroupTensors tensors; larger groups take one launch per kMaxGroupTensors); the
// gradient-norm clip adds one reduction launch before it (its partial sums go to the workspace, and every
// block of the update launch re-sums them in a fixed order, so the result is deterministic and nothing
// is read back to the host).
//
// Update rules (g = gradScale * clipCoef * grad; step k >= 1; bc_i = 1 - beta_i^k):
//   Adam : g += wd p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= (lr/bc1) m / (sqrt(v)/sqrt(bc2) + eps)
//   AdamW: p *= 1 - lr wd; then Adam without the L2 term
//   Adan : d = g - g_prev (0 at k = 1);  m = b1 m + (1-b1) g;  n_d = b2 n_d + (1-b2) d;
//          u = g + b2 d;  n = b3 n + (1-b3) u^2;  denom = sqrt(n)/sqrt(bc3) + eps;
//          p -= (lr/bc1) m/denom + (lr b2/bc2) n_d/denom;  then p /= 1 + lr wd  (no_prox: p *= 1 - lr wd first)
//          g_prev = g.   Betas are the reference implementation's (0.98, 0.92, 0.99) convention, i.e. the
//          paper's 1 - beta_i.
#pragma once
#include <cstdint>
#include <string>
#include "core/memory.hpp"
#include "sds/schedule.hpp"

namespace fg {
namespace sds {

enum class OptimKind : int { Adam = 0, AdamW = 1, Adan = 2 };
OptimKind parseOptimKind(const std::string& s);
// State buffers per tensor: Adam/AdamW: m, v.  Adan: m (exp_avg), v (exp_avg_sq = n), d (exp_avg_diff), prev.
int optimStateBuffers(OptimKind k);

struct OptimConfig {
  OptimKind kind = OptimKind::Adam;
  double beta1 = 0.9, beta2 = 0.999, beta3 = 0.99;  // Adan defaults: 0.98, 0.92, 0.99
  double eps = 1e-8;
  double weightDecay = 0.0;
  bool adanNoProx = false;
  double maxGradNorm = 0.0;  // > 0: g *= min(1, maxGradNorm / (||g||_2 + clipEps)), ||.|| over the whole group
  double clipEps = 1e-6;     // torch.nn.utils.clip_grad_norm_ uses 1e-6; Adan's reference uses its eps
};
void validate(const OptimConfig& c);
OptimConfig adanDefaults();

struct OptimTensor {
  float* param = nullptr;
  const float* grad = nullptr;
  float* m = nullptr;
  float* v = nullptr;
  float* d = nullptr;     // Adan only
  float* prev = nullptr;  // Adan only
  int64_t n = 0;
};

constexpr int kMaxGroupTensors = 16;
constexpr int kMaxNormBlocks = 512;

struct OptimStepArgs {
  int64_t step = 1;       // 1-based index of this step (bias corrections use it; Adan treats step 1 as d = 0)
  double lr = 1e-3;       // this step's learning rate (lrAt(schedule, step - 1))
  float gradScale = 1.f;  // multiplies every gradient (e.g. 1/loss scale)
  uint32_t* flags = nullptr;     // optional device word: |= kFlagOptimNonFinite when a gradient is NaN/Inf
  double* gradNormOut = nullptr; // optional [1]: ||gradScale * grad||_2 over the group, before clipping (costs the reduction launch)
};

// Per-element coefficients, computed on the host in float64 and rounded once.
struct OptimCoef {
  int kind;
  float b1, omb1, b2, omb2, b3, omb3;
  float stepSize;      // lr / bc1
  float stepSizeDiff;  // Adan: lr * b2 / bc2
  float sqrtBc;        // sqrt(bc2) (Adam) or sqrt(bc3) (Adan)
  float eps;
  float l2;            // Adam: weight decay added to the gradient
  float decayMul;      // AdamW / Adan no_prox: 1 - lr wd
  float proxDiv;       // Adan prox: 1 + lr wd
  int firstStep;       // Adan: d = 0
  float gradScale;
};
OptimCoef optimCoefficients(const OptimConfig& c, const OptimStepArgs& a);

// One element of the update. `g` already includes gradScale and the clip coefficient.
FG_HDI void optimElement(const OptimCoef& k, float& p, float g, float& m, float& v, float* d, float* prev) {
  if (k.kind == int(OptimKind::Adan)) {
    float diff = k.firstStep ? 0.f : fg::sub(g, *prev);
    m = fg::fma(k.b1, m, fg::mul(k.omb1, g));
    *d = fg::fma(k.b2, *d, fg::mul(k.omb2, diff));
    float u = fg::fma(k.b2, diff, g);
    v = fg::fma(k.b3, v, fg::mul(fg::mul(k.omb3, u), u));
    float denom = fg::add(fg::div(fg::sqrt_rn(v), k.sqrtBc), k.eps);
    if (k.decayMul != 1.f) p = fg::mul(p, k.decayMul);
    p = fg::sub(p, fg::add(fg::mul(k.stepSize, fg::div(m, denom)), fg::mul(k.stepSizeDiff, fg::div(*d, denom))));
    if (k.proxDiv != 1.f) p = fg::div(p, k.proxDiv);
    *prev = g;
    return;
  }
  if (k.l2 != 0.f) g = fg::fma(k.l2, p, g);
  m = fg::fma(k.b1, m, fg::mul(k.omb1, g));
  v = fg::fma(k.b2, v, fg::mul(fg::mul(k.omb2, g), g));
  float denom = fg::add(fg::div(fg::sqrt_rn(v), k.sqrtBc), k.eps);
  if (k.decayMul != 1.f) p = fg::mul(p, k.decayMul);
  p = fg::sub(p, fg::mul(k.stepSize, fg::div(m, denom)));
}

// Workspace for one optimStep (the clip's partial sums); 0 without clipping.
size_t optimWorkspaceBytes(const OptimConfig& c, int tensorCount);
// Launches: ceil(count / kMaxGroupTensors), plus one reduction launch per chunk when maxGradNorm > 0 or gradNormOut.
int optimLaunches(const OptimConfig& c, int tensorCount, bool gradNormOut = false);

void optimStepCpu(const OptimConfig& c, const OptimTensor* t, int count, const OptimStepArgs& a);
void optimStepCuda(const OptimConfig& c, const OptimTensor* t, int count, const OptimStepArgs& a, Workspace* ws, StreamHandle s);
// `ws` may be null without clipping (or on the CPU). Arguments are checked on the host; nothing is synchronised.
void optimStep(Device d, const OptimConfig& c, const OptimTensor* t, int count, const OptimStepArgs& a, Workspace* ws = nullptr,
               StreamHandle s = nullptr);

}  // namespace sds
}  // namespace fg
