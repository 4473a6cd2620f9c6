// GPU discovery. Safe on a machine with no GPU and no driver: everything reports "none" instead of aborting.
#pragma once
#include <string>
#include <vector>
#include "core/hd.hpp"

namespace fg {

struct GpuInfo {
  int index = 0;
  std::string name;
  size_t totalMemory = 0;
  size_t freeMemory = 0;
  int ccMajor = 0, ccMinor = 0;
  int multiprocessors = 0;
  bool supported = false;  // this addon carries code for it (SASS for its arch or PTX that JITs to it)
};

struct CudaInfo {
  bool compiledWithCuda = false;
  int runtimeVersion = 0;  // e.g. 13000; 0 when unknown
  int driverVersion = 0;   // CUDA version the driver supports, 0 when no driver
  std::string error;       // why no GPU is usable, empty when at least one is
  std::vector<GpuInfo> gpus;
  std::string builtArchitectures;  // from the build, e.g. "80-real;86-real;89-real;90-real;90-virtual"
};

CudaInfo queryCuda();
// Throws E_NO_CUDA_DEVICE with the reason when `Device::CUDA` can't be used.
void requireCuda();

// The device dispatch of a twin op: `cpuCall` on Device::CPU, else `cudaCall`. In a build without CUDA the CUDA
// call is not compiled (its functions do not exist) and Device::CUDA throws E_NO_CUDA_DEVICE (requireCuda).
#if FG_HAVE_CUDA
#define FG_TWIN_CALL(d, cpuCall, cudaCall) \
  do {                                    \
    if ((d) == ::fg::Device::CPU) cpuCall; \
    else cudaCall;                        \
  } while (0)
#else
#define FG_TWIN_CALL(d, cpuCall, cudaCall) \
  do {                                    \
    if ((d) == ::fg::Device::CPU) cpuCall; \
    else ::fg::requireCuda();             \
  } while (0)
#endif
bool cudaUsable();
Device parseDevice(const std::string& s);  // "cpu" | "cuda", else E_INVALID_ARGUMENT
const char* deviceName(Device d);

}  // namespace fg
