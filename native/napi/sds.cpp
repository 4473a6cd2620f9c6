// Bindings for native/sds: scheduler tables, timesteps, the fused SDS ops, the optimisers, the launch
// counter and the benchmark loop. Synchronous, typed arrays in and out, `device: 'cpu' | 'cuda'` (CUDA
// stages the arrays through device buffers). Meant for tests, tools and small jobs; the pipeline calls
// the C++ API directly.
#include <cmath>
#include <memory>
#include <vector>
#include "napi/common.hpp"
#include "napi/domains.hpp"
#include "sds/launches.hpp"
#include "sds/optim.hpp"
#include "sds/schedule.hpp"
#include "sds/sds.hpp"
#include "sds/sds_bench.hpp"

namespace fgn {
namespace {

using namespace fg::sds;

bool has(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return !v.IsUndefined() && !v.IsNull();
}

// A small device buffer (flags, stats) staged back to the host.
template <typename T>
struct Scalar {
  fg::Device d;
  T host[2] = {T(0), T(0)};
  fg::Buffer<T> buf;
  explicit Scalar(fg::Device dev) : d(dev) {
    if (d == fg::Device::CUDA) {
      buf = fg::Buffer<T>(d, 2);
      buf.zero();
    }
  }
  T* ptr() { return d == fg::Device::CUDA ? buf.data() : host; }
  void finish() { if (d == fg::Device::CUDA) buf.download(host, 2); }
};

SchedulerConfig schedulerFrom(const Napi::Object& o) {
  SchedulerConfig c;
  c.betaSchedule = parseBetaSchedule(getString(o, "betaSchedule", "scaled_linear"));
  c.betaStart = getNumber(o, "betaStart", 0.00085);
  c.betaEnd = getNumber(o, "betaEnd", 0.012);
  c.numTrainTimesteps = int(getInt(o, "numTrainTimesteps", 1000, 2, 100000));
  c.prediction = parsePrediction(getString(o, "prediction", "epsilon"));
  return c;
}

Napi::Value schedulerTablesFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "sdsSchedulerTables");
  SchedulerTables t = schedulerTables(schedulerFrom(o));
  Napi::Float32Array b = Napi::Float32Array::New(env, t.betas.size());
  Napi::Float32Array a = Napi::Float32Array::New(env, t.alphasCumprod.size());
  std::memcpy(b.Data(), t.betas.data(), t.betas.size() * sizeof(float));
  std::memcpy(a.Data(), t.alphasCumprod.data(), t.alphasCumprod.size() * sizeof(float));
  Napi::Object r = Napi::Object::New(env);
  r.Set("betas", b);
  r.Set("alphasCumprod", a);
  return r;
  FGN_CATCH(env)
}

TimestepSchedule timestepFrom(const Napi::Object& o) {
  TimestepSchedule s;
  s.mode = parseTimestepMode(getString(o, "mode", "linear"));
  s.tMin = getNumber(o, "tMin", 0.02);
  s.tMax = getNumber(o, "tMax", 0.98);
  s.totalIterations = getInt(o, "totalIterations", 1, 1, int64_t(1) << 40);
  s.jitter = getNumber(o, "jitter", 0.0);
  s.numTrainTimesteps = int(getInt(o, "numTrainTimesteps", 1000, 2, 100000));
  validate(s);
  return s;
}

// sdsTimesteps({...schedule, seed, first, count}) -> Int32Array of t for iterations first..first+count-1
Napi::Value timestepsFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "sdsTimesteps");
  TimestepSchedule s = timestepFrom(o);
  uint64_t seed = getU64(o, "seed", 0), first = getU64(o, "first", 0);
  int64_t count = getInt(o, "count", 1, 0, int64_t(1) << 26);
  Napi::Int32Array out = Napi::Int32Array::New(env, size_t(count));
  for (int64_t i = 0; i < count; ++i) out[size_t(i)] = sampleTimestep(s, seed, first + uint64_t(i));
  return out;
  FGN_CATCH(env)
}

