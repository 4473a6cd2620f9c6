// The FaceG2E text-to-head pipeline: the geometry phase (3DMM coefficients by SDS on grey/normal renders) and
// the texture phase (a latent UV texture by latent SDS, then an RGB UV texture through the image-space target,
// with a depth ControlNet on renders and a texture prior on the UV map). docs/pipeline.md describes the maths.
//
// Everything here is plain C++ on one device (CPU or CUDA) and one stream; the N-API layer (napi/pipeline.cpp)
// fills PipelineInput from the JavaScript object and runs runPipeline() on a worker thread.
//
// Steady state allocates nothing on the device: every buffer and workspace is reserved by the Runner's
// constructor; an iteration only carves the same slices again. Randomness is Philox, addressed by (seed,
// stream, iteration, ...), so a run resumed from a checkpoint at iteration k draws exactly what an
// uninterrupted run draws from iteration k on.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>
#include "core/cancel.hpp"
#include "core/hd.hpp"
#include "engines/interfaces.hpp"
#include "pipeline/camera.hpp"
#include "pipeline/kernels.hpp"
#include "sds/optim.hpp"
#include "sds/schedule.hpp"

namespace fg {
namespace pipe {

enum class GeometryInput : int { Grey = 0, Normal = 1 };

struct ModelInput {
  int64_t V = 0, T = 0, U = 0;
  std::vector<float> templ;           // [V*3] model units
  std::vector<int32_t> tri, uvTri;    // [T*3]
  std::vector<float> uv;              // [U*2], OBJ convention (v = 0 at the bottom row)
  int Ki = 0, Ke = 0;
  std::vector<uint16_t> identityBasis, expressionBasis;  // fp16 bits [K, V, 3]
  std::vector<float> identityStd, expressionStd;         // [Ki], [Ke] (empty: 1)
  double metresPerUnit = 1.0;
};

struct OptimSettings {
  sds::OptimConfig config;
  sds::LrSchedule lr;        // baseLr + decay (Constant / Step / Cosine)
  double minLrFactor = 0.0;  // lr >= baseLr * minLrFactor
};

struct GeometrySettings {
  bool enabled = true;
  int64_t iterations = 200;
  int renderSize = 224;
  int views = 1;                          // views per iteration (<= kMaxViews)
  bool optimizeExpression = false;
  std::vector<float> init;                // [Ki (+Ke)] or empty (zeros)
  std::vector<GeometryInput> inputs = {GeometryInput::Grey, GeometryInput::Normal};
  bool randomInputs = false;              // false: inputs[i % n] ("alternate"); true: a Philox pick per iteration
  std::vector<std::array<float, 9>> lighting;  // empty: the built-in presets
  float albedo = 1.f;                     // grey renders: albedo · E_sh(n)
  float background[3] = {0, 0, 0};
  Range elevation{-20, 20}, azimuth{-45, 45}, distance{0.7, 1.0};
  double fovDegrees = 12.593637;
  sds::TimestepSchedule timesteps;
  double guidance = 100.0;
  OptimSettings optim;
  double regIdentity = 1e-4, regExpression = 1e-3;
  bool antialias = true;
};

struct TextureSettings {
  bool enabled = true;
  int64_t iterations = 400;
  std::vector<float> coefficients;        // [K] geometry for this phase; empty: the geometry phase's result (or init)
  int64_t latentIterations = 200;
  int latentSize = 64, latentRenderSize = 64;
  bool latentRandomInit = false;
  float latentInitScale = 1.f;
  int textureSize = 512, renderSize = 512;
  int views = 1;
  double guidance = 100.0;
  sds::TimestepSchedule timesteps;
  bool controlEnabled = true;
  float controlScale = 1.f;
  std::string controlName = "controlnet_depth";
  bool priorEnabled = true;
  float priorWeight = 3.f;
  float priorGuidance = 1.f;
  std::string priorControlName = "controlnet_canny";
  std::vector<float> priorControl;        // [S,S,3] canny image of a template texture (HWC, [0,1]); empty: none
  int priorControlSize = 0;
  float background[3] = {0, 0, 0};
  bool fixedCameras = true;
  std::vector<CameraPose> fixed;
  Range elevation{-10, 30}, azimuth{-180, 180}, distance{0.7, 0.85};
  double fovDegrees = 12.593637;
  OptimSettings optim;
  bool antialias = true;
  bool clampTexture = true;               // RGB texels projected to [0, 1] after each step
};

struct DiffusionSettings {
  sds::SchedulerConfig scheduler;
  sds::Weighting weighting = sds::Weighting::OneMinusAlpha;
  double gradScale = 1.0;
  float gradClamp = 0.f;
  bool targetDenoiser = true;             // the only backend the binding wires today (see docs/pipeline.md)
  std::string codec = "identity";         // identity | pooling (target mode)
  float poolingScale = 1.f;
  engines::CfgOrder cfgOrder = engines::CfgOrder::UncondFirst;
  // text embeddings [tokens * dim] (network backends): front/side/back cond, uncond, texture prior
  int tokens = 77, embedDim = 768;
  std::vector<float> textFront, textSide, textBack, textUncond, textPrior;
  double frontMaxAzimuth = 45.0, backMinAzimuth = 135.0;
};

struct TargetHead {
  std::vector<float> coefficients;        // [K]
  std::vector<float> texture;             // [H, W, 3]
  int texWidth = 0, texHeight = 0;
};

struct PreviewSettings {
  std::vector<CameraPose> views;
  int size = 256;
  double fovDegrees = 12.593637;
  bool textured = true, shaded = true;
};

// Everything needed to continue a run exactly where it stopped.
struct Checkpoint {
  std::string phase;                      // "geometry" | "texture" | "done"
  int64_t iteration = 0;                  // next iteration of `phase` to run
  std::vector<float> coefficients;        // [K]
  std::vector<float> geomM, geomV, geomD, geomPrev;  // Adan state [K]
  std::vector<float> latent, latentM, latentV;       // [Ls, Ls, C]
  std::vector<float> rgb, rgbM, rgbV;                // [S, S, 3]
  double initialRmse = 0.0;
  std::vector<float> geometryCurve, textureCurve;    // per iteration: [t, sdsGradMeanSq, targetMse]
  double geometryMs = 0.0, textureMs = 0.0;
};

struct PipelineInput {
  std::string device = "cpu";
  uint64_t seed = 42;
  bool profile = false;
  int progressEvery = 0;                  // 0: about 20 events per phase
  ModelInput model;
  DiffusionSettings diffusion;
  GeometrySettings geometry;
  TextureSettings texture;
  TargetHead target;                      // required with the target denoiser
  PreviewSettings previews;
  bool hasCheckpoint = false;
  Checkpoint checkpoint;
};

struct OpStat {
  double totalMs = 0.0;
  int64_t count = 0;
};

struct PipelineResult {
  std::string status = "done";            // "done" | "cancelled"
  Checkpoint checkpoint;                  // when cancelled (and the final state when done)
  std::vector<float> coefficients, vertices, normals;  // vertices/normals in model units / unit vectors
  std::vector<float> texture;             // [S, S, 3]
  int textureSize = 0;
  std::vector<float> previewTextured, previewShaded;  // [n, size, size, 3]
  int previewCount = 0, previewSize = 0;
  double vertexRmseRatio = -1.0, vertexRmseInitial = -1.0, vertexRmseFinal = -1.0;
  double psnrDb = -1.0;
  int64_t visibleTexels = 0;
  double setupMs = 0.0, geometryMs = 0.0, textureMs = 0.0;
  int curveGroup = 1;
  std::vector<float> geometryCurve, textureCurve;     // grouped means: [groups, 4] = (iteration, t, sdsGradMeanSq, targetMse)
  std::map<std::string, OpStat> profile;
};

using ProgressFn = std::function<void(const std::string& json)>;

PipelineResult runPipeline(const PipelineInput& in, const CancelTokenPtr& cancel, const ProgressFn& progress);

}  // namespace pipe
}  // namespace fg
