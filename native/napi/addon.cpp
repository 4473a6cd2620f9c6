// The addon's entry point. Bindings live per domain in native/napi/*.cpp; kernels never see N-API.
#include <napi.h>
#include "napi/domains.hpp"

namespace {
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  fgn::initCore(env, exports);
  if (fgn::initRaster) fgn::initRaster(env, exports);
  if (fgn::initMorph) fgn::initMorph(env, exports);
  if (fgn::initSds) fgn::initSds(env, exports);
  if (fgn::initEngines) fgn::initEngines(env, exports);
  if (fgn::initPipeline) fgn::initPipeline(env, exports);
#if FG_HAVE_CUDA
  exports.Set("compiledWithCuda", Napi::Boolean::New(env, true));
#else
  exports.Set("compiledWithCuda", Napi::Boolean::New(env, false));
#endif
  return exports;
}
}  // namespace

NODE_API_MODULE(faceg2e, Init)