SdsCoefficients coefficientsFrom(const Napi::Object& o) {
  auto table = requireTyped<float>(o, "alphasCumprod");
  int n = int(table.ElementLength());
  int t = int(requireInt(o, "t", 0, n - 1));
  return sdsCoefficients(table.Data(), n, t, parseWeighting(getString(o, "weighting", "1-alpha")), getNumber(o, "gradScale", 1.0));
}

Napi::Value coefficientsFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  SdsCoefficients c = coefficientsFrom(argObject(info, 0, "sdsCoefficients"));
  Napi::Object r = Napi::Object::New(env);
  r.Set("t", c.t);
  r.Set("alphaBar", c.alphaBar);
  r.Set("sqrtAlphaBar", c.sqrtAlphaBar);
  r.Set("sqrtOneMinusAlphaBar", c.sqrtOneMinusAlphaBar);
  r.Set("weight", c.weight);
  return r;
  FGN_CATCH(env)
}

// sdsNoise({x0, seed, iteration | noiseOffset, copies, alphasCumprod, t, half, device}) -> {eps, xt | xtHalf}
Napi::Value noiseFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "sdsNoise");
  fg::Device d = getDevice(o);
  auto x0 = requireTyped<float>(o, "x0");
  const int64_t n = int64_t(x0.ElementLength());
  SdsCoefficients k = coefficientsFrom(o);
  int copies = int(getInt(o, "copies", 2, 1, 2));
  bool half = getBool(o, "half", false);
  Napi::Float32Array eps = Napi::Float32Array::New(env, size_t(n));
  Napi::Float32Array xt = Napi::Float32Array::New(env, half ? 0 : size_t(copies * n));
  Napi::Uint16Array xtH = Napi::Uint16Array::New(env, half ? size_t(copies * n) : 0);
  auto sx0 = stageIn(d, x0);
  auto seps = stageOut(d, eps);
  auto sxt = stageOut(d, xt);
  auto sxtH = stageOut(d, xtH);
  fg::Workspace ws(d, sdsWorkspaceBytes());
  SdsNoiseParams p;
  p.n = n;
  p.x0 = sx0.ptr();
  p.eps = seps.ptr();
  p.xt = half ? nullptr : sxt.ptr();
  p.xtHalf = half ? sxtH.ptr() : nullptr;
  p.copies = copies;
  p.seed = getU64(o, "seed", 0);
  p.noiseOffset = has(o, "noiseOffset") ? getU64(o, "noiseOffset", 0) : sdsNoiseOffset(getU64(o, "iteration", 0), n);
  p.sqrtAlphaBar = k.sqrtAlphaBar;
  p.sqrtOneMinusAlphaBar = k.sqrtOneMinusAlphaBar;
  p.scratch = sdsScratch(ws);
  sdsNoise(d, p);
  seps.finish();
  if (half) sxtH.finish();
  else sxt.finish();
  Napi::Object r = Napi::Object::New(env);
  r.Set("eps", eps);
  if (half) r.Set("xtHalf", xtH);
  else r.Set("xt", xt);
  return r;
  FGN_CATCH(env)
}

