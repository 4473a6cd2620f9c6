// Bindings for native/pipeline: runPipeline(input, onProgress?, cancelToken?) -> Promise<result>.
// The input object is documented in lib/pipeline-native.ts (PipelineNativeInput); everything is copied into a
// fg::pipe::PipelineInput on the JS thread, then the phases run on a worker thread (fgn::runAsync).
#include <array>
#include <cmath>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <sys/stat.h>
#include "napi/async.hpp"
#include "napi/common.hpp"
#include "napi/domains.hpp"
#include "pipeline/adapter.hpp"
#include "pipeline/pipeline.hpp"

namespace fgn {
namespace {

using fg::pipe::CameraPose;
using fg::pipe::Range;

Napi::Object optObject(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return Napi::Object::New(o.Env());
  if (!v.IsObject()) throw fg::Error(fg::ErrorCode::InvalidArgument, std::string(key) + ": expected an object");
  return v.As<Napi::Object>();
}

bool has(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return !v.IsUndefined() && !v.IsNull();
}

template <typename T>
std::vector<T> copyTyped(const Napi::Object& o, const char* key, const std::string& path, size_t expected = SIZE_MAX) {
  try {
    auto a = requireTyped<T>(o, key, expected);
    return std::vector<T>(a.Data(), a.Data() + a.ElementLength());
  } catch (const fg::Error& e) {
    throw fg::Error(e.code(), path + "." + e.what());
  }
}

std::vector<float> optFloats(const Napi::Object& o, const char* key, const std::string& path) {
  if (!has(o, key)) return {};
  return copyTyped<float>(o, key, path);
}

// Int32Array or Uint32Array (indices)
std::vector<int32_t> indices(const Napi::Object& o, const char* key, const std::string& path) {
  Napi::Value v = o.Get(key);
  if (v.IsTypedArray()) {
    auto ta = v.As<Napi::TypedArray>();
    if (ta.TypedArrayType() == napi_uint32_array) {
      auto a = v.As<Napi::Uint32Array>();
      std::vector<int32_t> out(a.ElementLength());
      for (size_t i = 0; i < out.size(); ++i) {
        if (a[i] > 0x7FFFFFFFu) throw fg::Error(fg::ErrorCode::InvalidArgument, path + "." + key + ": index too large");
        out[i] = int32_t(a[i]);
      }
      return out;
    }
    if (ta.TypedArrayType() == napi_int32_array) return copyTyped<int32_t>(o, key, path);
  }
  throw fg::Error(fg::ErrorCode::InvalidArgument, path + "." + key + ": expected an Int32Array or Uint32Array");
}

Range range(const Napi::Object& o, const char* key, Range def, const std::string& path) {
  if (!has(o, key)) return def;
  Napi::Object r = optObject(o, key);
  Range out;
  out.min = getNumber(r, "min", def.min);
  out.max = getNumber(r, "max", def.max);
  FG_CHECK_ARG(out.max >= out.min, path + "." + key + ": expected max >= min");
  return out;
}

std::vector<CameraPose> poses(const Napi::Object& o, const char* key, const std::string& path) {
  std::vector<CameraPose> out;
  if (!has(o, key)) return out;
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) throw fg::Error(fg::ErrorCode::InvalidArgument, path + "." + key + ": expected an array of {elevation, azimuth, distance}");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value e = a.Get(i);
    if (!e.IsObject()) throw fg::Error(fg::ErrorCode::InvalidArgument, path + "." + key + "[" + std::to_string(i) + "]: expected an object");
    Napi::Object p = e.As<Napi::Object>();
    CameraPose c;
    c.elevation = getNumber(p, "elevation", 0.0);
    c.azimuth = getNumber(p, "azimuth", 0.0);
    c.distance = getNumber(p, "distance", 1.0);
    FG_CHECK_ARG(c.distance > 0, path + "." + key + "[" + std::to_string(i) + "].distance: expected > 0");
    out.push_back(c);
  }
  return out;
}

fg::sds::TimestepSchedule timesteps(const Napi::Object& o, const std::string& path) {
  fg::sds::TimestepSchedule t;
  Napi::Object ts = optObject(o, "timestep");
  t.mode = fg::sds::parseTimestepMode(getString(ts, "schedule", "linear"));
  t.tMax = getNumber(ts, "max", 0.98);
  t.tMin = getNumber(ts, "min", 0.02);
  t.jitter = getNumber(ts, "jitter", 0.0);
  (void)path;
  return t;
}

fg::pipe::OptimSettings optim(const Napi::Object& parent, const char* defKind, double defLr, const std::string& path) {
  fg::pipe::OptimSettings s;
  Napi::Object o = optObject(parent, "optimizer");
  std::string kind = getString(o, "type", defKind);
  s.config.kind = fg::sds::parseOptimKind(kind);
  bool adan = s.config.kind == fg::sds::OptimKind::Adan;
  s.config.beta1 = getNumber(o, "beta1", adan ? 0.98 : 0.9);
  s.config.beta2 = getNumber(o, "beta2", adan ? 0.92 : 0.99);
  s.config.beta3 = getNumber(o, "beta3", 0.99);
  s.config.eps = getNumber(o, "eps", adan ? 1e-8 : 1e-15);
  s.config.weightDecay = getNumber(o, "weightDecay", 0.0);
  s.config.maxGradNorm = getNumber(o, "maxGradNorm", 0.0);
  s.lr.baseLr = getNumber(parent, "learningRate", defLr);
  FG_CHECK_ARG(s.lr.baseLr > 0, path + ".learningRate: expected > 0");
  Napi::Object d = optObject(parent, "lrDecay");
  std::string dk = getString(d, "type", "none");
  if (dk == "none" || dk == "constant") s.lr.kind = fg::sds::LrScheduleKind::Constant;
  else s.lr.kind = fg::sds::parseLrSchedule(dk);
  s.lr.stepSize = getInt(d, "stepEvery", 100, 1, int64_t(1) << 40);
  s.lr.gamma = getNumber(d, "gamma", 1.0);
  s.lr.totalSteps = getInt(d, "totalSteps", 1000, 1, int64_t(1) << 40);
  s.minLrFactor = getNumber(d, "minFactor", 0.0);
  s.lr.minLr = s.lr.baseLr * s.minLrFactor;
  return s;
}

