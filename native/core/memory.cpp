#include "core/memory.hpp"
#include <cstdlib>
#include <new>
#if FG_HAVE_CUDA
#include "core/cuda_check.hpp"
#endif

namespace fg {

namespace {
[[noreturn]] void noCuda() {
  fail(ErrorCode::NoCudaDevice, "this faceg2e-native addon was built without CUDA (nvcc was not found at build time); use device 'cpu' or rebuild");
}
}  // namespace

void* deviceAlloc(Device d, size_t bytes) {
  if (d == Device::CPU) {
    void* p = std::aligned_alloc(256, ((bytes + 255) / 256) * 256);
    if (!p) fail(ErrorCode::OutOfMemory, "host allocation of " + std::to_string(bytes) + " bytes failed");
    return p;
  }
#if FG_HAVE_CUDA
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, bytes);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t freeB = 0, totalB = 0;
    cudaMemGetInfo(&freeB, &totalB);
    fail(ErrorCode::OutOfMemory, "GPU allocation of " + std::to_string(bytes) + " bytes failed (" + std::to_string(freeB >> 20) +
                                     " MiB free of " + std::to_string(totalB >> 20) + " MiB)");
  }
  FG_CUDA_CHECK(e);
  return p;
#else
  noCuda();
#endif
}

void deviceFree(Device d, void* p) noexcept {
  if (!p) return;
  if (d == Device::CPU) { std::free(p); return; }
#if FG_HAVE_CUDA
  cudaFree(p);
#endif
}

void memcpyAny(void* dst, Device dd, const void* src, Device sd, size_t bytes, StreamHandle s) {
  if (!bytes) return;
  if (dd == Device::CPU && sd == Device::CPU) { std::memcpy(dst, src, bytes); return; }
#if FG_HAVE_CUDA
  cudaMemcpyKind k = dd == Device::CPU ? cudaMemcpyDeviceToHost : (sd == Device::CPU ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToDevice);
  if (s) {
    FG_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, k, static_cast<cudaStream_t>(s)));
    if (dd == Device::CPU) FG_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(s)));
  } else {
    FG_CUDA_CHECK(cudaMemcpy(dst, src, bytes, k));
  }
#else
  noCuda();
#endif
}

void memsetAny(void* dst, Device d, int value, size_t bytes, StreamHandle s) {
  if (!bytes) return;
  if (d == Device::CPU) { std::memset(dst, value, bytes); return; }
#if FG_HAVE_CUDA
  FG_CUDA_CHECK(cudaMemsetAsync(dst, value, bytes, static_cast<cudaStream_t>(s)));
#else
  noCuda();
#endif
}

void streamSync(StreamHandle s) {
  if (!s) return;  // the CPU (or the default, never used) stream: nothing to wait for
#if FG_HAVE_CUDA
  FG_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(s)));
#else
  (void)s;
#endif
}

Stream::Stream(Device d) : dev_(d) {
  if (d == Device::CPU) return;
#if FG_HAVE_CUDA
  cudaStream_t st;
  FG_CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  h_ = st;
#else
  noCuda();
#endif
}

Stream::~Stream() {
#if FG_HAVE_CUDA
  if (h_) cudaStreamDestroy(static_cast<cudaStream_t>(h_));
#endif
}

}  // namespace fg
