// The rasteriser: RasterContext (topology, workspace carving, dispatch) and the CPU twin of every pass.
#include "raster/raster.hpp"
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>
#include "core/device.hpp"
#include "core/error.hpp"
#include "core/nvtx.hpp"
#include "core/parallel.hpp"
#include "raster/raster_impl.hpp"

namespace fg {
namespace raster {

// ---- topology -------------------------------------------------------------------------------------------------

RasterContext::RasterContext(Device device, const int32_t* hostTri, int numTriangles, int numVertices)
    : dev_(device), T_(numTriangles), P_(numVertices) {
  FG_CHECK_ARG(numTriangles > 0, "tri: expected at least one triangle, got " + std::to_string(numTriangles));
  FG_CHECK_ARG(numVertices > 0, "positions: expected at least one vertex, got " + std::to_string(numVertices));
  FG_CHECK_ARG(hostTri != nullptr, "tri: expected a [T,3] index array");
  for (int64_t i = 0; i < int64_t(numTriangles) * 3; ++i)
    if (hostTri[i] < 0 || hostTri[i] >= numVertices)
      fail(ErrorCode::InvalidArgument, "tri: index " + std::to_string(hostTri[i]) + " at triangle " + std::to_string(i / 3) +
                                           " is outside [0, " + std::to_string(numVertices) + ")");
  if (device == Device::CUDA) requireCuda();
  // adjacency: sort the 3T directed edges by their undirected key
  std::vector<std::pair<uint64_t, int32_t>> edges(size_t(numTriangles) * 3);
  for (int t = 0; t < numTriangles; ++t)
    for (int i = 0; i < 3; ++i) {
      uint32_t a = uint32_t(hostTri[3 * t + (i + 1) % 3]), b = uint32_t(hostTri[3 * t + (i + 2) % 3]);
      uint64_t key = (uint64_t(std::min(a, b)) << 32) | std::max(a, b);
      edges[size_t(t) * 3 + i] = {key, t * 3 + i};
    }
  std::sort(edges.begin(), edges.end());
  std::vector<int32_t> adj(size_t(numTriangles) * 3, -1);
  for (size_t i = 0; i < edges.size();) {
    size_t j = i;
    while (j < edges.size() && edges[j].first == edges[i].first) ++j;
    if (j - i == 2) {  // manifold edge; boundary and non-manifold edges count as silhouettes
      int32_t x = edges[i].second, y = edges[i + 1].second;
      adj[x] = y / 3;
      adj[y] = x / 3;
    }
    i = j;
  }
  std::vector<int32_t> off(size_t(numVertices) + 1, 0), list(size_t(numTriangles) * 3);
  for (int64_t i = 0; i < int64_t(numTriangles) * 3; ++i) off[hostTri[i] + 1]++;
  for (int v = 0; v < numVertices; ++v) off[v + 1] += off[v];
  std::vector<int32_t> fill(off.begin(), off.end() - 1);
  for (int64_t i = 0; i < int64_t(numTriangles) * 3; ++i) list[fill[hostTri[i]]++] = int32_t(i);
  adj_ = Buffer<int32_t>(device, adj.size());
  adj_.upload(adj.data(), adj.size());
  vfOff_ = Buffer<int32_t>(device, off.size());
  vfOff_.upload(off.data(), off.size());
  vfList_ = Buffer<int32_t>(device, list.size());
  vfList_.upload(list.data(), list.size());
#if FG_HAVE_CUDA
  if (device == Device::CUDA) prepareSideStreamCuda();  // (the backward's side stream, created outside any capture)
#endif
}

// ---- workspace layout ------------------------------------------------------------------------------------------

namespace {
struct Sizes {
  int64_t V, H, W, P, T, C, texels;
  int64_t pix() const { return V * H * W; }
};
size_t forwardBytes(const Sizes& s) {
  size_t b = 0;
  b += Workspace::aligned(size_t(s.V * s.P * 3) * 4);  // hv
  b += Workspace::aligned(size_t(s.P * 3) * 4);        // vn
  b += Workspace::aligned(size_t(s.P) * 4);            // vlen
  b += Workspace::aligned(size_t(s.pix()) * 8);        // keys
  b += Workspace::aligned(size_t(s.V * s.T));          // facing
  b += Workspace::aligned(size_t(s.V * s.T) * 48);     // cached triangle geometry
  b += Workspace::aligned(size_t(s.V * ((s.T + 31) / 32)) * 4);  // silhouette bits
  b += Workspace::aligned(size_t(s.T) * 32);           // per-triangle UVs
  b += Workspace::aligned(size_t(s.pix()));            // antialiasing codes
  b += Workspace::aligned(size_t(s.pix()) * 4);        // silhouette pixel list (CUDA)
  b += Workspace::aligned(size_t(s.pix()) * 16);       // antialiasing alphas
  b += Workspace::aligned(size_t(s.pix() * (s.C + 1)) * 4);  // pre-antialiasing shading of silhouette pixels
  b += Workspace::aligned(size_t(s.V * s.T) * sizeof(Box));  // bbox
  b += Workspace::aligned(size_t(s.V * s.T) * 4);      // big-triangle queue (CUDA)
  b += Workspace::aligned(size_t(chunkListCapacity(s.V * s.T, s.pix())) * 8);  // chunk list (CUDA)
  b += Workspace::aligned(12);                         // counters
  return b;
}
size_t backwardBytes(const Sizes& s) {
  size_t b = 0;
  b += Workspace::aligned(size_t(s.V * s.T * kAccStride) * 8);  // dW accumulators (fixed point: 8 bytes)
  b += Workspace::aligned(size_t(s.V * s.T * kAccStride) * 8);  // dN accumulators
  b += Workspace::aligned(size_t(s.P * 3) * 4);        // dm
  b += Workspace::aligned(size_t(s.texels * s.C) * 8); // dTex fixed point
  return b;
}

Kern baseKern(const RenderParams& p, const RasterContext& ctx) {
  Kern k{};
  k.V = p.numViews; k.H = p.height; k.W = p.width; k.P = p.numVertices; k.T = p.numTriangles; k.C = p.channels;
  k.pos = p.positions; k.tri = p.tri; k.uvs = p.uvs; k.uvTri = p.uvTri;
  k.K = p.intrinsics; k.E = p.extrinsics; k.nearZ = p.nearZ; k.farZ = p.farZ;
  k.tex = p.texture; k.tw = p.texWidth; k.th = p.texHeight; k.wrap = int(p.wrap); k.flipV = p.flipV ? 1 : 0;
  k.background = p.background; k.sh = p.sh; k.shFrame = int(p.shFrame); k.depthRange = p.depthRange;
  k.antialias = p.antialias ? 1 : 0;
  k.silWords = (p.numTriangles + 31) / 32;
  k.adj = ctx.adjacency(); k.vfOff = ctx.vertexFaceOffsets(); k.vfList = ctx.vertexFaceList();
  return k;
}

// The forward's record that the later passes read (silhouette bits, UV table, antialiasing pairs, silhouette list).
void setRecord(Kern& k, const RenderState& st) {
  k.silBits = st.silhouetteBits; k.uvT = st.triUv; k.aaCode = st.aaCode; k.aaAlpha = st.aaAlpha; k.preShade = st.preShade;
  k.silList = st.silhouetteList;
  k.silCount = st.silhouetteList ? st.counters + 2 : nullptr;
}

size_t mipForwardBytes(int texW, int texH, int C, bool mip, int mipLevels) {
  if (!mip || texW < 1 || texH < 1 || C < 1) return 0;
  return Workspace::aligned(mipPyramidFloats(texW, texH, C, mipLevels) * 4);
}
size_t mipBackwardBytes(int texW, int texH, int C, bool mip, int mipLevels) {
  if (!mip || texW < 1 || texH < 1 || C < 1) return 0;
  return Workspace::aligned(mipPyramidFloats(texW, texH, C, mipLevels) * 8) +  // fixed point: 8 bytes
         Workspace::aligned(size_t(mipDim(texW, 1)) * mipDim(texH, 1) * C * 4);  // CUDA: level-1 ancestor sums
}

void checkParams(const RenderParams& p, const RasterContext& ctx, bool wantColor, bool wantGrey) {
  FG_CHECK_ARG(p.numVertices == ctx.numVertices(),
               "positions: expected " + std::to_string(ctx.numVertices()) + " vertices (the context's mesh), got " + std::to_string(p.numVertices));
  FG_CHECK_ARG(p.numTriangles == ctx.numTriangles(),
               "tri: expected " + std::to_string(ctx.numTriangles()) + " triangles (the context's mesh), got " + std::to_string(p.numTriangles));
  FG_CHECK_ARG(p.positions && p.tri, "positions/tri: expected arrays");
  FG_CHECK_ARG(p.numViews >= 1, "cameras: expected at least one view, got " + std::to_string(p.numViews));
  FG_CHECK_ARG(p.width >= 1 && p.width <= 16384 && p.height >= 1 && p.height <= 16384,
               "width/height: expected 1..16384, got " + std::to_string(p.width) + "x" + std::to_string(p.height));
  FG_CHECK_ARG(int64_t(p.numViews) * p.height * p.width < (int64_t(1) << 31),
               "cameras: views x height x width must stay below 2^31 pixels, got " + std::to_string(p.numViews) + " x " +
                   std::to_string(p.height) + " x " + std::to_string(p.width));
  FG_CHECK_ARG(p.intrinsics && p.extrinsics, "intrinsics/extrinsics: expected [V,4] and [V,12] arrays");
  FG_CHECK_ARG(p.nearZ > 0.f && p.farZ > p.nearZ,
               "near/far: expected 0 < near < far, got " + std::to_string(p.nearZ) + ", " + std::to_string(p.farZ));
  if (wantColor) {
    FG_CHECK_ARG(p.texture && p.uvs && p.uvTri && p.numUvs > 0, "texture: color needs texture, uvs and uvTri");
    FG_CHECK_ARG(p.texWidth >= 1 && p.texHeight >= 1 && p.channels >= 1 && p.channels <= 64,
                 "texture: expected width, height >= 1 and 1..64 channels, got " + std::to_string(p.texWidth) + "x" +
                     std::to_string(p.texHeight) + "x" + std::to_string(p.channels));
    FG_CHECK_ARG(int64_t(p.texWidth) * p.texHeight * p.channels < (int64_t(1) << 31),
                 "texture: width x height x channels must stay below 2^31 values, got " + std::to_string(p.texWidth) + "x" +
                     std::to_string(p.texHeight) + "x" + std::to_string(p.channels));
    if (p.mip) {
      FG_CHECK_ARG(p.mipLevels >= 0 && p.mipLevels <= 32, "mipLevels: expected 0 (all levels) to 32, got " + std::to_string(p.mipLevels));
      FG_CHECK_ARG(std::isfinite(p.lodBias) && std::fabs(p.lodBias) <= 64.f,
                   "lodBias: expected a finite number in [-64, 64], got " + std::to_string(p.lodBias));
    }
  }
  if (wantGrey) FG_CHECK_ARG(p.sh != nullptr, "sh: grey shading needs [V,9] SH coefficients");
}
}  // namespace

size_t RasterContext::workspaceBytes(int V, int H, int W, int P, int T, int C, int texW, int texH) {
  Sizes s{V, H, W, P, T, std::max(C, 0), int64_t(std::max(texW, 0)) * std::max(texH, 0)};
  return forwardBytes(s) + backwardBytes(s);
}
size_t RasterContext::workspaceBytes(int V, int H, int W, int P, int T, int C, int texW, int texH, bool mip, int mipLevels) {
  return workspaceBytes(V, H, W, P, T, C, texW, texH) + mipForwardBytes(texW, texH, C, mip, mipLevels) +
         mipBackwardBytes(texW, texH, C, mip, mipLevels);
}
size_t RasterContext::workspaceBytes(const RenderParams& p) {
  return workspaceBytes(p.numViews, p.height, p.width, p.numVertices, p.numTriangles, p.channels, p.texWidth, p.texHeight, p.mip,
                        p.mipLevels);
}

// ---- mip pyramid ------------------------------------------------------------------------------------------------

int mipLevelCount(int texWidth, int texHeight, int maxLevels) {
  FG_CHECK_ARG(texWidth >= 1 && texHeight >= 1, "texture: expected width, height >= 1");
  return mipCount(texWidth, texHeight, maxLevels);
}
int64_t mipLevelOffset(int texWidth, int texHeight, int channels, int level) {
  FG_CHECK_ARG(level >= 1, "level: expected >= 1 (level 0 is the texture itself)");
  return mipOffset(texWidth, texHeight, channels, level);
}
size_t mipPyramidFloats(int texWidth, int texHeight, int channels, int maxLevels) {
  if (texWidth < 1 || texHeight < 1 || channels < 1) return 0;
  return size_t(mipOffset(texWidth, texHeight, channels, mipCount(texWidth, texHeight, maxLevels)));
}
void mipBuildCpu(const float* tex, int tw, int th, int C, int L, float* pyr) {
  for (int l = 1; l < L; ++l) {
    const float* src = l == 1 ? tex : pyr + mipOffset(tw, th, C, l - 1);
    float* dst = pyr + mipOffset(tw, th, C, l);
    const int sw = mipDim(tw, l - 1), sh = mipDim(th, l - 1), dw = mipDim(tw, l), dh = mipDim(th, l);
    parallelFor(int64_t(dw) * dh * C, [&](int64_t i) { mipDownElem(src, sw, sh, dst, dw, C, i); }, 4096);
  }
}
void buildMipPyramid(Device d, const float* texture, int texWidth, int texHeight, int channels, int maxLevels, float* pyramid,
                     StreamHandle s) {
  NvtxRange range("raster/buildMipPyramid");
  FG_CHECK_ARG(texture && pyramid, "buildMipPyramid: expected texture and pyramid arrays");
  FG_CHECK_ARG(texWidth >= 1 && texHeight >= 1 && channels >= 1, "texture: expected width, height, channels >= 1");
  FG_CHECK_ARG(maxLevels >= 0, "mipLevels: expected >= 0");
  const int L = mipCount(texWidth, texHeight, maxLevels);
  FG_TWIN_CALL(d, mipBuildCpu(texture, texWidth, texHeight, channels, L, pyramid), mipBuildCuda(texture, texWidth, texHeight, channels, L, pyramid, s));
}

// ---- forward --------------------------------------------------------------------------------------------------

RenderState RasterContext::forward(const RenderParams& p, const RenderOutputs& out, Workspace& ws, StreamHandle stream) const {
  NvtxRange range("raster/forward");
  bool wantColor = out.color != nullptr, wantGrey = out.grey != nullptr;
  checkParams(p, *this, wantColor, wantGrey);
  FG_CHECK_ARG(ws.device() == dev_ || ws.capacity() == 0, "workspace: on a different device than the raster context");
  Kern k = baseKern(p, *this);
  if (!wantColor) k.C = 0;
  const int64_t pix = int64_t(p.numViews) * p.height * p.width;
  RenderState st;
  st.hv = ws.alloc<float>(size_t(p.numViews) * p.numVertices * 3);
  st.vnormal = ws.alloc<float>(size_t(p.numVertices) * 3);
  st.vnormalLen = ws.alloc<float>(size_t(p.numVertices));
  st.keys = ws.alloc<unsigned long long>(size_t(pix));
  st.facing = ws.alloc<int8_t>(size_t(p.numViews) * p.numTriangles);
  st.triGeom = ws.alloc<float>(size_t(p.numViews) * p.numTriangles * 12);
  st.silhouetteBits = ws.alloc<uint32_t>(size_t(p.numViews) * k.silWords);
  if (wantColor) st.triUv = ws.alloc<float>(size_t(p.numTriangles) * 8);
  if (p.antialias) {
    st.aaCode = ws.alloc<uint8_t>(size_t(pix));
    if (dev_ == Device::CUDA) st.silhouetteList = ws.alloc<uint32_t>(size_t(pix));
    st.aaAlpha = ws.alloc<float>(size_t(pix) * 4);
    st.preShade = ws.alloc<float>(size_t(pix) * (wantColor ? p.channels + 1 : 1));
  }
  Box* boxes = ws.alloc<Box>(size_t(p.numViews) * p.numTriangles);
  int* counter = ws.alloc<int>(3);
  if (dev_ == Device::CUDA) st.counters = counter;
  st.hasColor = wantColor;
  st.hasGrey = wantGrey;
  // (preColor / preGrey stay null: the pre-antialiasing shading of the pixels that need it is in preShade)
  k.hv = st.hv; k.vn = st.vnormal; k.vlen = st.vnormalLen; k.keys = st.keys; k.facing = st.facing; k.tg = st.triGeom; k.bbox = boxes;
  setRecord(k, st);
  k.needNormals = (wantGrey || out.normal) ? 1 : 0;
  k.oTri = out.triId; k.oBary = out.bary; k.oDepth = out.depth; k.oMask = out.mask; k.oNormal = out.normal;
  k.oGrey = out.grey; k.oColor = out.color; k.oDepthImg = out.depthImage;
  if (!wantColor) { k.tex = nullptr; }
  if (!wantGrey) k.sh = nullptr;
  if (wantColor && p.mip) {
    // the pyramid is rebuilt from the current texture on every forward (levels 1.. in the workspace)
    const int L = mipCount(p.texWidth, p.texHeight, p.mipLevels);
    st.mipLevels = L;
    if (L > 1) st.mipPyramid = ws.alloc<float>(mipPyramidFloats(p.texWidth, p.texHeight, p.channels, p.mipLevels));
    k.mip = st.mipPyramid;
    k.mipL = L;
    setMipTable(k.mipT, p.texWidth, p.texHeight, p.channels);
    k.lodBias = p.lodBias;
  }
  if (dev_ == Device::CPU) {
    forwardCpu(k);
  } else {
#if FG_HAVE_CUDA
    ForwardScratch s;
    s.queue = ws.alloc<int>(size_t(p.numViews) * p.numTriangles);
    s.chunkCapacity = chunkListCapacity(int64_t(p.numViews) * p.numTriangles, pix);
    s.chunks = ws.alloc<int2_t>(size_t(s.chunkCapacity));
    s.counter = counter;
    forwardCuda(k, s, stream);
#else
    requireCuda();
#endif
  }
  return st;
}

// ---- backward -------------------------------------------------------------------------------------------------

void RasterContext::backward(const RenderParams& p, const RenderState& st, const RenderGrads& g, Workspace& ws, StreamHandle stream) const {
  NvtxRange range("raster/backward");
  checkParams(p, *this, st.hasColor, st.hasGrey);
  FG_CHECK_ARG(st.keys && st.hv, "backward: expected the RenderState of a forward pass");
  FG_CHECK_ARG(!g.dColor || st.hasColor, "dColor: the forward pass did not render color");
  FG_CHECK_ARG(!g.dGrey || st.hasGrey, "dGrey: the forward pass did not render grey");
  FG_CHECK_ARG(!g.deterministic || g.fixedPointScale > 0.f, "fixedPointScale: expected > 0");
  Kern k = baseKern(p, *this);
  if (!st.hasColor) { k.C = 0; k.tex = nullptr; }
  if (!st.hasGrey) k.sh = nullptr;
  const int64_t texElems = st.hasColor ? int64_t(p.texWidth) * p.texHeight * p.channels : 0;
  k.hv = st.hv; k.vn = st.vnormal; k.vlen = st.vnormalLen; k.keys = st.keys; k.facing = st.facing; k.tg = st.triGeom;
  setRecord(k, st);
  if (st.hasColor && st.mipLevels > 0) {
    FG_CHECK_ARG(p.mip, "mip: the forward pass used mip-mapping, the backward params do not");
    FG_CHECK_ARG(st.mipLevels == mipCount(p.texWidth, p.texHeight, p.mipLevels) && (st.mipLevels == 1 || st.mipPyramid),
                 "mipLevels: differs from the forward pass");
    k.mip = st.mipPyramid;
    k.mipL = st.mipLevels;
    setMipTable(k.mipT, p.texWidth, p.texHeight, p.channels);
    k.lodBias = p.lodBias;
  } else {
    FG_CHECK_ARG(!(st.hasColor && p.mip), "mip: the backward params ask for mip-mapping, the forward pass did not use it");
  }
  k.gColor = st.hasColor ? g.dColor : nullptr;
  k.gGrey = st.hasGrey ? g.dGrey : nullptr;
  FG_CHECK_ARG(!p.antialias || (st.aaCode && st.aaAlpha && st.preShade),
               "antialias: the backward params ask for antialiasing, the forward pass did not use it");
  k.gMask = p.antialias ? g.dMask : nullptr;
  bool det = g.deterministic && dev_ == Device::CUDA;
  bool withNormals = g.dPositions && k.gGrey;
  const size_t acc = size_t(p.numViews) * p.numTriangles * kAccStride;
  // a zeroed per-(view, triangle) accumulator: 64-bit fixed point in deterministic mode, else float
  auto zeroedAccumulator = [&](auto& a) {
    if (det) {
      a.fx = ws.alloc<long long>(acc);
      a.scale = g.fixedPointScale;
      memsetAny(a.fx, dev_, 0, acc * 8, stream);
    } else {
      a.f = ws.alloc<float>(acc);
      memsetAny(a.f, dev_, 0, acc * 4, stream);
    }
  };
  if (g.dPositions) {
    k.dPosOut = g.dPositions;
    zeroedAccumulator(k.dW);
    if (withNormals) {
      zeroedAccumulator(k.dN);
      k.dm = ws.alloc<float>(size_t(p.numVertices) * 3);
    }
  }
  // the texel-gradient buffers are zeroed after the silhouette-edge pass has been forked off on CUDA (that pass
  // only needs the accumulators), so that it starts beside the memsets rather than after them
  TexZero texZero;
  auto zeroTex = [&](void* ptr, size_t bytes) {
    if (dev_ == Device::CPU) memsetAny(ptr, dev_, 0, bytes, stream);
    else texZero.add(ptr, bytes);
  };
  bool texConvert = false;
  if (g.dTexture && texElems > 0 && k.mipL > 1) {
    // texel gradients of levels 1.. (pushed down to level 0 after the per-pixel pass)
    const size_t mf = mipPyramidFloats(p.texWidth, p.texHeight, p.channels, p.mipLevels);
    if (det) {
      k.dMip.fx = ws.alloc<long long>(mf);
      k.dMip.scale = g.fixedPointScale;
      zeroTex(k.dMip.fx, mf * 8);
    } else {
      k.dMip.f = ws.alloc<float>(mf);
      zeroTex(k.dMip.f, mf * 4);
    }
    if (dev_ == Device::CUDA) k.mipCum = ws.alloc<float>(size_t(mipDim(p.texWidth, 1)) * mipDim(p.texHeight, 1) * p.channels);
  }
  if (g.dTexture && texElems > 0) {
    if (det) {
      k.dTex.fx = ws.alloc<long long>(size_t(texElems));
      k.dTex.scale = g.fixedPointScale;
      zeroTex(k.dTex.fx, size_t(texElems) * 8);
      k.dTexOut = g.dTexture;
      texConvert = true;
    } else {
      k.dTex.f = g.dTexture;
      zeroTex(g.dTexture, size_t(texElems) * 4);
      // CUDA sm_90: float4/float2 texture-gradient atomics (needs a 16-byte aligned dTexture)
      k.texVec = (p.channels == 3 || p.channels == 4) && (reinterpret_cast<uintptr_t>(g.dTexture) & 15) == 0 ? 1 : 0;
#if FG_HAVE_CUDA
      // the pixel pass sums each warp's texel gradients in shared memory first (the channel count)
      k.texStage = dev_ == Device::CUDA && k.texVec && rasterTuning().texStage ? p.channels : 0;
#endif
    }
  } else if (g.dTexture) {
    // nothing rendered with a texture: its gradient is zero
  }
  if (dev_ == Device::CPU) {
    backwardCpu(k, withNormals, texConvert);  // (texConvert: CUDA's fixed-point textures only; false here)
  } else {
#if FG_HAVE_CUDA
    backwardCuda(k, texZero, withNormals, texConvert, texElems, stream);
#else
    requireCuda();
#endif
  }
}

// ---- the CPU twin -----------------------------------------------------------------------------------------------

void forwardCpu(const Kern& k) {
  const int64_t VP = int64_t(k.V) * k.P, VT = int64_t(k.V) * k.T, pix = int64_t(k.V) * k.H * k.W;
  if (k.mipL > 1) mipBuildCpu(k.tex, k.tw, k.th, k.C, k.mipL, const_cast<float*>(k.mip));
  parallelFor(VP, [&](int64_t i) { vertexTransformElem(k, i); });
  if (k.needNormals) parallelFor(k.P, [&](int64_t i) { vertexNormalElem(k, int(i)); }, 1024);
  if (k.uvT) parallelFor(k.T, [&](int64_t t) { uvTableElem(k, int(t)); }, 4096);
  parallelFor(VT, [&](int64_t i) {
    int v = int(i / k.T), t = int(i % k.T);
    TriGeom g = triGeom(k, v, t);
    k.facing[i] = int8_t(g.orient);
    storeTriGeom(k, i, g);
    Box b{1, 1, 0, 0};
    if (!triBBox(k, g, b.x0, b.y0, b.x1, b.y1)) b = Box{1, 1, 0, 0};
    k.bbox[i] = b;
  }, 1024);
  parallelFor(int64_t(k.V) * k.silWords, [&](int64_t i) { silhouetteWordElem(k, int(i / k.silWords), int(i % k.silWords)); }, 256);
  std::fill(k.keys, k.keys + pix, kNoKey);
  // rasterise in bands of rows: each band is written by one task only; the min over keys is order independent
  const int band = 16;
  const int nb = (k.H + band - 1) / band;
  parallelFor(int64_t(k.V) * nb, [&](int64_t i) {
    int v = int(i / nb), y0 = int(i % nb) * band, y1 = std::min(k.H - 1, y0 + band - 1);
    unsigned long long* keys = k.keys + int64_t(v) * k.H * k.W;
    for (int t = 0; t < k.T; ++t) {
      const Box& b = k.bbox[int64_t(v) * k.T + t];
      if (b.x0 > b.x1 || b.y1 < y0 || b.y0 > y1) continue;
      const TriRaster g = triRaster(triGeom(k, v, t));
      int ya = std::max(b.y0, y0), yb = std::min(b.y1, y1);
      for (int y = ya; y <= yb; ++y)
        for (int x = b.x0; x <= b.x1; ++x) {
          float z;
          if (!coversR(g, float(x) + 0.5f, float(y) + 0.5f, k.nearZ, k.farZ, z)) continue;
          unsigned long long key = depthKey(z, t);
          unsigned long long& dst = keys[int64_t(y) * k.W + x];
          if (key < dst) dst = key;
        }
    }
  }, 1);
  parallelFor(pix, [&](int64_t i) {
    int v, x, y;
    pixCoords(k, i, v, x, y);
    if (k.mipL > 0) resolvePixel<true>(k, v, x, y);
    else resolvePixel<false>(k, v, x, y);
  });
  if (k.antialias && k.aaCode)
    parallelFor(pix, [&](int64_t i) {
      const int code = k.aaCode[i] & 15;
      if (!code) return;
      int v, x, y;
      pixCoords(k, i, v, x, y);
      resolveBlendPixel(k, v, x, y, code);
    });
}

void backwardCpu(const Kern& k, bool withNormals, bool) {
  const int64_t pix = int64_t(k.V) * k.H * k.W;
  // serial, in pixel order: the gradient sums are deterministic
  for (int64_t i = 0; i < pix; ++i) {
    PixGrad g;
    zeroPixGrad(g);
    int v, x, y;
    pixCoords(k, i, v, x, y);
    if (k.mipL > 0) backwardPixel<true>(k, v, x, y, g);
    else backwardPixel<false>(k, v, x, y, g);
    if (k.aaCode && k.antialias && k.dW.on() && (k.aaCode[i] & 15)) {
      aaEdgePixel(k, v, x, y, k.aaCode[i] & 15);
    }
    if (g.key < 0) continue;
    for (int q = 0; q < 9; ++q) {
      if (k.dW.on() && g.w[q] != 0.f) k.dW.add(g.key * kAccStride + q, g.w[q]);
      if (k.dN.on() && g.nn[q] != 0.f) k.dN.add(g.key * kAccStride + q, g.nn[q]);
    }
  }
  // mip: push the gradients of levels 1.. down to the level-0 texture gradient (adjoint of the box filter)
  if (k.mipL > 1 && k.dMip.on() && k.dTex.f)
    parallelFor(int64_t(k.tw) * k.th * k.C, [&](int64_t i) { k.dTex.f[i] += mipReduceElem(k, i); }, 4096);
  if (!k.dPosOut) return;
  if (withNormals) parallelFor(k.P, [&](int64_t i) { normalsBackward1Elem(k, int(i)); }, 1024);
  parallelFor(k.P, [&](int64_t i) { normalsBackward2Elem(k, int(i), withNormals); }, 1024);
}

void interpolateCpu(const InterpolateParams& p, float* out) {
  parallelFor(p.numPixels, [&](int64_t i) { interpolateElem(p, out, i); });
}
void interpolateBackwardCpu(const InterpolateParams& p, const float* dOut, float* dAttr) {
  std::fill(dAttr, dAttr + int64_t(p.numRows) * p.numAttr, 0.f);
  Sink s;
  s.f = dAttr;
  for (int64_t i = 0; i < p.numPixels; ++i) interpolateBackwardElem(p, dOut, s, i);
}

// ---- interpolation dispatchers ----------------------------------------------------------------------------------

namespace {
void checkInterp(const InterpolateParams& p) {
  FG_CHECK_ARG(p.attr && p.attrTri && p.triId && p.bary, "interpolate: expected attr, attrTri, triId and bary");
  FG_CHECK_ARG(p.numRows > 0 && p.numAttr > 0 && p.numTriangles > 0 && p.numPixels >= 0, "interpolate: expected non-empty sizes");
}
}  // namespace

void interpolate(Device d, const InterpolateParams& p, float* out, StreamHandle s) {
  NvtxRange range("raster/interpolate");
  checkInterp(p);
  FG_TWIN_CALL(d, interpolateCpu(p, out), interpolateCuda(p, out, s));
}
void interpolateBackward(Device d, const InterpolateParams& p, const float* dOut, float* dAttr, StreamHandle s) {
  NvtxRange range("raster/interpolateBackward");
  checkInterp(p);
  FG_TWIN_CALL(d, interpolateBackwardCpu(p, dOut, dAttr), interpolateBackwardCuda(p, dOut, dAttr, s));
}

}  // namespace raster
}  // namespace fg
