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

// The target denoiser's conditioning for fixed cameras. In the texture phase the geometry is fixed, so the target
// head's render (and its encoding) depends only on the camera: with fixed cameras each used camera is rendered
// and encoded once when the stage starts and every iteration reads its slot (random cameras render per iteration).
struct TargetCache {
  bool ready = false;
  bool images = false;      // also keep the [3, size, size] renders (the RGB stage's target MSE reads them)
  int size = 0;             // render size; latents are [C, size/f, size/f]
  std::vector<int> slot;    // fixed camera -> slot (-1: not used by the stage)
  Buffer<float> img, lat;
};
constexpr size_t kTargetCacheBudget = size_t(1) << 30;  // bytes; above it the stage renders per iteration

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
  void buildTargetCache(TargetCache& c, int64_t from, int64_t to, int size, bool images);
  // the target conditioning of texture iteration i from the cache: pointers to [n,3,size,size] (images) and
  // [n,C,size/f,size/f]; for n > 1 the views are gathered into tImg_ / zt_. False: no cache for this stage.
  bool cachedTarget(const TargetCache& c, int64_t i, int size, const float*& img, const float*& lat);
  void renderTargetTextured(int nViews, int size, const float* intr, const float* ext, float* outNchw);
  void toLayout(const float* src, float* dst, int nn, int H, int ch, bool toNchw, bool acc);
  // the iteration's two loss slots in one pass: out[0] = Σ g², out[1] = Σ (a − b)² (a: null to skip)
  void lossSlots(const float* g, const float* a, const float* b, int64_t count, float* out);
  // ---- pieces
  raster::RenderParams renderParams(const float* verts, int n, int size, const float* intr, const float* ext) const;
  void sdsTerm(int n, int C, int h, int w, const float* z, const float* zt, const float* img, float* gImgOut, float* gLatentOut,
               const sds::SdsCoefficients& co, float guidance, float weightScale, uint64_t noiseKey, const float* text,
               std::vector<engines::ControlInput> controls, bool imageSpace);
  void encode(const float* img, int n, int H, int W, float* z);
  void decode(const float* z, int n, int h, int w, float* img);
  void checkFinite(const char* where);
  void sendProgress(const char* phase, int64_t i, int64_t total, int t, const std::vector<float>& curve);
  // After iteration i of a phase: on progress iterations (every `every`, the last, or when cancelled) read the
  // phase's loss slots back, turn sums into means, stop on NaN/Inf and report progress. True: stop (cancelled).
  bool reportIteration(const char* phase, int64_t i, int64_t start, int64_t total, int every, const Buffer<float>& curveDev,
                       std::vector<float>& curve, const std::vector<double>& count);
  void fillCheckpoint(Checkpoint& c, const std::string& phase, int64_t iteration);
  void restoreCheckpoint(const Checkpoint& c);
  void finish(PipelineResult& r);
  void renderPreviews(PipelineResult& r);
  void textureMetrics(PipelineResult& r);
  double rmseAgainstTarget(const float* devVerts);
  // (core's Stream::sync() calls cudaStreamSynchronize even for a CPU stream: reported; guard here)
  void sync() {
    if (dev_ == Device::CUDA) stream_.sync();
  }
  template <typename T>
  std::vector<T> download(const Buffer<T>& b, size_t n) {
    std::vector<T> h(n);
    if (n) b.download(h.data(), n, stream_.handle());
    sync();
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
  // The CFG text batch of iteration i: for each of the n views, the unconditional embedding and the embedding of
  // that view's prompt variant (front/side/back), in the denoiser's CFG order, in text_. Returns text_.data().
  float* cfgText(const std::vector<int>& variants, int64_t i, int n, StreamHandle s);
  // A phase's timestep schedule completed with its iteration count and the scheduler's timestep count.
  sds::TimestepSchedule phaseSchedule(const sds::TimestepSchedule& schedule, int64_t iterations) const;
  // Iteration i of a phase with `iterations` steps: its timestep (Philox, by iteration) and SDS coefficients.
  sds::SdsCoefficients stepCoefficients(const sds::TimestepSchedule& schedule, int64_t iterations, int64_t i, int& timestep) const;

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
  // CUDA only: 64-bit fixed-point scratch of the normal-render backward's scatters (ShadeParams::*Fixed; +1 flag
  // element each), zeroed before every backward: deterministic gradients, so a seeded CUDA run reproduces exactly.
  Buffer<long long> gClipFx_, dNormalsFx_;
  // renders and SDS scratch (capacities computed in allocate())
  RenderTarget cur_, tgt_;
  Buffer<float> img_, tImg_, gImg_, dGrey_, dMask_, ctrlImg_;
  Buffer<float> z_, zt_, eps_, xt_, epsHat_, gz_, x0hat_, decoded_, gzImg_;
  Buffer<float> texImg_, texTargetLatentPrior_, texTargetRgb_, priorCtrl_, bgLatent_, bgRgb_;
  Buffer<float> targetTex_;      // target texture at its own size (HWC)
  Buffer<float> sumSq_;
  Buffer<float> sumSqPartials_;          // [2 * kSumSqBlocks] scratch of the CUDA loss-slot reduction
  Buffer<unsigned int> sumSqCounter_;    // its ticket (zero between launches)
  TargetCache latCache_, rgbCache_;
  std::vector<int> tPick_;               // [Tt * n] fixed camera of each texture view (-1: random cameras)
  Buffer<float> texCurveDev_;    // device curve slots of the texture phase
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
  FG_CHECK_ARG(!t.enabled || (t.latentIterations >= 0 && t.latentIterations <= t.iterations), "texture.latent.iterations: expected 0..texture.iterations");
  FG_CHECK_ARG(t.latentSize >= 4 && t.latentSize <= 1024, "texture.latent.textureSize: expected 4..1024");
  FG_CHECK_ARG(t.latentRenderSize >= 4 && t.latentRenderSize <= 1024, "texture.latent.renderSize: expected 4..1024");
  FG_CHECK_ARG(t.textureSize >= 4 && t.textureSize <= 4096, "texture.rgb.textureSize: expected 4..4096");
  FG_CHECK_ARG(t.renderSize >= 8 && t.renderSize <= 2048, "texture.rgb.renderSize: expected 8..2048");
  FG_CHECK_ARG(!t.enabled || t.iterations == 0 || !t.fixedCameras || !t.fixed.empty(), "texture.cameras.fixed: expected at least one camera");
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
  auto validatePhase = [&](bool enabled, int64_t iterations, const sds::TimestepSchedule& schedule, const OptimSettings& optim) {
    if (!enabled || iterations <= 0) return;
    sds::validate(phaseSchedule(schedule, iterations));
    sds::validate(optim.config);
    sds::validate(optim.lr);
  };
  validatePhase(g.enabled, g.iterations, g.timesteps, g.optim);
  validatePhase(t.enabled, t.iterations, t.timesteps, t.optim);
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
    if (dev_ == Device::CUDA) {
      gClipFx_ = Buffer<long long>(dev_, size_t(nG) * V_ * 4 + 1);
      dNormalsFx_ = Buffer<long long>(dev_, V3 + 1);
    }
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
      sync();
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
      sync();
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
      sync();
    }
  }
  sumSq_ = Buffer<float>(dev_, 4);
  sumSqPartials_ = Buffer<float>(dev_, size_t(2) * kSumSqBlocks);
  sumSqCounter_ = Buffer<unsigned int>(dev_, 1);
  sumSqCounter_.zero(stream_.handle());
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
  sync();
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
  sync();
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