void background(const Napi::Object& o, float* out) {
  if (!has(o, "background")) return;
  Napi::Value v = o.Get("background");
  if (!v.IsArray() || v.As<Napi::Array>().Length() != 3) throw fg::Error(fg::ErrorCode::InvalidArgument, "background: expected [r, g, b]");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < 3; ++i) out[i] = a.Get(i).As<Napi::Number>().FloatValue();
}

fg::pipe::Checkpoint readCheckpoint(const Napi::Object& c) {
  fg::pipe::Checkpoint k;
  k.phase = getString(c, "phase", "");
  k.iteration = getInt(c, "iteration", 0, 0, int64_t(1) << 40);
  k.coefficients = copyTyped<float>(c, "coefficients", "checkpoint");
  Napi::Object g = optObject(c, "geometryOptimizer");
  if (has(g, "m")) {
    k.geomM = copyTyped<float>(g, "m", "checkpoint.geometryOptimizer");
    k.geomV = copyTyped<float>(g, "v", "checkpoint.geometryOptimizer");
    k.geomD = copyTyped<float>(g, "d", "checkpoint.geometryOptimizer");
    k.geomPrev = copyTyped<float>(g, "prev", "checkpoint.geometryOptimizer");
  }
  k.latent = optFloats(c, "latent", "checkpoint");
  Napi::Object lo = optObject(c, "latentOptimizer");
  k.latentM = optFloats(lo, "m", "checkpoint.latentOptimizer");
  k.latentV = optFloats(lo, "v", "checkpoint.latentOptimizer");
  k.rgb = optFloats(c, "rgb", "checkpoint");
  Napi::Object ro = optObject(c, "rgbOptimizer");
  k.rgbM = optFloats(ro, "m", "checkpoint.rgbOptimizer");
  k.rgbV = optFloats(ro, "v", "checkpoint.rgbOptimizer");
  k.initialRmse = getNumber(c, "initialRmse", -1.0);
  Napi::Object cu = optObject(c, "curves");
  k.geometryCurve = optFloats(cu, "geometry", "checkpoint.curves");
  k.textureCurve = optFloats(cu, "texture", "checkpoint.curves");
  Napi::Object tm = optObject(c, "timings");
  k.geometryMs = getNumber(tm, "geometryMs", 0.0);
  k.textureMs = getNumber(tm, "textureMs", 0.0);
  return k;
}

// Run a section's reader; errors from the generic getters (which know only the key) get the section's path.
template <typename F>
void section(const char* prefix, F&& f) {
  try {
    f();
  } catch (const fg::Error& e) {
    std::string m = e.what();
    if (m.rfind(prefix, 0) == 0) throw;
    throw fg::Error(e.code(), std::string(prefix) + "." + m);
  }
}

// ------------------------------------------------------------------------------------------------ engines folder

constexpr const char* kManifestFile = "faceg2e-engines.json";
constexpr int32_t kClipVocabSize = 49408;

bool isDirectory(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

[[noreturn]] void manifestError(const std::string& file, const std::string& what) {
  throw fg::Error(fg::ErrorCode::NoEngine, file + ": " + what + " (docs/tensorrt.md §2; rebuild the folder with `npx faceg2e-native engines build`)");
}

double manifestNumber(const Napi::Object& o, const char* key, const std::string& file, const std::string& path, bool positiveInt) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) manifestError(file, path + "." + key + ": expected a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d <= 0 || (positiveInt && (d != std::floor(d) || d > 1e9))) manifestError(file, path + "." + key + ": expected a positive " + std::string(positiveInt ? "integer" : "number"));
  return d;
}

