// CPU twins of native/pipeline/kernels.hpp and the dispatchers. Element-parallel ops run on fg::parallelFor
// (each index writes only its own outputs); scatters into shared gradients run serially in a fixed order, so a
// CPU run is bit-reproducible whatever the thread count (the CUDA twins get the same property from fixed-point
// integer atomics; the CPU ignores their ShadeParams::*Fixed scratch).
#include "pipeline/kernels.hpp"
#include <vector>
#include "core/device.hpp"
#include "core/nvtx.hpp"
#include "core/parallel.hpp"

namespace fg {
namespace pipe {
namespace {

template <typename F>
void forEach(int64_t n, F&& f, int64_t minPer = 2048) { fg::parallelFor(n, f, minPer); }

void clipTransformCpu(const ClipParams& p) { forEach(int64_t(p.nViews) * p.V, [&](int64_t i) { clipElement(p, i); }, 2048); }
void clipTransformBackwardCpu(const ClipParams& p) { forEach(p.V, [&](int64_t v) { clipGradElement(p, v); }, 2048); }

void shadeCpu(const ShadeParams& p) {
  forEach(int64_t(p.nViews) * p.width * p.height, [&](int64_t i) { shadePixel(p, i); }, 2048);
}

void shadeBackwardGeometryCpu(const ShadeParams& p) {
  const int64_t n = int64_t(p.nViews) * p.width * p.height;
  const int64_t plane = int64_t(p.width) * p.height;
  for (int64_t i = 0; i < n; ++i) {
    if (p.triId[i] < 0) continue;
    PixelGeomGrad g = shadeGeomGradPixel(p, i);
    if (!g.any) continue;
    int view = int(i / plane);
    for (int k = 0; k < 3; ++k) {
      if (p.gradNormals)
        for (int c = 0; c < 3; ++c) p.gradNormals[3 * int64_t(g.v[k]) + c] += g.gN[k][c];
      if (p.gradClip) {
        float* gc = p.gradClip + 4 * (int64_t(view) * p.V + g.v[k]);
        for (int c = 0; c < 4; ++c) gc[c] += g.gClip[k][c];
      }
    }
  }
}

void shadeBackwardTextureCpu(const ShadeParams& p) {
  const int64_t plane = int64_t(p.width) * p.height;
  const int64_t n = int64_t(p.nViews) * plane;
  for (int64_t i = 0; i < n; ++i) {
    Bilinear bl;
    const float* go;
    if (!shadeTexPixel(p, i, bl, go)) continue;
    for (int k = 0; k < 4; ++k) {
      if (p.texWeight) p.texWeight[bl.idx[k]] += bl.w[k];
      if (p.gradTex && go)
        for (int c = 0; c < p.channels; ++c) p.gradTex[bl.idx[k] * p.channels + c] += bl.w[k] * go[c * plane];
    }
  }
}

void sumSquaresCpu(const SumSqParams& p) {
  // fixed blocking: identical whatever the thread count
  const int64_t block = 4096;
  const bool two = p.out2 != nullptr;
  int64_t nb = (p.count + block - 1) / block;
  std::vector<double> part(size_t(nb > 0 ? nb : 1), 0.0), part2(two ? part.size() : 0, 0.0);
  forEach(nb, [&](int64_t b) {
    double s = 0.0, s2 = 0.0;
    int64_t e = (b + 1) * block < p.count ? (b + 1) * block : p.count;
    for (int64_t i = b * block; i < e; ++i) {
      s += sumSqTerm(p, i);
      if (two) s2 += sumSqTerm2(p, i);
    }
    part[size_t(b)] = s;
    if (two) part2[size_t(b)] = s2;
  }, 1);
  double total = 0.0, total2 = 0.0;
  for (int64_t b = 0; b < nb; ++b) {
    total += part[size_t(b)];
    if (two) total2 += part2[size_t(b)];
  }
  *p.out = p.accumulate ? *p.out + float(total) : float(total);
  if (two) *p.out2 = p.accumulate ? *p.out2 + float(total2) : float(total2);
}

}  // namespace

#if FG_HAVE_CUDA
#define FG_PIPE_DISPATCH(cpuCall, cudaCall, name) \
  NvtxRange r_("pipeline/" name);                 \
  if (d == Device::CUDA) { cudaCall; } else { cpuCall; }
#else
#define FG_PIPE_DISPATCH(cpuCall, cudaCall, name) \
  NvtxRange r_("pipeline/" name);                 \
  (void)s;                                        \
  if (d == Device::CUDA) requireCuda();           \
  cpuCall;
#endif

void clipTransform(Device d, const ClipParams& p, StreamHandle s) { FG_PIPE_DISPATCH(clipTransformCpu(p), clipTransformCuda(p, s), "clip"); }
void clipTransformBackward(Device d, const ClipParams& p, StreamHandle s) {
  FG_PIPE_DISPATCH(clipTransformBackwardCpu(p), clipTransformBackwardCuda(p, s), "clip_backward");
}
void shade(Device d, const ShadeParams& p, StreamHandle s) { FG_PIPE_DISPATCH(shadeCpu(p), shadeCuda(p, s), "shade"); }
void shadeBackwardGeometry(Device d, const ShadeParams& p, StreamHandle s) {
  FG_CHECK_ARG(d != Device::CUDA || !p.gradNormals || p.gradNormalsFixed,
               "shadeBackwardGeometry: gradNormalsFixed: expected zeroed int64 scratch of V*3+1 on CUDA");
  FG_CHECK_ARG(d != Device::CUDA || !p.gradClip || p.gradClipFixed,
               "shadeBackwardGeometry: gradClipFixed: expected zeroed int64 scratch of nViews*V*4+1 on CUDA");
  FG_PIPE_DISPATCH(shadeBackwardGeometryCpu(p), shadeBackwardGeometryCuda(p, s), "shade_backward_geometry");
}
void shadeBackwardTexture(Device d, const ShadeParams& p, StreamHandle s) {
  FG_CHECK_ARG(d != Device::CUDA || !p.gradTex || !p.gradOut || p.gradTexFixed,
               "shadeBackwardTexture: gradTexFixed: expected zeroed int64 scratch of texH*texW*channels+1 on CUDA");
  FG_PIPE_DISPATCH(shadeBackwardTextureCpu(p), shadeBackwardTextureCuda(p, s), "shade_backward_texture");
}
void elementwise(Device d, const ElementParams& p, StreamHandle s) {
  FG_PIPE_DISPATCH(forEach(p.count, [&](int64_t i) { elementOp(p, i); }, 8192), elementwiseCuda(p, s), "elementwise");
}
void codecAdjoint(Device d, const CodecAdjointParams& p, StreamHandle s) {
  FG_PIPE_DISPATCH(forEach(int64_t(p.n) * 3 * p.height * p.width, [&](int64_t i) { codecAdjointElement(p, i); }, 8192), codecAdjointCuda(p, s),
                   "codec_adjoint");
}
void layout(Device d, const LayoutParams& p, int64_t dstCount, StreamHandle s) {
  FG_PIPE_DISPATCH(forEach(dstCount, [&](int64_t i) { layoutElement(p, i); }, 8192), layoutCuda(p, dstCount, s), "layout");
}
void sumSquares(Device d, const SumSqParams& p, StreamHandle s) {
  FG_CHECK_ARG(p.a && p.out && p.count >= 0, "sumSquares: expected a, out and count >= 0");
  FG_CHECK_ARG(!p.out2 || p.a2, "sumSquares: out2 needs a2");
  FG_CHECK_ARG((p.partials == nullptr) == (p.counter == nullptr), "sumSquares: partials and counter go together");
  FG_PIPE_DISPATCH(sumSquaresCpu(p), sumSquaresCuda(p, s), "sum_squares");
}
void transpose(Device d, const TransposeParams& p, StreamHandle s) {
  FG_PIPE_DISPATCH(forEach(int64_t(p.n) * p.height * p.width, [&](int64_t j) { transposePixel(p, j); }, 4096), transposeCuda(p, s), "transpose");
}
void compose(Device d, const ComposeParams& p, StreamHandle s) {
  FG_PIPE_DISPATCH(forEach(int64_t(p.n) * 3 * p.height * p.width, [&](int64_t i) { composeElement(p, i); }, 8192), composeCuda(p, s), "compose");
}
void composeBackward(Device d, const ComposeParams& p, StreamHandle s) {
  FG_PIPE_DISPATCH(forEach(int64_t(p.n) * p.height * p.width, [&](int64_t i) { composeGradElement(p, i); }, 8192), composeBackwardCuda(p, s),
                   "compose_backward");
}

}  // namespace pipe
}  // namespace fg
