// Per-op timing for `profile: true` runs, and the NVTX ranges of every op (always on, free without nsys).
// CPU: steady_clock around the op. CUDA: an event pair per op from a pool created up front; the pairs are read
// back by endIteration() (one stream synchronisation per iteration, only while profiling). Scopes may nest
// (e.g. a whole-iteration span around the per-op scopes); the event pool grows instead of draining mid-scope.
#pragma once
#include <chrono>
#include <map>
#include <string>
#include <vector>
#include "core/hd.hpp"
#include "core/memory.hpp"
#include "core/nvtx.hpp"

namespace fg {
namespace pipe {

struct OpStat;

class Profiler {
 public:
  Profiler(Device d, StreamHandle s, bool enabled);
  ~Profiler();
  Profiler(const Profiler&) = delete;
  Profiler& operator=(const Profiler&) = delete;
  bool enabled() const { return enabled_; }

  class Scope {
   public:
    Scope(Profiler* p, const char* name) : range_(name), p_(p), slot_(p->begin(name)) {}
    ~Scope() { p_->end(slot_); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    NvtxRange range_;
    Profiler* p_;
    int slot_;
  };
  // `auto s = prof.op("raster");` (guaranteed copy elision: Scope is neither copied nor moved)
  Scope op(const char* name) { return Scope(this, name); }
  void endIteration();
  // A host-side duration measured by the caller (e.g. the time an iteration takes to enqueue its work).
  void addHost(const char* name, double ms);
  void addTo(std::map<std::string, OpStat>& out) const;

 private:
  int begin(const char* name);
  void end(int slot);
  void flush();
  Device dev_;
  StreamHandle stream_;
  bool enabled_;
  struct Pending {
    const char* name;
    int ev;
    std::chrono::steady_clock::time_point t0;
    bool closed;
  };
  std::vector<Pending> pending_;
  std::vector<void*> events_;  // cudaEvent_t pool (2 per op)
  int used_ = 0;
  std::map<std::string, std::pair<double, int64_t>> totals_;
};

}  // namespace pipe
}  // namespace fg
