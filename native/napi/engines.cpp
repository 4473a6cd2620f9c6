// Bindings for native/engines.
#include "napi/common.hpp"
#include "napi/domains.hpp"

namespace fgn {

void initEngines(Napi::Env env, Napi::Object exports) {
  (void)env;
  (void)exports;
}

}  // namespace fgn
