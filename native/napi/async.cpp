#include "napi/async.hpp"
#include <vector>
#include "napi/common.hpp"

namespace fgn {
namespace {

class TaskWorker : public Napi::AsyncProgressQueueWorker<char> {
 public:
  TaskWorker(Napi::Env env, const char* name, Napi::Function cb, Task task)
      : Napi::AsyncProgressQueueWorker<char>(cb, name), deferred_(Napi::Promise::Deferred::New(env)), task_(std::move(task)) {}

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute(const ExecutionProgress& progress) override {
    struct P : Progress {
      const ExecutionProgress& ep;
      explicit P(const ExecutionProgress& e) : ep(e) {}
      void send(const std::string& json) override { ep.Send(json.data(), json.size()); }
    } p(progress);
    try {
      result_ = task_(p);
    } catch (const fg::Error& e) {
      code_ = fg::errorCodeName(e.code());
      message_ = e.what();
    } catch (const std::bad_alloc&) {
      code_ = "E_OUT_OF_MEMORY";
      message_ = "host allocation failed";
    } catch (const std::exception& e) {
      code_ = "E_INTERNAL";
      message_ = e.what();
    }
  }

  void OnProgress(const char* data, size_t count) override {
    if (Callback().IsEmpty()) return;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Object json = env.Global().Get("JSON").As<Napi::Object>();
    Napi::Value obj = json.Get("parse").As<Napi::Function>().Call(json, {Napi::String::New(env, data, count)});
    Callback().Call({obj});
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (!code_.empty()) {
      deferred_.Reject(makeError(env, code_.c_str(), message_).Value());
      return;
    }
    try {
      deferred_.Resolve(result_ ? result_(env) : env.Undefined());
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (const fg::Error& e) {
      deferred_.Reject(makeError(env, e.code(), e.what()).Value());
    } catch (const std::exception& e) {
      deferred_.Reject(makeError(env, "E_INTERNAL", e.what()).Value());
    }
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Task task_;
  ResultFn result_;
  std::string code_, message_;
};

}  // namespace

Napi::Value runAsync(Napi::Env env, const char* name, Napi::Value onProgress, fg::CancelTokenPtr, Task task) {
  Napi::Function cb = onProgress.IsFunction() ? onProgress.As<Napi::Function>() : Napi::Function::New(env, [](const Napi::CallbackInfo&) {});
  auto* w = new TaskWorker(env, name, cb, std::move(task));
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

fg::CancelTokenPtr tokenFrom(Napi::Value v) {
  if (v.IsUndefined() || v.IsNull()) return nullptr;
  if (!v.IsExternal()) throw fg::Error(fg::ErrorCode::InvalidArgument, "cancel token: expected a handle from createCancelToken()");
  return *v.As<Napi::External<fg::CancelTokenPtr>>().Data();
}

void initCancel(Napi::Env env, Napi::Object exports) {
  setFn(env, exports, "createCancelToken", [](const Napi::CallbackInfo& info) -> Napi::Value {
    auto* holder = new fg::CancelTokenPtr(std::make_shared<fg::CancelToken>());
    return Napi::External<fg::CancelTokenPtr>::New(info.Env(), holder, [](Napi::Env, fg::CancelTokenPtr* p) { delete p; });
  });
  setFn(env, exports, "cancel", [](const Napi::CallbackInfo& info) -> Napi::Value {
    FGN_TRY
    auto t = tokenFrom(info[0]);
    if (t) t->cancel();
    return info.Env().Undefined();
    FGN_CATCH(info.Env())
  });
}

}  // namespace fgn
