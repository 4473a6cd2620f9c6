// Internal: the per-device pass runners behind RasterContext (raster.cpp: CPU twin; raster.cu: CUDA).
#pragma once
#include <functional>
#include <string>
#include <utility>
#include <vector>
#include "core/memory.hpp"
#include "raster/raster_math.hpp"

namespace fg {
namespace raster {

struct ForwardScratch {
  int* queue = nullptr;     // [V*T] big-triangle queue (CUDA)
  int2_t* chunks = nullptr; // [chunkCapacity] (view*T + triangle, chunk) items of the chunked raster (CUDA)
  int64_t chunkCapacity = 0;
  int* counter = nullptr;   // [2]: queue length, chunk count
};
// Capacity of the chunk list for V*T (view, triangle) pairs and pix pixels (a triangle that does not fit goes to
// the big-triangle queue instead).
inline int64_t chunkListCapacity(int64_t VT, int64_t pix) { return 4 * VT + pix / 16; }

// Texel-gradient buffers (dTex, dMip) the CUDA backward zeroes itself, once the silhouette-edge pass is forked.
struct TexZero {
  void* p[2] = {nullptr, nullptr};
  size_t bytes[2] = {0, 0};
  void add(void* ptr, size_t b) {
    const int i = p[0] ? 1 : 0;
    p[i] = ptr;
    bytes[i] = b;
  }
};

void forwardCpu(const Kern& k);
void mipBuildCpu(const float* tex, int tw, int th, int C, int levels, float* pyramid);
void backwardCpu(const Kern& k, bool withNormals, bool texConvert);
void interpolateCpu(const InterpolateParams& p, float* out);
void interpolateBackwardCpu(const InterpolateParams& p, const float* dOut, float* dAttr);
#if FG_HAVE_CUDA
// Per-stage timing for benchmarks: while a StageTimer is installed (setStageTimer), the CUDA pass runners call
// mark(stage) on their stream after each stage's launches (the time since the previous mark is that stage's).
struct StageTimer {
  virtual ~StageTimer() = default;
  virtual void mark(const char* stage, StreamHandle stream) = 0;
};
void setStageTimer(StageTimer* t);
// Launch tuning of the CUDA passes (benchmarks sweep it; the defaults are what the H100 measurements chose).
struct RasterTuning {
  int chunk = 12;       // pixels of a triangle's box per work item of the chunked raster
  int bigArea = 1024;   // triangles with a larger pixel box go to the block-per-triangle queue
  int bwdMinBlocks = 4; // register budget of the backward pixel pass: 3 or 4 blocks of 256 threads per SM (3 with grey)
  int bwdMipMinBlocks = 3;  // the same with mip-mapping: 2 or 3 (3 spills a little, and is faster)
  int pdl = 1;          // programmatic dependent launch between the forward's kernels (sm_90)
  int texStage = 1;     // texel gradients summed per warp in shared memory before the global reductions
};
void setRasterTuning(const RasterTuning& t);
RasterTuning rasterTuning();
// Runs `body` (enqueues one forward + backward on `stream`) `warmup` + `iters` times with a StageTimer
// installed; returns the mean microseconds of each stage, in launch order. For benchmarks only (it synchronises).
std::vector<std::pair<std::string, double>> stageBreakdownCuda(const std::function<void()>& body, int warmup, int iters,
                                                               StreamHandle stream);
// Times `body` (which only enqueues work on `stream`) with CUDA events: warmup runs, then the mean over
// `iters` runs, in microseconds. For benchmarks only (it synchronises).
double timeCudaUs(const std::function<void()>& body, int warmup, int iters, StreamHandle stream);
// The same with `body` captured once into a CUDA graph (stream capture) and the graph replayed: no launch gaps.
double timeCudaGraphUs(const std::function<void()>& body, int warmup, int iters, StreamHandle stream);
void forwardCuda(const Kern& k, const ForwardScratch& s, StreamHandle stream);
// Creates the calling thread's side stream of the backward (once per thread; called by the RasterContext
// constructor so that a later backward under CUDA-graph capture creates nothing).
void prepareSideStreamCuda();
void mipBuildCuda(const float* tex, int tw, int th, int C, int levels, float* pyramid, StreamHandle stream);
void backwardCuda(const Kern& k, const TexZero& texZero, bool withNormals, bool texConvert, int64_t texElems, StreamHandle stream);
void interpolateCuda(const InterpolateParams& p, float* out, StreamHandle s);
void interpolateBackwardCuda(const InterpolateParams& p, const float* dOut, float* dAttr, StreamHandle s);
#endif

}  // namespace raster
}  // namespace fg
