// The addon's side of TensorRT: finds libnvinfer and libfaceg2e_trt.so at run time (dlopen), resolves the C
// ABI of trt_abi.h, and wraps it in RAII classes that throw fg::Error. Without TensorRT everything here throws
// E_NO_TENSORRT with the library names it tried and how to install TensorRT; tensorrtInfo() never throws.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>
#include "core/memory.hpp"
#include "engines/trt_abi.h"

namespace fg {
namespace engines {

struct TensorRTLibInfo {
  bool found = false;
  std::string version;  // "10.16.0"
  std::string library;  // the libnvinfer that was opened
  std::string error;    // why not found
  int versionCode = 0;  // major*10000 + minor*100 + patch
};

// libnvinfer only (for `doctor`): cached after the first call. FACEG2E_NVINFER_LIB overrides the names tried.
TensorRTLibInfo tensorrtInfo();
std::string versionText(int code);

// The resolved C ABI of libfaceg2e_trt.so. Loaded once, on first use; throws E_NO_TENSORRT.
struct TrtApi {
  fgtrt_versions_fn versions = nullptr;
  fgtrt_runtime_create_fn runtimeCreate = nullptr;
  fgtrt_runtime_destroy_fn runtimeDestroy = nullptr;
  fgtrt_engine_load_fn engineLoad = nullptr;
  fgtrt_engine_tensor_count_fn tensorCount = nullptr;
  fgtrt_engine_tensor_info_fn tensorInfo = nullptr;
  fgtrt_runtime_device_memory_size_fn deviceMemorySize = nullptr;
  fgtrt_runtime_set_device_memory_fn setDeviceMemory = nullptr;
  fgtrt_set_input_shape_fn setInputShape = nullptr;
  fgtrt_set_tensor_address_fn setTensorAddress = nullptr;
  fgtrt_get_tensor_shape_fn tensorShape = nullptr;
  fgtrt_enqueue_fn enqueue = nullptr;
  fgtrt_build_engine_fn buildEngine = nullptr;
  std::string path;  // where libfaceg2e_trt.so was found
};
const TrtApi& trtApi();

// Throws the fg::Error that matches an FGTRT_E_* code.
[[noreturn]] void throwTrt(int32_t code, const std::string& message);

struct TensorDesc {
  std::string name;
  bool input = false;
  int dtype = FGTRT_FLOAT32;
  std::vector<int64_t> dims;  // -1 = dynamic
};
const char* dtypeName(int dtype);
size_t dtypeBytes(int dtype);

// One IRuntime with its engines and the one device-memory block they share.
class TrtRuntime {
 public:
  TrtRuntime();
  ~TrtRuntime();
  TrtRuntime(const TrtRuntime&) = delete;
  TrtRuntime& operator=(const TrtRuntime&) = delete;

  int load(const std::string& name, const std::string& planPath);  // -> engine index
  int find(const std::string& name) const;                          // -1 when absent
  const std::vector<TensorDesc>& tensors(int engine) const { return tensors_.at(size_t(engine)); }
  const TensorDesc* tensor(int engine, const std::string& name) const;
  int64_t deviceMemorySize() const;
  // Allocates (once, or grows) the shared block on the GPU and hands it to every context.
  void allocateSharedMemory();
  void setInputShape(int engine, const std::string& name, const std::vector<int64_t>& dims);
  void setAddress(int engine, const std::string& name, void* ptr);
  std::vector<int64_t> shape(int engine, const std::string& name);  // resolved for the current input shapes
  void enqueue(int engine, StreamHandle stream);

 private:
  fgtrt_runtime* rt_ = nullptr;
  std::vector<std::string> names_;
  std::vector<std::vector<TensorDesc>> tensors_;
  Buffer<uint8_t> memory_;
};

struct BuildProfile {
  std::string name;
  std::vector<int64_t> min, opt, max;
};
struct BuildRequest {
  std::string onnx, plan;
  std::vector<BuildProfile> profiles;
  uint64_t workspaceBytes = 8ull << 30;
  int optLevel = 3;
  std::function<void(const std::string&)> progress;
  std::function<bool()> cancelled;
};
void buildEngine(const BuildRequest& r);

}  // namespace engines
}  // namespace fg
