// The shared per-element math of the RNG twins.
#pragma once
#include "core/philox.hpp"
#include "core/rng.hpp"

namespace fg {

FG_HDI float rngElement(const RngRequest& r, uint64_t i) {
  uint64_t idx = r.offset + i;
  if (r.dist == Distribution::Normal) return fg::fma(r.scale, philox::normalAt(r.seed, r.stream, idx), r.mean);
  return fg::fma(r.scale, philox::uniformAt(r.seed, r.stream, idx), r.mean);
}

FG_HDI uint32_t rngRawElement(uint64_t seed, uint64_t stream, uint64_t idx) {
  return philox::lane(philox::block(seed, stream, idx >> 2), static_cast<int>(idx & 3));
}

}  // namespace fg