sds::TimestepSchedule Runner::phaseSchedule(const sds::TimestepSchedule& schedule, int64_t iterations) const {
  sds::TimestepSchedule ts = schedule;
  ts.totalIterations = iterations;
  ts.numTrainTimesteps = in_.diffusion.scheduler.numTrainTimesteps;
  return ts;
}

sds::SdsCoefficients Runner::stepCoefficients(const sds::TimestepSchedule& schedule, int64_t iterations, int64_t i, int& timestep) const {
  timestep = sds::sampleTimestep(phaseSchedule(schedule, iterations), in_.seed, uint64_t(i));
  return sds::sdsCoefficients(tables_.alphasCumprod.data(), in_.diffusion.scheduler.numTrainTimesteps, timestep, in_.diffusion.weighting,
                              in_.diffusion.gradScale);
}

float* Runner::cfgText(const std::vector<int>& variants, int64_t i, int n, StreamHandle s) {
  const size_t e = size_t(in_.diffusion.tokens) * in_.diffusion.embedDim;
  const bool uncondFirst = in_.diffusion.cfgOrder == engines::CfgOrder::UncondFirst;
  for (int v = 0; v < n; ++v) {
    int var = 1 + variants[size_t(i) * n + v];
    memcpyAny(text_.data() + e * size_t(uncondFirst ? v : n + v), dev_, textFor(0), dev_, e * sizeof(float), s);
    memcpyAny(text_.data() + e * size_t(uncondFirst ? n + v : v), dev_, textFor(var), dev_, e * sizeof(float), s);
  }
  return text_.data();
}

bool Runner::reportIteration(const char* phase, int64_t i, int64_t start, int64_t total, int every, const Buffer<float>& curveDev,
                             std::vector<float>& curve, const std::vector<double>& count) {
  bool last = i + 1 == total;
  bool stop = cancel_ && cancel_->cancelled();
  if ((i + 1) % every == 0 || last || stop) {
    std::vector<float> cd = download(curveDev, size_t(2 * (i + 1)));
    for (int64_t j = start; j <= i; ++j) {
      curve[size_t(3 * j + 1)] = float(cd[size_t(2 * j)] / count[size_t(2 * j)]);
      curve[size_t(3 * j + 2)] = float(cd[size_t(2 * j + 1)] / count[size_t(2 * j + 1)]);
    }
    if (!std::isfinite(curve[size_t(3 * i + 1)]))
      fail(ErrorCode::Numerical, std::string(phase) + " phase: the SDS gradient became NaN/Inf at iteration " + std::to_string(i));
    sendProgress(phase, i, total, int(curve[size_t(3 * i)]), curve);
  }
  return stop && !last;
}

bool Runner::geometryPhase(int64_t start) {
  const GeometrySettings& g = in_.geometry;
  NvtxRange phase("pipeline/geometry");
  const int n = g.views, H = g.renderSize;
  const int64_t G = g.iterations;
  // camera tables for every iteration (resume recomputes the same ones: they are addressed by iteration)
  std::vector<float> ext(size_t(G) * n * 12), intr(size_t(G) * n * 4), sh(size_t(G) * n * 9);
  gViews_.assign(size_t(G) * n, PinholeView{});
  gMode_.assign(size_t(G), 0);
  gVariant_.assign(size_t(G) * n, 0);
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
      gVariant_[k] = promptVariant(pose.azimuth, in_.diffusion.frontMaxAzimuth, in_.diffusion.backMinAzimuth);
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
  sync();
  auto phaseStart = Clock::now();
  const int every = progressEvery(G);
  bool cancelled = false;
  for (int64_t i = start; i < G; ++i) {
    {
      NvtxRange it("pipeline/geometry/iteration");
      auto h0 = Clock::now();
      {
        auto sc = prof_.op("iteration/geometry");
        geometryIteration(i);
        // loss slots of this iteration
        const int64_t count = int64_t(n) * 3 * H * H;
        lossSlots(gImg_.data(), backend_.target ? img_.data() : nullptr, tImg_.data(), count, curveDev.data() + 2 * i);
        geomCount_[size_t(2 * i)] = double(count);
        geomCount_[size_t(2 * i + 1)] = double(count);
      }
      prof_.addHost("host/geometry_enqueue", msSince(h0));
    }
    prof_.endIteration();
    if (reportIteration("geometry", i, start, G, every, curveDev, geomCurve_, geomCount_)) {
      cancelled = true;
      geomMs_ += msSince(phaseStart);
      nextIteration_ = i + 1;
      break;
    }
  }
  sync();
  if (!cancelled) geomMs_ += msSince(phaseStart);
  checkFinite("geometry phase");
  return !cancelled;
}


namespace {
double lrFor(const OptimSettings& o, int64_t step) {
  double lr = sds::lrAt(o.lr, step);
  return std::max(lr, o.lr.baseLr * o.minLrFactor);
}
}  // namespace

