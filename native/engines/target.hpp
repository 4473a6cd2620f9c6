// The target denoiser and its codecs: backends of the Denoiser / Codec interfaces with no neural network, for
// tests and for reconstruction (docs/tensorrt.md §5). Twin pattern: the per-element maths below are FG_HD
// functions built from exactly rounded fg::mul/add/sub/div/sqrt_rn, so the CPU loop (target.cpp) and the
// CUDA kernels (target.cu) give bit-identical results.
#pragma once
#include <cstdint>
#include "core/hd.hpp"
#include "core/memory.hpp"
#include "engines/interfaces.hpp"

namespace fg {
namespace engines {

// ---------------------------------------------------------------- target denoiser
struct TargetDenoiseParams {
  const float* xt = nullptr;
  const float* target = nullptr;
  float* eps = nullptr;
  int64_t count = 0;  // n*C*h*w
  float alphaBar = 0.5f;
  float guidance = 1.f;
  CfgOrder order = CfgOrder::UncondFirst;
};

// ε for one CFG half: (x_t − √ᾱ·target)/√(1−ᾱ). Both halves see the same target, hence the same ε.
FG_HDI float targetEpsHalf(float xt, float target, float alphaBar) {
  float sa = sqrt_rn(alphaBar);
  float s1a = sqrt_rn(sub(1.f, alphaBar));
  return div(sub(xt, mul(sa, target)), s1a);
}

FG_HDI float targetEpsElement(const TargetDenoiseParams& p, int64_t i) {
  // The two halves of the CFG batch, in the request's order; guidance combines them the usual way.
  float first = targetEpsHalf(p.xt[i], p.target[i], p.alphaBar);
  float second = targetEpsHalf(p.xt[i], p.target[i], p.alphaBar);
  float uncond = p.order == CfgOrder::UncondFirst ? first : second;
  float cond = p.order == CfgOrder::UncondFirst ? second : first;
  return add(uncond, mul(p.guidance, sub(cond, uncond)));
}

void targetDenoiseCpu(const TargetDenoiseParams& p);
void targetDenoiseCuda(const TargetDenoiseParams& p, StreamHandle s);
void targetDenoise(Device d, const TargetDenoiseParams& p, StreamHandle s = nullptr);

// ---------------------------------------------------------------- pooling codec
constexpr int kPoolFactor = 8;
constexpr int kPoolLatentChannels = 4;

struct PoolingMaps {
  float m[kPoolLatentChannels][3];  // encode: latent = M · mean_8x8(rgb)
  float p[3][kPoolLatentChannels];  // decode: rgb = P · latent, P = (MᵀM)⁻¹Mᵀ
};
// The fixed channel map (times `scale`) and its pseudo-inverse (computed in double, rounded once).
PoolingMaps poolingMaps(float scale = 1.f);

enum class Upsample : int { Nearest = 0, Bilinear = 1 };

struct PoolEncodeParams {
  const float* images = nullptr;  // [n,3,H,W]
  float* latents = nullptr;       // [n,4,H/8,W/8]
  int n = 0, height = 0, width = 0;  // image size
  PoolingMaps maps;
};

struct PoolDecodeParams {
  const float* latents = nullptr;  // [n,4,h,w]
  float* images = nullptr;         // [n,3,8h,8w]
  int n = 0, height = 0, width = 0;  // latent size
  Upsample upsample = Upsample::Nearest;
  PoolingMaps maps;
};

// One latent element (n, c, y, x): M[c]·(the 8×8 block means of the three image channels), fixed order.
FG_HDI float poolEncodeElement(const PoolEncodeParams& p, int64_t i) {
  const int h = p.height / kPoolFactor, w = p.width / kPoolFactor;
  const int x = int(i % w);
  const int y = int((i / w) % h);
  const int c = int((i / (int64_t(w) * h)) % kPoolLatentChannels);
  const int64_t n = i / (int64_t(w) * h * kPoolLatentChannels);
  const int64_t plane = int64_t(p.height) * p.width;
  float acc = 0.f;
  for (int k = 0; k < 3; ++k) {
    const float* src = p.images + (n * 3 + k) * plane + int64_t(y * kPoolFactor) * p.width + x * kPoolFactor;
    float s = 0.f;
    for (int dy = 0; dy < kPoolFactor; ++dy)
      for (int dx = 0; dx < kPoolFactor; ++dx) s = add(s, src[int64_t(dy) * p.width + dx]);
    acc = add(acc, mul(p.maps.m[c][k], mul(s, 1.f / 64.f)));
  }
  return acc;
}

FG_HDI float poolRgbAt(const PoolDecodeParams& p, int64_t n, int k, int y, int x) {
  const int64_t plane = int64_t(p.height) * p.width;
  float v = 0.f;
  for (int c = 0; c < kPoolLatentChannels; ++c) v = add(v, mul(p.maps.p[k][c], p.latents[(n * kPoolLatentChannels + c) * plane + int64_t(y) * p.width + x]));
  return v;
}

// One image element (n, k, Y, X): P·latent at the covering latent pixel (nearest) or bilinearly between the four
// nearest latent pixel centres (half-pixel centres, edges clamped).
FG_HDI float poolDecodeElement(const PoolDecodeParams& p, int64_t i) {
  const int W = p.width * kPoolFactor, H = p.height * kPoolFactor;
  const int X = int(i % W);
  const int Y = int((i / W) % H);
  const int k = int((i / (int64_t(W) * H)) % 3);
  const int64_t n = i / (int64_t(W) * H * 3);
  if (p.upsample == Upsample::Nearest) return poolRgbAt(p, n, k, Y / kPoolFactor, X / kPoolFactor);
  float fy = sub(mul(add(float(Y), 0.5f), 1.f / kPoolFactor), 0.5f);
  float fx = sub(mul(add(float(X), 0.5f), 1.f / kPoolFactor), 0.5f);
  fy = clampv(fy, 0.f, float(p.height - 1));
  fx = clampv(fx, 0.f, float(p.width - 1));
  int y0 = int(fy), x0 = int(fx);
  int y1 = minv(y0 + 1, p.height - 1), x1 = minv(x0 + 1, p.width - 1);
  float ty = sub(fy, float(y0)), tx = sub(fx, float(x0));
  float a = poolRgbAt(p, n, k, y0, x0), b = poolRgbAt(p, n, k, y0, x1);
  float c = poolRgbAt(p, n, k, y1, x0), d = poolRgbAt(p, n, k, y1, x1);
  float top = add(a, mul(tx, sub(b, a)));
  float bot = add(c, mul(tx, sub(d, c)));
  return add(top, mul(ty, sub(bot, top)));
}

void poolEncodeCpu(const PoolEncodeParams& p);
void poolEncodeCuda(const PoolEncodeParams& p, StreamHandle s);
void poolEncode(Device d, const PoolEncodeParams& p, StreamHandle s = nullptr);
void poolDecodeCpu(const PoolDecodeParams& p);
void poolDecodeCuda(const PoolDecodeParams& p, StreamHandle s);
void poolDecode(Device d, const PoolDecodeParams& p, StreamHandle s = nullptr);

// ---------------------------------------------------------------- the interface implementations
class TargetDenoiser final : public Denoiser {
 public:
  explicit TargetDenoiser(Device d) : dev_(d) {}
  Device device() const override { return dev_; }
  size_t workspaceBytes(const DenoiseRequest&) const override { return 0; }
  void predict(const DenoiseRequest& r, Workspace& ws, StreamHandle stream) override;

