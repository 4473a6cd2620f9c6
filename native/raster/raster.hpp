// The differentiable rasteriser: public C++ API (CPU twin + CUDA), used by the pipeline and the N-API bindings.
//
// One mesh (P vertices, T triangles, separate position and UV topology), V pinhole views of W x H pixels.
//
// Conventions
//   * Extrinsics: world->camera, 3x4 row-major [R | t] per view (a 4x4 is accepted by the bindings, last row
//     ignored). OpenCV camera: +x right, +y down, +z forward (points in front of the camera have z > 0).
//   * Intrinsics: fx, fy, cx, cy in pixels; pixel (x, y) covers [x, x+1) x [y, y+1) and is sampled at its
//     centre (x + 0.5, y + 0.5). Row 0 is the top of the image. Images are [V, H, W, channels], row-major.
//   * UVs: (u, v) in [0, 1]; with flipV (the OBJ convention, default) v = 0 is the LAST texture row.
//     Texture is [texH, texW, C] float, texel centres at (i + 0.5) / texW.
//   * Barycentrics (b0, b1) weight vertices tri[t][0] and tri[t][1]; b2 = 1 - b0 - b1. They are perspective
//     correct (the intersection of the pixel ray with the triangle's plane).
//
// Rasterisation (both twins identical, bit for bit): vertices are mapped to pixel-homogeneous coordinates
// P = (fx X + cx Z, fy Y + cy Z, Z) with exactly rounded fg::fma/mul; a pixel centre p = (x+.5, y+.5, 1) is
// inside triangle (P0, P1, P2) when the three homogeneous edge functions e_i = p . (P_j x P_k) all have the
// sign of D = det(P0, P1, P2) (2D-homogeneous rasterisation, Olano & Greer 1997), and its camera depth is
// z = D / (e0 + e1 + e2). This needs no clipping: the part of a triangle behind the camera or nearer than
// `nearZ` is rejected per pixel (z < nearZ), triangles entirely behind the near plane are culled, and the
// screen bounding box of a triangle crossing the near plane is that of its clipped polygon. The edge cross
// products are computed in a canonical vertex order (lower index first, then negated), so the two triangles
// of a shared edge see exactly negated edge values: no pixel is covered twice or left out; a pixel exactly on
// an edge (e == 0) belongs to the triangle whose oriented edge normal is "positive" (x > 0, then y > 0, then
// z > 0), a top-left-style rule. All of this uses exactly rounded fg::mul/add/sub/fma/div, so CPU and CUDA
// give identical triangle ids. Depth test: a 64-bit key (float bits of z << 32 | triangle id), min-reduced
// (order independent: the nearest wins, ties go to the lower triangle id).
//
// Shading outputs (each optional: pass nullptr to skip)
//   triId [V,H,W] int32 (-1 background), bary [V,H,W,2], depth [V,H,W] camera z (0 background),
//   mask [V,H,W] (antialiased coverage), normal [V,H,W,3] unit camera-space normal (0 background),
//   grey [V,H,W] = sum_k sh[v][k] Y_k(n) with the 9 real SH basis functions of the interpolated unit normal
//   (camera frame by default; see ShFrame), color [V,H,W,C] bilinear (or, with RenderParams::mip, trilinear
//   mip-mapped) texture samples (background colour off
//   the mesh), depthImage [V,H,W] = clamp((far - z) / (far - near), 0, 1) with (near, far) = depthRange[v]
//   (near bright, background 0) for a depth ControlNet.
//   Vertex normals are the normalised sums of the (area-weighted) face normals (p1 - p0) x (p2 - p0) of the
//   faces around each vertex; the backward includes this chain.
//
// Antialiasing: for every pair of horizontally or vertically adjacent pixels showing different triangles,
// the nearer triangle F's edge that the segment between the two pixel centres crosses is found; if it is a
// silhouette edge (no neighbour across it, or the neighbour faces the other way in this view), the crossing
// point t in [0, 1) (from F's pixel) blends the two pixels: for t > 1/2 the other pixel takes (t - 1/2) of F's
// pixel colour, otherwise F's pixel takes (1/2 - t) of the other one. It applies to color, grey and mask, and
// its backward moves the edge's vertices (that is how silhouettes get gradients).
//
// Backward: upstream gradients of color, grey and mask (each optional) -> gradients of vertex positions
// (through barycentrics, the interpolated normal and vertex normals, and antialiasing) and of texels.
// depth, normal and depthImage are not differentiated. CUDA reductions use float atomics, or with
// `deterministic` 64-bit fixed-point atomics (value * fixedPointScale, rounded) that are independent of
// atomic order; the CPU twin accumulates in a fixed (pixel) order.
//
// No allocation and no host synchronisation inside forward/backward: all scratch comes from a caller-reserved
// fg::Workspace sized by RasterContext::workspaceBytes(). A pipeline reserves once, then per iteration:
//     ws.reset(); RenderState st = ctx.forward(params, outputs, ws, stream);
//     ... upstream gradients ...;  ctx.backward(params, st, grads, ws, stream);
// (do not reset the workspace between the forward and the backward that uses its state). All pointers are
// on the context's device. The context's topology (adjacency, vertex->face lists) is built once from `tri`.
#pragma once
#include <cstddef>
#include <cstdint>
#include "core/hd.hpp"
#include "core/memory.hpp"

