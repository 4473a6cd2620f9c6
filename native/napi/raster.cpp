// Bindings for native/raster: synchronous render / backward / interpolate over typed arrays, on 'cpu' or 'cuda'.
// They are stateless (a RasterContext and workspace per call) and meant for tests, tools and small jobs; the
// pipeline uses the C++ API (raster/raster.hpp) directly.
#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include "napi/common.hpp"
#include "napi/domains.hpp"
#include "raster/raster.hpp"
#include "raster/raster_impl.hpp"

namespace fgn {
namespace {

using fg::raster::RasterContext;
using fg::raster::RenderParams;

bool has(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return !v.IsUndefined() && !v.IsNull();
}

// Everything a render call reads, staged on the device.
struct Inputs {
  fg::Device dev;
  int P = 0, T = 0, V = 0, U = 0;
  std::vector<float> ext12;
  std::optional<Staged<float>> positions, uvs, intr, extr, texture, background, sh, depthRange;
  std::optional<Staged<int32_t>> tri, uvTri;
  std::unique_ptr<RasterContext> ctx;
  RenderParams p;
};

void readInputs(const Napi::Object& o, Inputs& in) {
  in.dev = getDevice(o);
  auto pos = requireTyped<float>(o, "positions");
  FG_CHECK_ARG(pos.ElementLength() % 3 == 0 && pos.ElementLength() > 0, "positions: expected a non-empty [P,3] Float32Array");
  in.P = int(pos.ElementLength() / 3);
  auto tri = requireTyped<int32_t>(o, "tri");
  FG_CHECK_ARG(tri.ElementLength() % 3 == 0 && tri.ElementLength() > 0, "tri: expected a non-empty [T,3] Int32Array");
  in.T = int(tri.ElementLength() / 3);
  auto intr = requireTyped<float>(o, "intrinsics");
  FG_CHECK_ARG(intr.ElementLength() % 4 == 0 && intr.ElementLength() > 0, "intrinsics: expected [V,4] (fx, fy, cx, cy)");
  in.V = int(intr.ElementLength() / 4);
  auto extr = requireTyped<float>(o, "extrinsics");
  if (extr.ElementLength() == size_t(in.V) * 12) {
    in.ext12.assign(extr.Data(), extr.Data() + extr.ElementLength());
  } else if (extr.ElementLength() == size_t(in.V) * 16) {
    in.ext12.resize(size_t(in.V) * 12);
    for (int v = 0; v < in.V; ++v)
      for (int j = 0; j < 12; ++j) in.ext12[size_t(v) * 12 + j] = extr[size_t(v) * 16 + j];
  } else {
    throw fg::Error(fg::ErrorCode::InvalidArgument, "extrinsics: expected [V,12] or [V,16] (world->camera, row-major) for V = " +
                                                        std::to_string(in.V) + " views, got " + std::to_string(extr.ElementLength()) + " numbers");
  }
  for (int v = 0; v < in.V; ++v) {
    FG_CHECK_ARG(intr[4 * v] > 0 && intr[4 * v + 1] > 0, "intrinsics: fx and fy must be > 0 (view " + std::to_string(v) + ")");
  }
  auto& p = in.p;
  p.numViews = in.V;
  p.width = int(requireInt(o, "width", 1, 16384));
  p.height = int(requireInt(o, "height", 1, 16384));
  p.nearZ = float(getNumber(o, "near", 0.01));
  p.farZ = float(getNumber(o, "far", 1e30));
  p.numVertices = in.P;
  p.numTriangles = in.T;
  p.antialias = getBool(o, "antialias", true);
  std::string frame = getString(o, "shFrame", "camera");
  if (frame == "camera") p.shFrame = fg::raster::ShFrame::Camera;
  else if (frame == "world") p.shFrame = fg::raster::ShFrame::World;
  else throw fg::Error(fg::ErrorCode::InvalidArgument, "shFrame: expected 'camera' or 'world', got '" + frame + "'");
  std::string wrap = getString(o, "wrap", "clamp");
  if (wrap == "clamp") p.wrap = fg::raster::Wrap::Clamp;
  else if (wrap == "repeat") p.wrap = fg::raster::Wrap::Repeat;
  else throw fg::Error(fg::ErrorCode::InvalidArgument, "wrap: expected 'clamp' or 'repeat', got '" + wrap + "'");
  p.flipV = getBool(o, "flipV", true);
  p.mip = getBool(o, "mip", false);
  p.mipLevels = int(getInt(o, "mipLevels", 0, 0, 32));
  p.lodBias = float(getNumber(o, "lodBias", 0.0));
  FG_CHECK_ARG(std::isfinite(p.lodBias) && std::fabs(p.lodBias) <= 64.f, "lodBias: expected a finite number in [-64, 64]");

  in.ctx = std::make_unique<RasterContext>(in.dev, tri.Data(), in.T, in.P);  // validates tri
  in.positions.emplace(stageIn(in.dev, pos));
  in.tri.emplace(stageIn(in.dev, tri));
  in.intr.emplace(stageIn(in.dev, intr));
  in.extr.emplace(in.dev, in.ext12.data(), in.ext12.size(), true);
  p.positions = in.positions->ptr();
  p.tri = in.tri->ptr();
  p.intrinsics = in.intr->ptr();
  p.extrinsics = in.extr->ptr();
  if (has(o, "texture")) {
    p.texWidth = int(requireInt(o, "texWidth", 1, 1 << 16));
    p.texHeight = int(requireInt(o, "texHeight", 1, 1 << 16));
    p.channels = int(requireInt(o, "channels", 1, 64));
    auto tex = requireTyped<float>(o, "texture", size_t(p.texWidth) * p.texHeight * p.channels);
    auto uvs = requireTyped<float>(o, "uvs");
    FG_CHECK_ARG(uvs.ElementLength() % 2 == 0 && uvs.ElementLength() > 0, "uvs: expected a non-empty [U,2] Float32Array");
    in.U = int(uvs.ElementLength() / 2);
    auto uvTri = requireTyped<int32_t>(o, "uvTri", size_t(in.T) * 3);
    for (size_t i = 0; i < uvTri.ElementLength(); ++i)
      if (uvTri[i] < 0 || uvTri[i] >= in.U)
        throw fg::Error(fg::ErrorCode::InvalidArgument, "uvTri: index " + std::to_string(uvTri[i]) + " at triangle " + std::to_string(i / 3) +
                                                            " is outside [0, " + std::to_string(in.U) + ")");
    in.texture.emplace(stageIn(in.dev, tex));
    in.uvs.emplace(stageIn(in.dev, uvs));
    in.uvTri.emplace(stageIn(in.dev, uvTri));
    p.texture = in.texture->ptr();
    p.uvs = in.uvs->ptr();
    p.numUvs = in.U;
    p.uvTri = in.uvTri->ptr();
    if (has(o, "background")) {
      in.background.emplace(stageIn(in.dev, requireTyped<float>(o, "background", size_t(p.channels))));
      p.background = in.background->ptr();
    }
  }
  if (has(o, "sh")) {
    in.sh.emplace(stageIn(in.dev, requireTyped<float>(o, "sh", size_t(in.V) * 9)));
    p.sh = in.sh->ptr();
  }
  if (has(o, "depthRange")) {
    auto dr = requireTyped<float>(o, "depthRange", size_t(in.V) * 2);
    for (int v = 0; v < in.V; ++v)
      FG_CHECK_ARG(dr[2 * v + 1] != dr[2 * v], "depthRange: near and far must differ (view " + std::to_string(v) + ")");
    in.depthRange.emplace(stageIn(in.dev, dr));
    p.depthRange = in.depthRange->ptr();
  }
}

// rasterRender(o) -> { triId, bary, depth, mask, normal, depthImage, grey?, color? }
Napi::Value rasterRender(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "rasterRender");
  Inputs in;
  readInputs(o, in);
  const auto& p = in.p;
  size_t pix = size_t(p.numViews) * p.height * p.width;
  auto triId = Napi::Int32Array::New(env, pix);
  auto bary = Napi::Float32Array::New(env, pix * 2);
  auto depth = Napi::Float32Array::New(env, pix);
  auto mask = Napi::Float32Array::New(env, pix);
  auto normal = Napi::Float32Array::New(env, pix * 3);
  auto depthImage = Napi::Float32Array::New(env, pix);
  auto sTri = stageOut(in.dev, triId);
  auto sBary = stageOut(in.dev, bary);
  auto sDepth = stageOut(in.dev, depth);
  auto sMask = stageOut(in.dev, mask);
  auto sNormal = stageOut(in.dev, normal);
  auto sDepthImage = stageOut(in.dev, depthImage);
  fg::raster::RenderOutputs out;
  out.triId = sTri.ptr(); out.bary = sBary.ptr(); out.depth = sDepth.ptr(); out.mask = sMask.ptr();
  out.normal = sNormal.ptr(); out.depthImage = sDepthImage.ptr();
  Napi::Float32Array grey, color;
  std::optional<Staged<float>> sGrey, sColor;
  if (p.sh) {
    grey = Napi::Float32Array::New(env, pix);
    sGrey.emplace(stageOut(in.dev, grey));
    out.grey = sGrey->ptr();
  }
  if (p.texture) {
    color = Napi::Float32Array::New(env, pix * p.channels);
    sColor.emplace(stageOut(in.dev, color));
    out.color = sColor->ptr();
  }
  fg::Workspace ws(in.dev, RasterContext::workspaceBytes(p));
  in.ctx->forward(p, out, ws, nullptr);
  sTri.finish(); sBary.finish(); sDepth.finish(); sMask.finish(); sNormal.finish(); sDepthImage.finish();
  if (sGrey) sGrey->finish();
  if (sColor) sColor->finish();
  Napi::Object r = Napi::Object::New(env);
  r.Set("triId", triId);
  r.Set("bary", bary);
  r.Set("depth", depth);
  r.Set("mask", mask);
  r.Set("normal", normal);
  r.Set("depthImage", depthImage);
  if (p.sh) r.Set("grey", grey);
  if (p.texture) r.Set("color", color);
  return r;
  FGN_CATCH(env)
}

// rasterBackward(o: render inputs + dColor?, dGrey?, dMask?, deterministic?, fixedPointScale?)
//   -> { dPositions, dTexture? }  (runs the forward, then the backward)
Napi::Value rasterBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "rasterBackward");
  Inputs in;
  readInputs(o, in);
  const auto& p = in.p;
  size_t pix = size_t(p.numViews) * p.height * p.width;
  fg::Workspace ws(in.dev, RasterContext::workspaceBytes(p));
  // forward into device scratch
  fg::Buffer<float> fGrey, fColor, fMask;
  fg::raster::RenderOutputs out;
  fMask = fg::Buffer<float>(in.dev, pix);
  out.mask = fMask.data();
  if (p.sh) { fGrey = fg::Buffer<float>(in.dev, pix); out.grey = fGrey.data(); }
  if (p.texture) { fColor = fg::Buffer<float>(in.dev, pix * p.channels); out.color = fColor.data(); }
  fg::raster::RenderState st = in.ctx->forward(p, out, ws, nullptr);
  fg::raster::RenderGrads g;
  std::optional<Staged<float>> gC, gG, gM;
  if (has(o, "dColor")) {
    FG_CHECK_ARG(p.texture != nullptr, "dColor: given without a texture (nothing was rendered in color)");
    gC.emplace(stageIn(in.dev, requireTyped<float>(o, "dColor", pix * p.channels)));
    g.dColor = gC->ptr();
  }
  if (has(o, "dGrey")) {
    FG_CHECK_ARG(p.sh != nullptr, "dGrey: given without sh (nothing was rendered in grey)");
    gG.emplace(stageIn(in.dev, requireTyped<float>(o, "dGrey", pix)));
    g.dGrey = gG->ptr();
  }
  if (has(o, "dMask")) {
    gM.emplace(stageIn(in.dev, requireTyped<float>(o, "dMask", pix)));
    g.dMask = gM->ptr();
  }
  g.deterministic = getBool(o, "deterministic", false);
  g.fixedPointScale = float(getNumber(o, "fixedPointScale", 4294967296.0));
  auto dPos = Napi::Float32Array::New(env, size_t(p.numVertices) * 3);
  auto sPos = stageOut(in.dev, dPos);
  g.dPositions = sPos.ptr();
  Napi::Float32Array dTex;
  std::optional<Staged<float>> sTex;
  if (p.texture) {
    dTex = Napi::Float32Array::New(env, size_t(p.texWidth) * p.texHeight * p.channels);
    sTex.emplace(stageOut(in.dev, dTex));
    g.dTexture = sTex->ptr();
  }
  in.ctx->backward(p, st, g, ws, nullptr);
  sPos.finish();
  if (sTex) sTex->finish();
  Napi::Object r = Napi::Object::New(env);
  r.Set("dPositions", dPos);
  if (p.texture) r.Set("dTexture", dTex);
  return r;
  FGN_CATCH(env)
}