void Runner::geometryIteration(int64_t i) {
  const GeometrySettings& g = in_.geometry;
  const int n = g.views, H = g.renderSize, f = factor_, C = latentC_, h = H / f;
  const GeometryInput mode = GeometryInput(gMode_[size_t(i)]);
  const float* ext = gExt_.data() + size_t(i) * n * 12;
  const float* intr = gIntr_.data() + size_t(i) * n * 4;
  const float* sh = gSh_.data() + size_t(i) * n * 9;
  StreamHandle s = stream_.handle();
  int t = 0;
  const sds::SdsCoefficients co = stepCoefficients(g.timesteps, g.iterations, i, t);
  geomCurve_[size_t(3 * i)] = float(t);

  ClipParams cp;
  cp.V = V_;
  cp.nViews = n;
  ShadeParams shp;
  shp.mode = kShadeNormal;
  shp.nViews = n;
  shp.width = shp.height = H;
  shp.channels = 3;
  shp.V = V_;
  shp.tri = tri_.data();
  shp.clip = clip_.data();
  for (int c = 0; c < 3; ++c) shp.bg[c] = g.background[c];
  for (int v = 0; v < n; ++v) {
    const PinholeView& pv = gViews_[size_t(i) * n + v];
    std::copy(pv.mvp, pv.mvp + 16, cp.mvp[v]);
    std::copy(pv.rotGl, pv.rotGl + 9, shp.rot[v]);
  }
  auto renderInto = [&](const float* verts, const float* normals, RenderTarget& rt, Workspace& ws, float* out, raster::RenderState* state,
                        raster::RenderParams* paramsOut) {
    ws.reset();
    raster::RenderParams rp = renderParams(verts, n, H, intr, ext);
    rp.sh = sh;
    rp.antialias = g.antialias;
    raster::RenderOutputs ro;
    ro.triId = rt.triId.data();
    ro.bary = rt.bary.data();
    if (mode == GeometryInput::Grey) {
      ro.grey = rt.grey.data();
      ro.mask = rt.mask.data();
    }
    raster::RenderState st;
    {
      auto sc = prof_.op("pipeline/raster");
      st = raster_->forward(rp, ro, ws, s);
    }
    auto sc = prof_.op("pipeline/shade");
    if (mode == GeometryInput::Grey) {
      ComposeParams cm;
      cm.value = rt.grey.data();
      cm.mask = rt.mask.data();
      for (int c = 0; c < 3; ++c) cm.bg[c] = g.background[c] / std::max(g.albedo, 1e-6f);
      cm.n = n;
      cm.height = cm.width = H;
      cm.out = out;
      compose(dev_, cm, s);
      if (g.albedo != 1.f) {
        ElementParams ep;
        ep.op = kOpScale;
        ep.out = out;
        ep.count = int64_t(n) * 3 * H * H;
        ep.alpha = g.albedo;
        elementwise(dev_, ep, s);
      }
    } else {
      cp.pos = verts;
      cp.clip = clip_.data();
      clipTransform(dev_, cp, s);
      ShadeParams sp = shp;
      sp.triId = rt.triId.data();
      sp.bary = rt.bary.data();
      sp.normals = normals;
      sp.out = out;
      shade(dev_, sp, s);
    }
    if (state) *state = st;
    if (paramsOut) *paramsOut = rp;
  };

  // target first (it borrows clip_ for normal renders), then the current head (whose state backward needs)
  if (backend_.target) renderInto(tVerts_.data(), tNormals_.data(), tgt_, wsTarget_, tImg_.data(), nullptr, nullptr);
  wsMorph_.reset();
  const morph::MorphModel& mm = morphBuf_->view();
  morph::MorphTape tape = morph::morphAllocTape(mm, wsMorph_);
  morph::MorphInputs mi;
  mi.coeffs = coeffs_.data();
  mi.scale = rigid_.data();
  mi.translation = rigid_.data() + 1;
  {
    auto sc = prof_.op("pipeline/morph");
    morph::MorphOutputs mo;
    mo.vertices = verts_.data();
    mo.normals = normals_.data();
    morph::morphForward(mm, morphOpt_, mi, mo, tape, wsMorph_, s);
  }
  raster::RenderState st;
  raster::RenderParams rp;
  renderInto(verts_.data(), normals_.data(), cur_, wsRaster_, img_.data(), &st, &rp);

  // SDS on the render
  const float* text = nullptr;
  if (!backend_.target) {
    text = cfgText(gVariant_, i, n, s);
  }
  encode(img_.data(), n, H, H, z_.data());
  if (backend_.target) encode(tImg_.data(), n, H, H, zt_.data());
  sdsTerm(n, C, h, h, z_.data(), backend_.target ? zt_.data() : nullptr, img_.data(), gImg_.data(), nullptr, co, float(g.guidance), 1.f,
          uint64_t(i) * 2, text, {}, !backend_.linearCodec);

  // backward to the coefficients
  const float* dNormals = nullptr;
  {
    auto sc = prof_.op("pipeline/render_backward");
    if (mode == GeometryInput::Grey) {
      ComposeParams cm;
      for (int c = 0; c < 3; ++c) cm.bg[c] = g.background[c];
      cm.n = n;
      cm.height = cm.width = H;
      cm.gradOut = gImg_.data();
      cm.gradValue = dGrey_.data();
      cm.gradMask = dMask_.data();
      composeBackward(dev_, cm, s);
      if (g.albedo != 1.f) {
        ElementParams ep;
        ep.op = kOpScale;
        ep.out = dGrey_.data();
        ep.count = int64_t(n) * H * H;
        ep.alpha = g.albedo;
        elementwise(dev_, ep, s);
      }
      raster::RenderGrads rg;
      rg.dGrey = dGrey_.data();
      rg.dMask = dMask_.data();
      rg.dPositions = dVerts_.data();
      rg.deterministic = true;
      raster_->backward(rp, st, rg, wsRaster_, s);
    } else {
      memsetAny(gClip_.data(), dev_, 0, size_t(n) * V_ * 4 * sizeof(float), s);
      memsetAny(dNormals_.data(), dev_, 0, size_t(V_) * 3 * sizeof(float), s);
      memsetAny(dVerts_.data(), dev_, 0, size_t(V_) * 3 * sizeof(float), s);
      if (dev_ == Device::CUDA) {  // the fixed-point accumulators (flag element included) start at zero too
        memsetAny(gClipFx_.data(), dev_, 0, (size_t(n) * V_ * 4 + 1) * sizeof(long long), s);
        memsetAny(dNormalsFx_.data(), dev_, 0, (size_t(V_) * 3 + 1) * sizeof(long long), s);
      }
      ShadeParams sp = shp;
      sp.triId = cur_.triId.data();
      sp.bary = cur_.bary.data();
      sp.normals = normals_.data();
      sp.gradOut = gImg_.data();
      sp.gradClip = gClip_.data();
      sp.gradNormals = dNormals_.data();
      sp.gradClipFixed = gClipFx_.data();      // null on the CPU (serial fixed-order scatter there)
      sp.gradNormalsFixed = dNormalsFx_.data();
      shadeBackwardGeometry(dev_, sp, s);
      cp.pos = verts_.data();
      cp.gradClip = gClip_.data();
      cp.gradPos = dVerts_.data();
      clipTransformBackward(dev_, cp, s);
      dNormals = dNormals_.data();
    }
  }
  {
    auto sc = prof_.op("pipeline/morph_backward");
    morph::MorphGrads mg;
    mg.coeffs = gCoeffs_.data();
    morph::morphBackward(mm, morphOpt_, mi, tape, dVerts_.data(), dNormals, mg, wsMorph_, s);
  }
  {
    auto sc = prof_.op("pipeline/optimizer");
    if (Ki_ > 0 && g.regIdentity > 0) morph::coefL2(dev_, Ki_, coeffs_.data(), nullptr, float(g.regIdentity), regValue_.data(), gCoeffs_.data(), s);
    if (Ke_ > 0 && g.optimizeExpression && g.regExpression > 0)
      morph::coefL2(dev_, Ke_, coeffs_.data() + Ki_, nullptr, float(g.regExpression), regValue_.data() + 1, gCoeffs_.data() + Ki_, s);
    sds::OptimTensor ot;
    ot.param = coeffs_.data();
    ot.grad = gCoeffs_.data();
    ot.m = adanM_.data();
    ot.v = adanV_.data();
    ot.d = adanD_.data();
    ot.prev = adanPrev_.data();
    ot.n = g.optimizeExpression ? K_ : Ki_;
    sds::OptimStepArgs a;
    a.step = i + 1;
    a.lr = lrFor(g.optim, i);
    sds::optimStep(dev_, g.optim.config, &ot, 1, a, &wsSds_, s);
    geomStep_ = i + 1;
  }
}

// ------------------------------------------------------------------------------------------------ texture

