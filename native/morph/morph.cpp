// CPU twins, dispatchers, the model builder and the workspace layout of the morph domain.
#include "morph/morph.hpp"
#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include "core/device.hpp"
#include "core/nvtx.hpp"
#include "core/parallel.hpp"

namespace fg {
namespace morph {

namespace {

// The CUDA pass splits the modes over 8 warps (k mod 8), sums the warps in order, then adds the template; the CPU
// twin accumulates in the same order with the same exactly rounded fma/add, so the two agree bitwise.
constexpr int kBlendWarps = 8;
constexpr int kSkinBlock = 256;
int skinBlocks(int64_t V) { return int((V + kSkinBlock - 1) / kSkinBlock); }
int64_t roundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
int smallCount(const MorphModel& m) { return kRigidGrads + 12 * m.J; }

std::string num(int64_t v) { return std::to_string(v); }

// ----------------------------------------------------------------------------- CPU twins
void blendForwardCpu(int64_t N, int64_t stride, int Kall, const uint16_t* basis, const float* templ, const float* cA, int KA,
                     const float* cB, float* out) {
  std::vector<float> c(Kall);
  for (int k = 0; k < Kall; ++k) c[k] = k < KA ? cA[k] : cB[k - KA];
  const int64_t chunk = 64;
  parallelFor((N + chunk - 1) / chunk, [&](int64_t b) {
    int64_t r0 = b * chunk, r1 = std::min(N, r0 + chunk);
    float acc[kBlendWarps][chunk];
    for (int w = 0; w < kBlendWarps; ++w) {
      for (int64_t r = r0; r < r1; ++r) acc[w][r - r0] = 0.f;
      for (int k = w; k < Kall; k += kBlendWarps) {
        const uint16_t* row = basis + int64_t(k) * stride;
        float ck = c[k];
        for (int64_t r = r0; r < r1; ++r) acc[w][r - r0] = fg::fma(ck, halfToFloat(row[r]), acc[w][r - r0]);
      }
    }
    for (int64_t r = r0; r < r1; ++r) {
      float v = 0.f;
      for (int w = 0; w < kBlendWarps; ++w) v = fg::add(v, acc[w][r - r0]);
      out[r] = fg::add(templ[r], v);
    }
  }, 1);
}

void blendBackwardCpu(int64_t N, int64_t stride, int Kall, const uint16_t* basis, const float* g, float* dc) {
  parallelFor(Kall, [&](int64_t k) {
    const uint16_t* row = basis + k * stride;
    double acc = 0.0;
    for (int64_t r = 0; r < N; ++r) acc += double(halfToFloat(row[r])) * double(g[r]);
    dc[k] = float(acc);
  }, 1);
}

void jointsRestCpu(const MorphModel& m, const float* coeffs, float* tape) {
  for (int jd = 0; jd < 3 * m.J; ++jd) {
    double acc = m.jointTemplate[jd];
    const float* row = m.jointBasis + int64_t(jd) * m.K;
    for (int k = 0; k < m.K; ++k) acc += double(row[k]) * double(coeffs[k]);
    tape[(jd / 3) * kJointTape + kJrest + jd % 3] = float(acc);
  }
}

void chainForwardCpu(const MorphModel& m, const MorphInputs& in, const MorphTape& tape) {
  jointsRestCpu(m, in.coeffs, tape.joints);
  const float zero[3] = {0.f, 0.f, 0.f};
  for (int j = 0; j < m.J; ++j) {
    rodrigues(in.pose ? in.pose + 3 * j : zero, tape.joints + j * kJointTape + kRloc);
    chainLink(j, m.parentsHost, tape.joints, m.P ? tape.pf : nullptr);
  }
}

void skinForwardCpu(const MorphModel& m, const MorphTape& tape, float* vertices) {
  std::vector<float> A(size_t(12) * m.J);
  for (int j = 0; j < m.J; ++j)
    for (int i = 0; i < 12; ++i) A[12 * j + i] = tape.joints[j * kJointTape + kA + i];
  parallelFor(m.V, [&](int64_t v) {
    float u[3];
    skinVertex(m.J, A.data(), m.J ? m.weights + v * m.J : nullptr, tape.vPosed + 3 * v, tape.rigid, u, vertices + 3 * v);
  });
}

// Per chunk of kSkinBlock vertices: dvPosed, and the chunk's sums of the Q reduction terms (fixed order).
void skinBackwardCpu(const MorphModel& m, const MorphTape& tape, const float* g, float* dvPosed, float* small) {
  const int Q = smallCount(m);
  const int blocks = skinBlocks(m.V);
  std::vector<float> A(size_t(12) * m.J);
  for (int j = 0; j < m.J; ++j)
    for (int i = 0; i < 12; ++i) A[12 * j + i] = tape.joints[j * kJointTape + kA + i];
  std::vector<double> part(size_t(blocks) * Q, 0.0);
  parallelFor(blocks, [&](int64_t b) {
    double* acc = part.data() + b * Q;
    int64_t v1 = std::min<int64_t>(m.V, (b + 1) * kSkinBlock);
    for (int64_t v = b * kSkinBlock; v < v1; ++v)
      skinVertexBackward(m.J, A.data(), m.J ? m.weights + v * m.J : nullptr, tape.vPosed + 3 * v, tape.rigid, g + 3 * v, dvPosed + 3 * v,
                         [&](int q, float val) { acc[q] += val; });
  }, 1);
  for (int q = 0; q < Q; ++q) {
    double s = 0.0;
    for (int b = 0; b < blocks; ++b) s += part[size_t(b) * Q + q];
    small[q] = float(s);
  }
}

void chainBackwardCpu(const MorphModel& m, const MorphInputs& in, RotationRep rep, const MorphTape& tape, const float* dcAll,
                      const float* small, const MorphGrads& g) {
  // rigid
  if (g.rotation) {
    int np = rotationParams(rep);
    for (int i = 0; i < np; ++i) g.rotation[i] = 0.f;
    if (in.rotation) rotationBackward(rep, in.rotation, small, g.rotation);
  }
  if (g.scale) g.scale[0] = small[9];
  if (g.translation) for (int i = 0; i < 3; ++i) g.translation[i] = small[10 + i];
  std::vector<float> scratch(size_t(kJointScratch) * m.J), dR(size_t(9) * m.J);
  for (int j = 0; j < m.J; ++j) chainBackwardInit(j, tape.joints, small + kRigidGrads, scratch.data());
  for (int j = m.J - 1; j >= 0; --j) chainBackwardLink(j, m.parentsHost, tape.joints, m.P ? dcAll + m.K : nullptr, scratch.data(), dR.data());
  if (g.pose) {
    const float zero[3] = {0.f, 0.f, 0.f};
    for (int j = 0; j < m.J; ++j) {
      float dr[3] = {0.f, 0.f, 0.f};
      rodriguesBackward(in.pose ? in.pose + 3 * j : zero, dR.data() + 9 * j, dr);
      for (int i = 0; i < 3; ++i) g.pose[3 * j + i] = dr[i];
    }
  }
  if (g.coeffs) {
    for (int k = 0; k < m.K; ++k) {
      double acc = dcAll[k];
      for (int jd = 0; jd < 3 * m.J; ++jd) acc += double(m.jointBasis[int64_t(jd) * m.K + k]) * double(scratch[(jd / 3) * kJointScratch + 12 + jd % 3]);
      g.coeffs[k] = float(acc);
    }
  }
}

void normalsForwardCpu(const MeshView& mesh, const float* pos, float* normals) {
  parallelFor(mesh.V, [&](int64_t v) {
    float mm[3];
    gatherVertexNormal(v, pos, mesh.tris, mesh.vfOffsets, mesh.vfIncidence, mm);
    normalize3(mm, normals + 3 * v);
  });
}

void normalsBackwardCpu(const MeshView& mesh, const float* pos, const float* dN, float* dPos, float* dm) {
  parallelFor(mesh.V, [&](int64_t v) {
    float mm[3];
    gatherVertexNormal(v, pos, mesh.tris, mesh.vfOffsets, mesh.vfIncidence, mm);
    normalizeBackward(mm, dN + 3 * v, dm + 3 * v);
  });
  parallelFor(mesh.V, [&](int64_t v) {
    float acc[3] = {0.f, 0.f, 0.f};
    gatherFaceNormalGrad(v, pos, mesh.tris, mesh.vfOffsets, mesh.vfIncidence, dm, acc);
    for (int i = 0; i < 3; ++i) dPos[3 * v + i] += acc[i];
  });
}

void checkMesh(const MeshView& mesh) {
  FG_CHECK_ARG(mesh.V >= 0 && mesh.T >= 0, "mesh: negative sizes");
  FG_CHECK_ARG(mesh.T == 0 || (mesh.tris && mesh.vfOffsets && mesh.vfIncidence), "mesh: triangles and adjacency are required");
}

}  // namespace

// ----------------------------------------------------------------------------- model builder
void buildVertexFaces(int64_t V, int64_t T, const int32_t* tris, std::vector<int32_t>& offsets, std::vector<int32_t>& incidence,
                      const char* what) {
  FG_CHECK_ARG(V >= 0 && V < (int64_t(1) << 31), std::string(what) + ": vertex count out of range");
  FG_CHECK_ARG(T >= 0 && 3 * T < (int64_t(1) << 31), std::string(what) + ": triangle count out of range");
  offsets.assign(size_t(V) + 1, 0);
  for (int64_t i = 0; i < 3 * T; ++i) {
    int32_t v = tris[i];
    if (v < 0 || v >= V)
      fail(ErrorCode::InvalidArgument, std::string(what) + ": index " + num(v) + " at position " + num(i) + " is outside [0, " + num(V) + ")");
    offsets[size_t(v) + 1]++;
  }
  for (int64_t v = 0; v < V; ++v) offsets[v + 1] += offsets[v];
  incidence.assign(size_t(3 * T), 0);
  std::vector<int32_t> fill(offsets.begin(), offsets.end() - 1);
  for (int64_t i = 0; i < 3 * T; ++i) incidence[fill[tris[i]]++] = int32_t(i);  // i = face*3 + corner, ascending
}

MorphModelBuffers::MorphModelBuffers(Device d, const MorphModelDesc& desc) {
  const int64_t V = desc.numVertices;
  FG_CHECK_ARG(V > 0 && V < (int64_t(1) << 29), "numVertices: expected a count in [1, 2^29), got " + num(V));
  FG_CHECK_ARG(desc.templ, "template: required [V*3] Float32Array");
  FG_CHECK_ARG(desc.numIdentity >= 0 && desc.numExpression >= 0, "numIdentity/numExpression: expected >= 0");
  FG_CHECK_ARG(desc.numIdentity == 0 || desc.identityBasis, "identityBasis: required when numIdentity > 0");
  FG_CHECK_ARG(desc.numExpression == 0 || desc.expressionBasis, "expressionBasis: required when numExpression > 0");
  FG_CHECK_ARG(desc.numJoints >= 0 && desc.numJoints <= 64, "numJoints: expected 0..64, got " + num(desc.numJoints));
  const int J = desc.numJoints;
  if (J > 0) {
    FG_CHECK_ARG(desc.parents && desc.weights && desc.regressor, "skinning: parents, weights and regressor are required when numJoints > 0");
    for (int j = 0; j < J; ++j) {
      int p = desc.parents[j];
      if (j == 0) FG_CHECK_ARG(p == -1, "parents[0]: expected -1 (the root), got " + num(p));
      else FG_CHECK_ARG(p >= 0 && p < j, "parents[" + num(j) + "]: expected a joint index in [0, " + num(j) + ") (parents before children), got " + num(p));
    }
    for (int64_t i = 0; i < V * J; ++i)
      FG_CHECK_ARG(std::isfinite(desc.weights[i]), "weights: non-finite value at index " + num(i));
  }
  MorphModel& m = m_;
  m.device = d;
  m.V = V;
  m.N = 3 * V;
  m.stride = roundUp(m.N, 8);
  m.T = desc.numTriangles;
  m.Ki = desc.numIdentity;
  m.Ke = desc.numExpression;
  m.K = m.Ki + m.Ke;
  m.J = J;
  m.P = (J > 1 && desc.posedirs) ? 9 * (J - 1) : 0;
  m.Kall = m.K + m.P;
  FG_CHECK_ARG(m.Kall < 65536, "modes: at most 65535 blendshape modes");
  for (int64_t i = 0; i < m.N; ++i) FG_CHECK_ARG(std::isfinite(desc.templ[i]), "template: non-finite value at index " + num(i));

  // basis [Kall, stride] half, zero padded
  std::vector<uint16_t> basis(size_t(std::max(m.Kall, 1)) * m.stride, 0);
  auto copyRows = [&](const uint16_t* src, int rows, int at) {
    for (int k = 0; k < rows; ++k) std::memcpy(basis.data() + size_t(at + k) * m.stride, src + size_t(k) * m.N, size_t(m.N) * 2);
  };
  if (m.Ki) copyRows(desc.identityBasis, m.Ki, 0);
  if (m.Ke) copyRows(desc.expressionBasis, m.Ke, m.Ki);
  if (m.P) copyRows(desc.posedirs, m.P, m.K);
  std::vector<float> sd(size_t(std::max(m.K, 1)), 1.f);
  for (int k = 0; k < m.Ki; ++k) if (desc.identityStd) sd[k] = desc.identityStd[k];
  for (int k = 0; k < m.Ke; ++k) if (desc.expressionStd) sd[m.Ki + k] = desc.expressionStd[k];
  for (int k = 0; k < m.K; ++k)
    FG_CHECK_ARG(std::isfinite(sd[k]) && sd[k] > 0, std::string(k < m.Ki ? "identityStd" : "expressionStd") + ": expected positive values, got " +
                                                        std::to_string(sd[k]) + " at mode " + num(k < m.Ki ? k : k - m.Ki));

  std::vector<int32_t> off, inc;
  if (m.T > 0) {
    FG_CHECK_ARG(desc.triangles, "triangles: required when numTriangles > 0");
    buildVertexFaces(V, m.T, desc.triangles, off, inc, "triangles");
  }

  // joints: jointTemplate = R . template, jointBasis[jd, k] = sum_v R[j, v] basis[k, v, d] (host, skipping zeros)
  std::vector<float> jt(size_t(3) * J), jb(size_t(3) * J * std::max(m.K, 1));
  for (int j = 0; j < J; ++j) {
    const float* reg = desc.regressor + int64_t(j) * V;
    std::vector<double> accB(size_t(3) * m.K, 0.0);
    double accT[3] = {0, 0, 0};
    for (int64_t v = 0; v < V; ++v) {
      double w = reg[v];
      FG_CHECK_ARG(std::isfinite(reg[v]), "regressor: non-finite value at joint " + num(j) + ", vertex " + num(v));
      if (w == 0.0) continue;
      for (int d3 = 0; d3 < 3; ++d3) accT[d3] += w * desc.templ[3 * v + d3];
      for (int k = 0; k < m.K; ++k) {
        const uint16_t* row = basis.data() + size_t(k) * m.stride + 3 * v;
        for (int d3 = 0; d3 < 3; ++d3) accB[size_t(d3) * m.K + k] += w * halfToFloat(row[d3]);
      }
    }
    for (int d3 = 0; d3 < 3; ++d3) {
      jt[3 * j + d3] = float(accT[d3]);
      for (int k = 0; k < m.K; ++k) jb[size_t(3 * j + d3) * m.K + k] = float(accB[size_t(d3) * m.K + k]);
    }
  }

  auto up = [&](auto& buf, const auto* src, size_t n) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(src)>>;
    buf = Buffer<T>(d, std::max<size_t>(n, 1));
    if (n) buf.upload(src, n);
    bytes_ += buf.bytes();
  };
  up(templ_, desc.templ, size_t(m.N));
  up(basis_, basis.data(), basis.size());
  up(std_, sd.data(), sd.size());
  if (m.T) {
    up(tris_, desc.triangles, size_t(3 * m.T));
    up(off_, off.data(), off.size());
    up(inc_, inc.data(), inc.size());
  }
  if (J) {
    parentsHost_.assign(desc.parents, desc.parents + J);
    up(parents_, desc.parents, size_t(J));
    up(weights_, desc.weights, size_t(V * J));
    up(jt_, jt.data(), jt.size());
    up(jb_, jb.data(), size_t(3 * J) * m.K);
  }
  m.templ = templ_.data();
  m.basis = basis_.data();
  m.modeStd = std_.data();
  m.tris = m.T ? tris_.data() : nullptr;
  m.vfOffsets = m.T ? off_.data() : nullptr;
  m.vfIncidence = m.T ? inc_.data() : nullptr;
  m.parents = J ? parents_.data() : nullptr;
  m.parentsHost = J ? parentsHost_.data() : nullptr;
  m.weights = J ? weights_.data() : nullptr;
  m.jointTemplate = J ? jt_.data() : nullptr;
  m.jointBasis = J ? jb_.data() : nullptr;
}

// ----------------------------------------------------------------------------- workspace layout
namespace {
struct BwdLayout {
  size_t dvTotal = 0, dm = 0, dvPosed = 0, accum = 0, blendPart = 0, skinPart = 0, chain = 0;
};
size_t blendBlocksFor(Device d, int64_t N) {
#if FG_HAVE_CUDA
  if (d == Device::CUDA) return size_t(cuda::blendBackwardBlocks(N));
#endif
  (void)d; (void)N;
  return 0;
}
BwdLayout bwdLayout(const MorphModel& m, const MorphOptions& o) {
  BwdLayout L;
  L.dvTotal = o.normals ? size_t(m.N) : 0;
  L.dm = o.normals ? size_t(m.N) : 0;
  L.dvPosed = size_t(m.N);
  L.accum = size_t(m.Kall + smallCount(m));
  L.blendPart = o.deterministic ? blendBlocksFor(m.device, m.N) * m.Kall : 0;
  L.skinPart = size_t(skinBlocks(m.V)) * smallCount(m);
  L.chain = size_t(m.J) * (kJointScratch + 9) + 16;
  return L;
}
size_t fl(size_t n) { return Workspace::aligned(n * sizeof(float)); }
}  // namespace

size_t morphTapeBytes(const MorphModel& m) {
  return fl(size_t(m.N)) + fl(size_t(m.J) * kJointTape + 1) + fl(size_t(m.P) + 1) + fl(kRigidFloats);
}

size_t morphWorkspaceBytes(const MorphModel& m, const MorphOptions& o) {
  BwdLayout L = bwdLayout(m, o);
  size_t fwd = o.normals ? fl(size_t(m.N)) : 0;
  return morphTapeBytes(m) + fwd + fl(L.dvTotal) + fl(L.dm) + fl(L.dvPosed) + fl(L.accum) + fl(L.blendPart) + fl(L.skinPart) + fl(L.chain) + 256;
}

MorphTape morphAllocTape(const MorphModel& m, Workspace& ws) {
  FG_CHECK_ARG(ws.device() == m.device, "workspace: on a different device than the model");
  MorphTape t;
  t.vPosed = ws.alloc<float>(size_t(m.N));
  t.joints = ws.alloc<float>(size_t(m.J) * kJointTape + 1);
  t.pf = ws.alloc<float>(size_t(m.P) + 1);
  t.rigid = ws.alloc<float>(kRigidFloats);
  return t;
}

// ----------------------------------------------------------------------------- forward / backward
void morphForward(const MorphModel& m, const MorphOptions& o, const MorphInputs& in, const MorphOutputs& out, MorphTape& tape,
                  Workspace& ws, StreamHandle s) {
  NvtxRange range("morph/forward");
  FG_CHECK_ARG(in.coeffs || m.K == 0, "coeffs: required");
  FG_CHECK_ARG(out.vertices, "vertices: an output buffer is required");
  FG_CHECK_ARG(!o.normals || (out.normals && m.T > 0), "normals: requested, but no output buffer or the model has no triangles");
  FG_CHECK_ARG(tape.vPosed && tape.rigid, "tape: allocate it with morphAllocTape");
  FG_CHECK_ARG(ws.device() == m.device, "workspace: on a different device than the model");
  tape.vertices = out.vertices;
  MeshView mesh{m.V, m.T, m.tris, m.vfOffsets, m.vfIncidence};
  if (m.device == Device::CPU) {
    rigidSetup(o.rotation, in.rotation, in.translation, in.scale, tape.rigid);
    if (m.J) chainForwardCpu(m, in, tape);
    blendForwardCpu(m.N, m.stride, m.Kall, m.basis, m.templ, in.coeffs, m.K, tape.pf, tape.vPosed);
    skinForwardCpu(m, tape, out.vertices);
    if (o.normals) normalsForwardCpu(mesh, out.vertices, out.normals);
    return;
  }
#if FG_HAVE_CUDA
  if (m.J) cuda::chainForward(m, in, o.rotation, tape, s);
  cuda::blendForward(m.N, m.stride, m.Kall, m.basis, m.templ, in.coeffs, m.K, tape.pf, tape.vPosed, s);
  // the skin kernel also sets up the rigid transform (tape.rigid) from in.rotation/translation/scale
  cuda::skinForward(m, in, o.rotation, tape, out.vertices, s);
  if (o.normals) {
    float* scratch = o.deterministic ? nullptr : ws.alloc<float>(size_t(m.N));
    cuda::normalsForward(mesh, out.vertices, out.normals, o.deterministic, scratch, s);
  }
#else
  (void)ws; (void)s; (void)mesh;
  requireCuda();
#endif
}

void morphBackward(const MorphModel& m, const MorphOptions& o, const MorphInputs& in, const MorphTape& tape, const float* dVertices,
                   const float* dNormals, const MorphGrads& g, Workspace& ws, StreamHandle s) {
  NvtxRange range("morph/backward");
  FG_CHECK_ARG(dVertices, "dVertices: required");
  FG_CHECK_ARG(!dNormals || o.normals, "dNormals: given, but options.normals is off");
  FG_CHECK_ARG(tape.vertices || !dNormals, "tape: run morphForward first");
  FG_CHECK_ARG(ws.device() == m.device, "workspace: on a different device than the model");
  BwdLayout L = bwdLayout(m, o);
  MeshView mesh{m.V, m.T, m.tris, m.vfOffsets, m.vfIncidence};
  float* dvTotal = dNormals ? ws.alloc<float>(L.dvTotal) : nullptr;
  float* dm = dNormals ? ws.alloc<float>(L.dm) : nullptr;
  float* dvPosed = ws.alloc<float>(L.dvPosed);
  float* accum = ws.alloc<float>(L.accum);  // dcAll [Kall] then small [Q]
  float* dcAll = accum;
  float* small = accum + m.Kall;
  const int Q = smallCount(m);
  const float* gv = dVertices;
  if (m.device == Device::CPU) {
    if (dNormals) {
      std::memcpy(dvTotal, dVertices, size_t(m.N) * sizeof(float));
      normalsBackwardCpu(mesh, tape.vertices, dNormals, dvTotal, dm);
      gv = dvTotal;
    }
    skinBackwardCpu(m, tape, gv, dvPosed, small);
    blendBackwardCpu(m.N, m.stride, m.Kall, m.basis, dvPosed, dcAll);
    chainBackwardCpu(m, in, o.rotation, tape, dcAll, small, g);
    return;
  }
#if FG_HAVE_CUDA
  float* blendPart = L.blendPart ? ws.alloc<float>(L.blendPart) : nullptr;
  float* skinPart = ws.alloc<float>(L.skinPart);
  if (dNormals) {
    memcpyAny(dvTotal, Device::CUDA, dVertices, Device::CUDA, size_t(m.N) * sizeof(float), s);
    cuda::normalsBackward(mesh, tape.vertices, dNormals, dvTotal, o.deterministic, dm, s);
    gv = dvTotal;
  }
  if (!o.deterministic) memsetAny(accum, Device::CUDA, 0, L.accum * sizeof(float), s);
  cuda::skinBackward(m, tape, gv, dvPosed, small, o.deterministic, skinPart, s);
  cuda::blendBackward(m.N, m.stride, m.Kall, m.basis, dvPosed, dcAll, o.deterministic, blendPart, s);
  // chainBackward reduces the skin partials itself (deterministic) or reads `small` (atomics)
  cuda::chainBackward(m, in, o.rotation, tape, dcAll, o.deterministic ? skinPart : small, o.deterministic ? skinBlocks(m.V) : 1, g, s);
  (void)Q;
#else
  (void)s; (void)Q;
  requireCuda();
#endif
}

// ----------------------------------------------------------------------------- standalone dispatchers
void vertexNormals(Device d, const MeshView& mesh, const float* pos, float* normals, bool deterministic, float* scratch, StreamHandle s) {
  NvtxRange range("morph/normals");
  checkMesh(mesh);
  if (d == Device::CPU) return normalsForwardCpu(mesh, pos, normals);
#if FG_HAVE_CUDA
  FG_CHECK_ARG(deterministic || scratch, "vertexNormals: atomic mode needs a scratch buffer of V*3 floats");
  cuda::normalsForward(mesh, pos, normals, deterministic, scratch, s);
#else
  (void)deterministic; (void)scratch; (void)s;
  requireCuda();
#endif
}

void vertexNormalsBackward(Device d, const MeshView& mesh, const float* pos, const float* dNormals, float* dPos, bool deterministic,
                           float* scratch, StreamHandle s) {
  NvtxRange range("morph/normals_backward");
  checkMesh(mesh);
  FG_CHECK_ARG(scratch, "vertexNormalsBackward: a scratch buffer of V*3 floats is required");
  FG_TWIN_CALL(d, normalsBackwardCpu(mesh, pos, dNormals, dPos, scratch), cuda::normalsBackward(mesh, pos, dNormals, dPos, deterministic, scratch, s));
}

void blendForward(Device d, int64_t N, int64_t stride, int Kall, const uint16_t* basis, const float* templ, const float* cA, int KA,
                  const float* cB, float* out, StreamHandle s) {
  NvtxRange range("morph/blend_forward");
  FG_CHECK_ARG(stride >= N && stride % 8 == 0, "blendForward: stride must be >= N and a multiple of 8");
  FG_TWIN_CALL(d, blendForwardCpu(N, stride, Kall, basis, templ, cA, KA, cB, out), cuda::blendForward(N, stride, Kall, basis, templ, cA, KA, cB, out, s));
}

size_t blendBackwardScratch(Device d, int64_t N, int Kall) { return blendBlocksFor(d, N) * size_t(Kall); }

void blendBackward(Device d, int64_t N, int64_t stride, int Kall, const uint16_t* basis, const float* g, float* dc, bool deterministic,
                   float* scratch, StreamHandle s) {
  NvtxRange range("morph/blend_backward");
  FG_CHECK_ARG(stride >= N && stride % 8 == 0, "blendBackward: stride must be >= N and a multiple of 8");
  if (d == Device::CPU) return blendBackwardCpu(N, stride, Kall, basis, g, dc);
#if FG_HAVE_CUDA
  FG_CHECK_ARG(!deterministic || scratch, "blendBackward: deterministic mode needs blendBackwardScratch() floats of scratch");
  cuda::blendBackward(N, stride, Kall, basis, g, dc, deterministic, scratch, s);
#else
  (void)deterministic; (void)scratch; (void)s;
  requireCuda();
#endif
}

void coefL2(Device d, int n, const float* x, const float* stdv, float w, float* value, float* grad, StreamHandle s) {
  NvtxRange range("morph/coef_l2");
  FG_CHECK_ARG(n >= 0 && x && value, "coefL2: x and value are required");
  if (d == Device::CPU) {
    double acc = 0.0;
    for (int i = 0; i < n; ++i) {
      float sd = stdv ? stdv[i] : 1.f;
      acc += coefL2Value(x[i], sd, w);
      if (grad) grad[i] += coefL2Grad(x[i], sd, w);
    }
    value[0] = float(acc);
    return;
  }
#if FG_HAVE_CUDA
  cuda::coefL2(n, x, stdv, w, value, grad, s);
#else
  (void)s;
  requireCuda();
#endif
}

void boundsPenalty(Device d, int n, const float* x, const float* lo, const float* hi, float loS, float hiS, float w, float* value,
                   float* grad, StreamHandle s) {
  NvtxRange range("morph/bounds_penalty");
  FG_CHECK_ARG(n >= 0 && x && value, "boundsPenalty: x and value are required");
  if (d == Device::CPU) {
    double acc = 0.0;
    for (int i = 0; i < n; ++i) {
      float l = lo ? lo[i] : loS, h = hi ? hi[i] : hiS;
      acc += boundsValue(x[i], l, h, w);
      if (grad) grad[i] += boundsGrad(x[i], l, h, w);
    }
    value[0] = float(acc);
    return;
  }
#if FG_HAVE_CUDA
  cuda::boundsPenalty(n, x, lo, hi, loS, hiS, w, value, grad, s);
#else
  (void)s;
  requireCuda();
#endif
}

void projectBounds(Device d, int n, float* x, const float* lo, const float* hi, float loS, float hiS, StreamHandle s) {
  NvtxRange range("morph/project_bounds");
  FG_CHECK_ARG(n >= 0 && x, "projectBounds: x is required");
  if (d == Device::CPU) {
    for (int i = 0; i < n; ++i) x[i] = fg::clampv(x[i], lo ? lo[i] : loS, hi ? hi[i] : hiS);
    return;
  }
#if FG_HAVE_CUDA
  cuda::projectBounds(n, x, lo, hi, loS, hiS, s);
#else
  (void)s;
  requireCuda();
#endif
}

}  // namespace morph
}  // namespace fg