// sdsGrad({...}) -> {grad, x0Pred?, epsPred?, flags, normSqBefore, normSqAfter}
Napi::Value gradFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "sdsGrad");
  fg::Device d = getDevice(o);
  auto x0 = requireTyped<float>(o, "x0");
  const int64_t n = int64_t(x0.ElementLength());
  auto eps = requireTyped<float>(o, "eps", size_t(n));
  int copies = int(getInt(o, "copies", 2, 1, 2));
  bool halfOut = has(o, "modelOutHalf");
  FG_CHECK_ARG(halfOut != has(o, "modelOut"), "modelOut: pass exactly one of modelOut (Float32Array) and modelOutHalf (Uint16Array, fp16 bits)");
  SdsCoefficients k = coefficientsFrom(o);
  bool wantX0 = getBool(o, "x0Pred", false), wantEps = getBool(o, "epsPred", false);
  Napi::Float32Array grad = Napi::Float32Array::New(env, size_t(n));
  Napi::Float32Array x0p = Napi::Float32Array::New(env, wantX0 ? size_t(n) : 0);
  Napi::Float32Array epsp = Napi::Float32Array::New(env, wantEps ? size_t(n) : 0);
  auto sx0 = stageIn(d, x0);
  auto seps = stageIn(d, eps);
  std::unique_ptr<Staged<float>> sout;
  std::unique_ptr<Staged<uint16_t>> soutH;
  if (halfOut) soutH = std::make_unique<Staged<uint16_t>>(stageIn(d, requireTyped<uint16_t>(o, "modelOutHalf", size_t(copies * n))));
  else sout = std::make_unique<Staged<float>>(stageIn(d, requireTyped<float>(o, "modelOut", size_t(copies * n))));
  auto sgrad = stageOut(d, grad);
  auto sx0p = stageOut(d, x0p);
  auto sepsp = stageOut(d, epsp);
  Scalar<uint32_t> flags(d);
  Scalar<double> stats(d);
  fg::Workspace ws(d, sdsWorkspaceBytes());
  SdsGradParams p;
  p.n = n;
  p.x0 = sx0.ptr();
  p.eps = seps.ptr();
  p.modelOut = sout ? sout->ptr() : nullptr;
  p.modelOutHalf = soutH ? soutH->ptr() : nullptr;
  p.copies = copies;
  p.prediction = parsePrediction(getString(o, "prediction", "epsilon"));
  p.anchor = parseGuidanceAnchor(getString(o, "guidanceAnchor", "uncond"));
  p.guidanceScale = float(getNumber(o, "guidanceScale", 100.0));
  p.sqrtAlphaBar = k.sqrtAlphaBar;
  p.sqrtOneMinusAlphaBar = k.sqrtOneMinusAlphaBar;
  p.weight = k.weight;
  p.clampValue = float(getNumber(o, "clamp", 0.0));
  p.normalize = getBool(o, "normalize", false);
  p.normScale = float(getNumber(o, "normScale", 1.0));
  p.grad = sgrad.ptr();
  p.x0Pred = wantX0 ? sx0p.ptr() : nullptr;
  p.epsPred = wantEps ? sepsp.ptr() : nullptr;
  p.flags = flags.ptr();
  p.stats = stats.ptr();
  p.scratch = sdsScratch(ws);
  // the reduction counters start at zero: sdsNoise zeroes them in a pipeline iteration; standalone, do it here
  if (d == fg::Device::CUDA) fg::memsetAny(p.scratch.counters, d, 0, kSdsCounters * sizeof(uint32_t));
  sdsGrad(d, p);
  sgrad.finish();
  if (wantX0) sx0p.finish();
  if (wantEps) sepsp.finish();
  flags.finish();
  stats.finish();
  Napi::Object r = Napi::Object::New(env);
  r.Set("grad", grad);
  if (wantX0) r.Set("x0Pred", x0p);
  if (wantEps) r.Set("epsPred", epsp);
  r.Set("flags", flags.host[0]);
  r.Set("normSqBefore", stats.host[0]);
  r.Set("normSqAfter", stats.host[1]);
  r.Set("t", k.t);
  r.Set("weight", k.weight);
  return r;
  FGN_CATCH(env)
}

// sdsImageLoss({render, target, weight, device}) -> {grad, loss, flags}
Napi::Value imageLossFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "sdsImageLoss");
  fg::Device d = getDevice(o);
  auto render = requireTyped<float>(o, "render");
  const size_t n = render.ElementLength();
  auto target = requireTyped<float>(o, "target", n);
  Napi::Float32Array grad = Napi::Float32Array::New(env, n);
  auto sr = stageIn(d, render);
  auto st = stageIn(d, target);
  auto sg = stageOut(d, grad);
  Scalar<uint32_t> flags(d);
  Scalar<double> loss(d);
  fg::Workspace ws(d, sdsWorkspaceBytes());
  SdsImageLossParams p;
  p.n = int64_t(n);
  p.render = sr.ptr();
  p.target = st.ptr();
  p.weight = float(requireNumber(o, "weight"));
  p.grad = sg.ptr();
  p.loss = loss.ptr();
  p.flags = flags.ptr();
  p.scratch = sdsScratch(ws);
  if (d == fg::Device::CUDA) {
    // the loss reduction's counter must start at zero: sdsNoise does that in a pipeline; here, zero it
    fg::memsetAny(p.scratch.counters, d, 0, kSdsCounters * sizeof(uint32_t));
  }
  sdsImageLoss(d, p);
  sg.finish();
  flags.finish();
  loss.finish();
  Napi::Object r = Napi::Object::New(env);
  r.Set("grad", grad);
  r.Set("loss", loss.host[0]);
  r.Set("flags", flags.host[0]);
  return r;
  FGN_CATCH(env)
}