void Runner::enterRgbStage() {
  const TextureSettings& t = in_.texture;
  const int Ls = t.latentSize, C = latentC_, f = factor_, S = t.textureSize;
  StreamHandle s = stream_.handle();
  TransposeParams tp;
  tp.src = latent_.data();
  tp.dst = texImg_.data();
  tp.n = 1;
  tp.height = tp.width = Ls;
  tp.channels = C;
  tp.toNchw = true;
  transpose(dev_, tp, s);
  decode(texImg_.data(), 1, Ls, Ls, decoded_.data());
  LayoutParams lp;
  lp.src = decoded_.data();
  lp.dst = rgb_.data();
  lp.channels = 3;
  lp.srcW = lp.srcH = Ls * f;
  lp.dstW = lp.dstH = S;
  lp.srcHwc = false;
  lp.dstHwc = true;
  lp.lo = 0.f;
  lp.hi = 1.f;
  layout(dev_, lp, int64_t(S) * S * 3, s);
  rgbM_.zero(s);
  rgbV_.zero(s);
  rgbReady_ = true;
}

bool Runner::texturePhase(int64_t start) {
  const TextureSettings& t = in_.texture;
  NvtxRange phase("pipeline/texture");
  const int n = t.views, f = factor_, C = latentC_;
  const int64_t Tt = t.iterations;
  StreamHandle s = stream_.handle();
  // the geometry of this phase
  if (!t.coefficients.empty()) {
    std::vector<float> c(size_t(K_), 0.f);
    std::copy(t.coefficients.begin(), t.coefficients.end(), c.begin());
    upload(coeffs_, c);
  }
  morphTo(coeffs_.data(), verts_.data(), normals_.data());
  // camera tables
  std::vector<float> ext(size_t(Tt) * n * 12), iR(size_t(Tt) * n * 4), iL(size_t(Tt) * n * 4), iLf(size_t(Tt) * n * 4), dr(size_t(Tt) * n * 2);
  tVariant_.assign(size_t(Tt) * n, 0);
  tPick_.assign(size_t(Tt) * n, -1);
  for (int64_t i = 0; i < Tt; ++i)
    for (int v = 0; v < n; ++v) {
      CameraPose pose;
      uint64_t key = kTexturePhaseKey + uint64_t(i);
      if (t.fixedCameras) {
        int nf = int(t.fixed.size());
        int pick = std::min(nf - 1, int(cameraUniform(in_.seed, key, v, 0) * nf));
        pose = t.fixed[size_t(pick)];
        tPick_[size_t(i) * n + v] = pick;
      } else {
        pose = randomPose(in_.seed, key, v, t.elevation, t.azimuth, t.distance);
      }
      size_t k = size_t(i) * n + v;
      tVariant_[k] = promptVariant(pose.azimuth, in_.diffusion.frontMaxAzimuth, in_.diffusion.backMinAzimuth);
      PinholeView a = pinholeView(pose, t.fovDegrees, t.renderSize, t.renderSize, headRadius_);
      PinholeView b = pinholeView(pose, t.fovDegrees, t.latentRenderSize, t.latentRenderSize, headRadius_);
      PinholeView c = pinholeView(pose, t.fovDegrees, t.latentRenderSize * f, t.latentRenderSize * f, headRadius_);
      std::copy(a.extrinsics, a.extrinsics + 12, ext.begin() + k * 12);
      std::copy(a.intrinsics, a.intrinsics + 4, iR.begin() + k * 4);
      std::copy(b.intrinsics, b.intrinsics + 4, iL.begin() + k * 4);
      std::copy(c.intrinsics, c.intrinsics + 4, iLf.begin() + k * 4);
      std::copy(a.depthRange, a.depthRange + 2, dr.begin() + k * 2);
    }
  tExt_ = Buffer<float>(dev_, ext.size());
  tIntrR_ = Buffer<float>(dev_, iR.size());
  tIntrL_ = Buffer<float>(dev_, iL.size());
  tIntrLf_ = Buffer<float>(dev_, iLf.size());
  tDepth_ = Buffer<float>(dev_, dr.size());
  upload(tExt_, ext);
  upload(tIntrR_, iR);
  upload(tIntrL_, iL);
  upload(tIntrLf_, iLf);
  upload(tDepth_, dr);
  if (start == 0 && !(in_.hasCheckpoint && in_.checkpoint.phase == "texture")) {
    if (t.latentRandomInit) {
      RngRequest r;
      r.seed = in_.seed;
      r.stream = rng_stream::kInit;
      r.dist = Distribution::Normal;
      r.mean = 0.f;
      r.scale = t.latentInitScale;
      rngFill(dev_, r, latent_.data(), int64_t(t.latentSize) * t.latentSize * C, s);
    } else {
      latent_.zero(s);
    }
    latentM_.zero(s);
    latentV_.zero(s);
  }
  if (texCurve_.size() != size_t(Tt) * 3) {
    texCurve_.assign(size_t(Tt) * 3, 0.f);
    texCount_.assign(size_t(Tt) * 2, 1.0);
  }
  texCurveDev_ = Buffer<float>(dev_, size_t(std::max<int64_t>(Tt, 1)) * 2);
  texCurveDev_.zero(s);
  sync();
  (void)f;
  auto phaseStart = Clock::now();
  // (one-off work of the phase, inside its time: the target conditioning of every fixed camera the stages use)
  {
    auto sc = prof_.op("pipeline/target_cache");
    buildTargetCache(latCache_, start, std::min(Tt, t.latentIterations), t.latentRenderSize * f, false);
    buildTargetCache(rgbCache_, std::max(start, t.latentIterations), Tt, t.renderSize, true);
  }
  prof_.endIteration();
  const int every = progressEvery(Tt);
  bool cancelled = false;
  for (int64_t i = start; i < Tt; ++i) {
    {
      NvtxRange it("pipeline/texture/iteration");
      auto h0 = Clock::now();
      {
        auto sc = prof_.op(i < t.latentIterations ? "iteration/texture_latent" : "iteration/texture_rgb");
        if (i >= t.latentIterations && !rgbReady_) enterRgbStage();
        textureIteration(i);
      }
      prof_.addHost(i < t.latentIterations ? "host/texture_latent_enqueue" : "host/texture_rgb_enqueue", msSince(h0));
    }
    prof_.endIteration();
    if (reportIteration("texture", i, start, Tt, every, texCurveDev_, texCurve_, texCount_)) {
      cancelled = true;
      nextIteration_ = i + 1;
      break;
    }
  }
  if (!cancelled && !rgbReady_) enterRgbStage();
  sync();
  texMs_ += msSince(phaseStart);
  latCache_ = TargetCache();
  rgbCache_ = TargetCache();
  return !cancelled;
}

void Runner::toLayout(const float* src, float* dst, int nn, int H, int ch, bool toNchw, bool acc) {
  auto sc = prof_.op("pipeline/layout");
  TransposeParams tp;
  tp.src = src;
  tp.dst = dst;
  tp.n = nn;
  tp.height = tp.width = H;
  tp.channels = ch;
  tp.toNchw = toNchw;
  tp.accumulate = acc;
  transpose(dev_, tp, stream_.handle());
}

