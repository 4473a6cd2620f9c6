// The FaceG2E phases (pipeline.hpp). One Runner per run: it validates the input, reserves every buffer and
// workspace once, then runs the geometry phase and the texture phase iteration by iteration on one stream.
//
// Per geometry iteration (all on the device, nothing read back):
//   morph(coeffs) -> vertices (metres, centred) + vertex normals
//   grey:   raster(grey SH, mask, antialiased) -> compose over the background -> image [n,3,H,W]
//   normal: raster(triId, bary) -> camera-space normal image (pipeline/kernels)
//   target mode: the same render of the target head -> encode -> the target denoiser's conditioning
//   latent path: encode -> sdsNoise -> denoiser -> sdsGrad -> codec adjoint -> d image
//   (VAE path: sdsGrad's x̂0 -> decode -> sdsImageLoss -> d image)
//   backward: raster backward (grey) or normal-render backward + clip backward -> d vertices, d normals
//   -> morph backward -> d coeffs (+ L2 regularisation) -> Adan (grad-norm clip) with the lr schedule.
// Per texture iteration: the latent stage renders the [Ls,Ls,C] latent texture straight into latent space and
// runs latent SDS (+ the texture prior on the latent UV map); then the texture is decoded into the RGB UV texture
// and the RGB stage renders it, goes through the image-space target (x̂0 -> decode -> w‖render − sg(decoded)‖²),
// adds the depth ControlNet input and the texture prior on the RGB UV map, and steps AdamW.
#include "pipeline/pipeline.hpp"
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>
#include "core/device.hpp"
#include "core/memory.hpp"
#include "core/nvtx.hpp"
#include "core/rng.hpp"
#include "morph/morph.hpp"
#include "pipeline/adapter.hpp"
#include "pipeline/kernels.hpp"
#include "pipeline/profile.hpp"
#include "raster/raster.hpp"
#include "sds/sds.hpp"

