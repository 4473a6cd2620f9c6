// The pipeline's one point of contact with the engines domain's concrete backends: which Denoiser and Codec a run
// uses, and what the pipeline needs to know about the codec that the Codec interface does not say (its adjoint
// for the latent path). A change in native/engines touches this file only.
//
// Two backends:
//  - the target denoiser + identity/pooling codec (no network; DiffusionSettings alone describes it);
//  - TensorRT engines (text encoder, UNet, ControlNets or a texture-tuned UNet, VAE) from a built engines folder.
//    What that needs beyond DiffusionSettings (the folder's plans and build profiles, the prompts' token ids, the
//    shapes the run will ask for) is a NetworkRun, which the binding attaches to the run's DiffusionSettings with
//    a NetworkAttachment for the duration of runPipeline(); makeBackend() picks it up.
#pragma once
#include <array>
#include <memory>
#include <string>
#include <utility>
#include <vector>
#include "engines/interfaces.hpp"
#include "engines/trt_backend.hpp"
#include "pipeline/kernels.hpp"

namespace fg {
namespace pipe {

struct DiffusionSettings;
struct PipelineInput;

// The five text conditions, in the order of the pipeline's text variants.
enum TextSlot : int { kTextUncond = 0, kTextFront = 1, kTextSide = 2, kTextBack = 3, kTextPrior = 4, kTextSlots = 5 };
const char* textSlotName(int slot);  // "uncond", "front", "side", "back", "texturePrior"

// What the binding read from <dir>/faceg2e-engines.json (docs/tensorrt.md §2).
struct EngineFolder {
  std::string dir, manifestFile;
  std::vector<engines::PlanRef> plans;  // the engines this run needs, absolute plan paths
  int latentChannels = 4, downsampleFactor = 8, maxTokens = 77, embedDim = 768;
  float scalingFactor = 0.18215f;
  // build section (empty tensorrt: the manifest has none)
  std::string builtTensorRT, builtGpuName, builtComputeCapability;
  int minBatch = 1, maxBatch = 1;
  std::vector<std::pair<int, int>> resolutions;  // image [height, width] the optimisation profiles cover
};

// One denoiser call the run will make (for the profile checks and the workspace size).
struct PlannedRequest {
  std::string what;  // the config fields that set it, for messages
  engines::DenoiseRequest request;  // shapes, guidance and control names only (no pointers)
  bool denoise = true;              // false: a VAE encode/decode only
};

struct NetworkRun {
  EngineFolder folder;
  std::string depthControl;  // ControlNet of the render term ("" when disabled or scale 0)
  std::string priorEngine;   // texture prior: "controlnet_<type>", "unet_<name>" (texture-tuned UNet), "" (none)
  // Token ids [maxTokens] per TextSlot; an empty slot takes the precomputed embedding of DiffusionSettings.
  std::array<std::vector<int32_t>, kTextSlots> ids;
  std::vector<PlannedRequest> planned;
  bool needsText() const;
};

// Every denoiser / codec call the pipeline makes for `in` with a codec of downsampling factor f (control names
// from in.texture.controlName / priorControlName). Mirrors native/pipeline/pipeline.cpp: geometry; the texture
// phase's latent and RGB stages with their prior terms; the decode of the latent texture.
std::vector<PlannedRequest> planRequests(const PipelineInput& in, int f);

// The engines a run needs (names in the manifest).
std::vector<std::string> requiredEngines(const NetworkRun& r);

// Fast checks that load no plan, in this order: plan files present (E_NO_ENGINE naming the file), every planned
// shape inside the build profiles (E_NO_ENGINE naming the config field), TensorRT loadable (E_NO_TENSORRT naming
// the libraries tried), device CUDA (E_INVALID_ARGUMENT), the folder built by this TensorRT on this GPU
// (E_NO_ENGINE with both).
void checkNetworkRun(const NetworkRun& r, Device d);

// Attaches `run` to `settings` until destroyed (the binding holds one around runPipeline()). `settings` must stay
// alive and unmoved meanwhile; makeBackend() writes the encoded prompts into its text vectors.
class NetworkAttachment {
 public:
  NetworkAttachment(DiffusionSettings& settings, std::shared_ptr<const NetworkRun> run);
  ~NetworkAttachment();
  NetworkAttachment(const NetworkAttachment&) = delete;
  NetworkAttachment& operator=(const NetworkAttachment&) = delete;

 private:
  const DiffusionSettings* key_;
};

struct DiffusionBackend {
  std::unique_ptr<engines::Denoiser> denoiser;
  std::unique_ptr<engines::Codec> codec;
  bool target = true;         // the target denoiser (conditioning = the encoded target render)
  bool linearCodec = true;    // identity / pooling: the latent path (d encode / d image known); else a VAE
  // TensorRT with token ids: the encoded prompts [kTextSlots, tokens, D] on the device (also copied into the
  // DiffusionSettings text vectors, which the pipeline uploads).
  Buffer<float> text;
};

// Target denoiser + identity or pooling codec, or (denoiser 'tensorrt') the TensorRT engines of the attached
// NetworkRun: E_NO_ENGINE / E_NO_TENSORRT with the folder and what is missing.
DiffusionBackend makeBackend(Device d, const DiffusionSettings& s);

// The codec's adjoint for CodecAdjointParams (factor, latent channels, channel map). Only for linear codecs.
void codecAdjointSetup(const engines::Codec& codec, CodecAdjointParams& p);

}  // namespace pipe
}  // namespace fg