void Runner::lossSlots(const float* g, const float* a, const float* b, int64_t count, float* out) {
  auto sc = prof_.op("pipeline/loss_slots");
  SumSqParams sp;
  sp.a = g;
  sp.count = count;
  sp.out = out;
  if (a) {
    sp.a2 = a;
    sp.b2 = b;
    sp.out2 = out + 1;
  }
  sp.partials = sumSqPartials_.data();
  sp.counter = sumSqCounter_.data();
  sumSquares(dev_, sp, stream_.handle());
}

// The textured target head for nViews cameras (extrinsics [nViews,12], intrinsics [nViews,4]) -> NCHW.
void Runner::renderTargetTextured(int nViews, int size, const float* intr, const float* ext, float* outNchw) {
  const TextureSettings& t = in_.texture;
  wsTarget_.reset();
  raster::RenderParams rp = renderParams(tVerts_.data(), nViews, size, intr, ext);
  rp.texture = targetTex_.data();
  rp.texWidth = in_.target.texWidth;
  rp.texHeight = in_.target.texHeight;
  rp.channels = 3;
  rp.background = bgRgb_.data();
  rp.antialias = t.antialias;
  raster::RenderOutputs ro;
  ro.color = tgt_.color.data();
  {
    auto sc = prof_.op("pipeline/raster_target");
    raster_->forward(rp, ro, wsTarget_, stream_.handle());
  }
  toLayout(tgt_.color.data(), outNchw, nViews, size, 3, true, false);
}

void Runner::buildTargetCache(TargetCache& c, int64_t from, int64_t to, int size, bool images) {
  const TextureSettings& t = in_.texture;
  c = TargetCache();
  if (!backend_.target || !t.fixedCameras || from >= to || t.fixed.empty()) return;
  const int n = t.views, C = latentC_, h = size / factor_;
  const size_t perLat = size_t(C) * h * h, perImg = size_t(3) * size * size;
  c.slot.assign(t.fixed.size(), -1);
  std::vector<int> cams;
  for (int64_t i = from; i < to; ++i)
    for (int v = 0; v < n; ++v) {
      int p = tPick_[size_t(i) * n + v];
      if (p < 0) return;
      if (c.slot[size_t(p)] < 0) {
        c.slot[size_t(p)] = int(cams.size());
        cams.push_back(p);
      }
    }
  const size_t m = cams.size();
  if (m * (perLat + (images ? perImg : 0)) * sizeof(float) > kTargetCacheBudget) {
    c.slot.clear();
    return;  // too many cameras: render per iteration
  }
  // the same camera tables the per-iteration path reads (texturePhase): extrinsics of the RGB-size view,
  // intrinsics at this size
  std::vector<float> ext(m * 12), intr(m * 4);
  for (size_t k = 0; k < m; ++k) {
    const CameraPose& pose = t.fixed[size_t(cams[k])];
    PinholeView a = pinholeView(pose, t.fovDegrees, t.renderSize, t.renderSize, headRadius_);
    PinholeView b = pinholeView(pose, t.fovDegrees, size, size, headRadius_);
    std::copy(a.extrinsics, a.extrinsics + 12, ext.begin() + k * 12);
    std::copy(b.intrinsics, b.intrinsics + 4, intr.begin() + k * 4);
  }
  Buffer<float> extDev(dev_, ext.size()), intrDev(dev_, intr.size());
  upload(extDev, ext);
  upload(intrDev, intr);
  c.lat = Buffer<float>(dev_, m * perLat);
  if (images) c.img = Buffer<float>(dev_, m * perImg);
  // batches of the stage's view count (the target workspace and scratch are sized for it)
  for (size_t b = 0; b < m; b += size_t(n)) {
    int nb = int(std::min<size_t>(size_t(n), m - b));
    float* out = images ? c.img.data() + b * perImg : tImg_.data();
    renderTargetTextured(nb, size, intrDev.data() + b * 4, extDev.data() + b * 12, out);
    encode(out, nb, size, size, c.lat.data() + b * perLat);
  }
  sync();  // (extDev / intrDev are freed on return)
  c.images = images;
  c.size = size;
  c.ready = true;
}

bool Runner::cachedTarget(const TargetCache& c, int64_t i, int size, const float*& img, const float*& lat) {
  if (!c.ready || c.size != size) return false;
  const int n = in_.texture.views, C = latentC_, h = size / factor_;
  const size_t perLat = size_t(C) * h * h, perImg = size_t(3) * size * size;
  auto slotOf = [&](int v) {
    int p = tPick_[size_t(i) * n + v];
    int sl = p >= 0 && size_t(p) < c.slot.size() ? c.slot[size_t(p)] : -1;
    if (sl < 0) fail(ErrorCode::Internal, "texture phase: camera " + std::to_string(p) + " of iteration " + std::to_string(i) + " is not in the target cache");
    return size_t(sl);
  };
  if (n == 1) {
    size_t sl = slotOf(0);
    lat = c.lat.data() + sl * perLat;
    img = c.images ? c.img.data() + sl * perImg : nullptr;
    return true;
  }
  StreamHandle s = stream_.handle();
  for (int v = 0; v < n; ++v) {
    size_t sl = slotOf(v);
    memcpyAny(zt_.data() + size_t(v) * perLat, dev_, c.lat.data() + sl * perLat, dev_, perLat * sizeof(float), s);
    if (c.images) memcpyAny(tImg_.data() + size_t(v) * perImg, dev_, c.img.data() + sl * perImg, dev_, perImg * sizeof(float), s);
  }
  lat = zt_.data();
  img = c.images ? tImg_.data() : nullptr;
  return true;
}

