// libfaceg2e_trt.so: the TensorRT runtime and builder behind the C ABI of ../trt_abi.h. Loaded by the addon
// with dlopen (trt_loader.cpp) after libnvinfer, so the addon never links TensorRT.
//
// Written against the public TensorRT API of 10.x (>= 10.1) and 11.x; NV_TENSORRT_MAJOR selects the paths
// that differ:
//  - network creation: 10.x needs NetworkDefinitionCreationFlag::kSTRONGLY_TYPED for a strongly typed
//    network; 11.x is always strongly typed and deprecates (ignores) the flag, so we pass 0;
//  - no BuilderFlag::kFP16/kBF16/kINT8 (weak typing, removed in 11): the ONNX's dtypes decide the precision;
//  - user-managed context memory: createExecutionContext(ExecutionContextAllocationStrategy::kUSER_MANAGED) +
//    getDeviceMemorySizeV2 / setDeviceMemoryV2 (10.1+ and 11.x; the V1 calls only before 10.1).
#include <NvInfer.h>
#include <NvInferVersion.h>
#include <NvOnnxParser.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "../trt_abi.h"

#if !defined(NV_TENSORRT_MAJOR) || NV_TENSORRT_MAJOR < 10
#error "faceg2e-native needs TensorRT 10.x or 11.x headers"
#endif
#if NV_TENSORRT_MAJOR > 10 || (NV_TENSORRT_MAJOR == 10 && NV_TENSORRT_MINOR >= 1)
#define FGTRT_HAVE_V2_MEMORY 1
#else
#define FGTRT_HAVE_V2_MEMORY 0
#endif

#define FGTRT_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

using nvinfer1::ILogger;

int32_t setErr(char* err, size_t errLen, int32_t code, const std::string& msg) {
  if (err && errLen) {
    size_t n = std::min(errLen - 1, msg.size());
    std::memcpy(err, msg.data(), n);
    err[n] = '\0';
  }
  return code;
}

// Keeps the last errors TensorRT logged (they explain a failed deserialisation or build) and forwards
// informational lines to an optional progress callback.
class Logger final : public ILogger {
 public:
  void log(Severity severity, nvinfer1::AsciiChar const* msg) noexcept override {
    try {
      std::lock_guard<std::mutex> lock(mu_);
      if (severity <= Severity::kERROR) {
        if (!errors_.empty()) errors_ += "; ";
        errors_ += msg;
        if (errors_.size() > 4000) errors_.erase(0, errors_.size() - 4000);
      }
      if (progress_ && severity <= Severity::kINFO) progress_(user_, msg);
    } catch (...) {
    }
  }
  std::string takeErrors() {
    std::lock_guard<std::mutex> lock(mu_);
    std::string e;
    e.swap(errors_);
    return e;
  }
  void setProgress(void (*fn)(void*, const char*), void* user) {
    std::lock_guard<std::mutex> lock(mu_);
    progress_ = fn;
    user_ = user;
  }

 private:
  std::mutex mu_;
  std::string errors_;
  void (*progress_)(void*, const char*) = nullptr;
  void* user_ = nullptr;
};

std::string withLog(const std::string& what, Logger& log) {
  std::string e = log.takeErrors();
  return e.empty() ? what : what + " (TensorRT: " + e + ")";
}

int32_t dtypeCode(nvinfer1::DataType t) {
  switch (t) {
    case nvinfer1::DataType::kFLOAT: return FGTRT_FLOAT32;
    case nvinfer1::DataType::kHALF: return FGTRT_FLOAT16;
    case nvinfer1::DataType::kBF16: return FGTRT_BFLOAT16;
    case nvinfer1::DataType::kINT32: return FGTRT_INT32;
    case nvinfer1::DataType::kINT64: return FGTRT_INT64;
    case nvinfer1::DataType::kINT8: return FGTRT_INT8;
    case nvinfer1::DataType::kBOOL: return FGTRT_BOOL;
    default: return FGTRT_OTHER;
  }
}

struct Engine {
  std::string name;
  std::unique_ptr<nvinfer1::ICudaEngine> engine;
  std::unique_ptr<nvinfer1::IExecutionContext> context;
  int64_t deviceMemory = 0;
};

}  // namespace