fg::raster::InterpolateParams interpParams(const Napi::Object& o, std::optional<Staged<float>>& attr, std::optional<Staged<int32_t>>& attrTri,
                                           std::optional<Staged<int32_t>>& triId, std::optional<Staged<float>>& bary, fg::Device d) {
  fg::raster::InterpolateParams p;
  p.numAttr = int(requireInt(o, "numAttr", 1, 4096));
  auto a = requireTyped<float>(o, "attr");
  FG_CHECK_ARG(a.ElementLength() % size_t(p.numAttr) == 0 && a.ElementLength() > 0, "attr: expected a non-empty [N, numAttr] Float32Array");
  p.numRows = int(a.ElementLength() / p.numAttr);
  auto at = requireTyped<int32_t>(o, "attrTri");
  FG_CHECK_ARG(at.ElementLength() % 3 == 0 && at.ElementLength() > 0, "attrTri: expected a non-empty [T,3] Int32Array");
  p.numTriangles = int(at.ElementLength() / 3);
  for (size_t i = 0; i < at.ElementLength(); ++i)
    if (at[i] < 0 || at[i] >= p.numRows)
      throw fg::Error(fg::ErrorCode::InvalidArgument, "attrTri: index " + std::to_string(at[i]) + " is outside [0, " + std::to_string(p.numRows) + ")");
  auto ti = requireTyped<int32_t>(o, "triId");
  p.numPixels = int64_t(ti.ElementLength());
  auto b = requireTyped<float>(o, "bary", size_t(p.numPixels) * 2);
  attr.emplace(stageIn(d, a));
  attrTri.emplace(stageIn(d, at));
  triId.emplace(stageIn(d, ti));
  bary.emplace(stageIn(d, b));
  p.attr = attr->ptr();
  p.attrTri = attrTri->ptr();
  p.triId = triId->ptr();
  p.bary = bary->ptr();
  return p;
}