namespace fg {
namespace raster {

enum class Wrap : int { Clamp = 0, Repeat = 1 };
// Frame of the normal fed to the SH lighting: Camera (OpenCV camera axes of the view; a surface facing the
// camera has n = (0, 0, -1)) or World.
enum class ShFrame : int { Camera = 0, World = 1 };

struct RenderParams {
  // mesh
  const float* positions = nullptr;  // [P,3] world
  int numVertices = 0;
  const int32_t* tri = nullptr;  // [T,3] into positions (must be the topology the context was built with)
  int numTriangles = 0;
  const float* uvs = nullptr;       // [U,2] (needed for color)
  int numUvs = 0;
  const int32_t* uvTri = nullptr;   // [T,3] into uvs (needed for color)
  // cameras
  int numViews = 0, width = 0, height = 0;
  const float* intrinsics = nullptr;  // [V,4] fx fy cx cy (pixels)
  const float* extrinsics = nullptr;  // [V,12] world->camera [R|t], row-major
  float nearZ = 0.01f, farZ = 1e30f;  // depth clip range (camera z)
  // texture (needed for color)
  const float* texture = nullptr;  // [texH, texW, C]
  int texWidth = 0, texHeight = 0, channels = 0;
  Wrap wrap = Wrap::Clamp;
  bool flipV = true;
  const float* background = nullptr;  // [C] color of background pixels (nullptr: zeros)
  // shading
  const float* sh = nullptr;  // [V,9] SH coefficients per view (needed for grey)
  ShFrame shFrame = ShFrame::Camera;
  const float* depthRange = nullptr;  // [V,2] (near, far) for depthImage (nullptr: nearZ, farZ)
  bool antialias = true;
  // Mip-mapped minification of the texture (default off: plain bilinear, bit-identical to before). When on, the
  // forward builds a box-filtered pyramid of the texture in the workspace (2x2 averages, level l is
  // max(1, texW >> l) x max(1, texH >> l), odd sizes drop their last row/column, reads are clamped), the level
  // of detail of each pixel is lod = log2(max(|dUV/dx| * size, |dUV/dy| * size)) + lodBias from the analytic
  // screen-space UV derivatives of its triangle, clamped to [0, levels - 1], and the colour is trilinear
  // (bilinear on levels floor(lod) and floor(lod) + 1, lerp by the fraction). The backward sends texel
  // gradients to every level and pushes them back to level 0 through the adjoint of the box filter; the
  // gradient of the lod itself (through the UV derivatives to positions) is not propagated.
  // Size the workspace with workspaceBytes(params) (or the overload with mip/mipLevels).
  bool mip = false;
  int mipLevels = 0;    // maximum number of levels including level 0 (0: all, down to 1x1)
  float lodBias = 0.f;  // added to the lod (in levels; > 0 blurs)
};

struct RenderOutputs {  // all optional (nullptr: not written); sizes in the header comment
  int32_t* triId = nullptr;
  float* bary = nullptr;
  float* depth = nullptr;
  float* mask = nullptr;
  float* normal = nullptr;
  float* grey = nullptr;
  float* color = nullptr;
  float* depthImage = nullptr;
};

// What forward leaves in the workspace for backward (device pointers into the workspace).
struct RenderState {
  float* hv = nullptr;            // [V,P,3] pixel-homogeneous vertices
  float* vnormal = nullptr;       // [P,3] unit vertex normals (world)
  float* vnormalLen = nullptr;    // [P] length of the unnormalised sum
  unsigned long long* keys = nullptr;  // [V,H,W] depth keys (~0 = background)
  int8_t* facing = nullptr;       // [V,T] sign of D per view
  float* preColor = nullptr;      // (unused since the fused resolve+antialias pass: always null)
  float* preGrey = nullptr;       // [V,H,W] grey before antialiasing (unused since the fused pass: always null)
  float* triGeom = nullptr;       // [V,T,12] cached exact triangle geometry (edge cross products, D, orientation)
  uint32_t* silhouetteBits = nullptr;  // [V, ceil(T/32)] a bit per (view, triangle): may lie on a silhouette
  float* triUv = nullptr;         // [T,8] per-triangle corner UVs (color renders only)
  uint8_t* aaCode = nullptr;      // [V,H,W] active antialiasing pairs per pixel (antialias only)
  uint32_t* silhouetteList = nullptr;  // CUDA: indices of the pixels with active pairs ([V*H*W] capacity), counters[2] of them
  int* counters = nullptr;             // CUDA (device): queued big triangles, chunk items, silhouette pixels
  float* aaAlpha = nullptr;       // [V,H,W,4] alpha of each active antialiasing pair (antialias only)
  float* preShade = nullptr;      // [V,H,W,C+1] pre-antialiasing colour + grey of the pixels with active pairs
  bool hasColor = false, hasGrey = false;
  float* mipPyramid = nullptr;    // levels 1.. of the texture's mip pyramid (mipLevelOffset layout), or null
  int mipLevels = 0;              // levels in use (including level 0); 0 when mip is off
};

struct RenderGrads {
  const float* dColor = nullptr;  // [V,H,W,C] upstream gradient of color (nullptr: zero)
  const float* dGrey = nullptr;   // [V,H,W]
  const float* dMask = nullptr;   // [V,H,W] (only reaches positions through antialiasing)
  float* dPositions = nullptr;    // [P,3] out (overwritten), or nullptr
  float* dTexture = nullptr;      // [texH,texW,C] out (overwritten), or nullptr
  bool deterministic = false;     // CUDA: fixed-point atomics (bitwise reproducible); CPU is always deterministic
  float fixedPointScale = 4294967296.0f;  // 2^32: resolution 2.3e-10, range +-2.1e9
};

class RasterContext {
 public:
  // Builds the triangle adjacency (for silhouette edges) and vertex->triangle lists (for vertex normals) on
  // the host from `hostTri` ([T,3], indices < numVertices, checked) and uploads them to `device`.
  RasterContext(Device device, const int32_t* hostTri, int numTriangles, int numVertices);
  Device device() const { return dev_; }
  int numTriangles() const { return T_; }
  int numVertices() const { return P_; }

