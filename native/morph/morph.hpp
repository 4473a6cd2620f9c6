// The morph domain: a 3DMM (blendshapes over float16 bases), optional FLAME-style skinning (joint regression,
// Rodrigues, kinematic chain, pose correctives, linear blend skinning), a global rigid transform with uniform
// scale, vertex normals, and the regularisers of the geometry phase, each with a backward pass.
//
// Everything runs on fg::Device::CPU or CUDA through the same entry points (CPU twins share morph_math.hpp).
// Launchers never allocate and never synchronise: scratch comes from a caller-reserved fg::Workspace sized by
// morphWorkspaceBytes(), so a whole forward+backward can be captured in a CUDA graph.
//
// Typical pipeline use (all pointers live on model.device):
//
//   fg::morph::MorphModelBuffers mb(fg::Device::CUDA, desc);     // once: upload, pad, precompute
//   fg::morph::MorphModel m = mb.view();
//   fg::morph::MorphOptions opt;                                 // rotation rep, normals, deterministic
//   ws.reserve(dev, fg::morph::morphWorkspaceBytes(m, opt));     // once
//   // per iteration:
//   ws.reset();
//   fg::morph::MorphTape tape = fg::morph::morphAllocTape(m, ws);
//   fg::morph::morphForward(m, opt, in, out, tape, ws, stream);
//   ... render, loss, dL/dvertices and dL/dnormals ...
//   fg::morph::morphBackward(m, opt, in, tape, dVerts, dNormals, grads, ws, stream);
//
// Gradients in MorphGrads are overwritten (not accumulated); the regularisers *add* into a gradient buffer.
#pragma once
#include <cstdint>
#include <vector>
#include "core/memory.hpp"
#include "morph/morph_math.hpp"

namespace fg {
namespace morph {

// ---------------------------------------------------------------- model description (host arrays)
struct MorphModelDesc {
  int64_t numVertices = 0;                 // V
  const float* templ = nullptr;            // [V*3]
  int numIdentity = 0;                     // Ki
  const uint16_t* identityBasis = nullptr; // [Ki, V, 3] IEEE half bits
  int numExpression = 0;                   // Ke
  const uint16_t* expressionBasis = nullptr;  // [Ke, V, 3] half bits
  const float* identityStd = nullptr;      // [Ki] or null (= 1)
  const float* expressionStd = nullptr;    // [Ke] or null (= 1)
  int64_t numTriangles = 0;                // T (0: no normals)
  const int32_t* triangles = nullptr;      // [T*3]
  // Skinning (numJoints == 0: none)
  int numJoints = 0;                       // J
  const int32_t* parents = nullptr;        // [J], parents[0] = -1, parents[j] < j
  const float* weights = nullptr;          // [V, J]
  const float* regressor = nullptr;        // [J, V] dense
  const uint16_t* posedirs = nullptr;      // [9(J-1), V, 3] half bits, or null (no pose correctives)
};

// ---------------------------------------------------------------- device-resident model (non-owning view)
struct MorphModel {
  Device device = Device::CPU;
  int64_t V = 0, N = 0;     // N = 3V rows of the blendshape product
  int64_t stride = 0;       // row stride (halfs) of `basis`: N rounded up to 8 (16-byte aligned rows)
  int64_t T = 0;
  int Ki = 0, Ke = 0, K = 0;  // K = Ki + Ke coefficients (identity then expression)
  int J = 0, P = 0;           // joints; pose-corrective modes (9(J-1) or 0)
  int Kall = 0;               // K + P rows of `basis`
  const float* templ = nullptr;       // [N]
  const uint16_t* basis = nullptr;    // [Kall, stride] half: identity | expression | posedirs, zero padded
  const float* modeStd = nullptr;     // [K]
  const int32_t* tris = nullptr;      // [T*3]
  const int32_t* vfOffsets = nullptr; // [V+1] vertex -> incident faces (CSR)
  const int32_t* vfIncidence = nullptr;  // [3T] face*3 + corner, ascending face order per vertex
  const int32_t* parents = nullptr;   // [J] (device)
  const int32_t* parentsHost = nullptr;  // [J] (host copy, for validation and CPU twins)
  const float* weights = nullptr;     // [V, J]
  const float* jointTemplate = nullptr;  // [J*3] = regressor . template
  const float* jointBasis = nullptr;  // [J*3, K] = regressor . basis (so J_rest = jointTemplate + jointBasis c)
};

// Owns the device copies. Construction validates every array (E_INVALID_ARGUMENT naming the field), pads
// the basis rows to 16 bytes, builds the vertex->face CSR and precomputes the regressed joint basis on the host.
class MorphModelBuffers {
 public:
  MorphModelBuffers(Device d, const MorphModelDesc& desc);
  const MorphModel& view() const { return m_; }
  size_t deviceBytes() const { return bytes_; }