// rasterInterpolate({attr, numAttr, attrTri, triId, bary, device}) -> Float32Array [pixels, numAttr]
Napi::Value rasterInterpolate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "rasterInterpolate");
  fg::Device d = getDevice(o);
  std::optional<Staged<float>> a, b;
  std::optional<Staged<int32_t>> at, ti;
  auto p = interpParams(o, a, at, ti, b, d);
  auto out = Napi::Float32Array::New(env, size_t(p.numPixels) * p.numAttr);
  auto s = stageOut(d, out);
  fg::raster::interpolate(d, p, s.ptr());
  s.finish();
  return out;
  FGN_CATCH(env)
}

// rasterInterpolateBackward({..., dOut}) -> Float32Array [N, numAttr]
Napi::Value rasterInterpolateBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "rasterInterpolateBackward");
  fg::Device d = getDevice(o);
  std::optional<Staged<float>> a, b;
  std::optional<Staged<int32_t>> at, ti;
  auto p = interpParams(o, a, at, ti, b, d);
  auto dOut = stageIn(d, requireTyped<float>(o, "dOut", size_t(p.numPixels) * p.numAttr));
  auto out = Napi::Float32Array::New(env, size_t(p.numRows) * p.numAttr);
  auto s = stageOut(d, out);
  fg::raster::interpolateBackward(d, p, dOut.ptr(), s.ptr());
  s.finish();
  return out;
  FGN_CATCH(env)
}

