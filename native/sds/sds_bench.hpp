// A native timing loop for bench/sds.ts: all per-iteration SDS and optimiser maths of the texture phase
// (noise + CFG batch, guided gradient, Adam on the texture), timed with CUDA events around many iterations
// on one stream. The denoiser is out of scope: its output is a fixed random buffer.
#pragma once
#include <cstdint>
#include "sds/optim.hpp"
#include "sds/sds.hpp"

namespace fg {
namespace sds {

struct BenchConfig {
  int64_t latentElements = 4 * 64 * 64;       // x0: 1x4x64x64 -> CFG batch 2x4x64x64
  int64_t textureElements = 512 * 512 * 3;    // the optimised texture
  int iterations = 1000;
  int warmup = 50;
  bool normalize = false;
  float clampValue = 0.f;
  bool x0Pred = false;
  bool halfIo = false;                        // fp16 x_t out / model output in
  OptimKind optimizer = OptimKind::Adam;
  double maxGradNorm = 0.0;
};

struct BenchResult {
  double deviceUsPerIter = 0;  // CUDA events around the whole loop / iterations
  double hostUsPerIter = 0;    // wall clock of the enqueueing loop / iterations
  double launchesPerIter = 0;  // kernels the launchers enqueued / iterations
};

BenchResult benchTexturePhase(const BenchConfig& c);  // CUDA only (E_NO_CUDA_DEVICE otherwise)

}  // namespace sds
}  // namespace fg
