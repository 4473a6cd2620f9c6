#include "pipeline/adapter.hpp"
#include "engines/target.hpp"
#include "pipeline/pipeline.hpp"

namespace fg {
namespace pipe {

DiffusionBackend makeBackend(Device d, const DiffusionSettings& s) {
  DiffusionBackend b;
  if (!s.targetDenoiser)
    fail(ErrorCode::NoEngine,
         "diffusion.denoiser: only the target denoiser is wired into the native pipeline binding so far; TensorRT engines are "
         "not available to it yet");
  b.denoiser = std::make_unique<engines::TargetDenoiser>(d);
  if (s.codec == "identity") {
    b.codec = std::make_unique<engines::IdentityCodec>(d);
  } else if (s.codec == "pooling") {
    b.codec = std::make_unique<engines::PoolingCodec>(d, s.poolingScale, engines::Upsample::Nearest);
  } else {
    fail(ErrorCode::InvalidArgument, "diffusion.codec: expected 'identity' or 'pooling' with the target denoiser, got '" + s.codec + "'");
  }
  b.target = true;
  b.linearCodec = true;
  return b;
}

void codecAdjointSetup(const engines::Codec& codec, CodecAdjointParams& p) {
  p.factor = codec.downsampleFactor();
  p.latentChannels = codec.latentChannels();
  for (auto& row : p.m)
    for (float& v : row) v = 0.f;
  if (const auto* pc = dynamic_cast<const engines::PoolingCodec*>(&codec)) {
    FG_CHECK_ARG(p.latentChannels <= 8, "codec: at most 8 latent channels");
    for (int c = 0; c < p.latentChannels; ++c)
      for (int k = 0; k < 3; ++k) p.m[c][k] = pc->maps().m[c][k];
    return;
  }
  if (dynamic_cast<const engines::IdentityCodec*>(&codec)) return;
  fail(ErrorCode::Internal, "codecAdjointSetup: the codec is not linear (identity/pooling)");
}

}  // namespace pipe
}  // namespace fg
