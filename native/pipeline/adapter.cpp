#include "pipeline/adapter.hpp"
#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include "core/device.hpp"
#include "core/nvtx.hpp"
#include "engines/target.hpp"
#include "engines/trt_loader.hpp"
#include "pipeline/pipeline.hpp"

namespace fg {
namespace pipe {

const char* textSlotName(int slot) {
  static const char* names[kTextSlots] = {"uncond", "front", "side", "back", "texturePrior"};
  return slot >= 0 && slot < kTextSlots ? names[slot] : "?";
}

bool NetworkRun::needsText() const {
  for (const auto& v : ids)
    if (!v.empty()) return true;
  return false;
}

// ------------------------------------------------------------------------------------------------ attachments

namespace {
struct Attached {
  DiffusionSettings* settings = nullptr;
  std::shared_ptr<const NetworkRun> run;
};
std::mutex& registryMutex() {
  static std::mutex m;
  return m;
}
std::map<const DiffusionSettings*, Attached>& registry() {
  static std::map<const DiffusionSettings*, Attached> r;
  return r;
}
Attached attachedTo(const DiffusionSettings& s) {
  std::lock_guard<std::mutex> lock(registryMutex());
  auto it = registry().find(&s);
  return it == registry().end() ? Attached{} : it->second;
}
}  // namespace

NetworkAttachment::NetworkAttachment(DiffusionSettings& settings, std::shared_ptr<const NetworkRun> run) : key_(&settings) {
  FG_CHECK_ARG(run != nullptr, "NetworkAttachment: no run");
  std::lock_guard<std::mutex> lock(registryMutex());
  registry()[key_] = Attached{&settings, std::move(run)};
}

NetworkAttachment::~NetworkAttachment() {
  std::lock_guard<std::mutex> lock(registryMutex());
  registry().erase(key_);
}

// ------------------------------------------------------------------------------------------------ planning

std::vector<PlannedRequest> planRequests(const PipelineInput& in, int f) {
  std::vector<PlannedRequest> out;
  const GeometrySettings& g = in.geometry;
  const TextureSettings& t = in.texture;
  const int C = 4;
  auto push = [&](const std::string& what, int n, int h, double guidance, std::vector<engines::ControlInput> controls, bool denoise) {
    PlannedRequest p;
    p.what = what;
    p.denoise = denoise;
    engines::DenoiseRequest& r = p.request;
    r.n = n;
    r.channels = C;
    r.height = r.width = h;
    r.tokens = in.diffusion.tokens;
    r.embedDim = in.diffusion.embedDim;
    r.guidance = float(guidance);
    r.cfgOrder = in.diffusion.cfgOrder;
    r.controls = std::move(controls);
    out.push_back(std::move(p));
  };
  if (g.enabled && g.iterations > 0) push("geometry.renderSize / geometry.views", g.views, g.renderSize / f, g.guidance, {}, true);
  if (t.enabled && t.iterations > 0) {
    const bool prior = t.priorEnabled && t.priorWeight > 0.f;
    const int Ls = t.latentSize, S = t.textureSize;
    if (t.latentIterations > 0) {
      push("texture.latent.renderSize / texture.views", t.views, t.latentRenderSize, t.guidance, {}, true);
      if (prior) {
        std::vector<engines::ControlInput> c;
        if (!t.priorControl.empty() && S == Ls * f) c.push_back({t.priorControlName, nullptr, 1.f});
        push("texture.latent.textureSize (texture prior)", 1, Ls, t.priorGuidance, c, true);
      }
    }
    if (t.latentIterations < t.iterations) {
      std::vector<engines::ControlInput> c;
      if (t.controlEnabled) c.push_back({t.controlName, nullptr, t.controlScale});
      push("texture.rgb.renderSize / texture.views", t.views, t.renderSize / f, t.guidance, c, true);
      if (prior) {
        std::vector<engines::ControlInput> pc;
        if (!t.priorControl.empty()) pc.push_back({t.priorControlName, nullptr, 1.f});
        push("texture.rgb.textureSize (texture prior)", 1, S / f, t.priorGuidance, pc, true);
      }
    }
    push("texture.latent.textureSize (decoding the latent texture)", 1, Ls, 1.0, {}, false);
  }
  return out;
}

std::vector<std::string> requiredEngines(const NetworkRun& r) {
  std::vector<std::string> names = {"unet", "vae_encoder", "vae_decoder"};
  if (r.needsText()) names.insert(names.begin(), "text_encoder");
  std::set<std::string> seen(names.begin(), names.end());
  for (const auto& p : r.planned)
    for (const auto& c : p.request.controls)
      if (c.scale != 0.f && !c.name.empty() && seen.insert(c.name).second) names.push_back(c.name);
  return names;
}

// ------------------------------------------------------------------------------------------------ checks

namespace {
const engines::PlanRef* findPlan(const EngineFolder& f, const std::string& name) {
  for (const auto& p : f.plans)
    if (p.name == name) return &p;
  return nullptr;
}

bool fileExists(const std::string& path) {
  std::FILE* fp = std::fopen(path.c_str(), "rb");
  if (!fp) return false;
  std::fclose(fp);
  return true;
}

std::string rebuildHint(const EngineFolder& f) {
  return "rebuild with `npx faceg2e-native engines build --onnx <onnx folder> --out " + f.dir + "`";
}

std::string purpose(const std::string& engine) {
  if (engine == "text_encoder") return " (encodes the prompts)";
  if (engine == "unet") return " (the denoiser)";
  if (engine == "vae_encoder" || engine == "vae_decoder") return " (the latent codec, diffusion.codec 'vae')";
  if (engine.rfind("unet_", 0) == 0) return " (the texture-tuned UNet of texture.prior.type 'unet')";
  return " (a ControlNet of texture.controlNet / texture.prior)";
}
}  // namespace

void checkNetworkRun(const NetworkRun& r, Device d) {
  const EngineFolder& f = r.folder;
  // 1. the plans this run needs, on disk
  for (const std::string& name : requiredEngines(r)) {
    const engines::PlanRef* p = findPlan(f, name);
    if (!p)
      fail(ErrorCode::NoEngine, "the engines folder " + f.dir + " has no built engine \"" + name + "\"" + purpose(name) + " in " + f.manifestFile +
                                    "; export it (tools/export) and " + rebuildHint(f));
    if (!fileExists(p->path))
      fail(ErrorCode::NoEngine, "the plan " + p->path + " of engine \"" + name + "\" (listed in " + f.manifestFile + ") does not exist; " + rebuildHint(f));
  }
  // 2. every shape inside the optimisation profiles (manifest-level: no TensorRT needed)
  if (!f.resolutions.empty()) {
    int minH = 1 << 30, maxH = 0, minW = 1 << 30, maxW = 0;
    for (const auto& res : f.resolutions) {
      minH = std::min(minH, res.first);
      maxH = std::max(maxH, res.first);
      minW = std::min(minW, res.second);
      maxW = std::max(maxW, res.second);
    }
    const int fac = f.downsampleFactor;
    const std::string built = "the engines in " + f.dir + " were built for " + std::to_string(f.minBatch) + ".." + std::to_string(f.maxBatch) +
                              " views per call and images " + std::to_string(minH) + "x" + std::to_string(minW) + ".." + std::to_string(maxH) + "x" +
                              std::to_string(maxW) + " (build.profiles of " + f.manifestFile + ")";
    if (r.needsText() && f.minBatch > 1)
      fail(ErrorCode::NoEngine, "text_encoder: the prompts are encoded one at a time, but " + built + "; rebuild with `--batch 1` or a minimum batch of 1");
    for (const auto& p : r.planned) {
      const auto& q = p.request;
      const int H = q.height * fac, W = q.width * fac;
      if (H < minH || H > maxH || W < minW || W > maxW)
        fail(ErrorCode::NoEngine, p.what + ": the run asks for " + std::to_string(H) + "x" + std::to_string(W) + " images (latent " +
                                      std::to_string(q.height) + "x" + std::to_string(q.width) + "), but " + built + "; " +
                                      "change the config or rebuild with `--resolution " + std::to_string(H) + "x" + std::to_string(W) + "`");
      if (p.denoise && (q.n < f.minBatch || q.n > f.maxBatch))
        fail(ErrorCode::NoEngine, p.what + ": the run denoises " + std::to_string(q.n) + " view(s) per call, but " + built +
                                      "; change the views or rebuild with `--max-batch " + std::to_string(q.n) + "`");
    }
  }
  // 3. TensorRT itself
  try {
    engines::trtApi();
  } catch (const Error& e) {
    fail(e.code(), "diffusion.denoiser 'tensorrt' cannot run the engines in " + f.dir + ": " + e.what());
  }
  // 4. the device
  if (d != Device::CUDA)
    fail(ErrorCode::InvalidArgument, "device: the TensorRT denoiser runs on CUDA only; set device 'cuda' (or 'auto' on a machine with a GPU)");
  // 5. built by this TensorRT for this GPU
  if (!f.builtTensorRT.empty()) {
    engines::TensorRTLibInfo trt = engines::tensorrtInfo();
    CudaInfo cuda = queryCuda();
    const GpuInfo* gpu = nullptr;
    for (const auto& g : cuda.gpus)
      if (g.supported) {
        gpu = &g;
        break;
      }
    if (!gpu && !cuda.gpus.empty()) gpu = &cuda.gpus[0];
    std::string cc = gpu ? std::to_string(gpu->ccMajor) + "." + std::to_string(gpu->ccMinor) : "";
    auto sm = [](std::string c) {
      c.erase(std::remove(c.begin(), c.end(), '.'), c.end());
      return "sm_" + c;
    };
    if (!gpu) fail(ErrorCode::NoCudaDevice, "the engines in " + f.dir + " need a GPU (" + sm(f.builtComputeCapability) + "): " + cuda.error);
    if (trt.version != f.builtTensorRT || cc != f.builtComputeCapability || gpu->name != f.builtGpuName)
      fail(ErrorCode::NoEngine, "engines in " + f.dir + " were built for TensorRT " + f.builtTensorRT + " on " + sm(f.builtComputeCapability) + " (" +
                                    f.builtGpuName + "); this machine has TensorRT " + trt.version + " on " + sm(cc) + " (" + gpu->name + "); " +
                                    rebuildHint(f));
  }
}

// ------------------------------------------------------------------------------------------------ TensorRT adapters

namespace {

// The run's UNet, plus (texture.prior.type 'unet') the texture-tuned UNet: a request whose controls name an engine
// "unet_<name>" goes to that UNet, without that control. Workspace: the largest planned request (the pipeline's
// probe request is a size hint that need not lie inside the engines' profiles).
class PlannedDenoiser final : public engines::Denoiser {
 public:
  PlannedDenoiser(std::unique_ptr<engines::Denoiser> main, std::unique_ptr<engines::Denoiser> prior, std::string priorName,
                  std::vector<PlannedRequest> planned)
      : main_(std::move(main)), prior_(std::move(prior)), priorName_(std::move(priorName)), planned_(std::move(planned)) {}
  Device device() const override { return Device::CUDA; }