// <dir>/faceg2e-engines.json (or a manifest file) -> EngineFolder; parsed with the engine's own JSON.parse.
// E_NO_ENGINE naming the folder or file for every problem. The scheduler of the manifest's model section, when
// given, must equal `sched` (the SDS noise schedule has to be the UNet's).
fg::pipe::EngineFolder readEngineFolder(Napi::Env env, const std::string& where, const fg::sds::SchedulerConfig& sched) {
  fg::pipe::EngineFolder f;
  std::string dir = where;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  std::string file;
  if (dir.size() > 5 && dir.compare(dir.size() - 5, 5, ".json") == 0 && !isDirectory(dir)) {
    file = dir;
    size_t slash = dir.find_last_of('/');
    dir = slash == std::string::npos ? "." : dir.substr(0, slash);
  } else {
    file = dir + "/" + kManifestFile;
  }
  f.dir = dir;
  f.manifestFile = file;
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0)
    throw fg::Error(fg::ErrorCode::NoEngine, "the TensorRT engines folder " + dir + " (diffusion.engines) does not exist; build it with `npx faceg2e-native engines build --onnx <onnx folder> --out " + dir + "` (docs/tensorrt.md §3)");
  std::ifstream in(file, std::ios::binary);
  if (!in)
    throw fg::Error(fg::ErrorCode::NoEngine, "the engines folder " + dir + " (diffusion.engines) has no " + kManifestFile + " (" + file + " cannot be read); build it with `npx faceg2e-native engines build --onnx <onnx folder> --out " + dir + "`");
  std::stringstream ss;
  ss << in.rdbuf();
  Napi::Value parsed;
  try {
    Napi::Object json = env.Global().Get("JSON").As<Napi::Object>();
    parsed = json.Get("parse").As<Napi::Function>().Call(json, {Napi::String::New(env, ss.str())});
  } catch (const Napi::Error& e) {
    manifestError(file, std::string("not valid JSON: ") + e.Message());
  }
  if (!parsed.IsObject()) manifestError(file, "expected a JSON object");
  Napi::Object m = parsed.As<Napi::Object>();
  if (getString(m, "format", "") != "faceg2e-engines") manifestError(file, "format: expected \"faceg2e-engines\"");
  if (getNumber(m, "version", 0) != 1) manifestError(file, "version: expected 1");
  if (!m.Get("model").IsObject()) manifestError(file, "model: expected an object");
  Napi::Object model = m.Get("model").As<Napi::Object>();
  f.latentChannels = int(manifestNumber(model, "latentChannels", file, "model", true));
  f.downsampleFactor = int(manifestNumber(model, "downsampleFactor", file, "model", true));
  f.scalingFactor = float(manifestNumber(model, "scalingFactor", file, "model", false));
  f.embedDim = int(manifestNumber(model, "textEmbedDim", file, "model", true));
  f.maxTokens = int(manifestNumber(model, "maxTokens", file, "model", true));
  if (f.latentChannels != 4) manifestError(file, "model.latentChannels: the pipeline's latent texture has 4 channels, got " + std::to_string(f.latentChannels));
  // the noise schedule
  auto differs = [&](const std::string& what, const std::string& ours, const std::string& theirs) {
    throw fg::Error(fg::ErrorCode::InvalidArgument, "diffusion.scheduler." + what + " is " + ours + " but the engines' UNet was trained with " + theirs +
                                                        " (model." + what + " in " + file + "); the SDS noise schedule must be the UNet's");
  };
  auto num = [](double v) {
    std::ostringstream o;
    o << v;
    return o.str();
  };
  if (model.Get("numTrainTimesteps").IsNumber() && int(model.Get("numTrainTimesteps").As<Napi::Number>().Int32Value()) != sched.numTrainTimesteps)
    differs("numTrainTimesteps", std::to_string(sched.numTrainTimesteps), num(model.Get("numTrainTimesteps").As<Napi::Number>().DoubleValue()));
  for (const char* k : {"betaStart", "betaEnd"}) {
    if (!model.Get(k).IsNumber()) continue;
    double theirs = model.Get(k).As<Napi::Number>().DoubleValue(), ours = std::string(k) == "betaStart" ? sched.betaStart : sched.betaEnd;
    if (std::fabs(theirs - ours) > 1e-9 * std::max(1.0, std::fabs(theirs))) differs(k, num(ours), num(theirs));
  }
  if (model.Get("betaSchedule").IsString()) {
    std::string b = model.Get("betaSchedule").As<Napi::String>().Utf8Value();
    if (fg::sds::parseBetaSchedule(b) != sched.betaSchedule) differs("betaSchedule", sched.betaSchedule == fg::sds::BetaSchedule::Linear ? "linear" : "scaled_linear", b);
  }
  if (model.Get("prediction").IsString()) {
    std::string pr = model.Get("prediction").As<Napi::String>().Utf8Value();
    if (fg::sds::parsePrediction(pr) != sched.prediction) differs("predictionType", sched.prediction == fg::sds::Prediction::Epsilon ? "epsilon" : "v_prediction", pr);
  }
  // engines with plans
  if (!m.Get("engines").IsObject()) manifestError(file, "engines: expected an object");
  Napi::Object engines = m.Get("engines").As<Napi::Object>();
  Napi::Array names = engines.GetPropertyNames();
  for (uint32_t i = 0; i < names.Length(); ++i) {
    std::string name = names.Get(i).ToString().Utf8Value();
    Napi::Value e = engines.Get(name);
    if (!e.IsObject()) manifestError(file, "engines." + name + ": expected an object");
    Napi::Value plan = e.As<Napi::Object>().Get("plan");
    if (plan.IsUndefined()) continue;
    if (!plan.IsString()) manifestError(file, "engines." + name + ".plan: expected a file name");
    std::string pl = plan.As<Napi::String>().Utf8Value();
    if (pl.empty() || pl[0] == '/' || pl.find("..") != std::string::npos) manifestError(file, "engines." + name + ".plan: expected a relative path inside the folder");
    f.plans.push_back({name, dir + "/" + pl});
  }
  // build section
  Napi::Value bv = m.Get("build");
  if (bv.IsObject()) {
    Napi::Object b = bv.As<Napi::Object>();
    f.builtTensorRT = getString(b, "tensorrt", "");
    if (f.builtTensorRT.empty()) manifestError(file, "build.tensorrt: expected a TensorRT version");
    if (!b.Get("gpu").IsObject()) manifestError(file, "build.gpu: expected {name, computeCapability}");
    Napi::Object g = b.Get("gpu").As<Napi::Object>();
    f.builtGpuName = getString(g, "name", "");
    f.builtComputeCapability = getString(g, "computeCapability", "");
    Napi::Value pv = b.Get("profiles");
    if (!pv.IsObject()) manifestError(file, "build.profiles: expected {batch, resolutions}");
    Napi::Object pr = pv.As<Napi::Object>();
    Napi::Value batch = pr.Get("batch"), res = pr.Get("resolutions");
    if (!batch.IsArray() || batch.As<Napi::Array>().Length() != 2) manifestError(file, "build.profiles.batch: expected [min, max]");
    f.minBatch = batch.As<Napi::Array>().Get(uint32_t(0)).ToNumber().Int32Value();
    f.maxBatch = batch.As<Napi::Array>().Get(uint32_t(1)).ToNumber().Int32Value();
    if (f.minBatch < 1 || f.maxBatch < f.minBatch) manifestError(file, "build.profiles.batch: expected 1 <= min <= max");
    if (!res.IsArray() || res.As<Napi::Array>().Length() == 0) manifestError(file, "build.profiles.resolutions: expected [[height, width], ...]");
    Napi::Array ra = res.As<Napi::Array>();
    for (uint32_t i = 0; i < ra.Length(); ++i) {
      Napi::Value r = ra.Get(i);
      if (!r.IsArray() || r.As<Napi::Array>().Length() != 2) manifestError(file, "build.profiles.resolutions[" + std::to_string(i) + "]: expected [height, width]");
      int h = r.As<Napi::Array>().Get(uint32_t(0)).ToNumber().Int32Value(), w = r.As<Napi::Array>().Get(uint32_t(1)).ToNumber().Int32Value();
      if (h <= 0 || w <= 0) manifestError(file, "build.profiles.resolutions[" + std::to_string(i) + "]: expected positive sizes");
      f.resolutions.push_back({h, w});
    }
  }
  return f;
}

