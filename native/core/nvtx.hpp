// NVTX ranges for nsys (header-only nvtx3 from the CUDA toolkit). No-ops in a CPU-only build.
//   { fg::NvtxRange r("raster/forward"); ... }
#pragma once
#if FG_HAVE_CUDA
#include <nvtx3/nvToolsExt.h>
#endif

namespace fg {

class NvtxRange {
 public:
  explicit NvtxRange(const char* name) {
#if FG_HAVE_CUDA
    nvtxRangePushA(name);
#else
    (void)name;
#endif
  }
  ~NvtxRange() {
#if FG_HAVE_CUDA
    nvtxRangePop();
#endif
  }
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;
};

}  // namespace fg