 private:
  Device dev_;
};

class IdentityCodec final : public Codec {
 public:
  explicit IdentityCodec(Device d) : dev_(d) {}
  Device device() const override { return dev_; }
  int latentChannels() const override { return 3; }
  int downsampleFactor() const override { return 1; }
  float scalingFactor() const override { return 1.f; }
  void encode(const float* images, int n, int height, int width, float* latents, StreamHandle stream) override;
  void decode(const float* latents, int n, int height, int width, float* images, StreamHandle stream) override;

 private:
  Device dev_;
};

class PoolingCodec final : public Codec {
 public:
  PoolingCodec(Device d, float scale = 1.f, Upsample up = Upsample::Nearest);
  Device device() const override { return dev_; }
  int latentChannels() const override { return kPoolLatentChannels; }
  int downsampleFactor() const override { return kPoolFactor; }
  float scalingFactor() const override { return scale_; }
  void encode(const float* images, int n, int height, int width, float* latents, StreamHandle stream) override;
  void decode(const float* latents, int n, int height, int width, float* images, StreamHandle stream) override;
  const PoolingMaps& maps() const { return maps_; }

 private:
  Device dev_;
  float scale_;
  Upsample up_;
  PoolingMaps maps_;
};

}  // namespace engines
}  // namespace fg