// The texture-tuned UNet of texture.prior.type 'unet': "unet_texture", else the one "unet_<name>" of the folder.
std::string textureUnet(const fg::pipe::EngineFolder& f) {
  std::vector<std::string> found;
  for (const auto& p : f.plans)
    if (p.name.rfind("unet_", 0) == 0) found.push_back(p.name);
  for (const auto& n : found)
    if (n == "unet_texture") return n;
  if (found.size() == 1) return found[0];
  if (found.empty())
    throw fg::Error(fg::ErrorCode::NoEngine, "texture.prior.type 'unet' needs a texture-tuned UNet engine \"unet_<name>\" (with the UNet's tensors) in " + f.manifestFile +
                                                 "; export one or use texture.prior.type 'canny'");
  std::string list;
  for (const auto& n : found) list += (list.empty() ? "" : ", ") + n;
  throw fg::Error(fg::ErrorCode::InvalidArgument, "texture.prior.engine: " + f.manifestFile + " has several texture UNets (" + list + "); name one");
}

// TensorRT: the engines of the render and prior terms, the prompts present, the planned shapes, and the fast
// checks (plan files, TensorRT, device, build, profiles) before any work starts.
void finishNetwork(fg::pipe::PipelineInput& in, fg::pipe::NetworkRun& net, const std::string& priorType, const std::string& priorEngine) {
  fg::pipe::TextureSettings& ts = in.texture;
  const fg::pipe::DiffusionSettings& ds = in.diffusion;
  const int f = net.folder.downsampleFactor;
  const bool texture = ts.enabled && ts.iterations > 0;
  const bool prior = texture && ts.priorEnabled && ts.priorWeight > 0.f;
  net.depthControl = texture && ts.controlEnabled && ts.controlScale != 0.f ? ts.controlName : "";
  if (prior) {
    if (!priorEngine.empty()) net.priorEngine = priorEngine;
    else if (priorType == "unet") net.priorEngine = textureUnet(net.folder);
    else net.priorEngine = "controlnet_" + priorType;
    ts.priorControlName = net.priorEngine;
    if (net.priorEngine.rfind("unet_", 0) == 0) {
      // The pipeline hands the prior term's control to the denoiser; a control named after the texture UNet routes
      // the term to that UNet (its image is not read). The latent stage passes it only when S == Ls·f.
      if (ts.priorControl.empty()) {
        ts.priorControl.assign(3, 0.f);
        ts.priorControlSize = 1;
      }
      FG_CHECK_ARG(ts.latentIterations == 0 || ts.textureSize == ts.latentSize * f,
                   "texture.prior.type 'unet': the latent stage's prior term reaches " + net.priorEngine + " only when texture.rgb.textureSize (" +
                       std::to_string(ts.textureSize) + ") == texture.latent.textureSize (" + std::to_string(ts.latentSize) + ") x " + std::to_string(f));
    }
  }
  // the prompts: ids or embeddings for every slot the run uses
  const std::vector<float>* embs[fg::pipe::kTextSlots] = {&ds.textUncond, &ds.textFront, &ds.textSide, &ds.textBack, &ds.textPrior};
  for (int k = 0; k < fg::pipe::kTextSlots; ++k) {
    if (k == fg::pipe::kTextPrior && !prior) continue;
    const char* key = fg::pipe::textSlotName(k);
    if (net.ids[size_t(k)].empty() && embs[k]->empty())
      throw fg::Error(fg::ErrorCode::InvalidArgument, std::string("diffusion.text: the TensorRT denoiser needs the '") + key + "' prompt: token ids (diffusion.text.ids." + key +
                                                          ", from lib/pipeline-native.ts textConditioning) or an embedding (diffusion.text." + key + ")");
  }
  net.planned = fg::pipe::planRequests(in, f);
  fg::pipe::checkNetworkRun(net, fg::parseDevice(in.device));
}

struct ReadInput {
  std::shared_ptr<fg::pipe::PipelineInput> input;
  std::shared_ptr<fg::pipe::NetworkRun> network;  // denoiser 'tensorrt' only
};