LatentRgbMap mapFrom(const Napi::Object& o) {
  bool range01 = getBool(o, "range01", false);
  if (!has(o, "matrix")) {
    FG_CHECK_ARG(!has(o, "bias"), "bias: only with a custom matrix");
    return latentRgbMapSd15(range01);
  }
  auto m = requireTyped<float>(o, "matrix", 12);
  float b[3] = {0.f, 0.f, 0.f};
  if (has(o, "bias")) {
    auto bb = requireTyped<float>(o, "bias", 3);
    for (int i = 0; i < 3; ++i) b[i] = bb[i];
  }
  return makeLatentRgbMap(m.Data(), b);
}

Napi::Value latentRgbMapFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = info.Length() > 0 && info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
  LatentRgbMap m = mapFrom(o);
  Napi::Float32Array mm = Napi::Float32Array::New(env, 12), pp = Napi::Float32Array::New(env, 12), bb = Napi::Float32Array::New(env, 3);
  for (int k = 0; k < 4; ++k)
    for (int c = 0; c < 3; ++c) {
      mm[size_t(k * 3 + c)] = m.m[k][c];
      pp[size_t(k * 3 + c)] = m.pinv[k][c];
    }
  for (int c = 0; c < 3; ++c) bb[size_t(c)] = m.bias[c];
  Napi::Object r = Napi::Object::New(env);
  r.Set("matrix", mm);
  r.Set("bias", bb);
  r.Set("pinv", pp);
  return r;
  FGN_CATCH(env)
}

// sdsLatentRgb({op, input, batch, latentHeight, latentWidth, factor, channelsLast, range01, matrix?, bias?, device})
Napi::Value latentRgbFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "sdsLatentRgb");
  fg::Device d = getDevice(o);
  LatentRgbParams p;
  std::string op = getString(o, "op", "decode");
  if (op == "decode") p.op = LatentRgbOp::Decode;
  else if (op == "encode") p.op = LatentRgbOp::Encode;
  else if (op == "encodeBackward") p.op = LatentRgbOp::EncodeBackward;
  else throw fg::Error(fg::ErrorCode::InvalidArgument, "op: expected 'decode', 'encode' or 'encodeBackward', got '" + op + "'");
  p.batch = int(getInt(o, "batch", 1, 1, 1 << 16));
  p.latentH = int(requireInt(o, "latentHeight", 1, 1 << 14));
  p.latentW = int(requireInt(o, "latentWidth", 1, 1 << 14));
  p.factor = int(getInt(o, "factor", 8, 1, 64));
  p.channelsLast = getBool(o, "channelsLast", false);
  p.map = mapFrom(o);
  auto in = requireTyped<float>(o, "input", size_t(latentRgbInElements(p)));
  Napi::Float32Array out = Napi::Float32Array::New(env, size_t(latentRgbOutElements(p)));
  auto si = stageIn(d, in);
  auto so = stageOut(d, out);
  p.in = si.ptr();
  p.out = so.ptr();
  latentRgb(d, p);
  so.finish();
  return out;
  FGN_CATCH(env)
}

OptimConfig optimFrom(const Napi::Object& o) {
  OptimKind kind = parseOptimKind(getString(o, "optimizer", "adam"));
  OptimConfig c = kind == OptimKind::Adan ? adanDefaults() : OptimConfig{};
  c.kind = kind;
  c.beta1 = getNumber(o, "beta1", c.beta1);
  c.beta2 = getNumber(o, "beta2", c.beta2);
  c.beta3 = getNumber(o, "beta3", c.beta3);
  c.eps = getNumber(o, "eps", c.eps);
  c.weightDecay = getNumber(o, "weightDecay", 0.0);
  c.adanNoProx = getBool(o, "noProx", false);
  c.maxGradNorm = getNumber(o, "maxGradNorm", 0.0);
  c.clipEps = getNumber(o, "clipEps", c.clipEps);
  validate(c);
  return c;
}

