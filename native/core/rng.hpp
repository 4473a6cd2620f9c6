// Bulk draws from the project RNG (philox.hpp), with a CPU twin and a CUDA launcher.
// out[i] = draw (offset + i) of (seed, stream). `out` lives on `device`.
#pragma once
#include <cstdint>
#include "core/memory.hpp"

namespace fg {

enum class Distribution : int { Uniform = 0, Normal = 1 };

struct RngRequest {
  uint64_t seed = 0;
  uint64_t stream = 0;
  uint64_t offset = 0;
  Distribution dist = Distribution::Uniform;
  float mean = 0.f;    // normal: mean + std * z ; uniform: lo + (hi-lo) * u with lo=mean, hi=mean+std (defaults: (0,1))
  float scale = 1.f;
};

void rngFillCpu(const RngRequest& r, float* out, int64_t n);
void rngFillCuda(const RngRequest& r, float* out, int64_t n, StreamHandle s);
void rngFill(Device d, const RngRequest& r, float* out, int64_t n, StreamHandle s = nullptr);
void rngRawCpu(uint64_t seed, uint64_t stream, uint64_t offset, uint32_t* out, int64_t n);
void rngRawCuda(uint64_t seed, uint64_t stream, uint64_t offset, uint32_t* out, int64_t n, StreamHandle s);

// Well-known stream ids: every consumer in the project takes its own, so adding one never shifts another's draws.
namespace rng_stream {
constexpr uint64_t kUser = 0;
constexpr uint64_t kSdsNoise = 1;
constexpr uint64_t kTimestep = 2;
constexpr uint64_t kCamera = 3;
constexpr uint64_t kLighting = 4;
constexpr uint64_t kInit = 5;
constexpr uint64_t kPrompt = 6;
}  // namespace rng_stream

}  // namespace fg