ReadInput readInput(const Napi::Object& o) {
  auto in = std::make_shared<fg::pipe::PipelineInput>();
  std::shared_ptr<fg::pipe::NetworkRun> net;
  std::array<std::vector<int32_t>, fg::pipe::kTextSlots> ids;
  std::string priorType = "canny", priorEngine, enginesDir;
  bool tokensGiven = false;
  in->device = getString(o, "device", "cpu");
  if (in->device == "cuda") getDevice(o);  // E_NO_CUDA_DEVICE early, with the reason
  else FG_CHECK_ARG(in->device == "cpu", "device: expected 'cpu' or 'cuda', got '" + in->device + "'");
  in->seed = getU64(o, "seed", 42);
  in->profile = getBool(o, "profile", false);
  in->progressEvery = int(getInt(o, "progressEvery", 0, 0, 1 << 30));

  // model
  section("model", [&] {
  if (!has(o, "model")) throw fg::Error(fg::ErrorCode::InvalidArgument, "model: required");
  Napi::Object m = optObject(o, "model");
  fg::pipe::ModelInput& mi = in->model;
  mi.templ = copyTyped<float>(m, "template", "model");
  FG_CHECK_ARG(mi.templ.size() % 3 == 0, "model.template: expected V*3 floats");
  mi.V = int64_t(mi.templ.size() / 3);
  mi.tri = indices(m, "tri", "model");
  mi.uvTri = indices(m, "uvTri", "model");
  FG_CHECK_ARG(mi.tri.size() % 3 == 0 && mi.tri.size() == mi.uvTri.size(), "model.tri/uvTri: expected two arrays of T*3 indices");
  mi.T = int64_t(mi.tri.size() / 3);
  mi.uv = copyTyped<float>(m, "uv", "model");
  FG_CHECK_ARG(mi.uv.size() % 2 == 0, "model.uv: expected U*2 floats");
  mi.U = int64_t(mi.uv.size() / 2);
  mi.Ki = int(getInt(m, "identityCount", 0, 0, 100000));
  mi.Ke = int(getInt(m, "expressionCount", 0, 0, 100000));
  size_t V3 = size_t(mi.V) * 3;
  if (mi.Ki) mi.identityBasis = copyTyped<uint16_t>(m, "identityBasis", "model", size_t(mi.Ki) * V3);
  if (mi.Ke) mi.expressionBasis = copyTyped<uint16_t>(m, "expressionBasis", "model", size_t(mi.Ke) * V3);
  if (has(m, "identityStd")) mi.identityStd = copyTyped<float>(m, "identityStd", "model", size_t(mi.Ki));
  if (has(m, "expressionStd")) mi.expressionStd = copyTyped<float>(m, "expressionStd", "model", size_t(mi.Ke));
  mi.metresPerUnit = getNumber(m, "metresPerUnit", 1.0);

  });
  // diffusion
  section("diffusion", [&] {
  Napi::Object d = optObject(o, "diffusion");
  fg::pipe::DiffusionSettings& ds = in->diffusion;
  std::string den = getString(d, "denoiser", "target");
  FG_CHECK_ARG(den == "target" || den == "tensorrt", "diffusion.denoiser: expected 'target' or 'tensorrt', got '" + den + "'");
  ds.targetDenoiser = den == "target";
  ds.codec = getString(d, "codec", ds.targetDenoiser ? "identity" : "vae");
  enginesDir = getString(d, "engines", "");
  ds.poolingScale = float(getNumber(d, "poolingScale", 1.0));
  Napi::Object sc = optObject(d, "scheduler");
  ds.scheduler.numTrainTimesteps = int(getInt(sc, "numTrainTimesteps", 1000, 2, 100000));
  ds.scheduler.betaSchedule = fg::sds::parseBetaSchedule(getString(sc, "betaSchedule", "scaled_linear"));
  ds.scheduler.betaStart = getNumber(sc, "betaStart", 0.00085);
  ds.scheduler.betaEnd = getNumber(sc, "betaEnd", 0.012);
  ds.scheduler.prediction = fg::sds::parsePrediction(getString(sc, "predictionType", "epsilon"));
  std::string w = getString(d, "weighting", "one-minus-alphabar");
  if (w == "one-minus-alphabar") w = "1-alpha";
  ds.weighting = fg::sds::parseWeighting(w);
  ds.gradScale = getNumber(d, "gradScale", 1.0);
  ds.gradClamp = float(getNumber(d, "gradClamp", 0.0));
  std::string order = getString(d, "cfgOrder", "uncond-first");
  FG_CHECK_ARG(order == "uncond-first" || order == "cond-first", "diffusion.cfgOrder: expected 'uncond-first' or 'cond-first'");
  ds.cfgOrder = order == "uncond-first" ? fg::engines::CfgOrder::UncondFirst : fg::engines::CfgOrder::CondFirst;
  ds.frontMaxAzimuth = getNumber(d, "frontMaxAzimuth", 45.0);
  ds.backMinAzimuth = getNumber(d, "backMinAzimuth", 135.0);
  Napi::Object text = optObject(d, "text");
  ds.tokens = int(getInt(text, "tokens", 77, 1, 4096));
  ds.embedDim = int(getInt(text, "embedDim", 768, 1, 65536));
  tokensGiven = has(text, "tokens") || has(text, "embedDim");
  auto emb = [&](const char* key, std::vector<float>& out) {
    if (has(text, key)) out = copyTyped<float>(text, key, "diffusion.text");  // sizes checked below
  };
  emb("front", ds.textFront);
  emb("side", ds.textSide);
  emb("back", ds.textBack);
  emb("uncond", ds.textUncond);
  emb("texturePrior", ds.textPrior);
  // token ids of the prompts (TensorRT: encoded once at setup by the engines' text encoder)
  Napi::Object idObj = optObject(text, "ids");
  for (int k = 0; k < fg::pipe::kTextSlots; ++k) {
    const char* key = fg::pipe::textSlotName(k);
    if (!has(idObj, key)) continue;
    ids[size_t(k)] = copyTyped<int32_t>(idObj, key, "diffusion.text.ids");
    for (int32_t id : ids[size_t(k)])
      FG_CHECK_ARG(id >= 0 && id < kClipVocabSize, std::string("diffusion.text.ids.") + key + ": token id " + std::to_string(id) + " is outside CLIP's vocabulary [0, " + std::to_string(kClipVocabSize) + ")");
  }

  });
  // the engines folder (TensorRT), then the text conditioning's sizes
  {
    fg::pipe::DiffusionSettings& ds = in->diffusion;
    if (!ds.targetDenoiser) {
      if (enginesDir.empty())
        throw fg::Error(fg::ErrorCode::NoEngine, "diffusion.engines: the TensorRT denoiser needs the folder built by `npx faceg2e-native engines build` (docs/tensorrt.md §3); "
                                                 "without engines, use the target denoiser (diffusion.denoiser 'target')");
      net = std::make_shared<fg::pipe::NetworkRun>();
      net->folder = readEngineFolder(o.Env(), enginesDir, ds.scheduler);
      const fg::pipe::EngineFolder& f = net->folder;
      if (tokensGiven && (ds.tokens != f.maxTokens || ds.embedDim != f.embedDim))
        throw fg::Error(fg::ErrorCode::InvalidArgument, "diffusion.text: tokens x embedDim " + std::to_string(ds.tokens) + "x" + std::to_string(ds.embedDim) + " differ from the engines' " +
                                                            std::to_string(f.maxTokens) + "x" + std::to_string(f.embedDim) + " (model.maxTokens / model.textEmbedDim in " + f.manifestFile + ")");
      ds.tokens = f.maxTokens;
      ds.embedDim = f.embedDim;
      FG_CHECK_ARG(ds.codec == "vae", "diffusion.codec: the TensorRT denoiser uses the engines' VAE ('vae'), got '" + ds.codec + "'");
      net->ids = ids;
    } else {
      for (const auto& v : ids) FG_CHECK_ARG(v.empty(), "diffusion.text.ids: token ids need the TensorRT denoiser (diffusion.denoiser 'tensorrt'); the target denoiser takes no text");
    }
    const size_t e = size_t(ds.tokens) * ds.embedDim;
    const std::vector<float>* embs[fg::pipe::kTextSlots] = {&ds.textUncond, &ds.textFront, &ds.textSide, &ds.textBack, &ds.textPrior};
    for (int k = 0; k < fg::pipe::kTextSlots; ++k) {
      const char* key = fg::pipe::textSlotName(k);
      if (!embs[k]->empty())
        FG_CHECK_ARG(embs[k]->size() == e, std::string("diffusion.text.") + key + ": expected tokens x embedDim = " + std::to_string(ds.tokens) + "x" + std::to_string(ds.embedDim) +
                                               " = " + std::to_string(e) + " floats, got " + std::to_string(embs[k]->size()));
      if (!ids[size_t(k)].empty())
        FG_CHECK_ARG(ids[size_t(k)].size() == size_t(ds.tokens), std::string("diffusion.text.ids.") + key + ": expected " + std::to_string(ds.tokens) + " token ids (the padded prompt), got " +
                                                                  std::to_string(ids[size_t(k)].size()));
      FG_CHECK_ARG(ids[size_t(k)].empty() || embs[k]->empty(), std::string("diffusion.text: give either ids.") + key + " or the embedding " + key + ", not both");
    }
  }
  // geometry
  section("geometry", [&] {
  Napi::Object g = optObject(o, "geometry");
  fg::pipe::GeometrySettings& gs = in->geometry;
  gs.enabled = getBool(g, "enabled", true);
  gs.iterations = getInt(g, "iterations", 200, 0, 1 << 24);
  gs.renderSize = int(getInt(g, "renderSize", 224, 8, 2048));
  gs.views = int(getInt(g, "views", 1, 1, fg::pipe::kMaxViews));
  gs.optimizeExpression = getBool(g, "optimizeExpression", false);
  gs.init = optFloats(g, "initCoefficients", "geometry");
  if (has(g, "inputs")) {
    Napi::Value iv = g.Get("inputs");
    FG_CHECK_ARG(iv.IsArray(), "geometry.inputs: expected an array of 'grey' | 'normal'");
    Napi::Array a = iv.As<Napi::Array>();
    gs.inputs.clear();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      std::string s = a.Get(i).ToString().Utf8Value();
      if (s == "grey") gs.inputs.push_back(fg::pipe::GeometryInput::Grey);
      else if (s == "normal") gs.inputs.push_back(fg::pipe::GeometryInput::Normal);
      else throw fg::Error(fg::ErrorCode::InvalidArgument, "geometry.inputs[" + std::to_string(i) + "]: expected 'grey' or 'normal', got '" + s + "'");
    }
  }
  std::string sched = getString(g, "inputSchedule", "alternate");
  FG_CHECK_ARG(sched == "alternate" || sched == "random", "geometry.inputSchedule: expected 'alternate' or 'random'");
  gs.randomInputs = sched == "random";
  if (has(g, "lighting")) {
    std::vector<float> l = copyTyped<float>(g, "lighting", "geometry");
    FG_CHECK_ARG(!l.empty() && l.size() % 9 == 0, "geometry.lighting: expected a Float32Array of 9 SH coefficients per environment");
    for (size_t i = 0; i < l.size(); i += 9) {
      std::array<float, 9> a;
      std::copy(l.begin() + long(i), l.begin() + long(i) + 9, a.begin());
      gs.lighting.push_back(a);
    }
  }
  gs.albedo = float(getNumber(g, "albedo", 1.0));
  background(g, gs.background);
  Napi::Object gc = optObject(g, "camera");
  gs.elevation = range(gc, "elevation", gs.elevation, "geometry.camera");
  gs.azimuth = range(gc, "azimuth", gs.azimuth, "geometry.camera");
  gs.distance = range(gc, "distance", gs.distance, "geometry.camera");
  gs.fovDegrees = getNumber(gc, "fovDegrees", gs.fovDegrees);
  FG_CHECK_ARG(gs.distance.min > 0, "geometry.camera.distance.min: expected > 0");
  FG_CHECK_ARG(gs.fovDegrees > 0 && gs.fovDegrees < 170, "geometry.camera.fovDegrees: expected (0, 170)");
  gs.timesteps = timesteps(g, "geometry");
  gs.guidance = getNumber(g, "guidanceScale", 100.0);
  gs.optim = optim(g, "adan", 0.05, "geometry");
  Napi::Object reg = optObject(g, "regularization");
  gs.regIdentity = getNumber(reg, "identity", 1e-4);
  gs.regExpression = getNumber(reg, "expression", 1e-3);
  gs.antialias = getBool(g, "antialias", true);

  });
  // texture
  section("texture", [&] {
  Napi::Object t = optObject(o, "texture");
  fg::pipe::TextureSettings& ts = in->texture;
  ts.enabled = getBool(t, "enabled", true);
  ts.iterations = getInt(t, "iterations", 400, 0, 1 << 24);
  ts.coefficients = optFloats(t, "coefficients", "texture");
  Napi::Object lat = optObject(t, "latent");
  ts.latentIterations = getInt(lat, "iterations", std::min<int64_t>(200, ts.iterations), 0, 1 << 24);
  ts.latentSize = int(getInt(lat, "textureSize", 64, 4, 1024));
  ts.latentRenderSize = int(getInt(lat, "renderSize", 64, 4, 1024));
  std::string li = getString(lat, "init", "zeros");
  FG_CHECK_ARG(li == "zeros" || li == "random", "texture.latent.init: expected 'zeros' or 'random'");
  ts.latentRandomInit = li == "random";
  ts.latentInitScale = float(getNumber(lat, "initScale", 1.0));
  Napi::Object rgb = optObject(t, "rgb");
  ts.textureSize = int(getInt(rgb, "textureSize", 512, 4, 4096));
  ts.renderSize = int(getInt(rgb, "renderSize", 512, 8, 2048));
  ts.views = int(getInt(t, "views", 1, 1, fg::pipe::kMaxViews));
  ts.guidance = getNumber(t, "guidanceScale", 100.0);
  ts.timesteps = timesteps(t, "texture");
  Napi::Object cn = optObject(t, "controlNet");
  ts.controlEnabled = getBool(cn, "enabled", true);
  ts.controlScale = float(getNumber(cn, "scale", 1.0));
  ts.controlName = "controlnet_" + getString(cn, "type", "depth");
  Napi::Object pr = optObject(t, "prior");
  ts.priorEnabled = getBool(pr, "enabled", true);
  ts.priorWeight = float(getNumber(pr, "weight", 3.0));
  ts.priorGuidance = float(getNumber(pr, "guidanceScale", 1.0));
  priorType = getString(pr, "type", "canny");
  priorEngine = getString(pr, "engine", "");
  ts.priorControlName = priorEngine.empty() ? "controlnet_" + priorType : priorEngine;
  if (has(pr, "control")) {
    ts.priorControl = copyTyped<float>(pr, "control", "texture.prior");
    ts.priorControlSize = int(getInt(pr, "controlSize", 0, 1, 8192));
  }
  background(t, ts.background);
  Napi::Object tc = optObject(t, "cameras");
  std::string cm = getString(tc, "mode", "fixed");
  FG_CHECK_ARG(cm == "fixed" || cm == "random", "texture.cameras.mode: expected 'fixed' or 'random'");
  ts.fixedCameras = cm == "fixed";
  ts.fovDegrees = getNumber(tc, "fovDegrees", ts.fovDegrees);
  ts.fixed = poses(tc, "fixed", "texture.cameras");
  Napi::Object rnd = optObject(tc, "random");
  ts.elevation = range(rnd, "elevation", ts.elevation, "texture.cameras.random");
  ts.azimuth = range(rnd, "azimuth", ts.azimuth, "texture.cameras.random");
  ts.distance = range(rnd, "distance", ts.distance, "texture.cameras.random");
  ts.optim = optim(t, "adamw", 0.05, "texture");
  ts.antialias = getBool(t, "antialias", true);
  ts.clampTexture = getBool(t, "clamp", true);

  });
  // target head
  section("target", [&] {
  if (has(o, "target")) {
    Napi::Object tg = optObject(o, "target");
    in->target.coefficients = copyTyped<float>(tg, "coefficients", "target");
    if (has(tg, "texture")) {
      in->target.texture = copyTyped<float>(tg, "texture", "target");
      in->target.texWidth = int(getInt(tg, "textureWidth", 0, 1, 16384));
      in->target.texHeight = int(getInt(tg, "textureHeight", 0, 1, 16384));
    }
  }
  });
  // previews
  section("previews", [&] {
  Napi::Object pv = optObject(o, "previews");
  in->previews.views = poses(pv, "views", "previews");
  in->previews.size = int(getInt(pv, "size", 256, 8, 4096));
  in->previews.fovDegrees = getNumber(pv, "fovDegrees", 12.593637);
  in->previews.textured = getBool(pv, "textured", true);
  in->previews.shaded = getBool(pv, "shaded", true);
  });
  // checkpoint
  if (has(o, "checkpoint")) {
    in->hasCheckpoint = true;
    in->checkpoint = readCheckpoint(optObject(o, "checkpoint"));
  }
  if (net) finishNetwork(*in, *net, priorType, priorEngine);
  return {in, net};
}

