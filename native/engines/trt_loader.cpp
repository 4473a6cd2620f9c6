#include "engines/trt_loader.hpp"
#include <dlfcn.h>
#include <cstdlib>
#include <mutex>
#include "core/device.hpp"
#include "core/error.hpp"

namespace fg {
namespace engines {
namespace {

const char* kInstall =
    "Install TensorRT 10.x or 11.x for your CUDA version (e.g. `pip install tensorrt-cu12` and put its tensorrt_libs folder on "
    "LD_LIBRARY_PATH, or the libnvinfer10 packages from the NVIDIA CUDA repository); see docs/tensorrt.md";

std::vector<std::string> nvinferNames() {
  const char* env = std::getenv("FACEG2E_NVINFER_LIB");
  if (env && *env) return {env};
  return {"libnvinfer.so.11", "libnvinfer.so.10", "libnvinfer.so"};
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s;
}

// Opens libnvinfer with RTLD_GLOBAL (so libfaceg2e_trt.so resolves its symbols against this copy).
struct NvinferHandle {
  void* handle = nullptr;
  TensorRTLibInfo info;
};

NvinferHandle& nvinfer() {
  static NvinferHandle h;
  static std::once_flag once;
  std::call_once(once, [] {
    std::vector<std::string> tried = nvinferNames();
    std::string errors;
    for (const auto& name : tried) {
      dlerror();
      void* lib = dlopen(name.c_str(), RTLD_NOW | RTLD_GLOBAL);
      if (!lib) {
        const char* e = dlerror();
        errors += std::string(errors.empty() ? "" : "; ") + (e ? e : name + ": not found");
        continue;
      }
      using VersionFn = int32_t (*)();
      auto fn = reinterpret_cast<VersionFn>(dlsym(lib, "getInferLibVersion"));
      if (!fn) {
        errors += std::string(errors.empty() ? "" : "; ") + name + ": has no getInferLibVersion (not TensorRT?)";
        dlclose(lib);
        continue;
      }
      int code = fn();
      if (code / 10000 < 10) {
        errors += std::string(errors.empty() ? "" : "; ") + name + ": TensorRT " + versionText(code) + " is too old (need 10.x or 11.x)";
        dlclose(lib);
        continue;
      }
      h.handle = lib;
      h.info.found = true;
      h.info.versionCode = code;
      h.info.version = versionText(code);
      char path[4096] = {0};
      if (dlinfo(lib, RTLD_DI_ORIGIN, path) == 0 && path[0]) h.info.library = std::string(path) + "/" + name;
      else h.info.library = name;
      return;
    }
    h.info.found = false;
    h.info.error = "libnvinfer could not be loaded (tried " + joined(tried) + "): " + errors;
  });
  return h;
}

std::string addonDir() {
  Dl_info di;
  if (dladdr(reinterpret_cast<void*>(&addonDir), &di) && di.dli_fname) {
    std::string p = di.dli_fname;
    auto slash = p.rfind('/');
    if (slash != std::string::npos) return p.substr(0, slash);
  }
  return ".";
}

template <typename F>
F sym(void* lib, const char* name, const std::string& path) {
  void* p = dlsym(lib, name);
  if (!p) fail(ErrorCode::NoTensorRT, path + " lacks " + name + " (an older or foreign libfaceg2e_trt.so; rebuild native/engines/trt)");
  return reinterpret_cast<F>(p);
}

}  // namespace

std::string versionText(int code) {
  return std::to_string(code / 10000) + "." + std::to_string((code / 100) % 100) + "." + std::to_string(code % 100);
}

TensorRTLibInfo tensorrtInfo() {
  try {
    return nvinfer().info;
  } catch (...) {
    TensorRTLibInfo i;
    i.error = "TensorRT probe failed";
    return i;
  }
}

const TrtApi& trtApi() {
  static TrtApi api;
  static std::string error;
  static std::once_flag once;
  std::call_once(once, [] {
    const TensorRTLibInfo& nv = nvinfer().info;
    if (!nv.found) {
      error = "TensorRT is not available: " + nv.error + ". " + kInstall;
      return;
    }
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("FACEG2E_TRT_LIB"); env && *env) candidates.push_back(env);
    candidates.push_back(addonDir() + "/libfaceg2e_trt.so");
    candidates.push_back("libfaceg2e_trt.so");
    std::string errors;
    void* lib = nullptr;
    std::string path;
    for (const auto& c : candidates) {
      dlerror();
      lib = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (lib) {
        path = c;
        break;
      }
      const char* e = dlerror();
      errors += std::string(errors.empty() ? "" : "; ") + (e ? e : c + ": not found");
    }
    if (!lib) {
      error = "TensorRT " + nv.version + " was found (" + nv.library + ") but faceg2e's TensorRT library libfaceg2e_trt.so could not be loaded (tried " +
              joined(candidates) + "): " + errors + ". Build it with `cmake -S native/engines/trt -B build-trt -DTensorRT_ROOT=<TensorRT prefix> && cmake --build build-trt` and set FACEG2E_TRT_LIB=build-trt/libfaceg2e_trt.so (docs/tensorrt.md)";
      return;
    }
    try {
      auto abi = sym<fgtrt_abi_version_fn>(lib, "fgtrt_abi_version", path);
      if (abi() != FGTRT_ABI_VERSION)
        fail(ErrorCode::NoTensorRT, path + " speaks ABI " + std::to_string(abi()) + ", this addon needs " + std::to_string(FGTRT_ABI_VERSION) + "; rebuild native/engines/trt");
      api.versions = sym<fgtrt_versions_fn>(lib, "fgtrt_versions", path);
      api.runtimeCreate = sym<fgtrt_runtime_create_fn>(lib, "fgtrt_runtime_create", path);
      api.runtimeDestroy = sym<fgtrt_runtime_destroy_fn>(lib, "fgtrt_runtime_destroy", path);
      api.engineLoad = sym<fgtrt_engine_load_fn>(lib, "fgtrt_engine_load", path);
      api.tensorCount = sym<fgtrt_engine_tensor_count_fn>(lib, "fgtrt_engine_tensor_count", path);
      api.tensorInfo = sym<fgtrt_engine_tensor_info_fn>(lib, "fgtrt_engine_tensor_info", path);
      api.deviceMemorySize = sym<fgtrt_runtime_device_memory_size_fn>(lib, "fgtrt_runtime_device_memory_size", path);
      api.setDeviceMemory = sym<fgtrt_runtime_set_device_memory_fn>(lib, "fgtrt_runtime_set_device_memory", path);
      api.setInputShape = sym<fgtrt_set_input_shape_fn>(lib, "fgtrt_set_input_shape", path);
      api.setTensorAddress = sym<fgtrt_set_tensor_address_fn>(lib, "fgtrt_set_tensor_address", path);
      api.tensorShape = sym<fgtrt_get_tensor_shape_fn>(lib, "fgtrt_get_tensor_shape", path);
      api.enqueue = sym<fgtrt_enqueue_fn>(lib, "fgtrt_enqueue", path);
      api.buildEngine = sym<fgtrt_build_engine_fn>(lib, "fgtrt_build_engine", path);
      int32_t compiled = 0, linked = 0;
      api.versions(&compiled, &linked);
      if (compiled / 10000 != linked / 10000)
        fail(ErrorCode::NoTensorRT, path + " was compiled against TensorRT " + versionText(compiled) + " but libnvinfer is " + versionText(linked) +
                                        "; rebuild native/engines/trt against the installed TensorRT");
      api.path = path;
    } catch (const Error& e) {
      error = e.what();
      api = TrtApi{};
    }
  });
  if (!error.empty()) fail(ErrorCode::NoTensorRT, error);
  return api;
}

void throwTrt(int32_t code, const std::string& message) {
  switch (code) {
    case FGTRT_E_INVALID: fail(ErrorCode::InvalidArgument, message);
    case FGTRT_E_NO_ENGINE: fail(ErrorCode::NoEngine, message);
    case FGTRT_E_CUDA: fail(ErrorCode::Cuda, message);
    case FGTRT_E_IO: fail(ErrorCode::IO, message);
    case FGTRT_E_CANCELLED: fail(ErrorCode::Cancelled, message);
    default: fail(ErrorCode::Internal, "TensorRT: " + message);
  }
}

const char* dtypeName(int dtype) {
  switch (dtype) {
    case FGTRT_FLOAT32: return "float32";
    case FGTRT_FLOAT16: return "float16";
    case FGTRT_BFLOAT16: return "bfloat16";
    case FGTRT_INT32: return "int32";
    case FGTRT_INT64: return "int64";
    case FGTRT_INT8: return "int8";
    case FGTRT_BOOL: return "bool";
    default: return "other";
  }
}

size_t dtypeBytes(int dtype) {
  switch (dtype) {
    case FGTRT_FLOAT32: case FGTRT_INT32: return 4;
    case FGTRT_FLOAT16: case FGTRT_BFLOAT16: return 2;
    case FGTRT_INT64: return 8;
    default: return 1;
  }
}

#define FG_TRT_CALL(expr)                                   \
  do {                                                      \
    char err_[2048] = {0};                                  \
    int32_t rc_ = (expr);                                   \
    if (rc_ != FGTRT_OK) throwTrt(rc_, err_);               \
  } while (0)
// (expr) refers to err_ and sizeof(err_) below.

TrtRuntime::TrtRuntime() {
  requireCuda();
  const TrtApi& a = trtApi();
  FG_TRT_CALL(a.runtimeCreate(&rt_, err_, sizeof(err_)));
}

TrtRuntime::~TrtRuntime() {
  if (rt_) trtApi().runtimeDestroy(rt_);
}

int TrtRuntime::load(const std::string& name, const std::string& planPath) {
  const TrtApi& a = trtApi();
  int32_t idx = -1;
  FG_TRT_CALL(a.engineLoad(rt_, name.c_str(), planPath.c_str(), &idx, err_, sizeof(err_)));
  std::vector<TensorDesc> ts;
  int32_t n = a.tensorCount(rt_, idx);
  for (int32_t i = 0; i < n; ++i) {
    fgtrt_tensor_info ti;
    FG_TRT_CALL(a.tensorInfo(rt_, idx, i, &ti, err_, sizeof(err_)));
    TensorDesc d;
    d.name = ti.name;
    d.input = ti.is_input != 0;
    d.dtype = ti.dtype;
    d.dims.assign(ti.dims, ti.dims + ti.nb_dims);
    ts.push_back(std::move(d));
  }
  names_.push_back(name);
  tensors_.push_back(std::move(ts));
  return idx;
}

int TrtRuntime::find(const std::string& name) const {
  for (size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == name) return int(i);
  return -1;
}

const TensorDesc* TrtRuntime::tensor(int engine, const std::string& name) const {
  for (const auto& t : tensors_.at(size_t(engine)))
    if (t.name == name) return &t;
  return nullptr;
}

int64_t TrtRuntime::deviceMemorySize() const { return trtApi().deviceMemorySize(rt_); }

void TrtRuntime::allocateSharedMemory() {
  int64_t need = deviceMemorySize();
  if (need < 0) fail(ErrorCode::Internal, "TensorRT runtime reports no device memory size");
  if (memory_.size() < size_t(need) || memory_.size() == 0) memory_ = Buffer<uint8_t>(Device::CUDA, size_t(need > 0 ? need : 256));
  FG_TRT_CALL(trtApi().setDeviceMemory(rt_, memory_.data(), int64_t(memory_.size()), err_, sizeof(err_)));
}

void TrtRuntime::setInputShape(int engine, const std::string& name, const std::vector<int64_t>& dims) {
  FG_TRT_CALL(trtApi().setInputShape(rt_, engine, name.c_str(), dims.data(), int32_t(dims.size()), err_, sizeof(err_)));
}

void TrtRuntime::setAddress(int engine, const std::string& name, void* ptr) {
  FG_TRT_CALL(trtApi().setTensorAddress(rt_, engine, name.c_str(), ptr, err_, sizeof(err_)));
}

std::vector<int64_t> TrtRuntime::shape(int engine, const std::string& name) {
  int64_t d[FGTRT_MAX_DIMS];
  int32_t nb = 0;
  FG_TRT_CALL(trtApi().tensorShape(rt_, engine, name.c_str(), d, &nb, err_, sizeof(err_)));
  return std::vector<int64_t>(d, d + nb);
}

void TrtRuntime::enqueue(int engine, StreamHandle stream) { FG_TRT_CALL(trtApi().enqueue(rt_, engine, stream, err_, sizeof(err_))); }

namespace {
struct BuildCallbacks {
  const BuildRequest* r;
};
void progressThunk(void* user, const char* msg) {
  auto* cb = static_cast<BuildCallbacks*>(user);
  if (cb->r->progress) {
    try {
      cb->r->progress(msg);
    } catch (...) {
    }
  }
}
int32_t cancelledThunk(void* user) {
  auto* cb = static_cast<BuildCallbacks*>(user);
  try {
    return cb->r->cancelled && cb->r->cancelled() ? 1 : 0;
  } catch (...) {
    return 1;
  }
}
}  // namespace

void buildEngine(const BuildRequest& r) {
  FG_CHECK_ARG(!r.onnx.empty(), "build: onnx path is empty");
  FG_CHECK_ARG(!r.plan.empty(), "build: plan path is empty");
  const TrtApi& a = trtApi();
  requireCuda();
  std::vector<fgtrt_profile_dims> prof(r.profiles.size());
  for (size_t i = 0; i < r.profiles.size(); ++i) {
    const auto& p = r.profiles[i];
    FG_CHECK_ARG(p.min.size() == p.opt.size() && p.opt.size() == p.max.size() && p.min.size() <= FGTRT_MAX_DIMS,
                 "build: profile for " + p.name + ": min/opt/max must have the same rank (<= 8)");
    prof[i] = fgtrt_profile_dims{};
    prof[i].name = p.name.c_str();
    prof[i].nb_dims = int32_t(p.min.size());
    for (size_t k = 0; k < p.min.size(); ++k) {
      FG_CHECK_ARG(p.min[k] > 0 && p.min[k] <= p.opt[k] && p.opt[k] <= p.max[k], "build: profile for " + p.name + ": need 0 < min <= opt <= max in every dimension");
      prof[i].min[k] = p.min[k];
      prof[i].opt[k] = p.opt[k];
      prof[i].max[k] = p.max[k];
    }
  }
  BuildCallbacks cb{&r};
  fgtrt_build_options o{};
  o.onnx_path = r.onnx.c_str();
  o.plan_path = r.plan.c_str();
  o.profile = prof.data();
  o.profile_count = int32_t(prof.size());
  o.workspace_bytes = r.workspaceBytes;
  o.opt_level = r.optLevel;
  o.progress = progressThunk;
  o.cancelled = cancelledThunk;
  o.user = &cb;
  FG_TRT_CALL(a.buildEngine(&o, err_, sizeof(err_)));
}

}  // namespace engines
}  // namespace fg
