// Bindings for native/core: device info, the RNG twin, and a cancellable demo task used by the tests of the
// async pattern.
#include <chrono>
#include <thread>
#include "core/device.hpp"
#include "core/philox.hpp"
#include "core/rng.hpp"
#include "napi/async.hpp"
#include "napi/common.hpp"
#include "napi/domains.hpp"

namespace fgn {
namespace {

Napi::Value cudaInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  fg::CudaInfo ci = fg::queryCuda();
  Napi::Object o = Napi::Object::New(env);
  o.Set("compiledWithCuda", ci.compiledWithCuda);
  o.Set("runtimeVersion", ci.runtimeVersion);
  o.Set("driverVersion", ci.driverVersion);
  o.Set("error", ci.error.empty() ? env.Null() : Napi::String::New(env, ci.error));
  o.Set("builtArchitectures", ci.builtArchitectures);
  Napi::Array gpus = Napi::Array::New(env, ci.gpus.size());
  for (size_t i = 0; i < ci.gpus.size(); ++i) {
    const auto& g = ci.gpus[i];
    Napi::Object go = Napi::Object::New(env);
    go.Set("index", g.index);
    go.Set("name", g.name);
    go.Set("totalMemory", double(g.totalMemory));
    go.Set("freeMemory", double(g.freeMemory));
    go.Set("computeCapability", std::to_string(g.ccMajor) + "." + std::to_string(g.ccMinor));
    go.Set("multiprocessors", g.multiprocessors);
    go.Set("supported", g.supported);
    gpus.Set(uint32_t(i), go);
  }
  o.Set("gpus", gpus);
  return o;
  FGN_CATCH(env)
}

fg::RngRequest rngRequest(const Napi::Object& o) {
  fg::RngRequest r;
  r.seed = getU64(o, "seed", 0);
  r.stream = getU64(o, "stream", 0);
  r.offset = getU64(o, "offset", 0);
  std::string dist = getString(o, "distribution", "uniform");
  if (dist == "uniform") r.dist = fg::Distribution::Uniform;
  else if (dist == "normal") r.dist = fg::Distribution::Normal;
  else throw fg::Error(fg::ErrorCode::InvalidArgument, "distribution: expected 'uniform' or 'normal', got '" + dist + "'");
  r.mean = float(getNumber(o, "mean", 0.0));
  r.scale = float(getNumber(o, "scale", 1.0));
  return r;
}

// rngFill({seed, stream, offset, count, distribution, mean, scale, device}) -> Float32Array
Napi::Value rngFill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "rngFill");
  fg::RngRequest r = rngRequest(o);
  int64_t n = requireInt(o, "count", 0, int64_t(1) << 31);
  fg::Device d = getDevice(o);
  Napi::Float32Array out = Napi::Float32Array::New(env, size_t(n));
  auto s = stageOut(d, out);
  fg::rngFill(d, r, s.ptr(), n);
  s.finish();
  return out;
  FGN_CATCH(env)
}

// rngRaw({seed, stream, offset, count, device}) -> Uint32Array (the raw Philox words)
Napi::Value rngRaw(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "rngRaw");
  uint64_t seed = getU64(o, "seed", 0), stream = getU64(o, "stream", 0), offset = getU64(o, "offset", 0);
  int64_t n = requireInt(o, "count", 0, int64_t(1) << 31);
  fg::Device d = getDevice(o);
  Napi::Uint32Array out = Napi::Uint32Array::New(env, size_t(n));
  auto s = stageOut(d, out);
  if (d == fg::Device::CPU) fg::rngRawCpu(seed, stream, offset, s.ptr(), n);
#if FG_HAVE_CUDA
  else fg::rngRawCuda(seed, stream, offset, s.ptr(), n, nullptr);
#endif
  s.finish();
  return out;
  FGN_CATCH(env)
}

// philoxBlock(counter: Uint32Array(4), key: Uint32Array(2)) -> Uint32Array(4): the raw bijection, for known-answer tests.
Napi::Value philoxBlock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = Napi::Object::New(env);
  o.Set("counter", info[0]);
  o.Set("key", info[1]);
  auto c = requireTyped<uint32_t>(o, "counter", 4);
  auto k = requireTyped<uint32_t>(o, "key", 2);
  fg::philox::U4 r = fg::philox::philox4x32_10(fg::philox::U4{c[0], c[1], c[2], c[3]}, k[0], k[1]);
  Napi::Uint32Array out = Napi::Uint32Array::New(env, 4);
  out[0] = r.x; out[1] = r.y; out[2] = r.z; out[3] = r.w;
  return out;
  FGN_CATCH(env)
}

// sleepTask({steps, stepMs}, onProgress, token) -> Promise<number of steps done>: exercises the async pattern.
Napi::Value sleepTask(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "sleepTask");
  int64_t steps = getInt(o, "steps", 10, 0, 100000);
  int64_t stepMs = getInt(o, "stepMs", 10, 0, 10000);
  fg::CancelTokenPtr token = tokenFrom(info[2]);
  return runAsync(env, "faceg2e:sleepTask", info[1], token, [=](Progress& p) -> ResultFn {
    for (int64_t i = 0; i < steps; ++i) {
      if (token) token->check("sleepTask");
      std::this_thread::sleep_for(std::chrono::milliseconds(stepMs));
      p.send("{\"step\":" + std::to_string(i + 1) + ",\"total\":" + std::to_string(steps) + "}");
    }
    return [steps](Napi::Env e) { return Napi::Number::New(e, double(steps)); };
  });
  FGN_CATCH(env)
}

}  // namespace

void initCore(Napi::Env env, Napi::Object exports) {
  setFn(env, exports, "cudaInfo", cudaInfo);
  setFn(env, exports, "rngFill", rngFill);
  setFn(env, exports, "rngRaw", rngRaw);
  setFn(env, exports, "philoxBlock", philoxBlock);
  setFn(env, exports, "sleepTask", sleepTask);
  initCancel(env, exports);
}

}  // namespace fgn
