// The CPU twin's launcher: run body(i) for i in [0, n) on the host's cores. Each index must write only its
// own outputs (as a CUDA thread would), so the result never depends on the number of threads.
#pragma once
#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace fg {

inline unsigned cpuThreads() {
  static unsigned n = std::max(1u, std::thread::hardware_concurrency());
  return n;
}

template <typename F>
void parallelFor(int64_t n, F&& body, int64_t minPerThread = 4096) {
  if (n <= 0) return;
  int64_t threads = std::min<int64_t>(cpuThreads(), (n + minPerThread - 1) / minPerThread);
  if (threads <= 1) {
    for (int64_t i = 0; i < n; ++i) body(i);
    return;
  }
  std::vector<std::thread> pool;
  int64_t chunk = (n + threads - 1) / threads;
  for (int64_t t = 0; t < threads; ++t) {
    int64_t b = t * chunk, e = std::min(n, b + chunk);
    pool.emplace_back([b, e, &body] { for (int64_t i = b; i < e; ++i) body(i); });
  }
  for (auto& th : pool) th.join();
}

}  // namespace fg