Napi::Float32Array f32(Napi::Env env, const std::vector<float>& v) {
  Napi::Float32Array a = Napi::Float32Array::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(float));
  return a;
}

Napi::Object checkpointToJs(Napi::Env env, const fg::pipe::Checkpoint& c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("phase", c.phase);
  o.Set("iteration", double(c.iteration));
  o.Set("coefficients", f32(env, c.coefficients));
  Napi::Object g = Napi::Object::New(env);
  g.Set("m", f32(env, c.geomM));
  g.Set("v", f32(env, c.geomV));
  g.Set("d", f32(env, c.geomD));
  g.Set("prev", f32(env, c.geomPrev));
  o.Set("geometryOptimizer", g);
  if (!c.latent.empty()) {
    o.Set("latent", f32(env, c.latent));
    Napi::Object l = Napi::Object::New(env);
    l.Set("m", f32(env, c.latentM));
    l.Set("v", f32(env, c.latentV));
    o.Set("latentOptimizer", l);
  }
  if (!c.rgb.empty()) {
    o.Set("rgb", f32(env, c.rgb));
    Napi::Object r = Napi::Object::New(env);
    r.Set("m", f32(env, c.rgbM));
    r.Set("v", f32(env, c.rgbV));
    o.Set("rgbOptimizer", r);
  }
  o.Set("initialRmse", c.initialRmse);
  Napi::Object cu = Napi::Object::New(env);
  cu.Set("geometry", f32(env, c.geometryCurve));
  cu.Set("texture", f32(env, c.textureCurve));
  o.Set("curves", cu);
  Napi::Object tm = Napi::Object::New(env);
  tm.Set("geometryMs", c.geometryMs);
  tm.Set("textureMs", c.textureMs);
  o.Set("timings", tm);
  return o;
}