// rasterBenchmark(o: render inputs with texture, iterations?, warmup?, deterministic?, chunk?, bigArea?, bwdMinBlocks?, bwdMipMinBlocks?, texStage?, pdl?, gradients?, mask?)
//   -> { forwardUs, forwardBackwardUs, forwardBackwardGraphUs, stages: [{ stage, us }] } (stages: mean per-stage time of one fwd+bwd)
// CUDA only: everything is staged once; each iteration renders color (rasterise + UV interpolation +
// bilinear texture + antialiasing; the mask too with mask: true) and, for forwardBackwardUs, back-propagates a fixed
// upstream color gradient to positions and texels. Timed with CUDA events around the enqueued loop.
Napi::Value rasterBenchmark(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "rasterBenchmark");
  Inputs in;
  readInputs(o, in);
  FG_CHECK_ARG(in.dev == fg::Device::CUDA, "device: rasterBenchmark runs on 'cuda' only");
  FG_CHECK_ARG(in.p.texture != nullptr, "texture: rasterBenchmark needs a texture");
  int iters = int(getInt(o, "iterations", 200, 1, 1000000));
  int warmup = int(getInt(o, "warmup", 20, 0, 1000000));
  bool det = getBool(o, "deterministic", false);
#if FG_HAVE_CUDA
  // launch tuning for sweeps (restored on return); absent: the defaults
  const fg::raster::RasterTuning tuning0 = fg::raster::rasterTuning();
  fg::raster::RasterTuning tuning = tuning0;
  tuning.chunk = int(getInt(o, "chunk", tuning0.chunk, 1, 1 << 20));
  tuning.bigArea = int(getInt(o, "bigArea", tuning0.bigArea, 0, 1 << 30));
  tuning.bwdMinBlocks = int(getInt(o, "bwdMinBlocks", tuning0.bwdMinBlocks, 3, 4));
  tuning.bwdMipMinBlocks = int(getInt(o, "bwdMipMinBlocks", tuning0.bwdMipMinBlocks, 2, 3));
  tuning.texStage = int(getInt(o, "texStage", tuning0.texStage, 0, 1));
  tuning.pdl = int(getInt(o, "pdl", tuning0.pdl, 0, 1));
  struct Restore {
    fg::raster::RasterTuning t;
    ~Restore() { fg::raster::setRasterTuning(t); }
  } restore{tuning0};
  fg::raster::setRasterTuning(tuning);
  RenderParams p = in.p;
  p.sh = nullptr;
  size_t pix = size_t(p.numViews) * p.height * p.width;
  fg::Buffer<float> color(in.dev, pix * p.channels), mask(in.dev, pix), dColor(in.dev, pix * p.channels),
      dPos(in.dev, size_t(p.numVertices) * 3), dTex(in.dev, size_t(p.texWidth) * p.texHeight * p.channels);
  std::vector<float> hg(pix * p.channels);
  for (size_t i = 0; i < hg.size(); ++i) hg[i] = float((i * 2654435761u) % 1000) / 1000.f - 0.5f;
  dColor.upload(hg.data(), hg.size());
  fg::Workspace ws(in.dev, RasterContext::workspaceBytes(p));
  fg::raster::RenderOutputs out;
  out.color = color.data();
  // nvdiffrast's chain (rasterise, interpolate, texture, antialias) has no mask output; mask: true adds ours
  out.mask = getBool(o, "mask", false) ? mask.data() : nullptr;
  fg::raster::RenderGrads g;
  g.dColor = dColor.data();
  // which gradients the backward computes (diagnostics: "both" is the benchmark's workload)
  const std::string grads = getString(o, "gradients", "both");
  FG_CHECK_ARG(grads == "both" || grads == "texture" || grads == "positions", "gradients: expected 'both', 'texture' or 'positions'");
  g.dPositions = grads != "texture" ? dPos.data() : nullptr;
  g.dTexture = grads != "positions" ? dTex.data() : nullptr;
  g.deterministic = det;
  fg::Stream stream(fg::Device::CUDA);
  auto fwd = [&] { ws.reset(); in.ctx->forward(p, out, ws, stream.handle()); };
  auto fb = [&] {
    ws.reset();
    auto st = in.ctx->forward(p, out, ws, stream.handle());
    in.ctx->backward(p, st, g, ws, stream.handle());
  };
  // work-item counts of one forward (diagnostics)
  int counts[3] = {0, 0, 0};
  {
    ws.reset();
    auto st = in.ctx->forward(p, out, ws, stream.handle());
    stream.sync();
    fg::memcpyAny(counts, fg::Device::CPU, st.counters, fg::Device::CUDA, sizeof(counts));
  }
  double f = fg::raster::timeCudaUs(fwd, warmup, iters, stream.handle());
  double fbu = fg::raster::timeCudaUs(fb, warmup, iters, stream.handle());
  // the same forward + backward captured once into a CUDA graph and replayed (no launch gaps)
  double fbg = fg::raster::timeCudaGraphUs(fb, warmup, iters, stream.handle());
  // per-stage breakdown of one forward + backward (CUDA events between the stages; synchronises per iteration)
  auto stages = fg::raster::stageBreakdownCuda(fb, std::min(warmup, 20), std::max(1, std::min(iters, 200)), stream.handle());
  Napi::Object r = Napi::Object::New(env);
  r.Set("forwardUs", f);
  r.Set("forwardBackwardUs", fbu);
  r.Set("forwardBackwardGraphUs", fbg);
  Napi::Object wi = Napi::Object::New(env);
  wi.Set("bigTriangles", counts[0]);
  wi.Set("chunkItems", counts[1]);
  wi.Set("silhouettePixels", counts[2]);
  r.Set("workItems", wi);
  Napi::Array sa = Napi::Array::New(env, stages.size());
  for (size_t i = 0; i < stages.size(); ++i) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("stage", stages[i].first);
    e.Set("us", stages[i].second);
    sa.Set(uint32_t(i), e);
  }
  r.Set("stages", sa);
  return r;