  size_t workspaceBytes(const engines::DenoiseRequest& probe) const override {
    (void)probe;
    size_t b = 0;
    for (const auto& p : planned_) {
      if (!p.denoise) continue;
      engines::DenoiseRequest r = p.request;
      engines::Denoiser& d = route(r);
      b = std::max(b, d.workspaceBytes(r));
    }
    return b;
  }

  void predict(const engines::DenoiseRequest& req, Workspace& ws, StreamHandle stream) override {
    bool routed = false;
    for (const auto& c : req.controls) routed = routed || (prior_ && c.name == priorName_);
    if (!routed) {
      main_->predict(req, ws, stream);
      return;
    }
    engines::DenoiseRequest r = req;
    route(r).predict(r, ws, stream);
  }

 private:
  engines::Denoiser& route(engines::DenoiseRequest& r) const {
    if (!prior_) return *main_;
    auto it = std::remove_if(r.controls.begin(), r.controls.end(), [&](const engines::ControlInput& c) { return c.name == priorName_; });
    bool routed = it != r.controls.end();
    r.controls.erase(it, r.controls.end());
    return routed ? *prior_ : *main_;
  }
  std::unique_ptr<engines::Denoiser> main_, prior_;
  std::string priorName_;
  std::vector<PlannedRequest> planned_;
};

// The engines' VAE. Images outside the build profiles' resolutions (the one such call is the encode of the
// background colour, an f×f image, at setup) are resampled into the nearest allowed size, coded, and the result
// resampled back: exact for the constant background image. Scratch is reserved here, once.
class ProfileCodec final : public engines::Codec {
 public:
  ProfileCodec(std::unique_ptr<engines::Codec> inner, const EngineFolder& f) : inner_(std::move(inner)) {
    for (const auto& r : f.resolutions) {
      minH_ = std::min(minH_, r.first);
      maxH_ = std::max(maxH_, r.first);
      minW_ = std::min(minW_, r.second);
      maxW_ = std::max(maxW_, r.second);
    }
    if (f.resolutions.empty()) minH_ = minW_ = maxH_ = maxW_ = 0;
    if (maxH_ > 0) {
      img_ = Buffer<float>(Device::CUDA, size_t(3) * maxH_ * maxW_);
      lat_ = Buffer<float>(Device::CUDA, size_t(inner_->latentChannels()) * (maxH_ / factor()) * (maxW_ / factor()));
    }
  }
  Device device() const override { return Device::CUDA; }
  int latentChannels() const override { return inner_->latentChannels(); }
  int downsampleFactor() const override { return inner_->downsampleFactor(); }
  float scalingFactor() const override { return inner_->scalingFactor(); }

