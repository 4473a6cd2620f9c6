#include "sds/sds_bench.hpp"
#include "core/device.hpp"

namespace fg {
namespace sds {

#if !FG_HAVE_CUDA
BenchResult benchTexturePhase(const BenchConfig&) {
  requireCuda();
  return {};
}
#endif

}  // namespace sds
}  // namespace fg