namespace fg {
namespace pipe {
namespace {

using Clock = std::chrono::steady_clock;
double msSince(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  char b[64];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

constexpr uint64_t kTexturePhaseKey = uint64_t(1) << 32;

struct RenderTarget {  // raster outputs for up to kMaxViews views of one size
  Buffer<int32_t> triId;
  Buffer<float> bary, mask, grey, color, depthImage;
};

class Runner {
 public:
  Runner(const PipelineInput& in, const CancelTokenPtr& cancel, const ProgressFn& progress)
      : in_(in), cancel_(cancel), progress_(progress), dev_(parseDevice(in.device)), stream_(dev_), prof_(dev_, stream_.handle(), in.profile) {}

  PipelineResult run();

 private:
  // ---- setup
  void validate();
  void setup();
  void allocate();
  void computeTargetHead();
  void morphTo(const float* coeffs, float* verts, float* normals);
  // ---- phases
  bool geometryPhase(int64_t start);
  bool texturePhase(int64_t start);
  void geometryIteration(int64_t i);
  void textureIteration(int64_t i);
  void enterRgbStage();
  // ---- pieces
  raster::RenderParams renderParams(const float* verts, int n, int size, const float* intr, const float* ext) const;
  void sdsTerm(int n, int C, int h, int w, const float* z, const float* zt, const float* img, float* gImgOut, float* gLatentOut,
               const sds::SdsCoefficients& co, float guidance, float weightScale, uint64_t noiseKey, const float* text,
               std::vector<engines::ControlInput> controls, bool imageSpace);
  void encode(const float* img, int n, int H, int W, float* z);
  void decode(const float* z, int n, int h, int w, float* img);
  void checkFinite(const char* where);
  void sendProgress(const char* phase, int64_t i, int64_t total, int t, const std::vector<float>& curve);
  void fillCheckpoint(Checkpoint& c, const std::string& phase, int64_t iteration);
  void restoreCheckpoint(const Checkpoint& c);
  void finish(PipelineResult& r);
  void renderPreviews(PipelineResult& r);
  void textureMetrics(PipelineResult& r);
  double rmseAgainstTarget(const float* devVerts);
  template <typename T>
  std::vector<T> download(const Buffer<T>& b, size_t n) {
    std::vector<T> h(n);
    if (n) b.download(h.data(), n, stream_.handle());
    stream_.sync();
    return h;
  }
  template <typename T>
  void upload(Buffer<T>& b, const std::vector<T>& h) {
    if (!h.empty()) b.upload(h.data(), h.size(), stream_.handle());
  }
  int progressEvery(int64_t total) const {
    if (in_.progressEvery > 0) return in_.progressEvery;
    return int(std::max<int64_t>(1, total / 20));
  }
  const float* textFor(int variant) const;

  const PipelineInput& in_;
  CancelTokenPtr cancel_;
  ProgressFn progress_;
  Device dev_;
  Stream stream_;
  Profiler prof_;
  Clock::time_point t0_;

  // model
  int64_t V_ = 0, T_ = 0;
  int K_ = 0, Ki_ = 0, Ke_ = 0;
  float center_[3] = {0, 0, 0};
  double headRadius_ = 0.1;  // metres
  std::unique_ptr<morph::MorphModelBuffers> morphBuf_;
  morph::MorphOptions morphOpt_;
  std::unique_ptr<raster::RasterContext> raster_;
  Buffer<int32_t> tri_, uvTri_;
  Buffer<float> uv_;
  float rigidScale_ = 1.f, rigidTrans_[3] = {0, 0, 0};
  Buffer<float> rigid_;  // [scale, tx, ty, tz]

  // diffusion
  DiffusionBackend backend_;
  sds::SchedulerTables tables_;
  CodecAdjointParams adj_;
  int latentC_ = 4, factor_ = 1;

  // parameters + optimiser state
  Buffer<float> coeffs_, gCoeffs_, adanM_, adanV_, adanD_, adanPrev_, regValue_;
  int64_t geomStep_ = 0;
  Buffer<float> latent_, latentM_, latentV_, gLatent_;
  Buffer<float> rgb_, rgbM_, rgbV_, gRgb_, gTexTmp_;
  bool rgbReady_ = false;

  // geometry state
  Buffer<float> verts_, normals_, dVerts_, dNormals_, tVerts_, tNormals_;
  Buffer<float> clip_, gClip_;
  // renders and SDS scratch (capacities computed in allocate())
  RenderTarget cur_, tgt_;
  Buffer<float> img_, tImg_, gImg_, dGrey_, dMask_, ctrlImg_;
  Buffer<float> z_, zt_, eps_, xt_, epsHat_, gz_, x0hat_, decoded_, gzImg_;
  Buffer<float> texImg_, texTargetLatentPrior_, texTargetRgb_, priorCtrl_, bgLatent_, bgRgb_;
  Buffer<float> targetTex_;      // target texture at its own size (HWC)
  Buffer<float> sumSq_;          // device curve slots
  Buffer<float> text_, textVariants_;
  Workspace wsMorph_, wsRaster_, wsTarget_, wsSds_;
  size_t latCap_ = 0;
  // camera tables (device) + host copies of the per-view extras
  Buffer<float> gExt_, gIntr_, gSh_;
  std::vector<PinholeView> gViews_;
  std::vector<int> gMode_, gVariant_;
  Buffer<float> tExt_, tIntrR_, tIntrL_, tIntrLf_, tDepth_;
  std::vector<int> tVariant_;

  // metrics / curves
  std::vector<float> geomCurve_, texCurve_;  // [iters * 3]: t, sum g², sum (x − target)²
  std::vector<double> geomCount_, texCount_;
  double initialRmse_ = -1.0;
  std::vector<float> initVertsHost_, targetVertsHost_;
  double geomMs_ = 0.0, texMs_ = 0.0, setupMs_ = 0.0;
  int64_t nextIteration_ = 0;
};

// ------------------------------------------------------------------------------------------------ validation

void Runner::validate() {
  const ModelInput& m = in_.model;
  FG_CHECK_ARG(m.V > 2 && m.T > 0, "model: expected at least 3 vertices and 1 triangle");
  FG_CHECK_ARG(int64_t(m.templ.size()) == m.V * 3, "model.template: expected V*3 floats");
  FG_CHECK_ARG(int64_t(m.tri.size()) == m.T * 3 && int64_t(m.uvTri.size()) == m.T * 3, "model.tri/uvTri: expected T*3 indices");
  FG_CHECK_ARG(int64_t(m.uv.size()) == m.U * 2, "model.uv: expected U*2 floats");
  for (int32_t i : m.uvTri) FG_CHECK_ARG(i >= 0 && i < m.U, "model.uvTri: index out of range [0, U)");
  FG_CHECK_ARG(m.Ki >= 0 && m.Ke >= 0 && m.Ki + m.Ke > 0, "model: expected at least one identity or expression mode");
  FG_CHECK_ARG(m.metresPerUnit > 0, "model.metresPerUnit: expected > 0");
  const GeometrySettings& g = in_.geometry;
  const TextureSettings& t = in_.texture;
  FG_CHECK_ARG(g.views >= 1 && g.views <= kMaxViews, "geometry.views: expected 1.." + std::to_string(kMaxViews));
  FG_CHECK_ARG(t.views >= 1 && t.views <= kMaxViews, "texture.views: expected 1.." + std::to_string(kMaxViews));
  FG_CHECK_ARG(g.iterations >= 0 && t.iterations >= 0, "iterations: expected >= 0");
  FG_CHECK_ARG(g.renderSize >= 8 && g.renderSize <= 2048, "geometry.renderSize: expected 8..2048");
  FG_CHECK_ARG(!g.inputs.empty(), "geometry.inputs: expected at least one of 'grey', 'normal'");
  FG_CHECK_ARG(t.latentIterations >= 0 && t.latentIterations <= t.iterations, "texture.latent.iterations: expected 0..texture.iterations");
  FG_CHECK_ARG(t.latentSize >= 4 && t.latentSize <= 1024, "texture.latent.textureSize: expected 4..1024");
  FG_CHECK_ARG(t.latentRenderSize >= 4 && t.latentRenderSize <= 1024, "texture.latent.renderSize: expected 4..1024");
  FG_CHECK_ARG(t.textureSize >= 4 && t.textureSize <= 4096, "texture.rgb.textureSize: expected 4..4096");
  FG_CHECK_ARG(t.renderSize >= 8 && t.renderSize <= 2048, "texture.rgb.renderSize: expected 8..2048");
  FG_CHECK_ARG(!t.fixedCameras || !t.fixed.empty(), "texture.cameras.fixed: expected at least one camera");
  FG_CHECK_ARG(g.init.empty() || int(g.init.size()) == m.Ki + m.Ke || int(g.init.size()) == m.Ki,
               "geometry.initCoefficients: expected Ki or Ki+Ke values");
  FG_CHECK_ARG(t.coefficients.empty() || int(t.coefficients.size()) == m.Ki + m.Ke || int(t.coefficients.size()) == m.Ki,
               "texture.coefficients: expected Ki or Ki+Ke values");
  if (in_.diffusion.targetDenoiser) {
    FG_CHECK_ARG(int(in_.target.coefficients.size()) == m.Ki + m.Ke || int(in_.target.coefficients.size()) == m.Ki,
                 "target.coefficients: expected Ki or Ki+Ke values (the target denoiser needs a target head)");
    if (t.enabled && t.iterations > 0)
      FG_CHECK_ARG(in_.target.texWidth > 0 && in_.target.texHeight > 0 &&
                       int64_t(in_.target.texture.size()) == int64_t(in_.target.texWidth) * in_.target.texHeight * 3,
                   "target.texture: expected [H, W, 3] floats with textureWidth/textureHeight");
  }
  if (!t.priorControl.empty())
    FG_CHECK_ARG(t.priorControlSize > 0 && int64_t(t.priorControl.size()) == int64_t(t.priorControlSize) * t.priorControlSize * 3,
                 "texture.prior.control: expected [S, S, 3] floats");
  FG_CHECK_ARG(in_.previews.size >= 8 && in_.previews.size <= 4096, "previews.size: expected 8..4096");
  FG_CHECK_ARG(int(in_.previews.views.size()) <= 256, "previews.views: at most 256");
}

// ------------------------------------------------------------------------------------------------ setup

void Runner::setup() {
  const ModelInput& m = in_.model;
  V_ = m.V;
  T_ = m.T;
  Ki_ = m.Ki;
  Ke_ = m.Ke;
  K_ = Ki_ + Ke_;
  // centre (bounding box) and radius in metres
  float lo[3] = {1e30f, 1e30f, 1e30f}, hi[3] = {-1e30f, -1e30f, -1e30f};
  for (int64_t v = 0; v < V_; ++v)
    for (int c = 0; c < 3; ++c) {
      lo[c] = std::min(lo[c], m.templ[3 * v + c]);
      hi[c] = std::max(hi[c], m.templ[3 * v + c]);
    }
  double r2 = 0.0;
  for (int c = 0; c < 3; ++c) center_[c] = 0.5f * (lo[c] + hi[c]);
  for (int64_t v = 0; v < V_; ++v) {
    double s = 0.0;
    for (int c = 0; c < 3; ++c) s += std::pow((m.templ[3 * v + c] - center_[c]) * m.metresPerUnit, 2.0);
    r2 = std::max(r2, s);
  }
  headRadius_ = std::max(1e-3, std::sqrt(r2));
  rigidScale_ = float(m.metresPerUnit);
  for (int c = 0; c < 3; ++c) rigidTrans_[c] = -center_[c] * rigidScale_;

  morph::MorphModelDesc desc;
  desc.numVertices = V_;
  desc.templ = m.templ.data();
  desc.numIdentity = Ki_;
  desc.identityBasis = Ki_ ? m.identityBasis.data() : nullptr;
  desc.numExpression = Ke_;
  desc.expressionBasis = Ke_ ? m.expressionBasis.data() : nullptr;
  desc.identityStd = m.identityStd.empty() ? nullptr : m.identityStd.data();
  desc.expressionStd = m.expressionStd.empty() ? nullptr : m.expressionStd.data();
  desc.numTriangles = T_;
  desc.triangles = m.tri.data();
  morphBuf_ = std::make_unique<morph::MorphModelBuffers>(dev_, desc);
  morphOpt_.normals = true;
  morphOpt_.deterministic = true;
  raster_ = std::make_unique<raster::RasterContext>(dev_, m.tri.data(), int(T_), int(V_));
  tri_ = Buffer<int32_t>(dev_, m.tri.size());
  upload(tri_, m.tri);
  uvTri_ = Buffer<int32_t>(dev_, m.uvTri.size());
  upload(uvTri_, m.uvTri);
  uv_ = Buffer<float>(dev_, m.uv.size());
  upload(uv_, m.uv);
  rigid_ = Buffer<float>(dev_, 4);
  upload(rigid_, std::vector<float>{rigidScale_, rigidTrans_[0], rigidTrans_[1], rigidTrans_[2]});

  backend_ = makeBackend(dev_, in_.diffusion);
  latentC_ = backend_.codec->latentChannels();
  factor_ = backend_.codec->downsampleFactor();
  if (backend_.linearCodec) codecAdjointSetup(*backend_.codec, adj_);
  sds::validate(in_.diffusion.scheduler);
  tables_ = sds::schedulerTables(in_.diffusion.scheduler);
  const GeometrySettings& g = in_.geometry;
  const TextureSettings& t = in_.texture;
  auto divisible = [&](int size, const char* what) {
    FG_CHECK_ARG(size % factor_ == 0, std::string(what) + ": expected a multiple of the codec's downsampling factor " + std::to_string(factor_) +
                                          ", got " + std::to_string(size));
  };
  if (g.enabled && g.iterations > 0) divisible(g.renderSize, "geometry.renderSize");
  if (t.enabled && t.iterations > 0) {
    divisible(t.renderSize, "texture.rgb.renderSize");
    divisible(t.textureSize, "texture.rgb.textureSize");
  }
  if (g.enabled && g.iterations > 0) {
    sds::TimestepSchedule ts = g.timesteps;
    ts.totalIterations = g.iterations;
    ts.numTrainTimesteps = in_.diffusion.scheduler.numTrainTimesteps;
    sds::validate(ts);
    sds::validate(g.optim.config);
    sds::validate(g.optim.lr);
  }
  if (t.enabled && t.iterations > 0) {
    sds::TimestepSchedule ts = t.timesteps;
    ts.totalIterations = t.iterations;
    ts.numTrainTimesteps = in_.diffusion.scheduler.numTrainTimesteps;
    sds::validate(ts);
    sds::validate(t.optim.config);
    sds::validate(t.optim.lr);
  }
}

void Runner::allocate() {
  const GeometrySettings& g = in_.geometry;
  const TextureSettings& t = in_.texture;
  const PreviewSettings& pv = in_.previews;
  const bool geo = g.enabled && g.iterations > 0;
  const bool tex = t.enabled && t.iterations > 0;
  const bool target = backend_.target;
  const int f = factor_, C = latentC_;
  const int nG = g.views, nT = t.views;
  const int Rl = t.latentRenderSize, Rlf = Rl * f, R = t.renderSize, S = t.textureSize, Ls = t.latentSize, P = pv.size;
  const int tw = std::max(1, in_.target.texWidth), th = std::max(1, in_.target.texHeight);

  size_t pixCap = 1, imgCap = 1, latCap = 1, wsR = 0, wsT = 0;
  auto use = [&](int n, int H, int W, int channels, int texW, int texH, bool forTarget) {
    pixCap = std::max(pixCap, size_t(n) * H * W);
    size_t ws = raster::RasterContext::workspaceBytes(n, W, H, int(V_), int(T_), std::max(channels, 1), std::max(texW, 1), std::max(texH, 1));
    if (forTarget) wsT = std::max(wsT, ws);
    else wsR = std::max(wsR, ws);
  };
  auto img = [&](size_t n) { imgCap = std::max(imgCap, n); };
  auto lat = [&](size_t n) { latCap = std::max(latCap, n); };
  if (geo) {
    use(nG, g.renderSize, g.renderSize, 1, 1, 1, false);
    if (target) use(nG, g.renderSize, g.renderSize, 1, 1, 1, true);
    img(size_t(nG) * 3 * g.renderSize * g.renderSize);
    lat(size_t(nG) * C * (g.renderSize / f) * (g.renderSize / f));
  }
  if (tex) {
    if (t.latentIterations > 0) {
      use(nT, Rl, Rl, C, Ls, Ls, false);
      if (target) use(nT, Rlf, Rlf, 3, tw, th, true);
      img(size_t(nT) * 3 * Rlf * Rlf);
      lat(size_t(nT) * C * Rl * Rl);
      lat(size_t(C) * Ls * Ls);
      img(size_t(3) * Ls * f * Ls * f);
    }
    if (t.latentIterations < t.iterations) {
      use(nT, R, R, 3, S, S, false);
      if (target) use(nT, R, R, 3, tw, th, true);
      img(size_t(nT) * 3 * R * R);
      lat(size_t(nT) * C * (R / f) * (R / f));
      img(size_t(3) * S * S);
      lat(size_t(C) * (S / f) * (S / f));
    }
    img(size_t(3) * Ls * f * Ls * f);  // decode of the latent texture
    // visibility of the fixed cameras (metrics)
    use(kMaxViews, R, R, 3, S, S, false);
  }
  if (!pv.views.empty()) {
    int n = std::min<int>(kMaxViews, int(pv.views.size()));
    use(n, P, P, 3, std::max(S, 1), std::max(S, 1), false);
    img(size_t(n) * 3 * P * P);
  }
  latCap_ = latCap;
  const size_t V3 = size_t(V_) * 3;
  coeffs_ = Buffer<float>(dev_, K_);
  gCoeffs_ = Buffer<float>(dev_, K_);
  adanM_ = Buffer<float>(dev_, K_);
  adanV_ = Buffer<float>(dev_, K_);
  adanD_ = Buffer<float>(dev_, K_);
  adanPrev_ = Buffer<float>(dev_, K_);
  regValue_ = Buffer<float>(dev_, 2);
  for (auto* b : {&coeffs_, &gCoeffs_, &adanM_, &adanV_, &adanD_, &adanPrev_, &regValue_}) b->zero(stream_.handle());
  verts_ = Buffer<float>(dev_, V3);
  normals_ = Buffer<float>(dev_, V3);
  dVerts_ = Buffer<float>(dev_, V3);
  dNormals_ = Buffer<float>(dev_, V3);
  if (target) {
    tVerts_ = Buffer<float>(dev_, V3);
    tNormals_ = Buffer<float>(dev_, V3);
  }
  if (geo) {
    clip_ = Buffer<float>(dev_, size_t(nG) * V_ * 4);
    gClip_ = Buffer<float>(dev_, size_t(nG) * V_ * 4);
  }
  auto allocRT = [&](RenderTarget& rt) {
    rt.triId = Buffer<int32_t>(dev_, pixCap);
    rt.bary = Buffer<float>(dev_, pixCap * 2);
    rt.mask = Buffer<float>(dev_, pixCap);
    rt.grey = Buffer<float>(dev_, pixCap);
    rt.color = Buffer<float>(dev_, pixCap * 4);
    rt.depthImage = Buffer<float>(dev_, pixCap);
  };
  allocRT(cur_);
  if (target) allocRT(tgt_);
  img_ = Buffer<float>(dev_, imgCap);
  tImg_ = Buffer<float>(dev_, imgCap);
  gImg_ = Buffer<float>(dev_, imgCap);
  decoded_ = Buffer<float>(dev_, imgCap);
  ctrlImg_ = Buffer<float>(dev_, imgCap);
  gzImg_ = Buffer<float>(dev_, imgCap);
  dGrey_ = Buffer<float>(dev_, pixCap);
  dMask_ = Buffer<float>(dev_, pixCap);
  for (auto* b : {&z_, &zt_, &eps_, &xt_, &epsHat_, &gz_, &x0hat_}) *b = Buffer<float>(dev_, latCap);
  if (tex) {
    latent_ = Buffer<float>(dev_, size_t(Ls) * Ls * C);
    latentM_ = Buffer<float>(dev_, size_t(Ls) * Ls * C);
    latentV_ = Buffer<float>(dev_, size_t(Ls) * Ls * C);
    gLatent_ = Buffer<float>(dev_, size_t(Ls) * Ls * C);
    rgb_ = Buffer<float>(dev_, size_t(S) * S * 3);
    rgbM_ = Buffer<float>(dev_, size_t(S) * S * 3);
    rgbV_ = Buffer<float>(dev_, size_t(S) * S * 3);
    gRgb_ = Buffer<float>(dev_, size_t(S) * S * 3);
    gTexTmp_ = Buffer<float>(dev_, std::max(size_t(S) * S * 3, size_t(Ls) * Ls * C));
    texImg_ = Buffer<float>(dev_, std::max(size_t(3) * S * S, size_t(C) * Ls * Ls));
    for (auto* b : {&latent_, &latentM_, &latentV_, &rgb_, &rgbM_, &rgbV_}) b->zero(stream_.handle());
    bgLatent_ = Buffer<float>(dev_, size_t(std::max(C, 3)));
    bgRgb_ = Buffer<float>(dev_, 3);
    upload(bgRgb_, std::vector<float>{t.background[0], t.background[1], t.background[2]});
    // the latent background: the encoded background colour
    {
      std::vector<float> bgImg(size_t(3) * f * f);
      for (int c = 0; c < 3; ++c)
        for (int i = 0; i < f * f; ++i) bgImg[size_t(c) * f * f + i] = t.background[c];
      Buffer<float> bi(dev_, bgImg.size());
      upload(bi, bgImg);
      Buffer<float> bl(dev_, size_t(C));
      backend_.codec->encode(bi.data(), 1, f, f, bl.data(), stream_.handle());
      memcpyAny(bgLatent_.data(), dev_, bl.data(), dev_, sizeof(float) * C, stream_.handle());
      stream_.sync();
    }
    if (target) {
      targetTex_ = Buffer<float>(dev_, in_.target.texture.size());
      upload(targetTex_, in_.target.texture);
      // prior targets: the encoded target UV texture at the latent-texture and RGB-texture resolutions
      texTargetLatentPrior_ = Buffer<float>(dev_, std::max(size_t(C) * Ls * Ls, size_t(C) * (S / f) * (S / f)));
      texTargetRgb_ = Buffer<float>(dev_, size_t(C) * (S / f) * (S / f));
      Buffer<float> tmp(dev_, std::max(size_t(3) * Ls * f * Ls * f, size_t(3) * S * S));
      LayoutParams lp;
      lp.src = targetTex_.data();
      lp.channels = 3;
      lp.srcW = in_.target.texWidth;
      lp.srcH = in_.target.texHeight;
      lp.srcHwc = true;
      lp.dstHwc = false;
      lp.dst = tmp.data();
      lp.dstW = lp.dstH = Ls * f;
      layout(dev_, lp, int64_t(3) * Ls * f * Ls * f, stream_.handle());
      encode(tmp.data(), 1, Ls * f, Ls * f, texTargetLatentPrior_.data());
      if (S % f == 0) {
        lp.dstW = lp.dstH = S;
        layout(dev_, lp, int64_t(3) * S * S, stream_.handle());
        encode(tmp.data(), 1, S, S, texTargetRgb_.data());
      }
      stream_.sync();
    }
    if (!t.priorControl.empty()) {
      Buffer<float> pc(dev_, t.priorControl.size());
      upload(pc, t.priorControl);
      priorCtrl_ = Buffer<float>(dev_, size_t(3) * S * S);
      LayoutParams lp;
      lp.src = pc.data();
      lp.dst = priorCtrl_.data();
      lp.channels = 3;
      lp.srcW = lp.srcH = t.priorControlSize;
      lp.dstW = lp.dstH = S;
      lp.srcHwc = true;
      lp.dstHwc = false;
      layout(dev_, lp, int64_t(3) * S * S, stream_.handle());
      stream_.sync();
    }
  }
  sumSq_ = Buffer<float>(dev_, 4);
  // text embeddings (network backends only)
  if (!backend_.target) {
    const DiffusionSettings& d = in_.diffusion;
    size_t e = size_t(d.tokens) * d.embedDim;
    textVariants_ = Buffer<float>(dev_, e * 5);
    const std::vector<float>* vs[5] = {&d.textUncond, &d.textFront, &d.textSide, &d.textBack, &d.textPrior};
    for (int k = 0; k < 5; ++k)
      if (vs[k]->size() == e) memcpyAny(textVariants_.data() + e * k, dev_, vs[k]->data(), Device::CPU, e * sizeof(float), stream_.handle());
    text_ = Buffer<float>(dev_, e * 2 * kMaxViews);
  }
  // workspaces, reserved once
  const morph::MorphModel& mm = morphBuf_->view();
  wsMorph_.reserve(dev_, morph::morphWorkspaceBytes(mm, morphOpt_) + 4096);
  wsRaster_.reserve(dev_, wsR + 4096);
  if (target) wsTarget_.reserve(dev_, wsT + 4096);
  size_t sdsBytes = Workspace::aligned(sds::sdsWorkspaceBytes()) * 2;
  sdsBytes += Workspace::aligned(sds::optimWorkspaceBytes(g.optim.config, 1)) + Workspace::aligned(sds::optimWorkspaceBytes(t.optim.config, 1));
  engines::DenoiseRequest probe;
  probe.n = std::max(nG, nT);
  probe.channels = C;
  probe.height = probe.width = int(std::sqrt(double(latCap) / std::max(1, probe.n * C))) + 1;
  sdsBytes += Workspace::aligned(backend_.denoiser->workspaceBytes(probe));
  wsSds_.reserve(dev_, sdsBytes + 8192);
  stream_.sync();
}

void Runner::morphTo(const float* coeffs, float* verts, float* normals) {
  auto s = prof_.op("pipeline/morph");
  wsMorph_.reset();
  const morph::MorphModel& mm = morphBuf_->view();
  morph::MorphTape tape = morph::morphAllocTape(mm, wsMorph_);
  morph::MorphInputs mi;
  mi.coeffs = coeffs;
  mi.scale = rigid_.data();
  mi.translation = rigid_.data() + 1;
  morph::MorphOutputs mo;
  mo.vertices = verts;
  mo.normals = normals;
  morph::morphForward(mm, morphOpt_, mi, mo, tape, wsMorph_, stream_.handle());
}

void Runner::computeTargetHead() {
  if (!backend_.target) return;
  std::vector<float> tc(size_t(K_), 0.f);
  std::copy(in_.target.coefficients.begin(), in_.target.coefficients.end(), tc.begin());
  Buffer<float> c(dev_, size_t(K_));
  upload(c, tc);
  morphTo(c.data(), tVerts_.data(), tNormals_.data());
  targetVertsHost_ = download(tVerts_, size_t(V_) * 3);
}

double Runner::rmseAgainstTarget(const float* devVerts) {
  if (targetVertsHost_.empty()) return -1.0;
  std::vector<float> v(size_t(V_) * 3);
  memcpyAny(v.data(), Device::CPU, devVerts, dev_, v.size() * sizeof(float), stream_.handle());
  stream_.sync();
  double s = 0.0;
  for (size_t i = 0; i < v.size(); ++i) s += double(v[i] - targetVertsHost_[i]) * double(v[i] - targetVertsHost_[i]);
  return std::sqrt(s / double(V_));
}

raster::RenderParams Runner::renderParams(const float* verts, int n, int size, const float* intr, const float* ext) const {
  raster::RenderParams p;
  p.positions = verts;
  p.numVertices = int(V_);
  p.tri = tri_.data();
  p.numTriangles = int(T_);
  p.uvs = uv_.data();
  p.numUvs = int(in_.model.U);
  p.uvTri = uvTri_.data();
  p.numViews = n;
  p.width = p.height = size;
  p.intrinsics = intr;
  p.extrinsics = ext;
  p.nearZ = 0.01f;
  p.farZ = 1e4f;
  p.flipV = true;
  p.shFrame = raster::ShFrame::World;
  return p;
}

void Runner::encode(const float* img, int n, int H, int W, float* z) {
  auto s = prof_.op("pipeline/codec_encode");
  backend_.codec->encode(img, n, H, W, z, stream_.handle());
}
void Runner::decode(const float* z, int n, int h, int w, float* img) {
  auto s = prof_.op("pipeline/codec_decode");
  backend_.codec->decode(z, n, h, w, img, stream_.handle());
}

const float* Runner::textFor(int variant) const {
  size_t e = size_t(in_.diffusion.tokens) * in_.diffusion.embedDim;
  return textVariants_.data() + e * size_t(variant);
}

// One SDS term on a rendered latent batch z [n,C,h,w] (zt: the target denoiser's conditioning).
// Latent path (imageSpace = false): gLatentOut = w(ε̂ − ε) and, when gImgOut, its codec adjoint.
// Image-space path: x̂0 -> decode -> gImgOut = 2w(img − decoded).
void Runner::sdsTerm(int n, int C, int h, int w, const float* z, const float* zt, const float* img, float* gImgOut, float* gLatentOut,
                     const sds::SdsCoefficients& co, float guidance, float weightScale, uint64_t noiseKey, const float* text,
                     std::vector<engines::ControlInput> controls, bool imageSpace) {
  const int64_t count = int64_t(n) * C * h * w;
  wsSds_.reset();
  sds::SdsScratch scratch = sds::sdsScratch(wsSds_);
  {
    auto s = prof_.op("pipeline/sds_noise");
    sds::SdsNoiseParams np;
    np.n = count;
    np.x0 = z;
    np.eps = eps_.data();
    np.xt = xt_.data();
    np.copies = 1;
    np.seed = in_.seed;
    np.noiseOffset = sds::sdsNoiseOffset(noiseKey, int64_t(latCap_));
    np.sqrtAlphaBar = co.sqrtAlphaBar;
    np.sqrtOneMinusAlphaBar = co.sqrtOneMinusAlphaBar;
    np.scratch = scratch;
    sds::sdsNoise(dev_, np, stream_.handle());
  }
  {
    auto s = prof_.op("pipeline/denoise");
    engines::DenoiseRequest r;
    r.n = n;
    r.channels = C;
    r.height = h;
    r.width = w;
    r.xt = xt_.data();
    r.timestep = co.t;
    r.alphaBar = co.alphaBar;
    r.text = text;
    r.tokens = in_.diffusion.tokens;
    r.embedDim = in_.diffusion.embedDim;
    r.guidance = guidance;
    r.cfgOrder = in_.diffusion.cfgOrder;
    r.target = zt;
    r.controls = std::move(controls);
    r.eps = epsHat_.data();
    backend_.denoiser->predict(r, wsSds_, stream_.handle());
  }
  {
    auto s = prof_.op("pipeline/sds_grad");
    sds::SdsGradParams gp;
    gp.n = count;
    gp.x0 = z;
    gp.eps = eps_.data();
    gp.modelOut = epsHat_.data();
    gp.copies = 1;
    gp.prediction = in_.diffusion.scheduler.prediction;
    gp.guidanceScale = guidance;
    gp.sqrtAlphaBar = co.sqrtAlphaBar;
    gp.sqrtOneMinusAlphaBar = co.sqrtOneMinusAlphaBar;
    gp.weight = co.weight * weightScale;
    gp.clampValue = in_.diffusion.gradClamp;
    gp.grad = gLatentOut ? gLatentOut : gz_.data();
    gp.x0Pred = imageSpace ? x0hat_.data() : nullptr;
    gp.scratch = scratch;
    sds::sdsGrad(dev_, gp, stream_.handle());
  }
  if (!imageSpace) {
    if (gImgOut) {
      auto s = prof_.op("pipeline/codec_adjoint");
      CodecAdjointParams ap = adj_;
      ap.gradLatent = gLatentOut ? gLatentOut : gz_.data();
      ap.gradImage = gImgOut;
      ap.n = n;
      ap.height = h * factor_;
      ap.width = w * factor_;
      codecAdjoint(dev_, ap, stream_.handle());
    }
    return;
  }
  decode(x0hat_.data(), n, h, w, decoded_.data());
  auto s = prof_.op("pipeline/image_loss");
  sds::SdsImageLossParams lp;
  lp.n = int64_t(n) * 3 * h * factor_ * w * factor_;
  lp.render = img;
  lp.target = decoded_.data();
  lp.weight = co.weight * weightScale;
  lp.grad = gImgOut;
  lp.scratch = scratch;
  sds::sdsImageLoss(dev_, lp, stream_.handle());
}

void Runner::checkFinite(const char* where) {
  std::vector<float> c = download(coeffs_, size_t(K_));
  for (float v : c)
    if (!std::isfinite(v)) fail(ErrorCode::Numerical, std::string(where) + ": a coefficient became NaN/Inf");
}

void Runner::sendProgress(const char* phase, int64_t i, int64_t total, int t, const std::vector<float>& curve) {
  if (!progress_) return;
  std::ostringstream o;
  o << "{\"phase\":\"" << phase << "\",\"iteration\":" << (i + 1) << ",\"total\":" << total << ",\"timestep\":" << t;
  if (size_t(3 * i + 2) < curve.size()) o << ",\"loss\":" << num(curve[3 * i + 1]) << ",\"targetMse\":" << num(curve[3 * i + 2]);
  o << ",\"elapsedMs\":" << num(msSince(t0_)) << "}";
  progress_(o.str());
}

// ------------------------------------------------------------------------------------------------ geometry

bool Runner::geometryPhase(int64_t start) {
  const GeometrySettings& g = in_.geometry;
  NvtxRange phase("pipeline/geometry");
  const int n = g.views, H = g.renderSize;
  const int64_t G = g.iterations;
  // camera tables for every iteration (resume recomputes the same ones: they are addressed by iteration)
  std::vector<float> ext(size_t(G) * n * 12), intr(size_t(G) * n * 4), sh(size_t(G) * n * 9);
  gViews_.assign(size_t(G) * n, PinholeView{});
  gMode_.assign(size_t(G), 0);
  std::vector<std::array<float, 9>> lights = g.lighting;
  if (lights.empty())
    for (const ShPreset& p : shPresets()) {
      std::array<float, 9> a;
      std::copy(p.c, p.c + 9, a.begin());
      lights.push_back(a);
    }
  for (int64_t i = 0; i < G; ++i) {
    int nIn = int(g.inputs.size());
    gMode_[size_t(i)] = int(g.inputs[size_t(g.randomInputs ? lightingPick(in_.seed, (uint64_t(1) << 40) + uint64_t(i), nIn) : int(i % nIn))]);
    for (int v = 0; v < n; ++v) {
      CameraPose pose = randomPose(in_.seed, uint64_t(i), v, g.elevation, g.azimuth, g.distance);
      PinholeView pv = pinholeView(pose, g.fovDegrees, H, H, headRadius_);
      size_t k = size_t(i) * n + v;
      gViews_[k] = pv;
      std::copy(pv.extrinsics, pv.extrinsics + 12, ext.begin() + k * 12);
      std::copy(pv.intrinsics, pv.intrinsics + 4, intr.begin() + k * 4);
      const auto& L = lights[size_t(lightingPick(in_.seed, uint64_t(i) * 16 + uint64_t(v), int(lights.size())))];
      std::copy(L.begin(), L.end(), sh.begin() + k * 9);
    }
  }
  gExt_ = Buffer<float>(dev_, ext.size());
  gIntr_ = Buffer<float>(dev_, intr.size());
  gSh_ = Buffer<float>(dev_, sh.size());
  upload(gExt_, ext);
  upload(gIntr_, intr);
  upload(gSh_, sh);
  if (geomCurve_.size() != size_t(G) * 3) {
    geomCurve_.assign(size_t(G) * 3, 0.f);
    geomCount_.assign(size_t(G) * 2, 1.0);
  }
  Buffer<float> curveDev(dev_, size_t(std::max<int64_t>(G, 1)) * 2);
  curveDev.zero(stream_.handle());
  stream_.sync();
  auto phaseStart = Clock::now();
  const int every = progressEvery(G);
  bool cancelled = false;
  for (int64_t i = start; i < G; ++i) {
    {
      NvtxRange it("pipeline/geometry/iteration");
      geometryIteration(i);
      // loss slots of this iteration
      SumSqParams sp;
      sp.a = gImg_.data();
      sp.count = int64_t(n) * 3 * H * H;
      sp.out = curveDev.data() + 2 * i;
      sumSquares(dev_, sp, stream_.handle());
      if (backend_.target) {
        sp.a = img_.data();
        sp.b = tImg_.data();
        sp.out = curveDev.data() + 2 * i + 1;
        sumSquares(dev_, sp, stream_.handle());
      }
      geomCount_[size_t(2 * i)] = double(sp.count);
      geomCount_[size_t(2 * i + 1)] = double(sp.count);
    }
    prof_.endIteration();
    bool last = i + 1 == G;
    bool stop = cancel_ && cancel_->cancelled();
    if ((i + 1) % every == 0 || last || stop) {
      std::vector<float> cd = download(curveDev, size_t(2 * (i + 1)));
      for (int64_t j = start; j <= i; ++j) {
        geomCurve_[size_t(3 * j + 1)] = float(cd[size_t(2 * j)] / geomCount_[size_t(2 * j)]);
        geomCurve_[size_t(3 * j + 2)] = float(cd[size_t(2 * j + 1)] / geomCount_[size_t(2 * j + 1)]);
      }
      if (!std::isfinite(geomCurve_[size_t(3 * i + 1)])) fail(ErrorCode::Numerical, "geometry phase: the SDS gradient became NaN/Inf at iteration " + std::to_string(i));
      sendProgress("geometry", i, G, int(geomCurve_[size_t(3 * i)]), geomCurve_);
    }
    if (stop && !last) {
      cancelled = true;
      geomMs_ += msSince(phaseStart);
      nextIteration_ = i + 1;
      break;
    }
  }
  stream_.sync();
  if (!cancelled) geomMs_ += msSince(phaseStart);
  checkFinite("geometry phase");
  return !cancelled;
}