  void encode(const float* images, int n, int H, int W, float* latents, StreamHandle s) override {
    if (inside(H, W)) return inner_->encode(images, n, H, W, latents, s);
    const int f = factor(), H2 = clampH(H), W2 = clampW(W);
    FG_CHECK_ARG(n == 1, "vae encode: " + std::to_string(H) + "x" + std::to_string(W) + " images are outside the engines' profiles");
    resample(images, H, W, img_.data(), H2, W2, 3, s);
    inner_->encode(img_.data(), 1, H2, W2, lat_.data(), s);
    resample(lat_.data(), H2 / f, W2 / f, latents, H / f, W / f, latentChannels(), s);
  }

  void decode(const float* latents, int n, int h, int w, float* images, StreamHandle s) override {
    const int f = factor();
    if (inside(h * f, w * f)) return inner_->decode(latents, n, h, w, images, s);
    const int H2 = clampH(h * f), W2 = clampW(w * f);
    FG_CHECK_ARG(n == 1, "vae decode: " + std::to_string(h) + "x" + std::to_string(w) + " latents are outside the engines' profiles");
    resample(latents, h, w, lat_.data(), H2 / f, W2 / f, latentChannels(), s);
    inner_->decode(lat_.data(), 1, H2 / f, W2 / f, img_.data(), s);
    resample(img_.data(), H2, W2, images, h * f, w * f, 3, s);
  }

