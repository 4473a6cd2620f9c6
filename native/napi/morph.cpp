// Bindings for native/morph.
#include "napi/common.hpp"
#include "napi/domains.hpp"

namespace fgn {

void initMorph(Napi::Env env, Napi::Object exports) {
  (void)env;
  (void)exports;
}

}  // namespace fgn
