#include "napi/common.hpp"
#include <cmath>
#include <limits>

namespace fgn {

Napi::Error makeError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Value().Set("code", Napi::String::New(env, code));
  return e;
}

Napi::Error makeError(Napi::Env env, fg::ErrorCode code, const std::string& message) {
  return makeError(env, fg::errorCodeName(code), message);
}

Napi::Object argObject(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsObject())
    throw fg::Error(fg::ErrorCode::InvalidArgument, std::string(what) + ": expected an options object as argument " + std::to_string(i + 1));
  return info[i].As<Napi::Object>();
}

double getNumber(const Napi::Object& o, const char* key, double def) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsNumber()) throw fg::Error(fg::ErrorCode::InvalidArgument, std::string(key) + ": expected a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw fg::Error(fg::ErrorCode::InvalidArgument, std::string(key) + ": expected a finite number");
  return d;
}

double requireNumber(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) throw fg::Error(fg::ErrorCode::InvalidArgument, std::string(key) + ": required number is missing");
  return getNumber(o, key, 0);
}

static int64_t checkedInt(double d, const char* key, int64_t lo, int64_t hi) {
  if (d != std::floor(d) || d < double(lo) || d > double(hi))
    throw fg::Error(fg::ErrorCode::InvalidArgument, std::string(key) + ": expected an integer in [" + std::to_string(lo) + ", " +
                                                       std::to_string(hi) + "], got " + std::to_string(d));
  return static_cast<int64_t>(d);
}

int64_t requireInt(const Napi::Object& o, const char* key, int64_t lo, int64_t hi) { return checkedInt(requireNumber(o, key), key, lo, hi); }
int64_t getInt(const Napi::Object& o, const char* key, int64_t def, int64_t lo, int64_t hi) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  return checkedInt(getNumber(o, key, 0), key, lo, hi);
}

bool getBool(const Napi::Object& o, const char* key, bool def) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsBoolean()) throw fg::Error(fg::ErrorCode::InvalidArgument, std::string(key) + ": expected a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string getString(const Napi::Object& o, const char* key, const std::string& def) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsString()) throw fg::Error(fg::ErrorCode::InvalidArgument, std::string(key) + ": expected a string");
  return v.As<Napi::String>().Utf8Value();
}

uint64_t getU64(const Napi::Object& o, const char* key, uint64_t def) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (v.IsBigInt()) {
    bool lossless = true;
    uint64_t r = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw fg::Error(fg::ErrorCode::InvalidArgument, std::string(key) + ": expected a bigint in [0, 2^64)");
    return r;
  }
  return static_cast<uint64_t>(checkedInt(getNumber(o, key, 0), key, 0, (int64_t(1) << 53)));
}

fg::Device getDevice(const Napi::Object& o, fg::Device def) {
  fg::Device d = def;
  Napi::Value v = o.Get("device");
  if (!v.IsUndefined() && !v.IsNull()) {
    if (!v.IsString()) throw fg::Error(fg::ErrorCode::InvalidArgument, "device: expected 'cpu' or 'cuda'");
    d = fg::parseDevice(v.As<Napi::String>().Utf8Value());
  }
  if (d == fg::Device::CUDA) fg::requireCuda();
  return d;
}

void setFn(Napi::Env env, Napi::Object exports, const char* name, Napi::Function::Callback fn) {
  exports.Set(name, Napi::Function::New(env, fn, name));
}

}  // namespace fgn
