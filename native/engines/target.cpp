#include "engines/target.hpp"
#include <cmath>
#include <string>
#include "core/device.hpp"
#include "core/linalg.hpp"
#include "core/nvtx.hpp"
#include "core/parallel.hpp"

namespace fg {
namespace engines {

void validateRequest(const DenoiseRequest& r, bool needText, bool needTarget) {
  FG_CHECK_ARG(r.n > 0, "denoise: n (views) must be > 0, got " + std::to_string(r.n));
  FG_CHECK_ARG(r.channels > 0 && r.height > 0 && r.width > 0,
               "denoise: latent shape must be positive, got [" + std::to_string(r.channels) + "," + std::to_string(r.height) + "," +
                   std::to_string(r.width) + "]");
  FG_CHECK_ARG(r.xt != nullptr, "denoise: xt is missing");
  FG_CHECK_ARG(r.eps != nullptr, "denoise: eps (output) is missing");
  FG_CHECK_ARG(std::isfinite(r.alphaBar) && r.alphaBar > 0.f && r.alphaBar < 1.f,
               "denoise: alphaBar must be in (0, 1), got " + std::to_string(r.alphaBar));
  FG_CHECK_ARG(std::isfinite(r.guidance), "denoise: guidance must be finite");
  FG_CHECK_ARG(r.cfgOrder == CfgOrder::UncondFirst || r.cfgOrder == CfgOrder::CondFirst, "denoise: cfgOrder must be uncond-first or cond-first");
  if (needText) {
    FG_CHECK_ARG(r.text != nullptr, "denoise: text embeddings are missing");
    FG_CHECK_ARG(r.tokens > 0 && r.embedDim > 0, "denoise: tokens and embedDim must be > 0");
  }
  if (needTarget) FG_CHECK_ARG(r.target != nullptr, "denoise: the target denoiser needs `target` (the encoded target render)");
  for (const auto& c : r.controls) {
    FG_CHECK_ARG(std::isfinite(c.scale), "denoise: controls[" + c.name + "].scale must be finite");
    FG_CHECK_ARG(c.scale == 0.f || c.image != nullptr, "denoise: controls[" + c.name + "].image is missing");
  }
}

// ---------------------------------------------------------------- target denoiser
void targetDenoiseCpu(const TargetDenoiseParams& p) {
  parallelFor(p.count, [&](int64_t i) { p.eps[i] = targetEpsElement(p, i); });
}

void targetDenoise(Device d, const TargetDenoiseParams& p, StreamHandle s) {
  NvtxRange range("engines/target_denoise");
  FG_CHECK_ARG(p.count >= 0, "targetDenoise: count must be >= 0");
  FG_CHECK_ARG(p.alphaBar > 0.f && p.alphaBar < 1.f, "targetDenoise: alphaBar must be in (0, 1), got " + std::to_string(p.alphaBar));
  FG_TWIN_CALL(d, targetDenoiseCpu(p), targetDenoiseCuda(p, s));
}

void TargetDenoiser::predict(const DenoiseRequest& r, Workspace& ws, StreamHandle stream) {
  (void)ws;
  validateRequest(r, false, true);
  // ControlNets and text do not change the target prediction (documented); their presence is still validated.
  TargetDenoiseParams p;
  p.xt = r.xt;
  p.target = r.target;
  p.eps = r.eps;
  p.count = int64_t(r.n) * r.channels * r.height * r.width;
  p.alphaBar = r.alphaBar;
  p.guidance = r.guidance;
  p.order = r.cfgOrder;
  targetDenoise(dev_, p, stream);
}

// ---------------------------------------------------------------- codecs
void IdentityCodec::encode(const float* images, int n, int height, int width, float* latents, StreamHandle stream) {
  NvtxRange range("engines/identity_encode");
  FG_CHECK_ARG(n > 0 && height > 0 && width > 0, "identity codec: n, height and width must be > 0");
  memcpyAny(latents, dev_, images, dev_, size_t(n) * 3 * height * width * sizeof(float), stream);
}

void IdentityCodec::decode(const float* latents, int n, int height, int width, float* images, StreamHandle stream) {
  NvtxRange range("engines/identity_decode");
  FG_CHECK_ARG(n > 0 && height > 0 && width > 0, "identity codec: n, height and width must be > 0");
  memcpyAny(images, dev_, latents, dev_, size_t(n) * 3 * height * width * sizeof(float), stream);
}

PoolingMaps poolingMaps(float scale) {
  FG_CHECK_ARG(std::isfinite(scale) && scale != 0.f, "pooling codec: scale must be finite and non-zero, got " + std::to_string(scale));
  static const double M[kPoolLatentChannels][3] = {
      {0.299, 0.587, 0.114}, {0.5, -0.4187, -0.0813}, {-0.1687, -0.3313, 0.5}, {0.25, 0.25, 0.25}};
  PoolingMaps out{};
  double m[kPoolLatentChannels][3];
  for (int c = 0; c < kPoolLatentChannels; ++c)
    for (int k = 0; k < 3; ++k) m[c][k] = M[c][k] * double(scale);
  static_assert(kPoolLatentChannels == 4, "pinv4x3 expects a 4x3 map");
  double p[3][4];
  FG_CHECK_ARG(pinv4x3(m, p), "pooling codec: the channel map must have rank 3");
  for (int k = 0; k < 3; ++k)
    for (int c = 0; c < kPoolLatentChannels; ++c) out.p[k][c] = float(p[k][c]);
  for (int c = 0; c < kPoolLatentChannels; ++c)
    for (int k = 0; k < 3; ++k) out.m[c][k] = float(m[c][k]);
  return out;
}

void poolEncodeCpu(const PoolEncodeParams& p) {
  int64_t count = int64_t(p.n) * kPoolLatentChannels * (p.height / kPoolFactor) * (p.width / kPoolFactor);
  parallelFor(count, [&](int64_t i) { p.latents[i] = poolEncodeElement(p, i); }, 1024);
}

void poolDecodeCpu(const PoolDecodeParams& p) {
  int64_t count = int64_t(p.n) * 3 * (int64_t(p.height) * kPoolFactor) * (int64_t(p.width) * kPoolFactor);
  parallelFor(count, [&](int64_t i) { p.images[i] = poolDecodeElement(p, i); });
}

void poolEncode(Device d, const PoolEncodeParams& p, StreamHandle s) {
  NvtxRange range("engines/pool_encode");
  FG_CHECK_ARG(p.n > 0 && p.height > 0 && p.width > 0, "pooling codec: n, height and width must be > 0");
  FG_CHECK_ARG(p.height % kPoolFactor == 0 && p.width % kPoolFactor == 0,
               "pooling codec: image height and width must be multiples of 8, got " + std::to_string(p.height) + "x" + std::to_string(p.width));
  FG_TWIN_CALL(d, poolEncodeCpu(p), poolEncodeCuda(p, s));
}

void poolDecode(Device d, const PoolDecodeParams& p, StreamHandle s) {
  NvtxRange range("engines/pool_decode");
  FG_CHECK_ARG(p.n > 0 && p.height > 0 && p.width > 0, "pooling codec: n, height and width must be > 0");
  FG_TWIN_CALL(d, poolDecodeCpu(p), poolDecodeCuda(p, s));
}

PoolingCodec::PoolingCodec(Device d, float scale, Upsample up) : dev_(d), scale_(scale), up_(up), maps_(poolingMaps(scale)) {}

void PoolingCodec::encode(const float* images, int n, int height, int width, float* latents, StreamHandle stream) {
  PoolEncodeParams p;
  p.images = images;
  p.latents = latents;
  p.n = n;
  p.height = height;
  p.width = width;
  p.maps = maps_;
  poolEncode(dev_, p, stream);
}

void PoolingCodec::decode(const float* latents, int n, int height, int width, float* images, StreamHandle stream) {
  PoolDecodeParams p;
  p.latents = latents;
  p.images = images;
  p.n = n;
  p.height = height;
  p.width = width;
  p.upsample = up_;
  p.maps = maps_;
  poolDecode(dev_, p, stream);
}

}  // namespace engines
}  // namespace fg
