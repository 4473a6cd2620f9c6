// Long native work off the event loop: a Promise, progress events through a thread-safe queue, and
// cancellation through a CancelToken that JS trips from an AbortSignal.
//
//   return fgn::runAsync(env, "faceg2e:pipeline", onProgress, token, [=](fgn::Progress& p) {
//     ... p.send(json) ...; token->check("pipeline");
//     return fgn::ResultFn([data](Napi::Env env) { return toJs(env, data); });
//   });
#pragma once
#include <napi.h>
#include <functional>
#include <memory>
#include <string>
#include "core/cancel.hpp"

namespace fgn {

using ResultFn = std::function<Napi::Value(Napi::Env)>;

class Progress {
 public:
  virtual ~Progress() = default;
  // A JSON object text, delivered in order to the JS onProgress callback as a parsed object.
  virtual void send(const std::string& json) = 0;
};

using Task = std::function<ResultFn(Progress&)>;

// `onProgress` may be undefined. `token` may be null (not cancellable).
Napi::Value runAsync(Napi::Env env, const char* name, Napi::Value onProgress, fg::CancelTokenPtr token, Task task);

// JS handle <-> CancelToken: exports.createCancelToken() -> External; exports.cancel(handle)
fg::CancelTokenPtr tokenFrom(Napi::Value v);  // undefined -> nullptr
void initCancel(Napi::Env env, Napi::Object exports);

}  // namespace fgn
