// benchTexturePhase: see sds_bench.hpp. Allocation and set-up happen before the timed loop.
#include <chrono>
#include "core/cuda_check.hpp"
#include "core/device.hpp"
#include "core/rng.hpp"
#include "sds/launches.hpp"
#include "sds/sds_bench.hpp"

namespace fg {
namespace sds {

BenchResult benchTexturePhase(const BenchConfig& c) {
  requireCuda();
  FG_CHECK_ARG(c.latentElements > 0 && c.textureElements > 0 && c.iterations > 0 && c.warmup >= 0, "bench: sizes and iterations must be > 0");
  const int64_t n = c.latentElements, nt = c.textureElements;
  const Device D = Device::CUDA;
  Buffer<float> x0(D, n), eps(D, n), xt(D, 2 * n), out(D, 2 * n), grad(D, n), x0p(D, n);
  Buffer<uint16_t> xtH(D, 2 * n), outH(D, 2 * n);
  Buffer<float> tex(D, nt), texGrad(D, nt), m(D, nt), v(D, nt), dd(D, nt), prev(D, nt);
  Buffer<uint32_t> flags(D, 1);
  Buffer<double> stats(D, 2);
  RngRequest r;
  r.seed = 7;
  r.dist = Distribution::Normal;
  rngFill(D, r, x0.data(), n);
  r.offset = uint64_t(n);
  rngFill(D, r, out.data(), 2 * n);
  r.offset = uint64_t(3 * n);
  rngFill(D, r, texGrad.data(), nt);
  r.dist = Distribution::Uniform;
  rngFill(D, r, tex.data(), nt);
  m.zero();
  v.zero();
  dd.zero();
  prev.zero();
  flags.zero();
  outH.zero();

  SchedulerConfig sc;
  SchedulerTables tables = schedulerTables(sc);
  TimestepSchedule ts;
  ts.totalIterations = c.warmup + c.iterations;
  Workspace ws(D, sdsWorkspaceBytes() + optimWorkspaceBytes(OptimConfig{}, 1) + 4096);

  OptimConfig oc = c.optimizer == OptimKind::Adan ? adanDefaults() : OptimConfig{};
  oc.kind = c.optimizer;
  oc.maxGradNorm = c.maxGradNorm;
  OptimTensor ot;
  ot.param = tex.data();
  ot.grad = texGrad.data();
  ot.m = m.data();
  ot.v = v.data();
  ot.d = dd.data();
  ot.prev = prev.data();
  ot.n = nt;
  LrSchedule lr;
  lr.kind = LrScheduleKind::Cosine;
  lr.baseLr = 1e-2;
  lr.totalSteps = ts.totalIterations;

  cudaStream_t st = nullptr;
  FG_CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  FG_CUDA_CHECK(cudaEventCreate(&e0));
  FG_CUDA_CHECK(cudaEventCreate(&e1));

  auto iteration = [&](int it) {
    ws.reset();
    SdsScratch scratch = sdsScratch(ws);
    int t = sampleTimestep(ts, 1234, uint64_t(it));
    SdsCoefficients k = sdsCoefficients(tables.alphasCumprod.data(), sc.numTrainTimesteps, t, Weighting::OneMinusAlpha);
    SdsNoiseParams np;
    np.n = n;
    np.x0 = x0.data();
    np.eps = eps.data();
    if (c.halfIo) np.xtHalf = xtH.data();
    else np.xt = xt.data();
    np.seed = 1234;
    np.noiseOffset = sdsNoiseOffset(uint64_t(it), n);
    np.sqrtAlphaBar = k.sqrtAlphaBar;
    np.sqrtOneMinusAlphaBar = k.sqrtOneMinusAlphaBar;
    np.scratch = scratch;
    sdsNoise(D, np, st);
    SdsGradParams gp;
    gp.n = n;
    gp.x0 = x0.data();
    gp.eps = eps.data();
    if (c.halfIo) gp.modelOutHalf = outH.data();
    else gp.modelOut = out.data();
    gp.sqrtAlphaBar = k.sqrtAlphaBar;
    gp.sqrtOneMinusAlphaBar = k.sqrtOneMinusAlphaBar;
    gp.weight = k.weight;
    gp.clampValue = c.clampValue;
    gp.normalize = c.normalize;
    gp.grad = grad.data();
    gp.x0Pred = c.x0Pred ? x0p.data() : nullptr;
    gp.flags = flags.data();
    gp.stats = c.normalize ? stats.data() : nullptr;
    gp.scratch = scratch;
    sdsGrad(D, gp, st);
    OptimStepArgs oa;
    oa.step = it + 1;
    oa.lr = lrAt(lr, it);
    oa.flags = flags.data();
    optimStep(D, oc, &ot, 1, oa, &ws, st);
  };

  for (int i = 0; i < c.warmup; ++i) iteration(i);
  FG_CUDA_CHECK(cudaStreamSynchronize(st));
  uint64_t l0 = launchCount();
  auto h0 = std::chrono::steady_clock::now();
  FG_CUDA_CHECK(cudaEventRecord(e0, st));
  for (int i = 0; i < c.iterations; ++i) iteration(c.warmup + i);
  FG_CUDA_CHECK(cudaEventRecord(e1, st));
  auto h1 = std::chrono::steady_clock::now();
  FG_CUDA_CHECK(cudaEventSynchronize(e1));
  uint64_t l1 = launchCount();
  float ms = 0;
  FG_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaStreamDestroy(st);
  uint32_t hostFlags = 0;
  flags.download(&hostFlags, 1);
  throwIfNumerical(hostFlags, "the SDS benchmark");
  BenchResult res;
  res.deviceUsPerIter = double(ms) * 1000.0 / c.iterations;
  res.hostUsPerIter = std::chrono::duration<double, std::micro>(h1 - h0).count() / c.iterations;
  res.launchesPerIter = double(l1 - l0) / c.iterations;
  return res;
}

}  // namespace sds
}  // namespace fg
