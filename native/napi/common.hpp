// N-API helpers shared by every binding file: fg::Error -> JS Error with `code`, argument readers that
// name the field and the expected value, and host<->device staging of typed arrays.
// Kernels never include this file; only native/napi/*.cpp do.
#pragma once
#include <napi.h>
#include <cstring>
#include <functional>
#include <string>
#include <vector>
#include "core/device.hpp"
#include "core/error.hpp"
#include "core/memory.hpp"

namespace fgn {

Napi::Error makeError(Napi::Env env, fg::ErrorCode code, const std::string& message);
Napi::Error makeError(Napi::Env env, const char* code, const std::string& message);

// Wrap a binding body: fg::Error and std::exception become JS errors with stable codes.
#define FGN_TRY try {
#define FGN_CATCH(env)                                                                  \
  }                                                                                     \
  catch (const fg::Error& e) { throw ::fgn::makeError(env, e.code(), e.what()); }        \
  catch (const Napi::Error&) { throw; }                                                 \
  catch (const std::bad_alloc&) { throw ::fgn::makeError(env, fg::ErrorCode::OutOfMemory, "host allocation failed"); } \
  catch (const std::exception& e) { throw ::fgn::makeError(env, fg::ErrorCode::Internal, e.what()); }

Napi::Object argObject(const Napi::CallbackInfo& info, size_t i, const char* what);
double getNumber(const Napi::Object& o, const char* key, double def);
double requireNumber(const Napi::Object& o, const char* key);
int64_t requireInt(const Napi::Object& o, const char* key, int64_t lo, int64_t hi);
int64_t getInt(const Napi::Object& o, const char* key, int64_t def, int64_t lo, int64_t hi);
bool getBool(const Napi::Object& o, const char* key, bool def);
std::string getString(const Napi::Object& o, const char* key, const std::string& def);
uint64_t getU64(const Napi::Object& o, const char* key, uint64_t def);  // number or bigint
fg::Device getDevice(const Napi::Object& o, fg::Device def = fg::Device::CPU);  // and requireCuda() for 'cuda'

template <typename TA> const char* typeNameOf();
template <> inline const char* typeNameOf<Napi::Float32Array>() { return "Float32Array"; }
template <> inline const char* typeNameOf<Napi::Int32Array>() { return "Int32Array"; }
template <> inline const char* typeNameOf<Napi::Uint32Array>() { return "Uint32Array"; }
template <> inline const char* typeNameOf<Napi::Uint16Array>() { return "Uint16Array"; }
template <> inline const char* typeNameOf<Napi::Uint8Array>() { return "Uint8Array"; }
template <> inline const char* typeNameOf<Napi::Float64Array>() { return "Float64Array"; }

template <typename T> constexpr napi_typedarray_type napiArrayType();
template <> constexpr napi_typedarray_type napiArrayType<float>() { return napi_float32_array; }
template <> constexpr napi_typedarray_type napiArrayType<double>() { return napi_float64_array; }
template <> constexpr napi_typedarray_type napiArrayType<int32_t>() { return napi_int32_array; }
template <> constexpr napi_typedarray_type napiArrayType<uint32_t>() { return napi_uint32_array; }
template <> constexpr napi_typedarray_type napiArrayType<uint16_t>() { return napi_uint16_array; }
template <> constexpr napi_typedarray_type napiArrayType<uint8_t>() { return napi_uint8_array; }

// requireTyped<float>(opts, "positions", n*3) -> Napi::Float32Array, or E_INVALID_ARGUMENT naming the field.
template <typename T>
Napi::TypedArrayOf<T> requireTyped(const Napi::Object& o, const char* key, size_t expectedLen = SIZE_MAX) {
  using TA = Napi::TypedArrayOf<T>;
  Napi::Value v = o.Get(key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napiArrayType<T>())
    throw fg::Error(fg::ErrorCode::InvalidArgument, std::string(key) + ": expected a " + typeNameOf<TA>());
  TA a = v.As<TA>();
  if (expectedLen != SIZE_MAX && a.ElementLength() != expectedLen)
    throw fg::Error(fg::ErrorCode::InvalidArgument, std::string(key) + ": expected " + std::to_string(expectedLen) +
                                                       " elements, got " + std::to_string(a.ElementLength()));
  return a;
}

// A host array seen by an op on `device`: on the CPU the op works in place on the JS memory; on CUDA the
// data is uploaded (in) and/or downloaded by finish() (out).
template <typename T>
class Staged {
 public:
  Staged(fg::Device d, T* host, size_t n, bool upload) : d_(d), host_(host), n_(n) {
    if (d == fg::Device::CUDA) {
      buf_ = fg::Buffer<T>(d, n);
      if (upload) buf_.upload(host, n);
      else buf_.zero();
    }
  }
  T* ptr() { return d_ == fg::Device::CUDA ? buf_.data() : host_; }
  void finish() { if (d_ == fg::Device::CUDA) buf_.download(host_, n_); }

 private:
  fg::Device d_;
  T* host_;
  size_t n_;
  fg::Buffer<T> buf_;
};

template <typename T>
Staged<T> stageIn(fg::Device d, Napi::TypedArrayOf<T> a) { return Staged<T>(d, a.Data(), a.ElementLength(), true); }
template <typename T>
Staged<T> stageOut(fg::Device d, Napi::TypedArrayOf<T> a) { return Staged<T>(d, a.Data(), a.ElementLength(), false); }

// Register `fn` as exports[name].
void setFn(Napi::Env env, Napi::Object exports, const char* name, Napi::Function::Callback fn);

}  // namespace fgn
