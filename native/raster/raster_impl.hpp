// Internal: the per-device pass runners behind RasterContext (raster.cpp: CPU twin; raster.cu: CUDA).
#pragma once
#include "core/memory.hpp"
#include "raster/raster_math.hpp"

namespace fg {
namespace raster {

struct ForwardScratch {
  int* queue = nullptr;    // [V*T] big-triangle queue (CUDA)
  int* counter = nullptr;  // [1]
};

void forwardCpu(const Kern& k);
void backwardCpu(const Kern& k, bool withNormals, bool texConvert);
void interpolateCpu(const InterpolateParams& p, float* out);
void interpolateBackwardCpu(const InterpolateParams& p, const float* dOut, float* dAttr);
#if FG_HAVE_CUDA
void forwardCuda(const Kern& k, const ForwardScratch& s, StreamHandle stream);
void backwardCuda(const Kern& k, bool withNormals, bool texConvert, int64_t texElems, StreamHandle stream);
void interpolateCuda(const InterpolateParams& p, float* out, StreamHandle s);
void interpolateBackwardCuda(const InterpolateParams& p, const float* dOut, float* dAttr, StreamHandle s);
#endif

}  // namespace raster
}  // namespace fg
