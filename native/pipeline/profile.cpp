#include "pipeline/profile.hpp"
#include "pipeline/pipeline.hpp"
#if FG_HAVE_CUDA
#include <cuda_runtime.h>
#include "core/cuda_check.hpp"
#endif

namespace fg {
namespace pipe {
namespace {
constexpr int kEventPool = 512;
}

Profiler::Profiler(Device d, StreamHandle s, bool enabled) : dev_(d), stream_(s), enabled_(enabled) {
  pending_.reserve(kEventPool / 2);
#if FG_HAVE_CUDA
  if (enabled_ && dev_ == Device::CUDA) {
    events_.resize(kEventPool);
    for (auto& e : events_) {
      cudaEvent_t ev;
      FG_CUDA_CHECK(cudaEventCreate(&ev));
      e = ev;
    }
  }
#endif
}

Profiler::~Profiler() {
#if FG_HAVE_CUDA
  for (void* e : events_) cudaEventDestroy(static_cast<cudaEvent_t>(e));
#endif
}

int Profiler::begin(const char* name) {
  if (!enabled_) return -1;
  Pending p{name, -1, std::chrono::steady_clock::now(), false};
#if FG_HAVE_CUDA
  if (dev_ == Device::CUDA) {
    // grow the pool rather than flush: a flush here could run while an enclosing scope is still open (nested ops,
    // e.g. the whole-iteration span around the per-op scopes), whose end event is not recorded yet
    while (used_ + 2 > int(events_.size())) {
      cudaEvent_t ev;
      FG_CUDA_CHECK(cudaEventCreate(&ev));
      events_.push_back(ev);
    }
    p.ev = used_;
    used_ += 2;
    FG_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(events_[p.ev]), static_cast<cudaStream_t>(stream_)));
  }
#endif
  pending_.push_back(p);
  return int(pending_.size()) - 1;
}

void Profiler::end(int slot) {
  if (slot < 0 || size_t(slot) >= pending_.size()) return;
  Pending& p = pending_[size_t(slot)];
#if FG_HAVE_CUDA
  if (dev_ == Device::CUDA) {
    cudaEventRecord(static_cast<cudaEvent_t>(events_[p.ev + 1]), static_cast<cudaStream_t>(stream_));
    p.closed = true;
    return;
  }
#endif
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - p.t0).count();
  auto& t = totals_[p.name];
  t.first += ms;
  t.second += 1;
  p.name = nullptr;  // consumed
  p.closed = true;
}

void Profiler::flush() {
  // only with every scope closed (slots must stay valid while a scope is open); endIteration() is called
  // outside all scopes, so in practice this always drains
  for (const Pending& p : pending_)
    if (!p.closed) return;
#if FG_HAVE_CUDA
  if (dev_ == Device::CUDA && used_ > 0) {
    // the whole stream: with nested scopes the last-created event is not the last one recorded
    FG_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_)));
    for (const Pending& p : pending_) {
      float ms = 0.f;
      FG_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(events_[p.ev]), static_cast<cudaEvent_t>(events_[p.ev + 1])));
      auto& t = totals_[p.name];
      t.first += ms;
      t.second += 1;
    }
  }
#endif
  pending_.clear();
  used_ = 0;
}

void Profiler::endIteration() {
  if (enabled_) flush();
}

void Profiler::addHost(const char* name, double ms) {
  if (!enabled_) return;
  auto& t = totals_[name];
  t.first += ms;
  t.second += 1;
}

void Profiler::addTo(std::map<std::string, OpStat>& out) const {
  for (const auto& kv : totals_) {
    OpStat& s = out[kv.first];
    s.totalMs += kv.second.first;
    s.count += kv.second.second;
  }
}

}  // namespace pipe
}  // namespace fg
