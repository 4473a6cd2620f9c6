// Host-side scalar maths of score distillation: the diffusion scheduler tables, the timestep schedule,
// the per-iteration SDS coefficients and the learning-rate schedules. Everything here is a handful of
// scalars per iteration, computed on the host in float64 from (seed, iteration) so the pipeline never
// reads anything back from the GPU to know what to launch. See docs/sds.md for the equations.
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "core/hd.hpp"

namespace fg {
namespace sds {

enum class BetaSchedule : int { Linear = 0, ScaledLinear = 1 };
enum class Prediction : int { Epsilon = 0, VPrediction = 1 };

// The subset of a diffusers `scheduler_config.json` that SDS needs (parsed in lib/sds.ts).
struct SchedulerConfig {
  BetaSchedule betaSchedule = BetaSchedule::ScaledLinear;
  double betaStart = 0.00085;
  double betaEnd = 0.012;
  int numTrainTimesteps = 1000;
  Prediction prediction = Prediction::Epsilon;
};

// Throws E_INVALID_ARGUMENT naming the field when the config is unusable.
void validate(const SchedulerConfig& c);

// betas[t] and alphasCumprod[t] = prod_{i<=t} (1 - betas[i]), t in [0, numTrainTimesteps); computed in
// float64 exactly as diffusers does (linspace in float64; scaled_linear = linspace(sqrt(b0), sqrt(b1))^2),
// then rounded once to float32.
struct SchedulerTables {
  std::vector<float> betas;
  std::vector<float> alphasCumprod;
};
SchedulerTables schedulerTables(const SchedulerConfig& c);

// ---- timesteps

enum class TimestepMode : int {
  Uniform = 0,  // t ~ U{floor(N*tMin) .. floor(N*tMax)} (threestudio's randint(min_step, max_step + 1))
  Linear = 1,   // FaceG2E: the fraction decreases linearly from tMax (first iteration) to tMin (last), +- jitter
};

struct TimestepSchedule {
  TimestepMode mode = TimestepMode::Linear;
  double tMin = 0.02;           // fractions of numTrainTimesteps
  double tMax = 0.98;
  int64_t totalIterations = 1;  // the linear schedule reaches tMin at iteration totalIterations-1
  double jitter = 0.0;          // linear mode: fraction += jitter * (2u - 1), u from Philox
  int numTrainTimesteps = 1000;
};

void validate(const TimestepSchedule& s);

// The integer timestep of `iteration`, deterministic in (seed, iteration): its only random draw is
// Philox uniform index `iteration` of (seed, rng_stream::kTimestep).
int sampleTimestep(const TimestepSchedule& s, uint64_t seed, uint64_t iteration);

// ---- per-iteration SDS coefficients

enum class Weighting : int {
  OneMinusAlpha = 0,  // w(t) = 1 - abar_t (DreamFusion / threestudio default)
  Uniform = 1,        // w(t) = 1
  Fantasia3D = 2,     // w(t) = sqrt(abar_t) * (1 - abar_t)
};

// Guidance conventions in use:  Uncond: eps_u + s (eps_c - eps_u)   (diffusers / Ho & Salimans)
//                               Cond:   eps_c + s (eps_c - eps_u)   (guidance "on top of" the conditional prediction)
enum class GuidanceAnchor : int { Uncond = 0, Cond = 1 };

// Scalars the fused kernels take, rounded once from float64. alphaBar is the float32 table value.
struct SdsCoefficients {
  int t = 0;
  float alphaBar = 0.f;
  float sqrtAlphaBar = 0.f;         // sqrt(abar)
  float sqrtOneMinusAlphaBar = 0.f; // sqrt(1 - abar)
  float weight = 0.f;               // w(t) * gradScale
};

// `alphasCumprod` is the float32 table (host). Throws E_INVALID_ARGUMENT for t out of range.
SdsCoefficients sdsCoefficients(const float* alphasCumprod, int numTrainTimesteps, int t, Weighting w, double gradScale = 1.0);
double weightValue(Weighting w, double alphaBar);

// ---- learning-rate schedules (step = 0-based index of the optimiser step about to be taken)

enum class LrScheduleKind : int { Constant = 0, Step = 1, Cosine = 2 };

struct LrSchedule {
  LrScheduleKind kind = LrScheduleKind::Constant;
  double baseLr = 1e-3;
  double gamma = 0.1;       // Step: lr = base * gamma^floor(step / stepSize)   (torch StepLR)
  int64_t stepSize = 1000;
  int64_t totalSteps = 1000;  // Cosine: lr = min + (base - min)(1 + cos(pi * min(step, T) / T)) / 2  (torch CosineAnnealingLR)
  double minLr = 0.0;
};

void validate(const LrSchedule& s);
double lrAt(const LrSchedule& s, int64_t step);

// Parse helpers shared by the bindings: names as used in configs and TypeScript.
BetaSchedule parseBetaSchedule(const std::string& s);
Prediction parsePrediction(const std::string& s);
TimestepMode parseTimestepMode(const std::string& s);
Weighting parseWeighting(const std::string& s);
GuidanceAnchor parseGuidanceAnchor(const std::string& s);
LrScheduleKind parseLrSchedule(const std::string& s);

}  // namespace sds
}  // namespace fg