struct fgtrt_runtime {
  Logger logger;
  std::unique_ptr<nvinfer1::IRuntime> runtime;
  std::vector<Engine> engines;
  void* memory = nullptr;
  int64_t memorySize = 0;
};

namespace {

Engine* engineAt(fgtrt_runtime* rt, int32_t i) {
  if (!rt || i < 0 || size_t(i) >= rt->engines.size()) return nullptr;
  return &rt->engines[size_t(i)];
}

bool readFile(const std::string& path, std::vector<char>& out) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) return false;
  std::streamsize n = f.tellg();
  if (n <= 0) return false;
  out.resize(size_t(n));
  f.seekg(0);
  return bool(f.read(out.data(), n));
}

nvinfer1::Dims toDims(const int64_t* d, int32_t nb) {
  nvinfer1::Dims dims{};
  dims.nbDims = nb;
  for (int32_t i = 0; i < nb && i < nvinfer1::Dims::MAX_DIMS; ++i) dims.d[i] = d[i];
  return dims;
}

std::string dimsText(const nvinfer1::Dims& d) {
  std::string s = "[";
  for (int32_t i = 0; i < d.nbDims; ++i) s += (i ? "," : "") + std::to_string(int64_t(d.d[i]));
  return s + "]";
}

// Builder progress → the caller's callback; cancellation is honoured at every step.
class Monitor final : public nvinfer1::IProgressMonitor {
 public:
  explicit Monitor(const fgtrt_build_options* o) : o_(o) {}
  void phaseStart(char const* phaseName, char const* parentPhase, int32_t nbSteps) noexcept override {
    if (!o_->progress) return;
    std::string m = std::string("phase ") + phaseName + (parentPhase ? std::string(" (in ") + parentPhase + ")" : "") + ": " +
                    std::to_string(nbSteps) + " steps";
    o_->progress(o_->user, m.c_str());
  }
  bool stepComplete(char const*, int32_t) noexcept override { return !(o_->cancelled && o_->cancelled(o_->user)); }
  void phaseFinish(char const* phaseName) noexcept override {
    if (o_->progress) o_->progress(o_->user, (std::string("finished ") + phaseName).c_str());
  }

 private:
  const fgtrt_build_options* o_;
};

}  // namespace

FGTRT_EXPORT int32_t fgtrt_abi_version(void) { return FGTRT_ABI_VERSION; }

FGTRT_EXPORT int32_t fgtrt_versions(int32_t* compiled, int32_t* linked) {
  if (compiled) *compiled = NV_TENSORRT_MAJOR * 10000 + NV_TENSORRT_MINOR * 100 + NV_TENSORRT_PATCH;
  if (linked) *linked = getInferLibVersion();
  return FGTRT_OK;
}

FGTRT_EXPORT int32_t fgtrt_runtime_create(fgtrt_runtime** out, char* err, size_t errLen) {
  try {
    if (!out) return setErr(err, errLen, FGTRT_E_INVALID, "fgtrt_runtime_create: out is null");
    auto rt = std::make_unique<fgtrt_runtime>();
    rt->runtime.reset(nvinfer1::createInferRuntime(rt->logger));
    if (!rt->runtime) return setErr(err, errLen, FGTRT_E_TENSORRT, withLog("createInferRuntime failed", rt->logger));
    *out = rt.release();
    return FGTRT_OK;
  } catch (const std::exception& e) {
    return setErr(err, errLen, FGTRT_E_TENSORRT, e.what());
  }
}

FGTRT_EXPORT void fgtrt_runtime_destroy(fgtrt_runtime* rt) {
  if (!rt) return;
  for (auto& e : rt->engines) {
    e.context.reset();  // contexts before their engines, engines before the runtime
    e.engine.reset();
  }
  rt->engines.clear();
  rt->runtime.reset();
  delete rt;
}

