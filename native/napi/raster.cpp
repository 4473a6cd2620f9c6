// Bindings for native/raster.
#include "napi/common.hpp"
#include "napi/domains.hpp"

namespace fgn {

void initRaster(Napi::Env env, Napi::Object exports) {
  (void)env;
  (void)exports;
}

}  // namespace fgn
