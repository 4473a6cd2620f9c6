// Errors with stable codes. Kernels and launchers throw fg::Error; the N-API layer turns it into a JS
// Error whose `code` is errorCodeName(code). Codes are part of the public API: never renumber or rename.
#pragma once
#include <stdexcept>
#include <string>

namespace fg {

enum class ErrorCode : int {
  InvalidArgument,  // E_INVALID_ARGUMENT
  NoCudaDevice,     // E_NO_CUDA_DEVICE: no GPU, no driver, or an addon built without CUDA
  Cuda,             // E_CUDA: any other CUDA runtime error
  OutOfMemory,      // E_OUT_OF_MEMORY: host or device allocation failed
  IO,               // E_IO
  Cancelled,        // E_CANCELLED: an AbortSignal fired
  NoEngine,         // E_NO_ENGINE: a TensorRT plan/manifest is missing or does not match
  NoTensorRT,       // E_NO_TENSORRT: libnvinfer could not be loaded
  Numerical,        // E_NUMERICAL: NaN/Inf detected in a gradient or loss
  Internal,         // E_INTERNAL: a bug; please report
};

inline const char* errorCodeName(ErrorCode c) {
  switch (c) {
    case ErrorCode::InvalidArgument: return "E_INVALID_ARGUMENT";
    case ErrorCode::NoCudaDevice: return "E_NO_CUDA_DEVICE";
    case ErrorCode::Cuda: return "E_CUDA";
    case ErrorCode::OutOfMemory: return "E_OUT_OF_MEMORY";
    case ErrorCode::IO: return "E_IO";
    case ErrorCode::Cancelled: return "E_CANCELLED";
    case ErrorCode::NoEngine: return "E_NO_ENGINE";
    case ErrorCode::NoTensorRT: return "E_NO_TENSORRT";
    case ErrorCode::Numerical: return "E_NUMERICAL";
    case ErrorCode::Internal: return "E_INTERNAL";
  }
  return "E_INTERNAL";
}

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] inline void fail(ErrorCode code, const std::string& message) { throw Error(code, message); }

}  // namespace fg

// Argument checks name the argument and what was expected, e.g.
//   FG_CHECK_ARG(width > 0, "width must be > 0, got " + std::to_string(width));
#define FG_CHECK_ARG(cond, msg)                                     \
  do {                                                              \
    if (!(cond)) ::fg::fail(::fg::ErrorCode::InvalidArgument, msg); \
  } while (0)