FGTRT_EXPORT int32_t fgtrt_engine_load(fgtrt_runtime* rt, const char* name, const char* planPath, int32_t* index, char* err, size_t errLen) {
  try {
    if (!rt || !name || !planPath || !index) return setErr(err, errLen, FGTRT_E_INVALID, "fgtrt_engine_load: null argument");
    std::vector<char> blob;
    if (!readFile(planPath, blob)) return setErr(err, errLen, FGTRT_E_NO_ENGINE, std::string(planPath) + ": cannot read the plan file");
    Engine e;
    e.name = name;
    e.engine.reset(rt->runtime->deserializeCudaEngine(blob.data(), blob.size()));
    if (!e.engine)
      return setErr(err, errLen, FGTRT_E_NO_ENGINE,
                    withLog(std::string(planPath) + ": TensorRT could not deserialise this plan (built by another TensorRT version or for another GPU?)",
                            rt->logger));
    e.context.reset(e.engine->createExecutionContext(nvinfer1::ExecutionContextAllocationStrategy::kUSER_MANAGED));
    if (!e.context) return setErr(err, errLen, FGTRT_E_TENSORRT, withLog(std::string(name) + ": createExecutionContext failed", rt->logger));
#if FGTRT_HAVE_V2_MEMORY
    e.deviceMemory = e.engine->getDeviceMemorySizeV2();
#else
    e.deviceMemory = int64_t(e.engine->getDeviceMemorySize());
#endif
    rt->engines.push_back(std::move(e));
    *index = int32_t(rt->engines.size() - 1);
    return FGTRT_OK;
  } catch (const std::exception& ex) {
    return setErr(err, errLen, FGTRT_E_TENSORRT, ex.what());
  }
}

FGTRT_EXPORT int32_t fgtrt_engine_tensor_count(fgtrt_runtime* rt, int32_t engine) {
  Engine* e = engineAt(rt, engine);
  return e ? e->engine->getNbIOTensors() : -1;
}

FGTRT_EXPORT int32_t fgtrt_engine_tensor_info(fgtrt_runtime* rt, int32_t engine, int32_t index, fgtrt_tensor_info* out, char* err, size_t errLen) {
  Engine* e = engineAt(rt, engine);
  if (!e || !out) return setErr(err, errLen, FGTRT_E_INVALID, "fgtrt_engine_tensor_info: bad engine index or null output");
  if (index < 0 || index >= e->engine->getNbIOTensors()) return setErr(err, errLen, FGTRT_E_INVALID, "fgtrt_engine_tensor_info: tensor index out of range");
  const char* n = e->engine->getIOTensorName(index);
  std::memset(out, 0, sizeof(*out));
  std::snprintf(out->name, sizeof(out->name), "%s", n);
  out->is_input = e->engine->getTensorIOMode(n) == nvinfer1::TensorIOMode::kINPUT ? 1 : 0;
  out->dtype = dtypeCode(e->engine->getTensorDataType(n));
  nvinfer1::Dims d = e->engine->getTensorShape(n);
  out->nb_dims = std::min<int32_t>(d.nbDims, FGTRT_MAX_DIMS);
  for (int32_t i = 0; i < out->nb_dims; ++i) out->dims[i] = d.d[i];
  return FGTRT_OK;
}

FGTRT_EXPORT int64_t fgtrt_runtime_device_memory_size(fgtrt_runtime* rt) {
  if (!rt) return -1;
  int64_t m = 0;
  for (auto& e : rt->engines) m = std::max(m, e.deviceMemory);
  return m;
}

// One block for every context: the engines run one after another on the pipeline stream.
FGTRT_EXPORT int32_t fgtrt_runtime_set_device_memory(fgtrt_runtime* rt, void* ptr, int64_t size, char* err, size_t errLen) {
  if (!rt) return setErr(err, errLen, FGTRT_E_INVALID, "fgtrt_runtime_set_device_memory: null runtime");
  int64_t need = fgtrt_runtime_device_memory_size(rt);
  if (size < need)
    return setErr(err, errLen, FGTRT_E_INVALID, "shared TensorRT workspace of " + std::to_string(size) + " bytes is smaller than the " + std::to_string(need) + " the engines need");
  for (auto& e : rt->engines) {
#if FGTRT_HAVE_V2_MEMORY
    e.context->setDeviceMemoryV2(ptr, size);
#else
    e.context->setDeviceMemory(ptr);
#endif
  }
  rt->memory = ptr;
  rt->memorySize = size;
  std::string log = rt->logger.takeErrors();
  return log.empty() ? FGTRT_OK : setErr(err, errLen, FGTRT_E_TENSORRT, "setDeviceMemory: " + log);
}