void Runner::textureIteration(int64_t i) {
  const TextureSettings& t = in_.texture;
  const int n = t.views, f = factor_, C = latentC_;
  const bool latentStage = i < t.latentIterations;
  StreamHandle s = stream_.handle();
  int tstep = 0;
  const sds::SdsCoefficients co = stepCoefficients(t.timesteps, t.iterations, i, tstep);
  texCurve_[size_t(3 * i)] = float(tstep);
  const float* ext = tExt_.data() + size_t(i) * n * 12;
  const uint64_t key = (kTexturePhaseKey + uint64_t(i)) * 2;
  const float* text = nullptr;
  const float* priorText = nullptr;
  if (!backend_.target) {
    text = cfgText(tVariant_, i, n, s);
    const size_t e = size_t(in_.diffusion.tokens) * in_.diffusion.embedDim;
    const bool uncondFirst = in_.diffusion.cfgOrder == engines::CfgOrder::UncondFirst;
    // the prior's batch (n = 1) sits after the views' batch
    memcpyAny(text_.data() + e * size_t(2 * n + (uncondFirst ? 0 : 1)), dev_, textFor(0), dev_, e * sizeof(float), s);
    memcpyAny(text_.data() + e * size_t(2 * n + (uncondFirst ? 1 : 0)), dev_, textFor(4), dev_, e * sizeof(float), s);
    priorText = text_.data() + e * size_t(2 * n);
  }
  auto toNchw = [&](const float* src, float* dst, int nn, int H, int ch) { toLayout(src, dst, nn, H, ch, true, false); };
  auto toNhwc = [&](const float* src, float* dst, int nn, int H, int ch, bool acc) { toLayout(src, dst, nn, H, ch, false, acc); };
  // the target denoiser's conditioning: from the fixed-camera cache, else rendered and encoded for this iteration
  const float* tImgP = tImg_.data();
  const float* ztP = zt_.data();
  auto targetFor = [&](TargetCache& cache, int size, const float* intr) {
    if (cachedTarget(cache, i, size, tImgP, ztP)) return;
    renderTargetTextured(n, size, intr, ext, tImg_.data());
    encode(tImg_.data(), n, size, size, zt_.data());
    tImgP = tImg_.data();
    ztP = zt_.data();
  };

  if (latentStage) {
    const int Rl = t.latentRenderSize, Ls = t.latentSize;
    wsRaster_.reset();
    raster::RenderParams rp = renderParams(verts_.data(), n, Rl, tIntrL_.data() + size_t(i) * n * 4, ext);
    rp.texture = latent_.data();
    rp.texWidth = rp.texHeight = Ls;
    rp.channels = C;
    rp.background = bgLatent_.data();
    rp.antialias = t.antialias;
    raster::RenderOutputs ro;
    ro.color = cur_.color.data();
    raster::RenderState st;
    {
      auto sc = prof_.op("pipeline/raster");
      st = raster_->forward(rp, ro, wsRaster_, s);
    }
    toNchw(cur_.color.data(), z_.data(), n, Rl, C);
    if (backend_.target) targetFor(latCache_, Rl * f, tIntrLf_.data() + size_t(i) * n * 4);
    sdsTerm(n, C, Rl, Rl, z_.data(), backend_.target ? ztP : nullptr, nullptr, nullptr, gz_.data(), co, float(t.guidance), 1.f, key,
            text, {}, false);
    const int64_t count = int64_t(n) * C * Rl * Rl;
    lossSlots(gz_.data(), backend_.target ? z_.data() : nullptr, ztP, count, texCurveDev_.data() + 2 * i);
    texCount_[size_t(2 * i)] = texCount_[size_t(2 * i + 1)] = double(count);
    {
      auto sc = prof_.op("pipeline/render_backward");
      toNhwc(gz_.data(), gzImg_.data(), n, Rl, C, false);
      raster::RenderGrads rg;
      rg.dColor = gzImg_.data();
      rg.dTexture = gLatent_.data();
      rg.deterministic = true;
      raster_->backward(rp, st, rg, wsRaster_, s);
    }
    if (t.priorEnabled && t.priorWeight > 0.f) {
      toNchw(latent_.data(), texImg_.data(), 1, Ls, C);
      std::vector<engines::ControlInput> ctrl;
      if (priorCtrl_.size() && t.textureSize == Ls * f) ctrl.push_back({t.priorControlName, priorCtrl_.data(), 1.f});
      sdsTerm(1, C, Ls, Ls, texImg_.data(), backend_.target ? texTargetLatentPrior_.data() : nullptr, nullptr, nullptr, gz_.data(), co,
              t.priorGuidance, t.priorWeight, key + 1, priorText, ctrl, false);
      toNhwc(gz_.data(), gLatent_.data(), 1, Ls, C, true);
    }
    auto sc = prof_.op("pipeline/optimizer");
    sds::OptimTensor ot;
    ot.param = latent_.data();
    ot.grad = gLatent_.data();
    ot.m = latentM_.data();
    ot.v = latentV_.data();
    ot.n = int64_t(Ls) * Ls * C;
    sds::OptimStepArgs a;
    a.step = i + 1;
    a.lr = lrFor(t.optim, i);
    wsSds_.reset();
    sds::optimStep(dev_, t.optim.config, &ot, 1, a, &wsSds_, s);
    return;
  }

  // ---- RGB stage
  const int R = t.renderSize, S = t.textureSize;
  wsRaster_.reset();
  raster::RenderParams rp = renderParams(verts_.data(), n, R, tIntrR_.data() + size_t(i) * n * 4, ext);
  rp.texture = rgb_.data();
  rp.texWidth = rp.texHeight = S;
  rp.channels = 3;
  rp.background = bgRgb_.data();
  rp.antialias = t.antialias;
  rp.depthRange = tDepth_.data() + size_t(i) * n * 2;
  raster::RenderOutputs ro;
  ro.color = cur_.color.data();
  if (t.controlEnabled) ro.depthImage = cur_.depthImage.data();
  raster::RenderState st;
  {
    auto sc = prof_.op("pipeline/raster");
    st = raster_->forward(rp, ro, wsRaster_, s);
  }
  toNchw(cur_.color.data(), img_.data(), n, R, 3);
  std::vector<engines::ControlInput> controls;
  if (t.controlEnabled) {
    auto sc = prof_.op("pipeline/layout");
    ComposeParams cm;
    cm.value = cur_.depthImage.data();
    cm.n = n;
    cm.height = cm.width = R;
    cm.out = ctrlImg_.data();
    compose(dev_, cm, s);
    controls.push_back({t.controlName, ctrlImg_.data(), t.controlScale});
  }
  if (backend_.target) targetFor(rgbCache_, R, tIntrR_.data() + size_t(i) * n * 4);
  encode(img_.data(), n, R, R, z_.data());
  sdsTerm(n, C, R / f, R / f, z_.data(), backend_.target ? ztP : nullptr, img_.data(), gImg_.data(), nullptr, co, float(t.guidance), 1.f,
          key, text, controls, true);
  const int64_t count = int64_t(n) * 3 * R * R;
  lossSlots(gImg_.data(), backend_.target ? img_.data() : nullptr, tImgP, count, texCurveDev_.data() + 2 * i);
  texCount_[size_t(2 * i)] = texCount_[size_t(2 * i + 1)] = double(count);
  {
    auto sc = prof_.op("pipeline/render_backward");
    toNhwc(gImg_.data(), gzImg_.data(), n, R, 3, false);
    raster::RenderGrads rg;
    rg.dColor = gzImg_.data();
    rg.dTexture = gRgb_.data();
    rg.deterministic = true;
    raster_->backward(rp, st, rg, wsRaster_, s);
  }
  if (t.priorEnabled && t.priorWeight > 0.f) {
    toNchw(rgb_.data(), texImg_.data(), 1, S, 3);
    encode(texImg_.data(), 1, S, S, z_.data());
    std::vector<engines::ControlInput> ctrl;
    if (priorCtrl_.size()) ctrl.push_back({t.priorControlName, priorCtrl_.data(), 1.f});
    sdsTerm(1, C, S / f, S / f, z_.data(), backend_.target ? texTargetRgb_.data() : nullptr, texImg_.data(), gImg_.data(), nullptr, co,
            t.priorGuidance, t.priorWeight, key + 1, priorText, ctrl, true);
    toNhwc(gImg_.data(), gRgb_.data(), 1, S, 3, true);
  }
  auto sc = prof_.op("pipeline/optimizer");
  sds::OptimTensor ot;
  ot.param = rgb_.data();
  ot.grad = gRgb_.data();
  ot.m = rgbM_.data();
  ot.v = rgbV_.data();
  ot.n = int64_t(S) * S * 3;
  sds::OptimStepArgs a;
  a.step = i - t.latentIterations + 1;
  a.lr = lrFor(t.optim, i);
  wsSds_.reset();
  sds::optimStep(dev_, t.optim.config, &ot, 1, a, &wsSds_, s);
  if (t.clampTexture) morph::projectBounds(dev_, int(ot.n), rgb_.data(), nullptr, nullptr, 0.f, 1.f, s);
}

