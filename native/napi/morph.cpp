// Bindings for native/morph: a model handle (uploaded once), synchronous forward/backward over typed arrays,
// vertex normals, the regularisers, and a timing helper for the benchmarks.
#include <memory>
#include "morph/morph.hpp"
#include "napi/common.hpp"
#include "napi/domains.hpp"

namespace fgn {
namespace {

using fg::morph::MorphModelBuffers;

struct ModelHolder {
  fg::Device device;
  std::unique_ptr<MorphModelBuffers> buffers;
  fg::Workspace ws;
};

std::string n2s(int64_t v) { return std::to_string(v); }

ModelHolder* holderFrom(const Napi::Value& v) {
  if (!v.IsExternal()) throw fg::Error(fg::ErrorCode::InvalidArgument, "model: expected a morph model handle (from morphModelCreate)");
  auto* h = v.As<Napi::External<ModelHolder>>().Data();
  if (!h || !h->buffers) throw fg::Error(fg::ErrorCode::InvalidArgument, "model: the morph model was disposed");
  return h;
}

// Optional typed array of exactly n elements (or absent).
template <typename T>
bool hasKey(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return !v.IsUndefined() && !v.IsNull();
}

// morphModelCreate({device, numVertices, template, numIdentity, identityBasis, numExpression, expressionBasis,
//   identityStd?, expressionStd?, triangles?, numJoints?, parents?, weights?, regressor?, posedirs?}) -> handle
Napi::Value morphModelCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "morphModelCreate");
  fg::Device d = getDevice(o);
  fg::morph::MorphModelDesc desc;
  desc.numVertices = requireInt(o, "numVertices", 1, int64_t(1) << 29);
  const size_t N = size_t(desc.numVertices) * 3;
  desc.templ = requireTyped<float>(o, "template", N).Data();
  desc.numIdentity = int(getInt(o, "numIdentity", 0, 0, 65535));
  desc.numExpression = int(getInt(o, "numExpression", 0, 0, 65535));
  if (desc.numIdentity) desc.identityBasis = requireTyped<uint16_t>(o, "identityBasis", size_t(desc.numIdentity) * N).Data();
  if (desc.numExpression) desc.expressionBasis = requireTyped<uint16_t>(o, "expressionBasis", size_t(desc.numExpression) * N).Data();
  if (hasKey<float>(o, "identityStd")) desc.identityStd = requireTyped<float>(o, "identityStd", size_t(desc.numIdentity)).Data();
  if (hasKey<float>(o, "expressionStd")) desc.expressionStd = requireTyped<float>(o, "expressionStd", size_t(desc.numExpression)).Data();
  if (hasKey<int32_t>(o, "triangles")) {
    auto t = requireTyped<int32_t>(o, "triangles");
    if (t.ElementLength() % 3) throw fg::Error(fg::ErrorCode::InvalidArgument, "triangles: expected a multiple of 3 indices, got " + n2s(t.ElementLength()));
    desc.numTriangles = int64_t(t.ElementLength() / 3);
    desc.triangles = t.Data();
  }
  desc.numJoints = int(getInt(o, "numJoints", 0, 0, 64));
  if (desc.numJoints) {
    const size_t J = size_t(desc.numJoints);
    desc.parents = requireTyped<int32_t>(o, "parents", J).Data();
    desc.weights = requireTyped<float>(o, "weights", size_t(desc.numVertices) * J).Data();
    desc.regressor = requireTyped<float>(o, "regressor", J * size_t(desc.numVertices)).Data();
    if (hasKey<uint16_t>(o, "posedirs") && J > 1) desc.posedirs = requireTyped<uint16_t>(o, "posedirs", 9 * (J - 1) * N).Data();
  }
  auto* h = new ModelHolder{d, std::make_unique<MorphModelBuffers>(d, desc), fg::Workspace()};
  return Napi::External<ModelHolder>::New(env, h, [](Napi::Env, ModelHolder* p) { delete p; });
  FGN_CATCH(env)
}

Napi::Value morphModelInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  ModelHolder* h = holderFrom(info[0]);
  const auto& m = h->buffers->view();
  Napi::Object r = Napi::Object::New(env);
  r.Set("device", fg::deviceName(m.device));
  r.Set("numVertices", double(m.V));
  r.Set("numTriangles", double(m.T));
  r.Set("numIdentity", m.Ki);
  r.Set("numExpression", m.Ke);
  r.Set("numJoints", m.J);
  r.Set("numPoseCorrectives", m.P);
  r.Set("deviceBytes", double(h->buffers->deviceBytes()));
  return r;
  FGN_CATCH(env)
}

