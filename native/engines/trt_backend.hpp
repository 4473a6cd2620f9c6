// TensorRT backends of the interfaces, over the C ABI (trt_loader.hpp). Compiled into every addon; they only
// run where libnvinfer and libfaceg2e_trt.so load (else E_NO_TENSORRT). Engines and tensor names follow the
// manifest (docs/tensorrt.md §2). None of this has run yet: see docs/tensorrt.md §6.
#pragma once
#include <memory>
#include <string>
#include <vector>
#include "engines/interfaces.hpp"
#include "engines/trt_loader.hpp"

namespace fg {
namespace engines {

struct PlanRef {
  std::string name;  // engine name from the manifest
  std::string path;  // absolute plan path
};

// All engines of a built folder in one runtime, sharing one device-memory block.
class TrtEngineSet {
 public:
  explicit TrtEngineSet(const std::vector<PlanRef>& plans);
  TrtRuntime& runtime() { return rt_; }
  int engine(const std::string& name) const;  // -1 when absent
  int require(const std::string& name) const;  // E_NO_ENGINE when absent
  // Checks that `engine` has tensor `name` with `dtype` (FGTRT_*) and direction; E_NO_ENGINE naming both otherwise.
  void expect(int engine, const std::string& name, bool input, int dtype) const;

 private:
  TrtRuntime rt_;
  std::vector<std::string> names_;
};

class TrtTextEncoder final : public TextEncoder {
 public:
  TrtTextEncoder(std::shared_ptr<TrtEngineSet> set, int maxTokens, int embedDim);
  Device device() const override { return Device::CUDA; }
  int maxTokens() const override { return tokens_; }
  int embedDim() const override { return dim_; }
  void encode(const int32_t* ids, int batch, float* out, StreamHandle stream) override;

 private:
  std::shared_ptr<TrtEngineSet> set_;
  int e_, tokens_, dim_;
};

class TrtCodec final : public Codec {
 public:
  TrtCodec(std::shared_ptr<TrtEngineSet> set, int latentChannels, int factor, float scaling);
  Device device() const override { return Device::CUDA; }
  int latentChannels() const override { return c_; }
  int downsampleFactor() const override { return f_; }
  float scalingFactor() const override { return scaling_; }
  void encode(const float* images, int n, int height, int width, float* latents, StreamHandle stream) override;
  void decode(const float* latents, int n, int height, int width, float* images, StreamHandle stream) override;

 private:
  std::shared_ptr<TrtEngineSet> set_;
  int enc_, dec_, c_, f_;
  float scaling_;
};

class TrtDenoiser final : public Denoiser {
 public:
  TrtDenoiser(std::shared_ptr<TrtEngineSet> set, int downsampleFactor);
  // Another UNet of the set with the UNet's tensors, e.g. the texture-tuned "unet_<name>" of the texture prior.
  TrtDenoiser(std::shared_ptr<TrtEngineSet> set, int downsampleFactor, const std::string& unetName);
  Device device() const override { return Device::CUDA; }
  size_t workspaceBytes(const DenoiseRequest& r) const override;
  void predict(const DenoiseRequest& r, Workspace& ws, StreamHandle stream) override;

 private:
  struct Residual {
    std::string unetName, cnName;
    int dtype = FGTRT_FLOAT32;
  };
  std::vector<int64_t> residualShape(int cn, const Residual& res, const DenoiseRequest& r) const;
  void setCommonShapes(int engine, const DenoiseRequest& r) const;
  std::shared_ptr<TrtEngineSet> set_;
  int unet_;
  int f_;
  bool unetTakesResiduals_ = false;
  std::vector<Residual> residuals_;
};

}  // namespace engines
}  // namespace fg
