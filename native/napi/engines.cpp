// Bindings for native/engines: TensorRT discovery (doctor), the engine builder and plan inspection (over the
// dlopen'ed libfaceg2e_trt.so), and the target denoiser + identity/pooling codecs on either device.
#include <memory>
#include "core/device.hpp"
#include "engines/target.hpp"
#include "engines/trt_backend.hpp"
#include "engines/trt_loader.hpp"
#include "napi/async.hpp"
#include "napi/common.hpp"
#include "napi/domains.hpp"

namespace fgn {
namespace {

using namespace fg::engines;

Napi::Value tensorrtInfoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  TensorRTLibInfo t = tensorrtInfo();
  Napi::Object o = Napi::Object::New(env);
  o.Set("found", t.found);
  o.Set("version", t.found ? Napi::Value(Napi::String::New(env, t.version)) : env.Null());
  o.Set("library", t.found ? Napi::Value(Napi::String::New(env, t.library)) : env.Null());
  o.Set("error", t.found ? env.Null() : Napi::Value(Napi::String::New(env, t.error)));
  return o;
  FGN_CATCH(env)
}

CfgOrder cfgOrderOf(const Napi::Object& o) {
  std::string s = getString(o, "cfgOrder", "uncond-first");
  if (s == "uncond-first") return CfgOrder::UncondFirst;
  if (s == "cond-first") return CfgOrder::CondFirst;
  throw fg::Error(fg::ErrorCode::InvalidArgument, "cfgOrder: expected 'uncond-first' or 'cond-first', got '" + s + "'");
}

// targetDenoise({xt, target, n, c, h, w, alphaBar, guidance, cfgOrder, device}) -> Float32Array eps
Napi::Value targetDenoiseJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "targetDenoise");
  int64_t n = requireInt(o, "n", 1, 1 << 16), c = requireInt(o, "c", 1, 1 << 12), h = requireInt(o, "h", 1, 1 << 14), w = requireInt(o, "w", 1, 1 << 14);
  size_t count = size_t(n * c * h * w);
  auto xt = requireTyped<float>(o, "xt", count);
  auto tg = requireTyped<float>(o, "target", count);
  fg::Device d = getDevice(o);
  DenoiseRequest r;
  r.n = int(n);
  r.channels = int(c);
  r.height = int(h);
  r.width = int(w);
  r.alphaBar = float(requireNumber(o, "alphaBar"));
  r.guidance = float(getNumber(o, "guidance", 1.0));
  r.cfgOrder = cfgOrderOf(o);
  Napi::Float32Array out = Napi::Float32Array::New(env, count);
  auto sx = stageIn(d, xt);
  auto st = stageIn(d, tg);
  auto se = stageOut(d, out);
  r.xt = sx.ptr();
  r.target = st.ptr();
  r.eps = se.ptr();
  TargetDenoiser den(d);
  fg::Workspace ws;
  den.predict(r, ws, nullptr);
  se.finish();
  return out;
  FGN_CATCH(env)
}

std::unique_ptr<Codec> makeCodec(const Napi::Object& o, fg::Device d) {
  std::string name = getString(o, "codec", "");
  if (name == "identity") return std::make_unique<IdentityCodec>(d);
  if (name == "pooling") {
    std::string up = getString(o, "upsample", "nearest");
    Upsample u;
    if (up == "nearest") u = Upsample::Nearest;
    else if (up == "bilinear") u = Upsample::Bilinear;
    else throw fg::Error(fg::ErrorCode::InvalidArgument, "upsample: expected 'nearest' or 'bilinear', got '" + up + "'");
    return std::make_unique<PoolingCodec>(d, float(getNumber(o, "scale", 1.0)), u);
  }
  throw fg::Error(fg::ErrorCode::InvalidArgument, "codec: expected 'identity' or 'pooling', got '" + name + "'");
}

