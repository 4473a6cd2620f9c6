#include "engines/trt_backend.hpp"
#include "core/error.hpp"
#include "core/nvtx.hpp"
#include "engines/ops.hpp"

namespace fg {
namespace engines {
namespace {
int64_t numel(const std::vector<int64_t>& d) {
  int64_t n = 1;
  for (int64_t v : d) n *= v;
  return n;
}
constexpr int kResiduals = 12;
}  // namespace

TrtEngineSet::TrtEngineSet(const std::vector<PlanRef>& plans) {
  FG_CHECK_ARG(!plans.empty(), "engines: no plans to load");
  for (const auto& p : plans) {
    rt_.load(p.name, p.path);
    names_.push_back(p.name);
  }
  rt_.allocateSharedMemory();
}

int TrtEngineSet::engine(const std::string& name) const { return rt_.find(name); }

int TrtEngineSet::require(const std::string& name) const {
  int e = rt_.find(name);
  if (e < 0) fail(ErrorCode::NoEngine, "engine \"" + name + "\" is not loaded (is it in the manifest and built?)");
  return e;
}

void TrtEngineSet::expect(int engine, const std::string& name, bool input, int dtype) const {
  const TensorDesc* t = rt_.tensor(engine, name);
  const std::string& en = names_.at(size_t(engine));
  if (!t) fail(ErrorCode::NoEngine, en + ": the plan has no tensor \"" + name + "\" (re-export the ONNX with the manifest's names)");
  if (t->input != input) fail(ErrorCode::NoEngine, en + ": tensor \"" + name + "\" should be an " + (input ? "input" : "output"));
  if (dtype >= 0 && t->dtype != dtype)
    fail(ErrorCode::NoEngine, en + ": tensor \"" + name + "\" is " + dtypeName(t->dtype) + ", expected " + dtypeName(dtype) + " (docs/tensorrt.md §2)");
}

// ---------------------------------------------------------------- text encoder
TrtTextEncoder::TrtTextEncoder(std::shared_ptr<TrtEngineSet> set, int maxTokens, int embedDim)
    : set_(std::move(set)), e_(set_->require("text_encoder")), tokens_(maxTokens), dim_(embedDim) {
  set_->expect(e_, "input_ids", true, FGTRT_INT32);
  set_->expect(e_, "text_embeddings", false, FGTRT_FLOAT32);
}

void TrtTextEncoder::encode(const int32_t* ids, int batch, float* out, StreamHandle stream) {
  NvtxRange range("engines/trt_text_encoder");
  FG_CHECK_ARG(batch > 0, "text encoder: batch must be > 0");
  auto& rt = set_->runtime();
  rt.setInputShape(e_, "input_ids", {batch, tokens_});
  rt.setAddress(e_, "input_ids", const_cast<int32_t*>(ids));
  rt.setAddress(e_, "text_embeddings", out);
  rt.enqueue(e_, stream);
}

// ---------------------------------------------------------------- codec
TrtCodec::TrtCodec(std::shared_ptr<TrtEngineSet> set, int latentChannels, int factor, float scaling)
    : set_(std::move(set)), enc_(set_->engine("vae_encoder")), dec_(set_->engine("vae_decoder")), c_(latentChannels), f_(factor), scaling_(scaling) {
  if (enc_ < 0 && dec_ < 0) fail(ErrorCode::NoEngine, "neither vae_encoder nor vae_decoder is loaded");
  if (enc_ >= 0) {
    set_->expect(enc_, "images", true, FGTRT_FLOAT32);
    set_->expect(enc_, "latent", false, FGTRT_FLOAT32);
  }
  if (dec_ >= 0) {
    set_->expect(dec_, "latent", true, FGTRT_FLOAT32);
    set_->expect(dec_, "images", false, FGTRT_FLOAT32);
  }
}

void TrtCodec::encode(const float* images, int n, int height, int width, float* latents, StreamHandle stream) {
  NvtxRange range("engines/trt_vae_encode");
  if (enc_ < 0) fail(ErrorCode::NoEngine, "vae_encoder is not loaded");
  FG_CHECK_ARG(n > 0 && height % f_ == 0 && width % f_ == 0, "vae encode: n > 0 and image sizes multiples of " + std::to_string(f_));
  auto& rt = set_->runtime();
  rt.setInputShape(enc_, "images", {n, 3, height, width});
  rt.setAddress(enc_, "images", const_cast<float*>(images));
  rt.setAddress(enc_, "latent", latents);
  rt.enqueue(enc_, stream);
}

void TrtCodec::decode(const float* latents, int n, int height, int width, float* images, StreamHandle stream) {
  NvtxRange range("engines/trt_vae_decode");
  if (dec_ < 0) fail(ErrorCode::NoEngine, "vae_decoder is not loaded");
  FG_CHECK_ARG(n > 0 && height > 0 && width > 0, "vae decode: n, height, width must be > 0");
  auto& rt = set_->runtime();
  rt.setInputShape(dec_, "latent", {n, c_, height, width});
  rt.setAddress(dec_, "latent", const_cast<float*>(latents));
  rt.setAddress(dec_, "images", images);
  rt.enqueue(dec_, stream);
}

// ---------------------------------------------------------------- denoiser
TrtDenoiser::TrtDenoiser(std::shared_ptr<TrtEngineSet> set, int downsampleFactor) : TrtDenoiser(std::move(set), downsampleFactor, "unet") {}

TrtDenoiser::TrtDenoiser(std::shared_ptr<TrtEngineSet> set, int downsampleFactor, const std::string& unetName)
    : set_(std::move(set)), unet_(set_->require(unetName)), f_(downsampleFactor) {
  set_->expect(unet_, "sample", true, FGTRT_FLOAT32);
  set_->expect(unet_, "timestep", true, FGTRT_FLOAT32);
  set_->expect(unet_, "encoder_hidden_states", true, FGTRT_FLOAT32);
  set_->expect(unet_, "noise_pred", false, FGTRT_FLOAT32);
  unetTakesResiduals_ = set_->runtime().tensor(unet_, "mid_block_additional_residual") != nullptr;
  if (unetTakesResiduals_) {
    for (int i = 0; i <= kResiduals; ++i) {
      Residual r;
      r.unetName = i < kResiduals ? "down_block_additional_residual_" + std::to_string(i) : "mid_block_additional_residual";
      r.cnName = i < kResiduals ? "down_block_res_sample_" + std::to_string(i) : "mid_block_res_sample";
      const TensorDesc* t = set_->runtime().tensor(unet_, r.unetName);
      if (!t || !t->input) fail(ErrorCode::NoEngine, "unet: missing residual input \"" + r.unetName + "\"");
      FG_CHECK_ARG(t->dtype == FGTRT_FLOAT32 || t->dtype == FGTRT_FLOAT16, "unet: residual " + r.unetName + " must be float32 or float16");
      r.dtype = t->dtype;
      residuals_.push_back(r);
    }
  }
}

void TrtDenoiser::setCommonShapes(int engine, const DenoiseRequest& r) const {
  auto& rt = set_->runtime();
  int64_t nb = r.cfg() ? 2 * r.n : r.n;
  rt.setInputShape(engine, "sample", {nb, r.channels, r.height, r.width});
  rt.setInputShape(engine, "timestep", {1});
  rt.setInputShape(engine, "encoder_hidden_states", {nb, r.tokens, r.embedDim});
}

std::vector<int64_t> TrtDenoiser::residualShape(int cn, const Residual& res, const DenoiseRequest& r) const {
  auto& rt = set_->runtime();
  setCommonShapes(cn, r);
  int64_t nb = r.cfg() ? 2 * r.n : r.n;
  rt.setInputShape(cn, "controlnet_cond", {nb, 3, int64_t(r.height) * f_, int64_t(r.width) * f_});
  rt.setInputShape(cn, "conditioning_scale", {1});
  return rt.shape(cn, res.cnName);
}

size_t TrtDenoiser::workspaceBytes(const DenoiseRequest& r) const {
  int64_t nb = r.cfg() ? 2 * r.n : r.n;
  int64_t lat = nb * r.channels * r.height * r.width;
  size_t b = Workspace::aligned(size_t(lat) * 4) * 2 + Workspace::aligned(4) * 2;  // sample, noise_pred, timestep, scale
  b += Workspace::aligned(size_t(nb) * 3 * r.height * f_ * r.width * f_ * 4);    // CFG-doubled control image
  if (unetTakesResiduals_) {
    int anyCn = -1;
    for (const auto& c : r.controls) anyCn = set_->engine(c.name) >= 0 ? set_->engine(c.name) : anyCn;
    if (anyCn < 0) {  // no ControlNet loaded: residual sizes follow from the UNet's own shapes
      auto& rt = set_->runtime();
      setCommonShapes(unet_, r);
      for (const auto& res : residuals_) b += 2 * Workspace::aligned(size_t(numel(rt.shape(unet_, res.unetName))) * dtypeBytes(res.dtype));
    } else {
      for (const auto& res : residuals_) b += 2 * Workspace::aligned(size_t(numel(residualShape(anyCn, res, r))) * dtypeBytes(res.dtype));
    }
  }
  return b;
}

void TrtDenoiser::predict(const DenoiseRequest& r, Workspace& ws, StreamHandle stream) {
  NvtxRange range("engines/trt_denoise");
  validateRequest(r, true, false);
  auto& rt = set_->runtime();
  const bool cfg = r.cfg();
  const int64_t nb = cfg ? 2 * r.n : r.n;
  const int64_t per = int64_t(r.n) * r.channels * r.height * r.width;
  ws.reset();
  float* sample = ws.alloc<float>(size_t(nb / r.n * per));
  float* noise = ws.alloc<float>(size_t(nb / r.n * per));
  float* timestep = ws.alloc<float>(1);
  float* scale = ws.alloc<float>(1);
  const size_t imgPer = size_t(r.n) * 3 * r.height * f_ * r.width * f_;
  float* control = ws.alloc<float>(imgPer * size_t(nb / r.n));
  // CFG batch: the same x_t for both halves (the text embeddings carry the halves in r.cfgOrder).
  memcpyAny(sample, Device::CUDA, r.xt, Device::CUDA, size_t(per) * 4, stream);
  if (cfg) memcpyAny(sample + per, Device::CUDA, r.xt, Device::CUDA, size_t(per) * 4, stream);
  fillConstant(Device::CUDA, timestep, 1, float(r.timestep), stream);

  std::vector<void*> sum, scratch;
  if (unetTakesResiduals_) {
    // Residual buffers: the sum the UNet reads, and scratch for the 2nd.. active ControlNet.
    setCommonShapes(unet_, r);
    for (const auto& res : residuals_) {
      size_t bytes = size_t(numel(rt.shape(unet_, res.unetName))) * dtypeBytes(res.dtype);
      sum.push_back(ws.alloc<uint8_t>(bytes));
      scratch.push_back(ws.alloc<uint8_t>(bytes));
    }
    int active = 0;
    for (const auto& c : r.controls) {
      if (c.scale == 0.f) continue;  // a zero-scale ControlNet is skipped: no launch, no traffic
      int cn = set_->require(c.name);
      set_->expect(cn, "controlnet_cond", true, FGTRT_FLOAT32);
      setCommonShapes(cn, r);
      rt.setInputShape(cn, "controlnet_cond", {nb, 3, int64_t(r.height) * f_, int64_t(r.width) * f_});
      rt.setInputShape(cn, "conditioning_scale", {1});
      memcpyAny(control, Device::CUDA, c.image, Device::CUDA, imgPer * 4, stream);
      if (cfg) memcpyAny(control + imgPer, Device::CUDA, c.image, Device::CUDA, imgPer * 4, stream);
      fillConstant(Device::CUDA, scale, 1, c.scale, stream);
      rt.setAddress(cn, "sample", sample);
      rt.setAddress(cn, "timestep", timestep);
      rt.setAddress(cn, "encoder_hidden_states", const_cast<float*>(r.text));
      rt.setAddress(cn, "controlnet_cond", control);
      rt.setAddress(cn, "conditioning_scale", scale);
      for (size_t i = 0; i < residuals_.size(); ++i) {
        set_->expect(cn, residuals_[i].cnName, false, residuals_[i].dtype);
        rt.setAddress(cn, residuals_[i].cnName, active == 0 ? sum[i] : scratch[i]);
      }
      rt.enqueue(cn, stream);
      if (active > 0) {
        for (size_t i = 0; i < residuals_.size(); ++i) {
          AccumulateParams a;
          a.y = sum[i];
          a.x = scratch[i];
          a.count = numel(rt.shape(unet_, residuals_[i].unetName));
          a.half = residuals_[i].dtype == FGTRT_FLOAT16;
          accumulate(Device::CUDA, a, stream);
        }
      }
      ++active;
    }
    if (active == 0)
      for (size_t i = 0; i < residuals_.size(); ++i)
        memsetAny(sum[i], Device::CUDA, 0, size_t(numel(rt.shape(unet_, residuals_[i].unetName))) * dtypeBytes(residuals_[i].dtype), stream);
    for (size_t i = 0; i < residuals_.size(); ++i) rt.setAddress(unet_, residuals_[i].unetName, sum[i]);
  } else {
    for (const auto& c : r.controls)
      if (c.scale != 0.f) fail(ErrorCode::NoEngine, "controls: the unet plan takes no ControlNet residuals, but " + c.name + " has scale " + std::to_string(c.scale));
    setCommonShapes(unet_, r);
  }
  rt.setAddress(unet_, "sample", sample);
  rt.setAddress(unet_, "timestep", timestep);
  rt.setAddress(unet_, "encoder_hidden_states", const_cast<float*>(r.text));
  rt.setAddress(unet_, "noise_pred", cfg ? noise : r.eps);
  rt.enqueue(unet_, stream);
  if (cfg) {
    CfgCombineParams p;
    p.both = noise;
    p.eps = r.eps;
    p.count = per;
    p.guidance = r.guidance;
    p.order = r.cfgOrder;
    cfgCombine(Device::CUDA, p, stream);
  }
}

}  // namespace engines
}  // namespace fg