Napi::Value morphModelDispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  if (!info[0].IsExternal()) throw fg::Error(fg::ErrorCode::InvalidArgument, "model: expected a morph model handle");
  auto* h = info[0].As<Napi::External<ModelHolder>>().Data();
  if (h) { h->buffers.reset(); h->ws = fg::Workspace(); }
  return env.Undefined();
  FGN_CATCH(env)
}

// The per-call inputs, staged onto the model's device.
struct CallInputs {
  fg::morph::MorphOptions opt;
  std::vector<Staged<float>> staged;
  fg::morph::MorphInputs in;
  int rotLen = 0;
};

float* stageOpt(CallInputs& c, fg::Device d, const Napi::Object& o, const char* key, size_t n, bool required = false) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) {
    if (required) throw fg::Error(fg::ErrorCode::InvalidArgument, std::string(key) + ": required Float32Array of " + n2s(int64_t(n)));
    return nullptr;
  }
  auto a = requireTyped<float>(o, key, n);
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(a[i])) throw fg::Error(fg::ErrorCode::InvalidArgument, std::string(key) + ": non-finite value at index " + n2s(int64_t(i)));
  c.staged.emplace_back(d, a.Data(), n, true);
  return c.staged.back().ptr();
}

void readInputs(CallInputs& c, const fg::morph::MorphModel& m, const Napi::Object& o) {
  c.staged.reserve(8);
  c.opt.normals = getBool(o, "normals", false);
  c.opt.deterministic = getBool(o, "deterministic", true);
  if (c.opt.normals && m.T == 0) throw fg::Error(fg::ErrorCode::InvalidArgument, "normals: the model has no triangles");
  c.in.coeffs = stageOpt(c, m.device, o, "coeffs", size_t(m.K), m.K > 0);
  c.in.pose = m.J ? stageOpt(c, m.device, o, "pose", size_t(3 * m.J)) : nullptr;
  Napi::Value rv = o.Get("rotation");
  if (!rv.IsUndefined() && !rv.IsNull()) {
    if (!rv.IsTypedArray()) throw fg::Error(fg::ErrorCode::InvalidArgument, "rotation: expected a Float32Array of 3 (axis-angle) or 6 (6D)");
    size_t len = rv.As<Napi::TypedArray>().ElementLength();
    if (len != 3 && len != 6) throw fg::Error(fg::ErrorCode::InvalidArgument, "rotation: expected 3 (axis-angle) or 6 (6D) elements, got " + n2s(int64_t(len)));
    c.rotLen = int(len);
    c.opt.rotation = len == 6 ? fg::morph::RotationRep::SixD : fg::morph::RotationRep::AxisAngle;
    c.in.rotation = stageOpt(c, m.device, o, "rotation", len);
  }
  c.in.translation = stageOpt(c, m.device, o, "translation", 3);
  c.in.scale = stageOpt(c, m.device, o, "scale", 1);
}

// morphForward({model, coeffs, pose?, rotation?, translation?, scale?, normals?, deterministic?}) -> {vertices, normals?}
Napi::Value morphForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "morphForward");
  ModelHolder* h = holderFrom(o.Get("model"));
  const auto& m = h->buffers->view();
  CallInputs c;
  readInputs(c, m, o);
  Napi::Float32Array verts = Napi::Float32Array::New(env, size_t(m.N));
  Napi::Float32Array normals = Napi::Float32Array::New(env, c.opt.normals ? size_t(m.N) : 0);
  Staged<float> sv(m.device, verts.Data(), size_t(m.N), false);
  Staged<float> sn(m.device, normals.Data(), normals.ElementLength(), false);
  h->ws.reserve(m.device, fg::morph::morphWorkspaceBytes(m, c.opt));
  h->ws.reset();
  fg::morph::MorphTape tape = fg::morph::morphAllocTape(m, h->ws);
  fg::morph::morphForward(m, c.opt, c.in, {sv.ptr(), c.opt.normals ? sn.ptr() : nullptr}, tape, h->ws, nullptr);
  sv.finish();
  if (c.opt.normals) sn.finish();
  Napi::Object r = Napi::Object::New(env);
  r.Set("vertices", verts);
  if (c.opt.normals) r.Set("normals", normals);
  return r;
  FGN_CATCH(env)
}

