// Owning buffers on the host or a CUDA device, a per-pipeline stream, and a bump workspace.
//
// Steady state allocates nothing: a pipeline reserves its Workspace once (sized by a dry run or by the
// op's `workspaceBytes()`), then every iteration calls `reset()` and carves the same slices again.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include "core/error.hpp"
#include "core/hd.hpp"

namespace fg {

// Opaque stream handle so that CPU-only translation units never see cuda_runtime.h (nullptr = CPU / default).
using StreamHandle = void*;

void* deviceAlloc(Device d, size_t bytes);             // throws E_OUT_OF_MEMORY / E_NO_CUDA_DEVICE
void deviceFree(Device d, void* p) noexcept;
void memcpyAny(void* dst, Device dd, const void* src, Device sd, size_t bytes, StreamHandle s = nullptr);
void memsetAny(void* dst, Device d, int value, size_t bytes, StreamHandle s = nullptr);
void streamSync(StreamHandle s);

template <typename T>
class Buffer {
 public:
  Buffer() = default;
  Buffer(Device d, size_t n) : dev_(d), n_(n) {
    if (n) ptr_ = static_cast<T*>(deviceAlloc(d, n * sizeof(T)));
  }
  ~Buffer() { release(); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept : dev_(o.dev_), n_(o.n_), ptr_(o.ptr_) { o.ptr_ = nullptr; o.n_ = 0; }
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) { release(); dev_ = o.dev_; n_ = o.n_; ptr_ = o.ptr_; o.ptr_ = nullptr; o.n_ = 0; }
    return *this;
  }
  T* data() { return ptr_; }
  const T* data() const { return ptr_; }
  size_t size() const { return n_; }
  size_t bytes() const { return n_ * sizeof(T); }
  Device device() const { return dev_; }
  void upload(const T* host, size_t n, StreamHandle s = nullptr) {
    FG_CHECK_ARG(n <= n_, "Buffer::upload: " + std::to_string(n) + " elements into a buffer of " + std::to_string(n_));
    memcpyAny(ptr_, dev_, host, Device::CPU, n * sizeof(T), s);
  }
  void download(T* host, size_t n, StreamHandle s = nullptr) const {
    FG_CHECK_ARG(n <= n_, "Buffer::download: " + std::to_string(n) + " elements from a buffer of " + std::to_string(n_));
    memcpyAny(host, Device::CPU, ptr_, dev_, n * sizeof(T), s);
  }
  void zero(StreamHandle s = nullptr) { if (n_) memsetAny(ptr_, dev_, 0, bytes(), s); }

 private:
  void release() noexcept { if (ptr_) deviceFree(dev_, ptr_); ptr_ = nullptr; }
  Device dev_ = Device::CPU;
  size_t n_ = 0;
  T* ptr_ = nullptr;
};

// Bump allocator over one reservation. alloc() never calls the driver; it throws if the reservation is short.
class Workspace {
 public:
  Workspace() = default;
  Workspace(Device d, size_t bytes) : buf_(d, bytes) {}
  void reserve(Device d, size_t bytes) {
    if (buf_.device() != d || buf_.size() < bytes) buf_ = Buffer<uint8_t>(d, bytes);
    used_ = 0;
  }
  template <typename T>
  T* alloc(size_t n) {
    size_t off = (used_ + 255) & ~size_t(255);  // 256-byte alignment (vector loads, TMA-friendly)
    size_t need = off + n * sizeof(T);
    if (need > buf_.size())
      fail(ErrorCode::Internal, "Workspace: request of " + std::to_string(n * sizeof(T)) + " bytes exceeds the reservation of " +
                                    std::to_string(buf_.size()) + " (used " + std::to_string(used_) + ")");
    used_ = need;
    return reinterpret_cast<T*>(buf_.data() + off);
  }
  // Bytes a sequence of allocs needs (for sizing a reservation): add(n*sizeof(T)) per alloc.
  static size_t aligned(size_t bytes) { return (bytes + 255) & ~size_t(255); }
  void reset() { used_ = 0; }
  size_t used() const { return used_; }
  size_t capacity() const { return buf_.size(); }
  Device device() const { return buf_.device(); }

 private:
  Buffer<uint8_t> buf_;
  size_t used_ = 0;
};

// One CUDA stream per pipeline (non-blocking). On Device::CPU it is a null handle.
class Stream {
 public:
  explicit Stream(Device d);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  StreamHandle handle() const { return h_; }
  Device device() const { return dev_; }
  void sync() const { streamSync(h_); }

 private:
  Device dev_;
  StreamHandle h_ = nullptr;
};

}  // namespace fg
