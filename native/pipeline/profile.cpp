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
  if (dev_ == Device::CUDA && used_ + 2 > int(events_.size())) flush();
  Pending p{name, -1, std::chrono::steady_clock::now()};
#if FG_HAVE_CUDA
  if (dev_ == Device::CUDA) {
    p.ev = used_;
    used_ += 2;
    FG_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(events_[p.ev]), static_cast<cudaStream_t>(stream_)));
  }
#endif
  pending_.push_back(p);
  return int(pending_.size()) - 1;
}

void Profiler::end(int slot) {
  if (slot < 0) return;
  Pending& p = pending_[size_t(slot)];
#if FG_HAVE_CUDA
  if (dev_ == Device::CUDA) {
    cudaEventRecord(static_cast<cudaEvent_t>(events_[p.ev + 1]), static_cast<cudaStream_t>(stream_));
    return;
  }
#endif
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - p.t0).count();
  auto& t = totals_[p.name];
  t.first += ms;
  t.second += 1;
  p.name = nullptr;  // consumed
}

void Profiler::flush() {
#if FG_HAVE_CUDA
  if (dev_ == Device::CUDA && used_ > 0) {
    FG_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(events_[used_ - 1])));
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

void Profiler::addTo(std::map<std::string, OpStat>& out) const {
  for (const auto& kv : totals_) {
    OpStat& s = out[kv.first];
    s.totalMs += kv.second.first;
    s.count += kv.second.second;
  }
}

}  // namespace pipe
}  // namespace fg