// ------------------------------------------------------------------------------------------------ checkpoint / results

void Runner::fillCheckpoint(Checkpoint& c, const std::string& phase, int64_t iteration) {
  c.phase = phase;
  c.iteration = iteration;
  c.coefficients = download(coeffs_, size_t(K_));
  c.geomM = download(adanM_, size_t(K_));
  c.geomV = download(adanV_, size_t(K_));
  c.geomD = download(adanD_, size_t(K_));
  c.geomPrev = download(adanPrev_, size_t(K_));
  if (latent_.size()) {
    c.latent = download(latent_, latent_.size());
    c.latentM = download(latentM_, latentM_.size());
    c.latentV = download(latentV_, latentV_.size());
  }
  if (rgb_.size() && rgbReady_) {
    c.rgb = download(rgb_, rgb_.size());
    c.rgbM = download(rgbM_, rgbM_.size());
    c.rgbV = download(rgbV_, rgbV_.size());
  }
  c.initialRmse = initialRmse_;
  c.geometryCurve = geomCurve_;
  c.textureCurve = texCurve_;
  c.geometryMs = geomMs_;
  c.textureMs = texMs_;
}

void Runner::restoreCheckpoint(const Checkpoint& c) {
  auto need = [](const std::vector<float>& v, size_t n, const char* what) {
    FG_CHECK_ARG(v.size() == n, std::string("checkpoint.") + what + ": expected " + std::to_string(n) + " values, got " + std::to_string(v.size()));
  };
  FG_CHECK_ARG(c.phase == "geometry" || c.phase == "texture", "checkpoint.phase: expected 'geometry' or 'texture', got '" + c.phase + "'");
  need(c.coefficients, size_t(K_), "coefficients");
  upload(coeffs_, c.coefficients);
  if (!c.geomM.empty()) {
    need(c.geomM, size_t(K_), "geometryOptimizer.m");
    need(c.geomV, size_t(K_), "geometryOptimizer.v");
    need(c.geomD, size_t(K_), "geometryOptimizer.d");
    need(c.geomPrev, size_t(K_), "geometryOptimizer.prev");
    upload(adanM_, c.geomM);
    upload(adanV_, c.geomV);
    upload(adanD_, c.geomD);
    upload(adanPrev_, c.geomPrev);
  }
  if (c.phase == "texture") {
    if (!c.latent.empty()) {
      need(c.latent, latent_.size(), "latent");
      need(c.latentM, latent_.size(), "latentOptimizer.m");
      need(c.latentV, latent_.size(), "latentOptimizer.v");
      upload(latent_, c.latent);
      upload(latentM_, c.latentM);
      upload(latentV_, c.latentV);
    }
    if (!c.rgb.empty()) {
      need(c.rgb, rgb_.size(), "rgb");
      need(c.rgbM, rgb_.size(), "rgbOptimizer.m");
      need(c.rgbV, rgb_.size(), "rgbOptimizer.v");
      upload(rgb_, c.rgb);
      upload(rgbM_, c.rgbM);
      upload(rgbV_, c.rgbV);
      rgbReady_ = true;
    }
  }
  initialRmse_ = c.initialRmse;
  geomCurve_ = c.geometryCurve;
  texCurve_ = c.textureCurve;
  if (!geomCurve_.empty()) geomCount_.assign(geomCurve_.size() / 3 * 2, 1.0);
  if (!texCurve_.empty()) texCount_.assign(texCurve_.size() / 3 * 2, 1.0);
  geomMs_ = c.geometryMs;
  texMs_ = c.textureMs;
  sync();
}

void Runner::textureMetrics(PipelineResult& r) {
  const TextureSettings& t = in_.texture;
  const int S = t.textureSize, R = t.renderSize;
  std::vector<CameraPose> cams = t.fixed;
  if (cams.empty()) return;
  Buffer<float> weight(dev_, size_t(S) * S);
  weight.zero(stream_.handle());
  for (size_t b = 0; b < cams.size(); b += kMaxViews) {
    int n = int(std::min<size_t>(kMaxViews, cams.size() - b));
    std::vector<float> ext(size_t(n) * 12), intr(size_t(n) * 4);
    for (int v = 0; v < n; ++v) {
      PinholeView pv = pinholeView(cams[b + v], t.fovDegrees, R, R, headRadius_);
      std::copy(pv.extrinsics, pv.extrinsics + 12, ext.begin() + size_t(v) * 12);
      std::copy(pv.intrinsics, pv.intrinsics + 4, intr.begin() + size_t(v) * 4);
    }
    Buffer<float> e(dev_, ext.size()), in(dev_, intr.size());
    upload(e, ext);
    upload(in, intr);
    wsRaster_.reset();
    raster::RenderParams rp = renderParams(verts_.data(), n, R, in.data(), e.data());
    rp.antialias = false;
    raster::RenderOutputs ro;
    ro.triId = cur_.triId.data();
    ro.bary = cur_.bary.data();
    raster_->forward(rp, ro, wsRaster_, stream_.handle());
    ShadeParams sp;
    sp.nViews = n;
    sp.width = sp.height = R;
    sp.channels = 3;
    sp.V = V_;
    sp.triId = cur_.triId.data();
    sp.bary = cur_.bary.data();
    sp.tri = tri_.data();
    sp.uvTri = uvTri_.data();
    sp.uv = uv_.data();
    sp.texW = sp.texH = S;
    sp.texWeight = weight.data();
    shadeBackwardTexture(dev_, sp, stream_.handle());
    sync();
  }
  std::vector<float> w = download(weight, size_t(S) * S);
  int64_t visible = 0;
  for (float x : w) visible += x > 0.f ? 1 : 0;
  r.visibleTexels = visible;
  if (!backend_.target || visible == 0) return;
  // the target texture at the output resolution
  Buffer<float> tt(dev_, size_t(S) * S * 3);
  LayoutParams lp;
  lp.src = targetTex_.data();
  lp.dst = tt.data();
  lp.channels = 3;
  lp.srcW = in_.target.texWidth;
  lp.srcH = in_.target.texHeight;
  lp.dstW = lp.dstH = S;
  lp.srcHwc = lp.dstHwc = true;
  layout(dev_, lp, int64_t(S) * S * 3, stream_.handle());
  std::vector<float> target = download(tt, size_t(S) * S * 3);
  double se = 0.0;
  for (size_t i = 0; i < w.size(); ++i) {
    if (!(w[i] > 0.f)) continue;
    for (int c = 0; c < 3; ++c) {
      double d = double(r.texture[3 * i + c]) - double(target[3 * i + c]);
      se += d * d;
    }
  }
  double mse = se / double(visible * 3);
  r.psnrDb = mse > 0 ? 10.0 * std::log10(1.0 / mse) : 200.0;
}

