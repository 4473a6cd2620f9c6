// The pipeline's one point of contact with the engines domain's concrete backends: which Denoiser and Codec a run
// uses, and what the pipeline needs to know about the codec that the Codec interface does not say (its adjoint
// for the latent path). A change in native/engines touches this file only.
#pragma once
#include <memory>
#include <string>
#include "engines/interfaces.hpp"
#include "pipeline/kernels.hpp"

namespace fg {
namespace pipe {

struct DiffusionSettings;

struct DiffusionBackend {
  std::unique_ptr<engines::Denoiser> denoiser;
  std::unique_ptr<engines::Codec> codec;
  bool target = true;         // the target denoiser (conditioning = the encoded target render)
  bool linearCodec = true;    // identity / pooling: the latent path (d encode / d image known); else a VAE
};

// Target denoiser + identity or pooling codec. Network backends (TensorRT) are not wired yet: E_NO_ENGINE.
DiffusionBackend makeBackend(Device d, const DiffusionSettings& s);

// The codec's adjoint for CodecAdjointParams (factor, latent channels, channel map). Only for linear codecs.
void codecAdjointSetup(const engines::Codec& codec, CodecAdjointParams& p);

}  // namespace pipe
}  // namespace fg
