// Bindings for native/pipeline.
#include "napi/common.hpp"
#include "napi/domains.hpp"

namespace fgn {

void initPipeline(Napi::Env env, Napi::Object exports) {
  (void)env;
  (void)exports;
}

}  // namespace fgn
