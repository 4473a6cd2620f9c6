#include "core/rng.hpp"
#include "core/device.hpp"
#include "core/nvtx.hpp"
#include "core/parallel.hpp"
#include "core/rng_math.hpp"

namespace fg {

void rngFillCpu(const RngRequest& r, float* out, int64_t n) {
  parallelFor(n, [&](int64_t i) { out[i] = rngElement(r, static_cast<uint64_t>(i)); });
}

void rngRawCpu(uint64_t seed, uint64_t stream, uint64_t offset, uint32_t* out, int64_t n) {
  parallelFor(n, [&](int64_t i) { out[i] = rngRawElement(seed, stream, offset + static_cast<uint64_t>(i)); });
}

void rngFill(Device d, const RngRequest& r, float* out, int64_t n, StreamHandle s) {
  NvtxRange range("rng/fill");
  FG_CHECK_ARG(n >= 0, "rng: count must be >= 0");
  FG_TWIN_CALL(d, rngFillCpu(r, out, n), rngFillCuda(r, out, n, s));
}

}  // namespace fg