// codecEncode({codec, images, n, height, width, upsample, scale, device}) -> Float32Array latents
Napi::Value codecEncodeJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "codecEncode");
  fg::Device d = getDevice(o);
  auto codec = makeCodec(o, d);
  int64_t n = requireInt(o, "n", 1, 1 << 16), H = requireInt(o, "height", 1, 1 << 15), W = requireInt(o, "width", 1, 1 << 15);
  const int f = codec->downsampleFactor();
  FG_CHECK_ARG(H % f == 0 && W % f == 0, "height/width: must be multiples of " + std::to_string(f) + ", got " + std::to_string(H) + "x" + std::to_string(W));
  auto img = requireTyped<float>(o, "images", size_t(n * 3 * H * W));
  Napi::Float32Array out = Napi::Float32Array::New(env, size_t(n * codec->latentChannels() * (H / f) * (W / f)));
  auto si = stageIn(d, img);
  auto so = stageOut(d, out);
  codec->encode(si.ptr(), int(n), int(H), int(W), so.ptr(), nullptr);
  so.finish();
  return out;
  FGN_CATCH(env)
}

// codecDecode({codec, latents, n, height, width (latent), upsample, scale, device}) -> Float32Array images
Napi::Value codecDecodeJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "codecDecode");
  fg::Device d = getDevice(o);
  auto codec = makeCodec(o, d);
  int64_t n = requireInt(o, "n", 1, 1 << 16), h = requireInt(o, "height", 1, 1 << 14), w = requireInt(o, "width", 1, 1 << 14);
  const int f = codec->downsampleFactor();
  auto lat = requireTyped<float>(o, "latents", size_t(n * codec->latentChannels() * h * w));
  Napi::Float32Array out = Napi::Float32Array::New(env, size_t(n * 3 * h * f * w * f));
  auto sl = stageIn(d, lat);
  auto so = stageOut(d, out);
  codec->decode(sl.ptr(), int(n), int(h), int(w), so.ptr(), nullptr);
  so.finish();
  return out;
  FGN_CATCH(env)
}

// codecInfo({codec, scale}) -> {latentChannels, downsampleFactor, scalingFactor, channelMap[12], pseudoInverse[12]}
Napi::Value codecInfoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "codecInfo");
  auto codec = makeCodec(o, fg::Device::CPU);
  Napi::Object r = Napi::Object::New(env);
  r.Set("latentChannels", codec->latentChannels());
  r.Set("downsampleFactor", codec->downsampleFactor());
  r.Set("scalingFactor", codec->scalingFactor());
  Napi::Array m = Napi::Array::New(env), p = Napi::Array::New(env);
  if (auto* pc = dynamic_cast<PoolingCodec*>(codec.get())) {
    for (int c = 0; c < kPoolLatentChannels; ++c)
      for (int k = 0; k < 3; ++k) m.Set(uint32_t(c * 3 + k), pc->maps().m[c][k]);
    for (int k = 0; k < 3; ++k)
      for (int c = 0; c < kPoolLatentChannels; ++c) p.Set(uint32_t(k * kPoolLatentChannels + c), pc->maps().p[k][c]);
  }
  r.Set("channelMap", m);
  r.Set("pseudoInverse", p);
  return r;
  FGN_CATCH(env)
}

std::vector<int64_t> readDims(const Napi::Value& v, const std::string& what) {
  if (!v.IsArray()) throw fg::Error(fg::ErrorCode::InvalidArgument, what + ": expected an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value x = a.Get(i);
    if (!x.IsNumber()) throw fg::Error(fg::ErrorCode::InvalidArgument, what + "[" + std::to_string(i) + "]: expected an integer");
    out.push_back(x.As<Napi::Number>().Int64Value());
  }
  return out;
}