#else
  (void)iters; (void)warmup; (void)det;
  throw fg::Error(fg::ErrorCode::NoCudaDevice, "rasterBenchmark: built without CUDA");
#endif
  FGN_CATCH(env)
}

// rasterMipPyramid({texture, texWidth, texHeight, channels, mipLevels?, device?}) -> [{ width, height, data }] (levels
// 0 (a copy of the texture), 1, ...: the pyramid the renderer builds with mip on)
Napi::Value rasterMipPyramid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "rasterMipPyramid");
  fg::Device d = getDevice(o);
  int tw = int(requireInt(o, "texWidth", 1, 1 << 16)), th = int(requireInt(o, "texHeight", 1, 1 << 16));
  int C = int(requireInt(o, "channels", 1, 64));
  int maxL = int(getInt(o, "mipLevels", 0, 0, 32));
  auto tex = requireTyped<float>(o, "texture", size_t(tw) * th * C);
  const int L = fg::raster::mipLevelCount(tw, th, maxL);
  const size_t nf = fg::raster::mipPyramidFloats(tw, th, C, maxL);
  auto sTex = stageIn(d, tex);
  std::vector<float> host(nf);
  if (nf > 0) {
    fg::Buffer<float> pyr(d, nf);
    fg::raster::buildMipPyramid(d, sTex.ptr(), tw, th, C, maxL, pyr.data(), nullptr);
    pyr.download(host.data(), nf);
  }
  Napi::Array levels = Napi::Array::New(env, size_t(L));
  for (int l = 0; l < L; ++l) {
    const int w = fg::raster::mipDim(tw, l), h = fg::raster::mipDim(th, l);
    const size_t n = size_t(w) * h * C;
    auto a = Napi::Float32Array::New(env, n);
    const float* src = l == 0 ? tex.Data() : host.data() + fg::raster::mipLevelOffset(tw, th, C, l);
    std::copy(src, src + n, a.Data());
    Napi::Object e = Napi::Object::New(env);
    e.Set("width", w);
    e.Set("height", h);
    e.Set("data", a);
    levels.Set(uint32_t(l), e);
  }
  return levels;
  FGN_CATCH(env)
}

}  // namespace

void initRaster(Napi::Env env, Napi::Object exports) {
  setFn(env, exports, "rasterRender", rasterRender);
  setFn(env, exports, "rasterBackward", rasterBackward);
  setFn(env, exports, "rasterInterpolate", rasterInterpolate);
  setFn(env, exports, "rasterInterpolateBackward", rasterInterpolateBackward);
  setFn(env, exports, "rasterBenchmark", rasterBenchmark);
  setFn(env, exports, "rasterMipPyramid", rasterMipPyramid);
}

}  // namespace fgn
