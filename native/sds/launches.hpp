// A process-wide count of the kernels the sds launchers enqueue (CUDA) or run (CPU twins), so that the
// benchmark and the tests can check how many launches an iteration costs. Relaxed atomics: counting is
// free next to a launch.
#pragma once
#include <atomic>
#include <cstdint>

namespace fg {
namespace sds {

inline std::atomic<uint64_t>& launchCounter() {
  static std::atomic<uint64_t> c{0};
  return c;
}
inline void countLaunch(uint64_t k = 1) { launchCounter().fetch_add(k, std::memory_order_relaxed); }
inline uint64_t launchCount() { return launchCounter().load(std::memory_order_relaxed); }
inline void resetLaunchCount() { launchCounter().store(0, std::memory_order_relaxed); }

}  // namespace sds
}  // namespace fg