Napi::Value resultToJs(Napi::Env env, const fg::pipe::PipelineResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("status", r.status);
  Napi::Object tm = Napi::Object::New(env);
  tm.Set("setupMs", r.setupMs);
  tm.Set("geometryMs", r.geometryMs);
  tm.Set("textureMs", r.textureMs);
  o.Set("timings", tm);
  if (!r.profile.empty()) {
    Napi::Object p = Napi::Object::New(env);
    for (const auto& kv : r.profile) {
      Napi::Object s = Napi::Object::New(env);
      s.Set("meanMs", kv.second.count ? kv.second.totalMs / double(kv.second.count) : 0.0);
      s.Set("totalMs", kv.second.totalMs);
      s.Set("count", double(kv.second.count));
      p.Set(kv.first, s);
    }
    o.Set("profile", p);
  }
  if (r.status == "cancelled") {
    o.Set("checkpoint", checkpointToJs(env, r.checkpoint));
    return o;
  }
  o.Set("coefficients", f32(env, r.coefficients));
  o.Set("vertices", f32(env, r.vertices));
  o.Set("normals", f32(env, r.normals));
  if (!r.texture.empty()) {
    o.Set("texture", f32(env, r.texture));
    o.Set("textureSize", r.textureSize);
  }
  Napi::Object pv = Napi::Object::New(env);
  pv.Set("count", r.previewCount);
  pv.Set("size", r.previewSize);
  if (!r.previewTextured.empty()) pv.Set("textured", f32(env, r.previewTextured));
  if (!r.previewShaded.empty()) pv.Set("shaded", f32(env, r.previewShaded));
  o.Set("previews", pv);
  Napi::Object mt = Napi::Object::New(env);
  auto opt = [&](const char* k, double v) { mt.Set(k, v >= 0 ? Napi::Value(Napi::Number::New(env, v)) : env.Null()); };
  opt("vertexRmseRatio", r.vertexRmseRatio);
  opt("vertexRmseInitial", r.vertexRmseInitial);
  opt("vertexRmseFinal", r.vertexRmseFinal);
  opt("psnrDb", r.psnrDb);
  mt.Set("visibleTexels", double(r.visibleTexels));
  o.Set("metrics", mt);
  Napi::Object cu = Napi::Object::New(env);
  cu.Set("group", r.curveGroup);
  cu.Set("geometry", f32(env, r.geometryCurve));
  cu.Set("texture", f32(env, r.textureCurve));
  o.Set("curves", cu);
  o.Set("checkpoint", checkpointToJs(env, r.checkpoint));
  return o;
}