 private:
  int factor() const { return inner_->downsampleFactor(); }
  bool inside(int H, int W) const { return maxH_ == 0 || (H >= minH_ && H <= maxH_ && W >= minW_ && W <= maxW_); }
  int clampH(int H) const { return std::min(std::max(H, minH_), maxH_); }
  int clampW(int W) const { return std::min(std::max(W, minW_), maxW_); }
  static void resample(const float* src, int sh, int sw, float* dst, int dh, int dw, int channels, StreamHandle s) {
    LayoutParams lp;
    lp.src = src;
    lp.dst = dst;
    lp.channels = channels;
    lp.srcW = sw;
    lp.srcH = sh;
    lp.dstW = dw;
    lp.dstH = dh;
    lp.srcHwc = lp.dstHwc = false;
    layout(Device::CUDA, lp, int64_t(channels) * dh * dw, s);
  }
  std::unique_ptr<engines::Codec> inner_;
  int minH_ = 1 << 30, maxH_ = 0, minW_ = 1 << 30, maxW_ = 0;
  Buffer<float> img_, lat_;
};

std::vector<engines::PlanRef> plansFor(const NetworkRun& r, const std::vector<std::string>& names) {
  std::vector<engines::PlanRef> out;
  for (const auto& n : names) out.push_back(*findPlan(r.folder, n));
  return out;
}

// Engine construction errors name the folder (the loader's own messages name the plan and tensor).
template <typename F>
auto inFolder(const EngineFolder& f, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error& e) {
    fail(e.code(), "engines folder " + f.dir + ": " + e.what());
  }
}

std::vector<float>& hostText(DiffusionSettings& s, int slot) {
  switch (slot) {
    case kTextUncond: return s.textUncond;
    case kTextFront: return s.textFront;
    case kTextSide: return s.textSide;
    case kTextBack: return s.textBack;
    default: return s.textPrior;
  }
}

// The prompts through the text encoder, once, in an engine set of its own (freed afterwards): device copy in
// `out` [kTextSlots, T, D], host copies into the settings' text vectors (slots without ids keep their embeddings).
void encodePrompts(const NetworkRun& run, DiffusionSettings& s, Buffer<float>& out) {
  NvtxRange range("pipeline/encode_prompts");
  const EngineFolder& f = run.folder;
  const int T = f.maxTokens, D = f.embedDim;
  const size_t e = size_t(T) * D;
  out = Buffer<float>(Device::CUDA, e * kTextSlots);
  Stream st(Device::CUDA);
  {
    auto set = inFolder(f, [&] { return std::make_shared<engines::TrtEngineSet>(plansFor(run, {"text_encoder"})); });
    engines::TrtTextEncoder enc = inFolder(f, [&] { return engines::TrtTextEncoder(set, T, D); });
    Buffer<int32_t> ids(Device::CUDA, size_t(T) * kTextSlots);
    for (int k = 0; k < kTextSlots; ++k) {
      const auto& v = run.ids[size_t(k)];
      if (v.empty()) {  // a precomputed embedding (or none: the slot is unused)
        const auto& h = hostText(s, k);
        if (h.size() == e) memcpyAny(out.data() + e * k, Device::CUDA, h.data(), Device::CPU, e * sizeof(float), st.handle());
        else memsetAny(out.data() + e * k, Device::CUDA, 0, e * sizeof(float), st.handle());
        continue;
      }
      FG_CHECK_ARG(int(v.size()) == T, std::string("diffusion.text.ids.") + textSlotName(k) + ": expected " + std::to_string(T) + " token ids");
      memcpyAny(ids.data() + size_t(T) * k, Device::CUDA, v.data(), Device::CPU, size_t(T) * sizeof(int32_t), st.handle());
      // batch 1 per prompt: any text_encoder profile with a minimum batch of 1 covers it
      inFolder(f, [&] {
        enc.encode(ids.data() + size_t(T) * k, 1, out.data() + e * k, st.handle());
        return 0;
      });
    }
    st.sync();
  }
  for (int k = 0; k < kTextSlots; ++k) {
    if (run.ids[size_t(k)].empty()) continue;
    std::vector<float>& h = hostText(s, k);
    h.resize(e);
    memcpyAny(h.data(), Device::CPU, out.data() + e * k, Device::CUDA, e * sizeof(float), st.handle());
  }
  st.sync();
}

DiffusionBackend makeTensorRT(Device d, const DiffusionSettings& s) {
  Attached a = attachedTo(s);
  if (!a.run)
    fail(ErrorCode::NoEngine, "diffusion.denoiser 'tensorrt': no engines folder was given for this run (diffusion.engines: the folder built by "
                              "`npx faceg2e-native engines build`)");
  const NetworkRun& run = *a.run;
  const EngineFolder& f = run.folder;
  FG_CHECK_ARG(s.codec == "vae", "diffusion.codec: the TensorRT denoiser uses the engines' VAE ('vae'), got '" + s.codec + "'");
  FG_CHECK_ARG(s.tokens == f.maxTokens && s.embedDim == f.embedDim,
               "diffusion.text: tokens x embedDim " + std::to_string(s.tokens) + "x" + std::to_string(s.embedDim) + " do not match the engines' " +
                   std::to_string(f.maxTokens) + "x" + std::to_string(f.embedDim) + " (" + f.manifestFile + ")");
  checkNetworkRun(run, d);
  DiffusionBackend b;
  b.target = false;
  b.linearCodec = false;
  if (run.needsText()) encodePrompts(run, *a.settings, b.text);
  std::vector<std::string> names = requiredEngines(run);
  names.erase(std::remove(names.begin(), names.end(), std::string("text_encoder")), names.end());
  auto set = inFolder(f, [&] { return std::make_shared<engines::TrtEngineSet>(plansFor(run, names)); });
  inFolder(f, [&] {
    b.codec = std::make_unique<ProfileCodec>(std::make_unique<engines::TrtCodec>(set, f.latentChannels, f.downsampleFactor, f.scalingFactor), f);
    std::unique_ptr<engines::Denoiser> prior;
    if (run.priorEngine.rfind("unet_", 0) == 0) prior = std::make_unique<engines::TrtDenoiser>(set, f.downsampleFactor, run.priorEngine);
    b.denoiser = std::make_unique<PlannedDenoiser>(std::make_unique<engines::TrtDenoiser>(set, f.downsampleFactor), std::move(prior),
                                                   run.priorEngine, run.planned);
    return 0;
  });
  return b;
}

}  // namespace

// ------------------------------------------------------------------------------------------------ backends

DiffusionBackend makeBackend(Device d, const DiffusionSettings& s) {
  if (!s.targetDenoiser) return makeTensorRT(d, s);
  DiffusionBackend b;
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