// morphBackward({... as morphForward, dVertices, dNormals?}) -> {vertices, normals?, dCoeffs, dPose?, dRotation?, dTranslation, dScale}
// Runs the forward (for its tape) and the backward in one call.
Napi::Value morphBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "morphBackward");
  ModelHolder* h = holderFrom(o.Get("model"));
  const auto& m = h->buffers->view();
  CallInputs c;
  readInputs(c, m, o);
  float* dV = stageOpt(c, m.device, o, "dVertices", size_t(m.N), true);
  float* dN = nullptr;
  if (hasKey<float>(o, "dNormals")) {
    if (!c.opt.normals) throw fg::Error(fg::ErrorCode::InvalidArgument, "dNormals: given without normals: true");
    dN = stageOpt(c, m.device, o, "dNormals", size_t(m.N));
  }
  Napi::Float32Array verts = Napi::Float32Array::New(env, size_t(m.N));
  Napi::Float32Array normals = Napi::Float32Array::New(env, c.opt.normals ? size_t(m.N) : 0);
  Napi::Float32Array dC = Napi::Float32Array::New(env, size_t(m.K));
  Napi::Float32Array dP = Napi::Float32Array::New(env, size_t(3 * m.J));
  Napi::Float32Array dR = Napi::Float32Array::New(env, size_t(c.rotLen));
  Napi::Float32Array dT = Napi::Float32Array::New(env, 3);
  Napi::Float32Array dS = Napi::Float32Array::New(env, 1);
  Staged<float> sv(m.device, verts.Data(), size_t(m.N), false), sn(m.device, normals.Data(), normals.ElementLength(), false);
  Staged<float> sc(m.device, dC.Data(), dC.ElementLength(), false), sp(m.device, dP.Data(), dP.ElementLength(), false);
  Staged<float> sr(m.device, dR.Data(), dR.ElementLength(), false), stt(m.device, dT.Data(), 3, false), ss(m.device, dS.Data(), 1, false);
  h->ws.reserve(m.device, fg::morph::morphWorkspaceBytes(m, c.opt));
  h->ws.reset();
  fg::morph::MorphTape tape = fg::morph::morphAllocTape(m, h->ws);
  fg::morph::morphForward(m, c.opt, c.in, {sv.ptr(), c.opt.normals ? sn.ptr() : nullptr}, tape, h->ws, nullptr);
  fg::morph::MorphGrads g;
  g.coeffs = m.K ? sc.ptr() : nullptr;
  g.pose = m.J ? sp.ptr() : nullptr;
  g.rotation = c.rotLen ? sr.ptr() : nullptr;
  g.translation = stt.ptr();
  g.scale = ss.ptr();
  fg::morph::morphBackward(m, c.opt, c.in, tape, dV, dN, g, h->ws, nullptr);
  sv.finish();
  if (c.opt.normals) sn.finish();
  if (m.K) sc.finish();
  if (m.J) sp.finish();
  if (c.rotLen) sr.finish();
  stt.finish();
  ss.finish();
  Napi::Object r = Napi::Object::New(env);
  r.Set("vertices", verts);
  if (c.opt.normals) r.Set("normals", normals);
  r.Set("dCoeffs", dC);
  if (m.J) r.Set("dPose", dP);
  if (c.rotLen) r.Set("dRotation", dR);
  r.Set("dTranslation", dT);
  r.Set("dScale", dS);
  return r;
  FGN_CATCH(env)
}

struct MeshArgs {
  int64_t V = 0, T = 0;
  std::vector<int32_t> off, inc;
  Napi::Float32Array pos;
  Napi::Int32Array tris;
};

MeshArgs readMesh(const Napi::Object& o) {
  MeshArgs a;
  a.pos = requireTyped<float>(o, "positions");
  if (a.pos.ElementLength() % 3) throw fg::Error(fg::ErrorCode::InvalidArgument, "positions: expected a multiple of 3 floats");
  a.V = int64_t(a.pos.ElementLength() / 3);
  a.tris = requireTyped<int32_t>(o, "triangles");
  if (a.tris.ElementLength() % 3) throw fg::Error(fg::ErrorCode::InvalidArgument, "triangles: expected a multiple of 3 indices");
  a.T = int64_t(a.tris.ElementLength() / 3);
  fg::morph::buildVertexFaces(a.V, a.T, a.tris.Data(), a.off, a.inc, "triangles");
  return a;
}