  // Bytes of workspace one forward + backward needs (worst case: antialias, color, grey, deterministic).
  static size_t workspaceBytes(int numViews, int width, int height, int numVertices, int numTriangles, int channels,
                               int texWidth, int texHeight);
  // The same plus the mip pyramid and its gradient when `mip` is on (mipLevels as in RenderParams).
  static size_t workspaceBytes(int numViews, int width, int height, int numVertices, int numTriangles, int channels,
                               int texWidth, int texHeight, bool mip, int mipLevels);
  // Bytes for a forward + backward with these params (sizes, mip and mipLevels are read from `p`).
  static size_t workspaceBytes(const RenderParams& p);

  // Validates sizes (not the contents of device arrays), then renders. Returns the state for backward.
  RenderState forward(const RenderParams& p, const RenderOutputs& out, Workspace& ws, StreamHandle stream = nullptr) const;
  // Gradients of the forward that produced `st` (same params).
  void backward(const RenderParams& p, const RenderState& st, const RenderGrads& g, Workspace& ws,
                StreamHandle stream = nullptr) const;

  // Topology arrays (device): adjacency [T,3] (triangle across the edge opposite corner i, or -1) and the
  // CSR vertex -> (triangle * 3 + corner) lists.
  const int32_t* adjacency() const { return adj_.data(); }
  const int32_t* vertexFaceOffsets() const { return vfOff_.data(); }
  const int32_t* vertexFaceList() const { return vfList_.data(); }

 private:
  Device dev_;
  int T_, P_;
  Buffer<int32_t> adj_, vfOff_, vfList_;
};

// Mip pyramid of a [texH, texW, C] texture (the one the renderer builds when RenderParams::mip is on). Level l
// (l >= 1) is max(1, texW >> l) x max(1, texH >> l) texels; texel (i, j) is the mean of texels (2i + a, 2j + b),
// a, b in {0, 1}, of level l - 1 with clamped reads (so an odd size drops its last row/column, and a size of 1
// repeats its only texel). Levels 1..L-1 are stored one after the other from `pyramid`, level l at float offset
// mipLevelOffset(...) (offsets rounded up to 4 floats so that each level is 16-byte aligned).
int mipLevelCount(int texWidth, int texHeight, int maxLevels);  // 1 + floor(log2(max(w, h))), capped at maxLevels (> 0)
int64_t mipLevelOffset(int texWidth, int texHeight, int channels, int level);  // level >= 1; offset of level L = total
size_t mipPyramidFloats(int texWidth, int texHeight, int channels, int maxLevels);  // floats for levels 1..L-1
void buildMipPyramid(Device d, const float* texture, int texWidth, int texHeight, int channels, int maxLevels, float* pyramid,
                     StreamHandle s = nullptr);

// Generic attribute interpolation: out[pix, a] = b0 attr[ti[0], a] + b1 attr[ti[1], a] + (1 - b0 - b1) attr[ti[2], a]
// with ti = attrTri[triId[pix]] (per-vertex attributes: attrTri = tri; per-corner ones such as UVs: uvTri).
// Background pixels (triId < 0) get 0. Backward accumulates into dAttr (zeroed first; atomics on CUDA).
struct InterpolateParams {
  const float* attr = nullptr;      // [N, A]
  int numRows = 0, numAttr = 0;
  const int32_t* attrTri = nullptr;  // [T,3]
  int numTriangles = 0;
  const int32_t* triId = nullptr;   // [numPixels]
  const float* bary = nullptr;      // [numPixels, 2]
  int64_t numPixels = 0;
};
void interpolate(Device d, const InterpolateParams& p, float* out, StreamHandle s = nullptr);
void interpolateBackward(Device d, const InterpolateParams& p, const float* dOut, float* dAttr, StreamHandle s = nullptr);

}  // namespace raster
}  // namespace fg