// sdsOptimStep({optimizer, ..., step, lr, gradScale, gradNorm, tensors: [{param, grad, m, v, d?, prev?}], device})
// -> {flags, gradNorm}; param and state arrays are updated in place.
Napi::Value optimStepFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "sdsOptimStep");
  fg::Device d = getDevice(o);
  OptimConfig c = optimFrom(o);
  OptimStepArgs a;
  a.step = requireInt(o, "step", 1, int64_t(1) << 40);
  a.lr = requireNumber(o, "lr");
  a.gradScale = float(getNumber(o, "gradScale", 1.0));
  bool wantNorm = getBool(o, "gradNorm", false);
  Napi::Value tv = o.Get("tensors");
  FG_CHECK_ARG(tv.IsArray(), "tensors: expected an array of {param, grad, m, v, d?, prev?}");
  Napi::Array arr = tv.As<Napi::Array>();
  const uint32_t count = arr.Length();
  std::vector<std::unique_ptr<Staged<float>>> staged;
  std::vector<OptimTensor> ts(count);
  const bool adan = c.kind == OptimKind::Adan;
  for (uint32_t i = 0; i < count; ++i) {
    FG_CHECK_ARG(arr.Get(i).IsObject(), "tensors[" + std::to_string(i) + "]: expected an object");
    Napi::Object t = arr.Get(i).As<Napi::Object>();
    auto param = requireTyped<float>(t, "param");
    size_t n = param.ElementLength();
    auto stage = [&](const char* key) {
      try {
        staged.push_back(std::make_unique<Staged<float>>(stageIn(d, requireTyped<float>(t, key, n))));
      } catch (const fg::Error& e) {
        throw fg::Error(e.code(), "tensors[" + std::to_string(i) + "]." + e.what());
      }
      return staged.back()->ptr();
    };
    ts[i].n = int64_t(n);
    ts[i].param = stage("param");
    ts[i].grad = stage("grad");
    ts[i].m = stage("m");
    ts[i].v = stage("v");
    if (adan) {
      ts[i].d = stage("d");
      ts[i].prev = stage("prev");
    }
  }
  Scalar<uint32_t> flags(d);
  Scalar<double> norm(d);
  a.flags = flags.ptr();
  a.gradNormOut = wantNorm ? norm.ptr() : nullptr;
  fg::Workspace ws(d, optimWorkspaceBytes(c, int(count)));
  optimStep(d, c, ts.data(), int(count), a, &ws);
  for (auto& s : staged) s->finish();  // grads are unchanged; the copy back is harmless
  flags.finish();
  norm.finish();
  Napi::Object r = Napi::Object::New(env);
  r.Set("flags", flags.host[0]);
  if (wantNorm) r.Set("gradNorm", norm.host[0]);
  return r;
  FGN_CATCH(env)
}

// sdsLrAt({schedule, lr, gamma, stepSize, totalSteps, minLr, first, count}) -> Float64Array
Napi::Value lrAtFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "sdsLrAt");
  LrSchedule s;
  s.kind = parseLrSchedule(getString(o, "schedule", "constant"));
  s.baseLr = requireNumber(o, "lr");
  s.gamma = getNumber(o, "gamma", 0.1);
  s.stepSize = getInt(o, "stepSize", 1000, 1, int64_t(1) << 40);
  s.totalSteps = getInt(o, "totalSteps", 1000, 1, int64_t(1) << 40);
  s.minLr = getNumber(o, "minLr", 0.0);
  validate(s);
  int64_t first = getInt(o, "first", 0, 0, int64_t(1) << 40);
  int64_t count = getInt(o, "count", 1, 0, int64_t(1) << 24);
  Napi::Float64Array out = Napi::Float64Array::New(env, size_t(count));
  for (int64_t i = 0; i < count; ++i) out[size_t(i)] = lrAt(s, first + i);
  return out;
  FGN_CATCH(env)
}