// vertexNormals({device, positions, triangles, deterministic?}) -> Float32Array
// vertexNormalsBackward({device, positions, triangles, dNormals, deterministic?}) -> Float32Array (dL/dpositions)
Napi::Value normalsImpl(const Napi::CallbackInfo& info, bool backward) {
  Napi::Env env = info.Env();
  Napi::Object o = argObject(info, 0, backward ? "vertexNormalsBackward" : "vertexNormals");
  fg::Device d = getDevice(o);
  bool det = getBool(o, "deterministic", true);
  MeshArgs a = readMesh(o);
  const size_t N = size_t(a.V) * 3;
  Staged<float> pos(d, a.pos.Data(), N, true);
  Staged<int32_t> tris(d, a.tris.Data(), size_t(3 * a.T), true);
  Staged<int32_t> off(d, a.off.data(), a.off.size(), true), inc(d, a.inc.data(), a.inc.size(), true);
  fg::Buffer<float> scratch(d, N + 1);
  fg::morph::MeshView mesh{a.V, a.T, tris.ptr(), off.ptr(), inc.ptr()};
  Napi::Float32Array out = Napi::Float32Array::New(env, N);
  Staged<float> so(d, out.Data(), N, false);
  if (backward) {
    Napi::Float32Array dn = requireTyped<float>(o, "dNormals", N);
    Staged<float> sdn(d, dn.Data(), N, true);
    if (d == fg::Device::CPU) std::fill(out.Data(), out.Data() + N, 0.f);
    fg::morph::vertexNormalsBackward(d, mesh, pos.ptr(), sdn.ptr(), so.ptr(), det, scratch.data(), nullptr);
  } else {
    fg::morph::vertexNormals(d, mesh, pos.ptr(), so.ptr(), det, scratch.data(), nullptr);
  }
  so.finish();
  return out;
}
Napi::Value vertexNormals(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  return normalsImpl(info, false);
  FGN_CATCH(env)
}
Napi::Value vertexNormalsBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  return normalsImpl(info, true);
  FGN_CATCH(env)
}

// Bounds as a number or a Float32Array of n.
const float* boundArg(const Napi::Object& o, const char* key, size_t n, float& scalar, float def, std::vector<Staged<float>>& keep, fg::Device d) {
  Napi::Value v = o.Get(key);
  scalar = def;
  if (v.IsUndefined() || v.IsNull()) return nullptr;
  if (v.IsNumber()) { scalar = float(getNumber(o, key, def)); return nullptr; }
  auto a = requireTyped<float>(o, key, n);
  keep.emplace_back(d, a.Data(), n, true);
  return keep.back().ptr();
}

// coefL2({device, x, std?, weight?}) / boundsPenalty({device, x, lo, hi, weight?}) -> {value, grad}
Napi::Value regImpl(const Napi::CallbackInfo& info, bool bounds) {
  Napi::Env env = info.Env();
  Napi::Object o = argObject(info, 0, bounds ? "boundsPenalty" : "coefL2");
  fg::Device d = getDevice(o);
  auto x = requireTyped<float>(o, "x");
  const size_t n = x.ElementLength();
  float w = float(getNumber(o, "weight", 1.0));
  std::vector<Staged<float>> keep;
  keep.reserve(4);
  keep.emplace_back(d, x.Data(), n, true);
  const float* xp = keep.back().ptr();
  Napi::Float32Array grad = Napi::Float32Array::New(env, n);
  Napi::Float32Array val = Napi::Float32Array::New(env, 1);
  Staged<float> sg(d, grad.Data(), n, true), sv(d, val.Data(), 1, false);
  if (bounds) {
    float lo, hi;
    const float* lp = boundArg(o, "lo", n, lo, -INFINITY, keep, d);
    const float* hp = boundArg(o, "hi", n, hi, INFINITY, keep, d);
    fg::morph::boundsPenalty(d, int(n), xp, lp, hp, lo, hi, w, sv.ptr(), sg.ptr(), nullptr);
  } else {
    const float* sp = nullptr;
    if (hasKey<float>(o, "std")) {
      auto a = requireTyped<float>(o, "std", n);
      for (size_t i = 0; i < n; ++i)
        if (!(a[i] > 0) || !std::isfinite(a[i])) throw fg::Error(fg::ErrorCode::InvalidArgument, "std: expected positive values, index " + n2s(int64_t(i)));
      keep.emplace_back(d, a.Data(), n, true);
      sp = keep.back().ptr();
    }
    fg::morph::coefL2(d, int(n), xp, sp, w, sv.ptr(), sg.ptr(), nullptr);
  }
  sg.finish();
  sv.finish();
  Napi::Object r = Napi::Object::New(env);
  r.Set("value", double(val[0]));
  r.Set("grad", grad);
  return r;
}
Napi::Value coefL2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  return regImpl(info, false);
  FGN_CATCH(env)
}
Napi::Value boundsPenalty(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  return regImpl(info, true);
  FGN_CATCH(env)
}