// runPipeline(input, onProgress?, token?) -> Promise<PipelineNativeResult>
Napi::Value runPipelineJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "runPipeline");
  ReadInput read = readInput(o);
  std::shared_ptr<fg::pipe::PipelineInput> in = read.input;
  std::shared_ptr<const fg::pipe::NetworkRun> net = read.network;
  fg::CancelTokenPtr token = tokenFrom(info.Length() > 2 ? info[2] : env.Undefined());
  return runAsync(env, "faceg2e:pipeline", info.Length() > 1 ? info[1] : env.Undefined(), token, [in, net, token](Progress& p) -> ResultFn {
    // the engines (TensorRT) reach makeBackend() through the run's DiffusionSettings while the run lasts
    std::optional<fg::pipe::NetworkAttachment> attached;
    if (net) attached.emplace(in->diffusion, net);
    auto result = std::make_shared<fg::pipe::PipelineResult>(
        fg::pipe::runPipeline(*in, token, [&p](const std::string& json) { p.send(json); }));
    return [result](Napi::Env e) { return resultToJs(e, *result); };
  });
  FGN_CATCH(env)
}

// pipelineShPresets() -> [{name, coefficients: number[9]}]: the built-in lighting environments.
Napi::Value shPresetsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto& p = fg::pipe::shPresets();
  Napi::Array a = Napi::Array::New(env, p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", p[i].name);
    Napi::Array c = Napi::Array::New(env, 9);
    for (uint32_t k = 0; k < 9; ++k) c.Set(k, p[i].c[k]);
    o.Set("coefficients", c);
    a.Set(uint32_t(i), o);
  }
  return a;
}

}  // namespace

void initPipeline(Napi::Env env, Napi::Object exports) {
  setFn(env, exports, "runPipeline", runPipelineJs);
  setFn(env, exports, "pipelineShPresets", shPresetsJs);
}

}  // namespace fgn