Napi::Value launchCountFn(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(launchCount())); }
Napi::Value resetLaunchCountFn(const Napi::CallbackInfo& info) {
  resetLaunchCount();
  return info.Env().Undefined();
}

Napi::Value floatToHalfFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = Napi::Object::New(env);
  o.Set("values", info[0]);
  auto v = requireTyped<float>(o, "values");
  Napi::Uint16Array out = Napi::Uint16Array::New(env, v.ElementLength());
  for (size_t i = 0; i < v.ElementLength(); ++i) out[i] = fg::floatToHalfBits(v[i]);
  return out;
  FGN_CATCH(env)
}

Napi::Value halfToFloatFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = Napi::Object::New(env);
  o.Set("values", info[0]);
  auto v = requireTyped<uint16_t>(o, "values");
  Napi::Float32Array out = Napi::Float32Array::New(env, v.ElementLength());
  for (size_t i = 0; i < v.ElementLength(); ++i) out[i] = fg::halfBitsToFloat(v[i]);
  return out;
  FGN_CATCH(env)
}

// sdsCheckFlags(flags, context): throws E_NUMERICAL when any flag is set.
Napi::Value checkFlagsFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  FG_CHECK_ARG(info.Length() >= 1 && info[0].IsNumber(), "flags: expected a number");
  std::string ctx = info.Length() >= 2 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  throwIfNumerical(info[0].As<Napi::Number>().Uint32Value(), ctx);
  return env.Undefined();
  FGN_CATCH(env)
}

Napi::Value benchFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "sdsBenchTexturePhase");
  BenchConfig c;
  c.latentElements = getInt(o, "latentElements", c.latentElements, 1, int64_t(1) << 30);
  c.textureElements = getInt(o, "textureElements", c.textureElements, 1, int64_t(1) << 30);
  c.iterations = int(getInt(o, "iterations", c.iterations, 1, 1 << 24));
  c.warmup = int(getInt(o, "warmup", c.warmup, 0, 1 << 24));
  c.normalize = getBool(o, "normalize", false);
  c.clampValue = float(getNumber(o, "clamp", 0.0));
  c.x0Pred = getBool(o, "x0Pred", false);
  c.halfIo = getBool(o, "half", false);
  c.optimizer = parseOptimKind(getString(o, "optimizer", "adam"));
  c.maxGradNorm = getNumber(o, "maxGradNorm", 0.0);
  BenchResult r = benchTexturePhase(c);
  Napi::Object res = Napi::Object::New(env);
  res.Set("deviceUsPerIter", r.deviceUsPerIter);
  res.Set("hostUsPerIter", r.hostUsPerIter);
  res.Set("launchesPerIter", r.launchesPerIter);
  return res;
  FGN_CATCH(env)
}

}  // namespace

void initSds(Napi::Env env, Napi::Object exports) {
  setFn(env, exports, "sdsSchedulerTables", schedulerTablesFn);
  setFn(env, exports, "sdsTimesteps", timestepsFn);
  setFn(env, exports, "sdsCoefficients", coefficientsFn);
  setFn(env, exports, "sdsNoise", noiseFn);
  setFn(env, exports, "sdsGrad", gradFn);
  setFn(env, exports, "sdsImageLoss", imageLossFn);
  setFn(env, exports, "sdsLatentRgbMap", latentRgbMapFn);
  setFn(env, exports, "sdsLatentRgb", latentRgbFn);
  setFn(env, exports, "sdsOptimStep", optimStepFn);
  setFn(env, exports, "sdsLrAt", lrAtFn);
  setFn(env, exports, "sdsLaunchCount", launchCountFn);
  setFn(env, exports, "sdsResetLaunchCount", resetLaunchCountFn);
  setFn(env, exports, "sdsFloatToHalf", floatToHalfFn);
  setFn(env, exports, "sdsHalfToFloat", halfToFloatFn);
  setFn(env, exports, "sdsCheckFlags", checkFlagsFn);
  setFn(env, exports, "sdsBenchTexturePhase", benchFn);
}

}  // namespace fgn
