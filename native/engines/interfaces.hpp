// What the pipeline needs from a diffusion model: a text encoder, a latent codec (VAE) and an ε denoiser with
// classifier-free guidance and ControlNets. Plain C++: no TensorRT or CUDA types. Backends: TensorRT
// (trt_backend.hpp, over the dlopen'ed libfaceg2e_trt.so) and the target denoiser + identity/pooling codecs
// (target.hpp), which need no network.
//
// Conventions: every pointer lives on the object's device() (host memory for Device::CPU); every call is
// enqueued on `stream` and neither allocates nor synchronises, so a whole iteration can be graph-captured.
// Scratch memory comes from a caller-reserved fg::Workspace sized by workspaceBytes().
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>
#include "core/memory.hpp"

namespace fg {
namespace engines {

class TextEncoder {
 public:
  virtual ~TextEncoder() = default;
  virtual Device device() const = 0;
  virtual int maxTokens() const = 0;  // 77 for CLIP
  virtual int embedDim() const = 0;   // D (768 for SD 1.5)
  // ids: int32 [batch, maxTokens] -> out: float32 [batch, maxTokens, embedDim]
  virtual void encode(const int32_t* ids, int batch, float* out, StreamHandle stream) = 0;
};

class Codec {
 public:
  virtual ~Codec() = default;
  virtual Device device() const = 0;
  virtual int latentChannels() const = 0;
  virtual int downsampleFactor() const = 0;
  virtual float scalingFactor() const = 0;  // already applied by encode(), undone by decode()
  // images: [n, 3, H, W] in [0,1] -> latents: [n, C, H/f, W/f] (the posterior mean times scalingFactor())
  virtual void encode(const float* images, int n, int height, int width, float* latents, StreamHandle stream) = 0;
  // latents: [n, C, h, w] -> images: [n, 3, h*f, w*f] in [0,1]
  virtual void decode(const float* latents, int n, int height, int width, float* images, StreamHandle stream) = 0;
};

enum class CfgOrder : int { UncondFirst = 0, CondFirst = 1 };

struct ControlInput {
  std::string name;            // engine name, e.g. "controlnet_depth"
  const float* image = nullptr;  // [n, 3, h*f, w*f] in [0,1]
  float scale = 1.f;           // 0: skipped, costs nothing
};

struct DenoiseRequest {
  int n = 1;                    // views
  int channels = 4, height = 64, width = 64;  // latent
  const float* xt = nullptr;    // [n, C, h, w]
  int timestep = 0;             // DDPM step index
  float alphaBar = 0.5f;        // ᾱ of that step, in (0,1)
  const float* text = nullptr;  // [n_text, tokens, D], n_text = 2n with CFG (guidance != 1) else n
  int tokens = 77, embedDim = 768;
  float guidance = 1.f;         // ε = ε_u + g (ε_c − ε_u); 1 = no CFG (a single half)
  CfgOrder cfgOrder = CfgOrder::UncondFirst;
  const float* target = nullptr;  // [n, C, h, w]: conditioning latent (required by the target denoiser)
  std::vector<ControlInput> controls;
  float* eps = nullptr;         // out [n, C, h, w]
  bool cfg() const { return guidance != 1.f; }
};

class Denoiser {
 public:
  virtual ~Denoiser() = default;
  virtual Device device() const = 0;
  // Scratch bytes predict() needs for this request shape (the Workspace is reserved once by the caller).
  virtual size_t workspaceBytes(const DenoiseRequest& r) const = 0;
  virtual void predict(const DenoiseRequest& r, Workspace& ws, StreamHandle stream) = 0;
};

// Checks shared by every backend: pointers present, sizes positive, ᾱ in (0,1), guidance finite.
void validateRequest(const DenoiseRequest& r, bool needText, bool needTarget);

}  // namespace engines
}  // namespace fg
