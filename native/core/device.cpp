#include "core/device.hpp"
#include <mutex>
#include "core/error.hpp"
#if FG_HAVE_CUDA
#include "core/cuda_check.hpp"
#endif

#ifndef FG_CUDA_ARCHS_STRING
#define FG_CUDA_ARCHS_STRING ""
#endif

namespace fg {

CudaInfo queryCuda() {
  CudaInfo info;
#if FG_HAVE_CUDA
  info.compiledWithCuda = true;
  info.builtArchitectures = FG_CUDA_ARCHS_STRING;
  cudaRuntimeGetVersion(&info.runtimeVersion);
  if (cudaDriverGetVersion(&info.driverVersion) != cudaSuccess) info.driverVersion = 0;
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    info.error = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
    return info;
  }
  if (n == 0) { info.error = "no CUDA device found"; return info; }
  int current = 0;
  cudaGetDevice(&current);
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) { cudaGetLastError(); continue; }
    GpuInfo g;
    g.index = i;
    g.name = p.name;
    g.totalMemory = p.totalGlobalMem;
    g.ccMajor = p.major;
    g.ccMinor = p.minor;
    g.multiprocessors = p.multiProcessorCount;
    if (cudaSetDevice(i) == cudaSuccess) {
      size_t f = 0, t = 0;
      if (cudaMemGetInfo(&f, &t) == cudaSuccess) g.freeMemory = f;
      cudaFuncAttributes attr{};
      // A trivial probe of whether our fatbinary has code for this GPU.
      extern const void* fgProbeKernel();
      g.supported = cudaFuncGetAttributes(&attr, fgProbeKernel()) == cudaSuccess;
      cudaGetLastError();
    }
    info.gpus.push_back(g);
  }
  cudaSetDevice(current);
#else
  info.error = "the addon was built without CUDA (nvcc not found at build time)";
#endif
  return info;
}

bool cudaUsable() {
  static std::once_flag once;
  static bool usable = false;
  std::call_once(once, [] {
    CudaInfo i = queryCuda();
    for (auto& g : i.gpus) usable = usable || g.supported;
  });
  return usable;
}

void requireCuda() {
  if (cudaUsable()) return;
  CudaInfo i = queryCuda();
  std::string why = i.error.empty() ? "no GPU that this build supports (built for " + i.builtArchitectures + ")" : i.error;
  fail(ErrorCode::NoCudaDevice, "device 'cuda' is not available: " + why + ". Run `npx faceg2e-native doctor` for details, or use device 'cpu'.");
}

Device parseDevice(const std::string& s) {
  if (s == "cpu") return Device::CPU;
  if (s == "cuda") return Device::CUDA;
  fail(ErrorCode::InvalidArgument, "device must be 'cpu' or 'cuda', got '" + s + "'");
}

const char* deviceName(Device d) { return d == Device::CUDA ? "cuda" : "cpu"; }

}  // namespace fg