// projectBounds({device, x, lo, hi}) -> Float32Array (a clamped copy)
Napi::Value projectBounds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "projectBounds");
  fg::Device d = getDevice(o);
  auto x = requireTyped<float>(o, "x");
  const size_t n = x.ElementLength();
  Napi::Float32Array out = Napi::Float32Array::New(env, n);
  std::copy(x.Data(), x.Data() + n, out.Data());
  std::vector<Staged<float>> keep;
  keep.reserve(2);
  float lo, hi;
  const float* lp = boundArg(o, "lo", n, lo, -INFINITY, keep, d);
  const float* hp = boundArg(o, "hi", n, hi, INFINITY, keep, d);
  Staged<float> so(d, out.Data(), n, true);
  fg::morph::projectBounds(d, int(n), so.ptr(), lp, hp, lo, hi, nullptr);
  so.finish();
  return out;
  FGN_CATCH(env)
}

// morphTime({model (cuda), coeffs, ..., dVertices, dNormals?, iterations?, warmup?, flushL2?}) -> {forwardUs, backwardUs,
//   totalUs, blendForwardUs, blendBackwardUs}
Napi::Value morphTime(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FGN_TRY
  Napi::Object o = argObject(info, 0, "morphTime");
  ModelHolder* h = holderFrom(o.Get("model"));
  const auto& m = h->buffers->view();
  if (m.device != fg::Device::CUDA) throw fg::Error(fg::ErrorCode::InvalidArgument, "morphTime: the model must live on device 'cuda'");
#if FG_HAVE_CUDA
  CallInputs c;
  readInputs(c, m, o);
  float* dV = stageOpt(c, m.device, o, "dVertices", size_t(m.N), true);
  float* dN = c.opt.normals ? stageOpt(c, m.device, o, "dNormals", size_t(m.N)) : nullptr;
  int iters = int(getInt(o, "iterations", 200, 1, 100000));
  int warmup = int(getInt(o, "warmup", 20, 0, 100000));
  bool flush = getBool(o, "flushL2", false);
  fg::Buffer<float> verts(m.device, size_t(m.N)), normals(m.device, size_t(m.N)), grads(m.device, size_t(m.K + 3 * m.J + 16));
  fg::morph::MorphGrads g;
  g.coeffs = grads.data();
  g.pose = m.J ? grads.data() + m.K : nullptr;
  g.rotation = c.rotLen ? grads.data() + m.K + 3 * m.J : nullptr;
  g.translation = grads.data() + m.K + 3 * m.J + 6;
  g.scale = grads.data() + m.K + 3 * m.J + 9;
  size_t need = fg::morph::morphWorkspaceBytes(m, c.opt) + fg::Workspace::aligned(sizeof(float) * (m.N + m.P + m.Kall + 3)) +
                fg::Workspace::aligned(sizeof(float) * (size_t(fg::morph::blendBackwardScratch(m.device, m.N, m.Kall)) + 1)) + 4096;
  h->ws.reserve(m.device, need);
  auto t = fg::morph::cuda::timeMorph(m, c.opt, c.in, verts.data(), c.opt.normals ? normals.data() : nullptr, dV, dN, g, h->ws, iters,
                                      warmup, flush);
  Napi::Object r = Napi::Object::New(env);
  r.Set("forwardUs", t.forwardUs);
  r.Set("backwardUs", t.backwardUs);
  r.Set("totalUs", t.totalUs);
  r.Set("blendForwardUs", t.blendForwardUs);
  r.Set("blendBackwardUs", t.blendBackwardUs);
  r.Set("basisBytes", double(size_t(m.Kall) * size_t(m.stride) * 2));
  return r;
#else
  return env.Undefined();
#endif
  FGN_CATCH(env)
}

}  // namespace

void initMorph(Napi::Env env, Napi::Object exports) {
  setFn(env, exports, "morphModelCreate", morphModelCreate);
  setFn(env, exports, "morphModelInfo", morphModelInfo);
  setFn(env, exports, "morphModelDispose", morphModelDispose);
  setFn(env, exports, "morphForward", morphForward);
  setFn(env, exports, "morphBackward", morphBackward);
  setFn(env, exports, "vertexNormals", vertexNormals);
  setFn(env, exports, "vertexNormalsBackward", vertexNormalsBackward);
  setFn(env, exports, "coefL2", coefL2);
  setFn(env, exports, "boundsPenalty", boundsPenalty);
  setFn(env, exports, "projectBounds", projectBounds);
  setFn(env, exports, "morphTime", morphTime);
}

}  // namespace fgn