FGTRT_EXPORT int32_t fgtrt_set_input_shape(fgtrt_runtime* rt, int32_t engine, const char* name, const int64_t* dims, int32_t nbDims, char* err, size_t errLen) {
  Engine* e = engineAt(rt, engine);
  if (!e || !name || !dims || nbDims < 0 || nbDims > FGTRT_MAX_DIMS) return setErr(err, errLen, FGTRT_E_INVALID, "fgtrt_set_input_shape: bad argument");
  nvinfer1::Dims d = toDims(dims, nbDims);
  if (!e->context->setInputShape(name, d))
    return setErr(err, errLen, FGTRT_E_INVALID, withLog(e->name + ": setInputShape(" + name + ", " + dimsText(d) + ") was rejected (outside the optimisation profile?)", rt->logger));
  return FGTRT_OK;
}

FGTRT_EXPORT int32_t fgtrt_set_tensor_address(fgtrt_runtime* rt, int32_t engine, const char* name, void* ptr, char* err, size_t errLen) {
  Engine* e = engineAt(rt, engine);
  if (!e || !name) return setErr(err, errLen, FGTRT_E_INVALID, "fgtrt_set_tensor_address: bad argument");
  if (!e->context->setTensorAddress(name, ptr))
    return setErr(err, errLen, FGTRT_E_INVALID, withLog(e->name + ": setTensorAddress(" + name + ") was rejected (unknown tensor or misaligned pointer)", rt->logger));
  return FGTRT_OK;
}

FGTRT_EXPORT int32_t fgtrt_get_tensor_shape(fgtrt_runtime* rt, int32_t engine, const char* name, int64_t* dims, int32_t* nbDims, char* err, size_t errLen) {
  Engine* e = engineAt(rt, engine);
  if (!e || !name || !dims || !nbDims) return setErr(err, errLen, FGTRT_E_INVALID, "fgtrt_get_tensor_shape: bad argument");
  nvinfer1::Dims d = e->context->getTensorShape(name);
  if (d.nbDims < 0) return setErr(err, errLen, FGTRT_E_INVALID, withLog(e->name + ": no tensor named \"" + name + "\"", rt->logger));
  *nbDims = std::min<int32_t>(d.nbDims, FGTRT_MAX_DIMS);
  for (int32_t i = 0; i < *nbDims; ++i) dims[i] = d.d[i];
  return FGTRT_OK;
}

FGTRT_EXPORT int32_t fgtrt_enqueue(fgtrt_runtime* rt, int32_t engine, void* stream, char* err, size_t errLen) {
  Engine* e = engineAt(rt, engine);
  if (!e) return setErr(err, errLen, FGTRT_E_INVALID, "fgtrt_enqueue: bad engine index");
  if (!rt->memory && e->deviceMemory > 0) return setErr(err, errLen, FGTRT_E_INVALID, e->name + ": no device memory set (call fgtrt_runtime_set_device_memory)");
  if (!e->context->allInputDimensionsSpecified()) return setErr(err, errLen, FGTRT_E_INVALID, e->name + ": not every input shape is set");
  if (!e->context->enqueueV3(static_cast<cudaStream_t>(stream)))
    return setErr(err, errLen, FGTRT_E_TENSORRT, withLog(e->name + ": enqueueV3 failed", rt->logger));
  return FGTRT_OK;
}