 private:
  MorphModel m_;
  size_t bytes_ = 0;
  Buffer<float> templ_, std_, weights_, jt_, jb_;
  Buffer<uint16_t> basis_;
  Buffer<int32_t> tris_, off_, inc_, parents_;
  std::vector<int32_t> parentsHost_;
};

// Vertex -> face adjacency of a triangle list (CSR, incidence = face*3 + corner, faces ascending).
// Validates indices against V (E_INVALID_ARGUMENT naming `what`).
void buildVertexFaces(int64_t V, int64_t T, const int32_t* tris, std::vector<int32_t>& offsets, std::vector<int32_t>& incidence,
                      const char* what = "triangles");

// ---------------------------------------------------------------- per-call inputs/outputs (pointers on model.device)
struct MorphOptions {
  RotationRep rotation = RotationRep::AxisAngle;
  bool normals = false;        // forward computes vertex normals; backward accepts dL/dnormals
  bool deterministic = true;   // fixed-order reductions (bitwise reproducible); false: atomics (a little faster)
};

struct MorphInputs {
  const float* coeffs = nullptr;       // [K] identity then expression (required)
  const float* pose = nullptr;         // [J*3] axis-angles (null = rest pose)
  const float* rotation = nullptr;     // [3] axis-angle or [6] 6D (null = identity)
  const float* translation = nullptr;  // [3] (null = 0)
  const float* scale = nullptr;        // [1] (null = 1)
};

struct MorphOutputs {
  float* vertices = nullptr;  // [V*3] (required)
  float* normals = nullptr;   // [V*3] when options.normals
};

struct MorphGrads {  // each null pointer is skipped; the others are overwritten
  float* coeffs = nullptr;       // [K]
  float* pose = nullptr;         // [J*3]
  float* rotation = nullptr;     // [3] or [6]
  float* translation = nullptr;  // [3]
  float* scale = nullptr;        // [1]
};

// What forward leaves for backward (carved from the workspace by morphAllocTape).
struct MorphTape {
  float* vPosed = nullptr;   // [N] template + blendshapes + pose correctives (before skinning)
  float* joints = nullptr;   // [J * kJointTape]
  float* pf = nullptr;       // [P] pose feature
  float* rigid = nullptr;    // [kRigidFloats]
  const float* vertices = nullptr;  // forward's output (must stay unchanged until backward)
};

size_t morphTapeBytes(const MorphModel& m);
// Tape + forward scratch + backward scratch: one reservation serves a whole iteration.
size_t morphWorkspaceBytes(const MorphModel& m, const MorphOptions& o);
MorphTape morphAllocTape(const MorphModel& m, Workspace& ws);

void morphForward(const MorphModel& m, const MorphOptions& o, const MorphInputs& in, const MorphOutputs& out, MorphTape& tape,
                  Workspace& ws, StreamHandle s = nullptr);
// dVertices: [N] dL/dvertices (required); dNormals: [N] or null (only with options.normals).
void morphBackward(const MorphModel& m, const MorphOptions& o, const MorphInputs& in, const MorphTape& tape, const float* dVertices,
                   const float* dNormals, const MorphGrads& g, Workspace& ws, StreamHandle s = nullptr);

// ---------------------------------------------------------------- standalone ops
struct MeshView {
  int64_t V = 0, T = 0;
  const int32_t* tris = nullptr;
  const int32_t* vfOffsets = nullptr;
  const int32_t* vfIncidence = nullptr;
};
// normals [V*3] of positions [V*3]. scratch: [V*3] floats, used only when !deterministic (atomic accumulation).
void vertexNormals(Device d, const MeshView& mesh, const float* pos, float* normals, bool deterministic, float* scratch,
                   StreamHandle s = nullptr);
// dPos (+=) from dNormals. scratch: [V*3] floats.
void vertexNormalsBackward(Device d, const MeshView& mesh, const float* pos, const float* dNormals, float* dPos, bool deterministic,
                           float* scratch, StreamHandle s = nullptr);

// Regularisers. value: one float on d (overwritten). grad: [n] on d, accumulated (+=), may be null.
// coefL2: sum_i w (x_i / std_i)^2 (std null = 1).
void coefL2(Device d, int n, const float* x, const float* stdv, float w, float* value, float* grad, StreamHandle s = nullptr);
// boundsPenalty: sum_i w * dist(x_i, [lo_i, hi_i])^2 (lo/hi arrays may be null: then loS/hiS).
void boundsPenalty(Device d, int n, const float* x, const float* lo, const float* hi, float loS, float hiS, float w, float* value,
                   float* grad, StreamHandle s = nullptr);
// projectBounds: x_i = clamp(x_i, lo_i, hi_i) in place (the projection alternative, after an optimiser step).
void projectBounds(Device d, int n, float* x, const float* lo, const float* hi, float loS, float hiS, StreamHandle s = nullptr);

// ---------------------------------------------------------------- blendshape pass (low level)
// out[r] = templ[r] + sum_k basis[k, r] * c_k, c_k = cA[k] for k < KA, cB[k - KA] otherwise (r < N).
void blendForward(Device d, int64_t N, int64_t stride, int Kall, const uint16_t* basis, const float* templ, const float* cA, int KA,
                  const float* cB, float* out, StreamHandle s = nullptr);
// dc[k] = sum_r basis[k, r] g[r]. deterministic: fixed-order two-pass (scratch of blendBackwardScratch floats);
// else atomics: dc must be zeroed by the caller before.
size_t blendBackwardScratch(Device d, int64_t N, int Kall);
void blendBackward(Device d, int64_t N, int64_t stride, int Kall, const uint16_t* basis, const float* g, float* dc, bool deterministic,
                   float* scratch, StreamHandle s = nullptr);

// ---------------------------------------------------------------- CUDA pieces (morph.cu), used by the dispatchers
#if FG_HAVE_CUDA
namespace cuda {
void blendForward(int64_t N, int64_t stride, int Kall, const uint16_t* basis, const float* templ, const float* cA, int KA, const float* cB,
                  float* out, StreamHandle s);
int blendBackwardBlocks(int64_t N);
void blendBackward(int64_t N, int64_t stride, int Kall, const uint16_t* basis, const float* g, float* dc, bool deterministic,
                   float* partial, StreamHandle s);
void chainForward(const MorphModel& m, const MorphInputs& in, RotationRep rep, const MorphTape& tape, StreamHandle s);
void skinForward(const MorphModel& m, const MorphInputs& in, RotationRep rep, const MorphTape& tape, float* vertices, StreamHandle s);
int skinBackwardBlocks(int64_t V);
void skinBackward(const MorphModel& m, const MorphTape& tape, const float* g, float* dvPosed, float* accum, bool deterministic,
                  float* partial, StreamHandle s);
void reducePartials(const float* partial, int rows, int cols, float* out, StreamHandle s);
// Reduces `smallRows` rows of the skin terms (partials, or 1 row of atomics), then the chain/rigid backward.
void chainBackward(const MorphModel& m, const MorphInputs& in, RotationRep rep, const MorphTape& tape, const float* dcAll,
                   const float* smallSrc, int smallRows, const MorphGrads& g, StreamHandle s);
void normalsForward(const MeshView& mesh, const float* pos, float* normals, bool deterministic, float* scratch, StreamHandle s);
void normalsBackward(const MeshView& mesh, const float* pos, const float* dNormals, float* dPos, bool deterministic, float* scratch,
                     StreamHandle s);
void coefL2(int n, const float* x, const float* stdv, float w, float* value, float* grad, StreamHandle s);
void boundsPenalty(int n, const float* x, const float* lo, const float* hi, float loS, float hiS, float w, float* value, float* grad,
                   StreamHandle s);
void projectBounds(int n, float* x, const float* lo, const float* hi, float loS, float hiS, StreamHandle s);

// Timing helper for the benchmarks: mean microseconds per call of forward, backward and blendshape-only passes
// over `iters` iterations after `warmup` (CUDA events; optional L2 flush between iterations, not timed).
struct MorphTiming { double forwardUs = 0, backwardUs = 0, totalUs = 0, blendForwardUs = 0, blendBackwardUs = 0; };
MorphTiming timeMorph(const MorphModel& m, const MorphOptions& o, const MorphInputs& in, float* vertices, float* normals,
                      const float* dVertices, const float* dNormals, const MorphGrads& g, Workspace& ws, int iters, int warmup,
                      bool flushL2);
}  // namespace cuda
#endif

}  // namespace morph
}  // namespace fg
