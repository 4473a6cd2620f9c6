// Bindings for native/sds.
#include "napi/common.hpp"
#include "napi/domains.hpp"

namespace fgn {

void initSds(Napi::Env env, Napi::Object exports) {
  (void)env;
  (void)exports;
}

}  // namespace fgn
