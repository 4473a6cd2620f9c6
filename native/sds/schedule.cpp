#include "sds/schedule.hpp"
#include <cmath>
#include <sstream>
#include "core/error.hpp"
#include "core/philox.hpp"
#include "core/rng.hpp"

namespace fg {
namespace sds {

namespace {
std::string num(double v) {
  std::ostringstream o;
  o.precision(17);
  o << v;
  return o.str();
}
// torch.linspace's symmetric evaluation (start + i*step in the first half, end - (n-1-i)*step in the second).
double linspaceAt(double a, double b, int n, int i) {
  if (n == 1) return a;
  double step = (b - a) / double(n - 1);
  return i < n / 2 ? a + step * double(i) : b - step * double(n - 1 - i);
}
}  // namespace

void validate(const SchedulerConfig& c) {
  FG_CHECK_ARG(c.numTrainTimesteps >= 2 && c.numTrainTimesteps <= 100000,
               "num_train_timesteps: expected an integer in [2, 100000], got " + std::to_string(c.numTrainTimesteps));
  FG_CHECK_ARG(std::isfinite(c.betaStart) && c.betaStart > 0 && c.betaStart < 1, "beta_start: expected a number in (0, 1), got " + num(c.betaStart));
  FG_CHECK_ARG(std::isfinite(c.betaEnd) && c.betaEnd > 0 && c.betaEnd < 1, "beta_end: expected a number in (0, 1), got " + num(c.betaEnd));
  FG_CHECK_ARG(c.betaStart <= c.betaEnd, "beta_start: expected <= beta_end (" + num(c.betaEnd) + "), got " + num(c.betaStart));
  FG_CHECK_ARG(c.betaSchedule == BetaSchedule::Linear || c.betaSchedule == BetaSchedule::ScaledLinear,
               "beta_schedule: expected 'linear' or 'scaled_linear'");
  FG_CHECK_ARG(c.prediction == Prediction::Epsilon || c.prediction == Prediction::VPrediction,
               "prediction_type: expected 'epsilon' or 'v_prediction'");
}

SchedulerTables schedulerTables(const SchedulerConfig& c) {
  validate(c);
  const int n = c.numTrainTimesteps;
  SchedulerTables t;
  t.betas.resize(n);
  t.alphasCumprod.resize(n);
  double prod = 1.0;
  for (int i = 0; i < n; ++i) {
    double beta;
    if (c.betaSchedule == BetaSchedule::Linear) {
      beta = linspaceAt(c.betaStart, c.betaEnd, n, i);
    } else {
      double r = linspaceAt(std::sqrt(c.betaStart), std::sqrt(c.betaEnd), n, i);
      beta = r * r;
    }
    prod *= (1.0 - beta);
    t.betas[i] = float(beta);
    t.alphasCumprod[i] = float(prod);
  }
  return t;
}

void validate(const TimestepSchedule& s) {
  FG_CHECK_ARG(s.numTrainTimesteps >= 2, "numTrainTimesteps: expected >= 2, got " + std::to_string(s.numTrainTimesteps));
  FG_CHECK_ARG(std::isfinite(s.tMin) && s.tMin >= 0 && s.tMin <= 1, "tMin: expected a fraction in [0, 1], got " + num(s.tMin));
  FG_CHECK_ARG(std::isfinite(s.tMax) && s.tMax >= 0 && s.tMax <= 1, "tMax: expected a fraction in [0, 1], got " + num(s.tMax));
  FG_CHECK_ARG(s.tMin <= s.tMax, "tMin: expected <= tMax (" + num(s.tMax) + "), got " + num(s.tMin));
  FG_CHECK_ARG(s.totalIterations >= 1, "totalIterations: expected >= 1, got " + std::to_string(s.totalIterations));
  FG_CHECK_ARG(std::isfinite(s.jitter) && s.jitter >= 0 && s.jitter <= 1, "jitter: expected a fraction in [0, 1], got " + num(s.jitter));
  FG_CHECK_ARG(s.mode == TimestepMode::Uniform || s.mode == TimestepMode::Linear, "mode: expected 'uniform' or 'linear'");
}

int sampleTimestep(const TimestepSchedule& s, uint64_t seed, uint64_t iteration) {
  validate(s);
  const int n = s.numTrainTimesteps;
  // the step range: threestudio's int(N * percent), clamped to the table
  int minStep = static_cast<int>(std::floor(double(n) * s.tMin));
  int maxStep = static_cast<int>(std::floor(double(n) * s.tMax));
  minStep = std::min(std::max(minStep, 0), n - 1);
  maxStep = std::min(std::max(maxStep, minStep), n - 1);
  double u = double(philox::uniformAt(seed, rng_stream::kTimestep, iteration));  // in (0, 1)
  if (s.mode == TimestepMode::Uniform) {
    int span = maxStep - minStep + 1;
    int k = static_cast<int>(std::floor(u * double(span)));
    return std::min(minStep + k, maxStep);
  }
  double frac;
  if (s.totalIterations <= 1) frac = s.tMax;
  else {
    double it = double(std::min<uint64_t>(iteration, uint64_t(s.totalIterations - 1)));
    frac = s.tMax + (s.tMin - s.tMax) * (it / double(s.totalIterations - 1));
  }
  if (s.jitter > 0) frac += s.jitter * (2.0 * u - 1.0);
  int t = static_cast<int>(std::floor(frac * double(n) + 0.5));
  return std::min(std::max(t, minStep), maxStep);
}

double weightValue(Weighting w, double a) {
  switch (w) {
    case Weighting::OneMinusAlpha: return 1.0 - a;
    case Weighting::Uniform: return 1.0;
    case Weighting::Fantasia3D: return std::sqrt(a) * (1.0 - a);
  }
  fail(ErrorCode::InvalidArgument, "weighting: expected '1-alpha', 'uniform' or 'fantasia3d'");
}

SdsCoefficients sdsCoefficients(const float* alphasCumprod, int numTrainTimesteps, int t, Weighting w, double gradScale) {
  FG_CHECK_ARG(alphasCumprod != nullptr, "alphasCumprod: the table is missing");
  FG_CHECK_ARG(t >= 0 && t < numTrainTimesteps,
               "t: expected an integer in [0, " + std::to_string(numTrainTimesteps - 1) + "], got " + std::to_string(t));
  FG_CHECK_ARG(std::isfinite(gradScale), "gradScale: expected a finite number");
  SdsCoefficients c;
  c.t = t;
  c.alphaBar = alphasCumprod[t];
  double a = double(c.alphaBar);
  FG_CHECK_ARG(a > 0 && a < 1, "alphasCumprod[" + std::to_string(t) + "]: expected a value in (0, 1), got " + num(a));
  c.sqrtAlphaBar = float(std::sqrt(a));
  c.sqrtOneMinusAlphaBar = float(std::sqrt(1.0 - a));
  c.weight = float(weightValue(w, a) * gradScale);
  return c;
}

void validate(const LrSchedule& s) {
  FG_CHECK_ARG(std::isfinite(s.baseLr) && s.baseLr >= 0, "lr: expected a finite number >= 0, got " + num(s.baseLr));
  if (s.kind == LrScheduleKind::Step) {
    FG_CHECK_ARG(std::isfinite(s.gamma) && s.gamma > 0, "gamma: expected a finite number > 0, got " + num(s.gamma));
    FG_CHECK_ARG(s.stepSize >= 1, "stepSize: expected an integer >= 1, got " + std::to_string(s.stepSize));
  } else if (s.kind == LrScheduleKind::Cosine) {
    FG_CHECK_ARG(s.totalSteps >= 1, "totalSteps: expected an integer >= 1, got " + std::to_string(s.totalSteps));
    FG_CHECK_ARG(std::isfinite(s.minLr) && s.minLr >= 0, "minLr: expected a finite number >= 0, got " + num(s.minLr));
  } else {
    FG_CHECK_ARG(s.kind == LrScheduleKind::Constant, "schedule: expected 'constant', 'step' or 'cosine'");
  }
}

double lrAt(const LrSchedule& s, int64_t step) {
  validate(s);
  FG_CHECK_ARG(step >= 0, "step: expected an integer >= 0, got " + std::to_string(step));
  switch (s.kind) {
    case LrScheduleKind::Constant: return s.baseLr;
    case LrScheduleKind::Step: return s.baseLr * std::pow(s.gamma, double(step / s.stepSize));
    case LrScheduleKind::Cosine: {
      double tc = double(std::min(step, s.totalSteps));
      return s.minLr + (s.baseLr - s.minLr) * 0.5 * (1.0 + std::cos(M_PI * tc / double(s.totalSteps)));
    }
  }
  return s.baseLr;
}

BetaSchedule parseBetaSchedule(const std::string& s) {
  if (s == "linear") return BetaSchedule::Linear;
  if (s == "scaled_linear") return BetaSchedule::ScaledLinear;
  fail(ErrorCode::InvalidArgument, "beta_schedule: expected 'linear' or 'scaled_linear', got '" + s + "'");
}
Prediction parsePrediction(const std::string& s) {
  if (s == "epsilon") return Prediction::Epsilon;
  if (s == "v_prediction") return Prediction::VPrediction;
  fail(ErrorCode::InvalidArgument, "prediction_type: expected 'epsilon' or 'v_prediction', got '" + s + "'");
}
TimestepMode parseTimestepMode(const std::string& s) {
  if (s == "uniform") return TimestepMode::Uniform;
  if (s == "linear") return TimestepMode::Linear;
  fail(ErrorCode::InvalidArgument, "mode: expected 'uniform' or 'linear', got '" + s + "'");
}
Weighting parseWeighting(const std::string& s) {
  if (s == "1-alpha") return Weighting::OneMinusAlpha;
  if (s == "uniform") return Weighting::Uniform;
  if (s == "fantasia3d") return Weighting::Fantasia3D;
  fail(ErrorCode::InvalidArgument, "weighting: expected '1-alpha', 'uniform' or 'fantasia3d', got '" + s + "'");
}
GuidanceAnchor parseGuidanceAnchor(const std::string& s) {
  if (s == "uncond") return GuidanceAnchor::Uncond;
  if (s == "cond") return GuidanceAnchor::Cond;
  fail(ErrorCode::InvalidArgument, "guidanceAnchor: expected 'uncond' (eps_u + s(eps_c - eps_u)) or 'cond' (eps_c + s(eps_c - eps_u)), got '" + s + "'");
}
LrScheduleKind parseLrSchedule(const std::string& s) {
  if (s == "constant") return LrScheduleKind::Constant;
  if (s == "step") return LrScheduleKind::Step;
  if (s == "cosine") return LrScheduleKind::Cosine;
  fail(ErrorCode::InvalidArgument, "schedule: expected 'constant', 'step' or 'cosine', got '" + s + "'");
}

}  // namespace sds
}  // namespace fg
