// CUDA error -> fg::Error with a stable code. Include only from CUDA-enabled translation units.
#pragma once
#if FG_HAVE_CUDA
#include <cuda_runtime.h>
#include <string>
#include "core/error.hpp"

namespace fg {

inline ErrorCode cudaErrorToCode(cudaError_t e) {
  switch (e) {
    case cudaErrorMemoryAllocation: return ErrorCode::OutOfMemory;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInvalidDevice:
    case cudaErrorDevicesUnavailable:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorCompatNotSupportedOnDevice:
    case cudaErrorNoKernelImageForDevice:
      return ErrorCode::NoCudaDevice;
    default: return ErrorCode::Cuda;
  }
}

[[noreturn]] inline void throwCuda(cudaError_t e, const char* expr, const char* file, int line) {
  cudaGetLastError();  // clear a sticky-free error so the next call starts clean
  throw Error(cudaErrorToCode(e), std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e) + " (" + expr + " at " +
                                      file + ":" + std::to_string(line) + ")");
}

}  // namespace fg

#define FG_CUDA_CHECK(expr)                                                  \
  do {                                                                       \
    cudaError_t fg_err_ = (expr);                                            \
    if (fg_err_ != cudaSuccess) ::fg::throwCuda(fg_err_, #expr, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: catches bad launch configurations without synchronising.
#define FG_CUDA_CHECK_LAUNCH() FG_CUDA_CHECK(cudaGetLastError())
#endif