FGTRT_EXPORT int32_t fgtrt_build_engine(const fgtrt_build_options* o, char* err, size_t errLen) {
  try {
    if (!o || !o->onnx_path || !o->plan_path) return setErr(err, errLen, FGTRT_E_INVALID, "fgtrt_build_engine: onnx_path and plan_path are required");
    Logger logger;
    logger.setProgress(o->progress, o->user);
    std::unique_ptr<nvinfer1::IBuilder> builder(nvinfer1::createInferBuilder(logger));
    if (!builder) return setErr(err, errLen, FGTRT_E_TENSORRT, withLog("createInferBuilder failed", logger));
#if NV_TENSORRT_MAJOR >= 11
    nvinfer1::NetworkDefinitionCreationFlags flags = 0;  // always strongly typed
#else
    nvinfer1::NetworkDefinitionCreationFlags flags = 1U << static_cast<uint32_t>(nvinfer1::NetworkDefinitionCreationFlag::kSTRONGLY_TYPED);
#endif
    std::unique_ptr<nvinfer1::INetworkDefinition> network(builder->createNetworkV2(flags));
    if (!network) return setErr(err, errLen, FGTRT_E_TENSORRT, withLog("createNetworkV2 failed", logger));
    std::unique_ptr<nvonnxparser::IParser> parser(nvonnxparser::createParser(*network, logger));
    if (!parser) return setErr(err, errLen, FGTRT_E_TENSORRT, withLog("createParser failed", logger));
    if (o->progress) o->progress(o->user, (std::string("parsing ") + o->onnx_path).c_str());
    if (!parser->parseFromFile(o->onnx_path, static_cast<int>(ILogger::Severity::kWARNING))) {
      std::string m = std::string(o->onnx_path) + ": the ONNX parser failed";
      for (int i = 0; i < parser->getNbErrors(); ++i) m += std::string(i ? "; " : ": ") + parser->getError(i)->desc();
      return setErr(err, errLen, FGTRT_E_INVALID, withLog(m, logger));
    }
    if (o->cancelled && o->cancelled(o->user)) return setErr(err, errLen, FGTRT_E_CANCELLED, "build cancelled");
    std::unique_ptr<nvinfer1::IBuilderConfig> config(builder->createBuilderConfig());
    if (o->workspace_bytes) config->setMemoryPoolLimit(nvinfer1::MemoryPoolType::kWORKSPACE, o->workspace_bytes);
    config->setBuilderOptimizationLevel(std::max(0, std::min(5, o->opt_level)));
    Monitor monitor(o);
    config->setProgressMonitor(&monitor);
    nvinfer1::IOptimizationProfile* profile = builder->createOptimizationProfile();
    for (int32_t i = 0; i < o->profile_count; ++i) {
      const fgtrt_profile_dims& p = o->profile[i];
      if (!p.name || p.nb_dims < 0 || p.nb_dims > FGTRT_MAX_DIMS) return setErr(err, errLen, FGTRT_E_INVALID, "profile entry " + std::to_string(i) + ": bad name or rank");
      bool isInput = false;
      for (int32_t k = 0; k < network->getNbInputs(); ++k)
        if (std::strcmp(network->getInput(k)->getName(), p.name) == 0) isInput = true;
      if (!isInput) return setErr(err, errLen, FGTRT_E_INVALID, std::string(o->onnx_path) + ": the network has no input named \"" + p.name + "\" (check the manifest)");
      if (!profile->setDimensions(p.name, nvinfer1::OptProfileSelector::kMIN, toDims(p.min, p.nb_dims)) ||
          !profile->setDimensions(p.name, nvinfer1::OptProfileSelector::kOPT, toDims(p.opt, p.nb_dims)) ||
          !profile->setDimensions(p.name, nvinfer1::OptProfileSelector::kMAX, toDims(p.max, p.nb_dims)))
        return setErr(err, errLen, FGTRT_E_INVALID, withLog(std::string("optimisation profile for \"") + p.name + "\" was rejected (min <= opt <= max?)", logger));
    }
    if (o->profile_count > 0 && config->addOptimizationProfile(profile) < 0)
      return setErr(err, errLen, FGTRT_E_INVALID, withLog("addOptimizationProfile failed (does the profile cover every dynamic input?)", logger));
    std::unique_ptr<nvinfer1::IHostMemory> plan(builder->buildSerializedNetwork(*network, *config));
    if (o->cancelled && o->cancelled(o->user)) return setErr(err, errLen, FGTRT_E_CANCELLED, "build cancelled");
    if (!plan || plan->size() == 0) return setErr(err, errLen, FGTRT_E_TENSORRT, withLog(std::string(o->onnx_path) + ": buildSerializedNetwork failed", logger));
    std::ofstream f(o->plan_path, std::ios::binary | std::ios::trunc);
    if (!f || !f.write(static_cast<const char*>(plan->data()), std::streamsize(plan->size())))
      return setErr(err, errLen, FGTRT_E_IO, std::string(o->plan_path) + ": cannot write the plan");
    return FGTRT_OK;
  } catch (const std::exception& e) {
    return setErr(err, errLen, FGTRT_E_TENSORRT, e.what());
  }
}