// trtBuildEngine({onnx, plan, profiles: [{name, min, opt, max}], workspaceBytes, optLevel}, onProgress, token) -> Promise
Napi::Value trtBuildEngineJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "trtBuildEngine");
  auto req = std::make_shared<BuildRequest>();
  req->onnx = getString(o, "onnx", "");
  req->plan = getString(o, "plan", "");
  req->workspaceBytes = uint64_t(getNumber(o, "workspaceBytes", double(8ull << 30)));
  req->optLevel = int(getInt(o, "optLevel", 3, 0, 5));
  Napi::Value pv = o.Get("profiles");
  if (!pv.IsUndefined()) {
    if (!pv.IsArray()) throw fg::Error(fg::ErrorCode::InvalidArgument, "profiles: expected an array");
    Napi::Array pa = pv.As<Napi::Array>();
    for (uint32_t i = 0; i < pa.Length(); ++i) {
      Napi::Object po = pa.Get(i).As<Napi::Object>();
      BuildProfile bp;
      bp.name = getString(po, "name", "");
      std::string w = "profiles[" + std::to_string(i) + "]";
      bp.min = readDims(po.Get("min"), w + ".min");
      bp.opt = readDims(po.Get("opt"), w + ".opt");
      bp.max = readDims(po.Get("max"), w + ".max");
      req->profiles.push_back(bp);
    }
  }
  // Fail fast (synchronously, as a rejected promise) when TensorRT is absent.
  trtApi();
  fg::CancelTokenPtr token = tokenFrom(info[2]);
  return runAsync(env, "faceg2e:trtBuild", info[1], token, [req, token](Progress& p) -> ResultFn {
    req->progress = [&p](const std::string& m) {
      std::string esc;
      for (char ch : m) {
        if (ch == '"' || ch == '\\') esc += '\\';
        if (static_cast<unsigned char>(ch) >= 0x20) esc += ch;
      }
      p.send("{\"message\":\"" + esc + "\"}");
    };
    req->cancelled = [token] { return token && token->cancelled(); };
    buildEngine(*req);
    std::string v = tensorrtInfo().version;
    return [v](Napi::Env e) {
      Napi::Object r = Napi::Object::New(e);
      r.Set("tensorrt", v);
      return r;
    };
  });
  FGN_CATCH(env)
}

// trtInspectPlans({dir, engines: [{name, plan}]}) -> [{name, deviceMemory, tensors}] (deserialises every plan)
Napi::Value trtInspectPlansJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "trtInspectPlans");
  std::string dir = getString(o, "dir", ".");
  Napi::Value ev = o.Get("engines");
  if (!ev.IsArray()) throw fg::Error(fg::ErrorCode::InvalidArgument, "engines: expected an array of {name, plan}");
  std::vector<PlanRef> plans;
  Napi::Array ea = ev.As<Napi::Array>();
  for (uint32_t i = 0; i < ea.Length(); ++i) {
    Napi::Object e = ea.Get(i).As<Napi::Object>();
    plans.push_back({getString(e, "name", ""), dir + "/" + getString(e, "plan", "")});
  }
  TrtEngineSet set(plans);
  Napi::Array out = Napi::Array::New(env);
  for (uint32_t i = 0; i < plans.size(); ++i) {
    int idx = set.engine(plans[i].name);
    Napi::Object eo = Napi::Object::New(env);
    eo.Set("name", plans[i].name);
    eo.Set("deviceMemory", double(set.runtime().deviceMemorySize()));
    Napi::Array ts = Napi::Array::New(env);
    uint32_t k = 0;
    for (const auto& t : set.runtime().tensors(idx)) {
      Napi::Object to = Napi::Object::New(env);
      to.Set("name", t.name);
      to.Set("io", t.input ? "input" : "output");
      to.Set("dtype", dtypeName(t.dtype));
      Napi::Array dims = Napi::Array::New(env);
      for (uint32_t j = 0; j < t.dims.size(); ++j) dims.Set(j, double(t.dims[j]));
      to.Set("shape", dims);
      ts.Set(k++, to);
    }
    eo.Set("tensors", ts);
    out.Set(i, eo);
  }
  return out;
  FGN_CATCH(env)
}

}  // namespace

void initEngines(Napi::Env env, Napi::Object exports) {
  setFn(env, exports, "tensorrtInfo", tensorrtInfoJs);
  setFn(env, exports, "targetDenoise", targetDenoiseJs);
  setFn(env, exports, "codecEncode", codecEncodeJs);
  setFn(env, exports, "codecDecode", codecDecodeJs);
  setFn(env, exports, "codecInfo", codecInfoJs);
  setFn(env, exports, "trtBuildEngine", trtBuildEngineJs);
  setFn(env, exports, "trtInspectPlans", trtInspectPlansJs);
}

}  // namespace fgn