void Runner::renderPreviews(PipelineResult& r) {
  const PreviewSettings& pv = in_.previews;
  if (pv.views.empty() || (!pv.textured && !pv.shaded)) return;
  const int P = pv.size;
  const bool haveTex = rgbReady_;
  const std::array<float, 3> bg = {in_.texture.background[0], in_.texture.background[1], in_.texture.background[2]};
  r.previewCount = int(pv.views.size());
  r.previewSize = P;
  if (pv.textured && haveTex) r.previewTextured.assign(size_t(r.previewCount) * P * P * 3, 0.f);
  if (pv.shaded) r.previewShaded.assign(size_t(r.previewCount) * P * P * 3, 0.f);
  Buffer<float> bgDev(dev_, 3);
  upload(bgDev, std::vector<float>(bg.begin(), bg.end()));
  for (size_t b = 0; b < pv.views.size(); b += kMaxViews) {
    int n = int(std::min<size_t>(kMaxViews, pv.views.size() - b));
    std::vector<float> ext(size_t(n) * 12), intr(size_t(n) * 4), sh(size_t(n) * 9);
    for (int v = 0; v < n; ++v) {
      PinholeView p = pinholeView(pv.views[b + v], pv.fovDegrees, P, P, headRadius_);
      std::copy(p.extrinsics, p.extrinsics + 12, ext.begin() + size_t(v) * 12);
      std::copy(p.intrinsics, p.intrinsics + 4, intr.begin() + size_t(v) * 4);
      std::copy(shPresets()[0].c, shPresets()[0].c + 9, sh.begin() + size_t(v) * 9);
    }
    Buffer<float> e(dev_, ext.size()), in(dev_, intr.size()), shd(dev_, sh.size());
    upload(e, ext);
    upload(in, intr);
    upload(shd, sh);
    wsRaster_.reset();
    raster::RenderParams rp = renderParams(verts_.data(), n, P, in.data(), e.data());
    rp.sh = shd.data();
    rp.antialias = true;
    raster::RenderOutputs ro;
    ro.mask = cur_.mask.data();
    if (pv.shaded) ro.grey = cur_.grey.data();
    if (pv.textured && haveTex) {
      rp.texture = rgb_.data();
      rp.texWidth = rp.texHeight = in_.texture.textureSize;
      rp.channels = 3;
      rp.background = bgDev.data();
      ro.color = cur_.color.data();
    }
    raster_->forward(rp, ro, wsRaster_, stream_.handle());
    size_t pix = size_t(n) * P * P;
    std::vector<float> mask = download(cur_.mask, pix);
    if (pv.shaded) {
      std::vector<float> grey = download(cur_.grey, pix);
      for (size_t k = 0; k < pix; ++k)
        for (int c = 0; c < 3; ++c) r.previewShaded[(b * P * P + k) * 3 + c] = std::min(1.f, std::max(0.f, grey[k] + (1.f - mask[k]) * bg[c]));
    }
    if (pv.textured && haveTex) {
      std::vector<float> col = download(cur_.color, pix * 3);
      std::copy(col.begin(), col.end(), r.previewTextured.begin() + b * P * P * 3);
    }
  }
}

void Runner::finish(PipelineResult& r) {
  r.coefficients = download(coeffs_, size_t(K_));
  morphTo(coeffs_.data(), verts_.data(), normals_.data());
  std::vector<float> v = download(verts_, size_t(V_) * 3);
  r.normals = download(normals_, size_t(V_) * 3);
  if (initialRmse_ > 0 && in_.geometry.enabled && in_.geometry.iterations > 0) {
    r.vertexRmseInitial = initialRmse_ / in_.model.metresPerUnit;
    r.vertexRmseFinal = rmseAgainstTarget(verts_.data()) / in_.model.metresPerUnit;
    r.vertexRmseRatio = r.vertexRmseFinal / r.vertexRmseInitial;
  }
  r.vertices.resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) r.vertices[i] = float((double(v[i]) - rigidTrans_[i % 3]) / rigidScale_);
  if (rgbReady_) {
    r.texture = download(rgb_, rgb_.size());
    r.textureSize = in_.texture.textureSize;
    textureMetrics(r);
  }
  renderPreviews(r);
}

PipelineResult Runner::run() {
  t0_ = Clock::now();
  PipelineResult r;
  validate();
  setup();
  allocate();
  computeTargetHead();
  std::string startPhase = "geometry";
  int64_t startIter = 0;
  if (in_.hasCheckpoint) {
    restoreCheckpoint(in_.checkpoint);
    startPhase = in_.checkpoint.phase;
    startIter = in_.checkpoint.iteration;
  } else {
    std::vector<float> init(size_t(K_), 0.f);
    std::copy(in_.geometry.init.begin(), in_.geometry.init.end(), init.begin());
    upload(coeffs_, init);
    if (backend_.target) {
      morphTo(coeffs_.data(), verts_.data(), normals_.data());
      initialRmse_ = rmseAgainstTarget(verts_.data());
    }
  }
  sync();
  r.setupMs = setupMs_ = msSince(t0_);
  const bool geo = in_.geometry.enabled && in_.geometry.iterations > 0;
  const bool tex = in_.texture.enabled && in_.texture.iterations > 0;
  auto cancelledResult = [&](const char* phase) {
    r.status = "cancelled";
    fillCheckpoint(r.checkpoint, phase, nextIteration_);
    r.geometryMs = geomMs_;
    r.textureMs = texMs_;
    prof_.addTo(r.profile);
    return r;
  };
  if (geo && startPhase == "geometry") {
    if (startIter < in_.geometry.iterations && !geometryPhase(startIter)) return cancelledResult("geometry");
  }
  if (tex) {
    int64_t start = startPhase == "texture" ? startIter : 0;
    if (!texturePhase(start)) return cancelledResult("texture");
  }
  finish(r);
  r.geometryMs = geomMs_;
  r.textureMs = texMs_;
  fillCheckpoint(r.checkpoint, "done", 0);
  // grouped curves: (iteration, t, sdsGradMeanSq, targetMse) per group
  auto group = [](const std::vector<float>& c, int gsize) {
    std::vector<float> out;
    int64_t iters = int64_t(c.size() / 3);
    for (int64_t b = 0; b < iters; b += gsize) {
      int64_t e = std::min<int64_t>(iters, b + gsize);
      double a[3] = {0, 0, 0};
      for (int64_t j = b; j < e; ++j)
        for (int k = 0; k < 3; ++k) a[k] += c[size_t(3 * j + k)];
      out.push_back(float(b));
      for (int k = 0; k < 3; ++k) out.push_back(float(a[k] / double(e - b)));
    }
    return out;
  };
  int64_t maxIters = std::max<int64_t>(geomCurve_.size() / 3, texCurve_.size() / 3);
  r.curveGroup = int(std::max<int64_t>(1, (maxIters + 99) / 100));
  r.geometryCurve = group(geomCurve_, r.curveGroup);
  r.textureCurve = group(texCurve_, r.curveGroup);
  prof_.addTo(r.profile);
  return r;
}

}  // namespace

PipelineResult runPipeline(const PipelineInput& in, const CancelTokenPtr& cancel, const ProgressFn& progress) {
  Runner r(in, cancel, progress);
  return r.run();
}

}  // namespace pipe
}  // namespace fg
