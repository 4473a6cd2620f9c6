// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): the project's only
// source of randomness. A draw is addressed by (seed, stream, index): the same triple gives the same bits on
// the CPU and on any GPU. Streams separate independent consumers (noise, timesteps, cameras, lighting...),
// the index counts draws within a stream, so a run can resume at any iteration without replaying it.
//
// Layout: block b = index / 4, lane = index % 4;
//   key = (seed_lo, seed_hi), counter = (b_lo, b_hi, stream_lo, stream_hi)
// uniform(i): lane `i%4` of block `i/4`, as (x >> 8) * 2^-24 + 2^-25, i.e. in (0, 1), never 0 or 1.
// normal(i):  block `i/4` gives four uniforms u0..u3; Box-Muller on (u0,u1) -> lanes 0,1 and (u2,u3) -> 2,3.
// The transcendental functions below use only correctly rounded +, *, fma and sqrt, so they are
// bit-identical on host and device (libm's and CUDA's logf/sinf are not).
#pragma once
#include <cstdint>
#include "core/hd.hpp"

namespace fg {
namespace philox {

struct U4 { uint32_t x, y, z, w; };

FG_HDI void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

FG_HDI U4 philox4x32_10(U4 c, uint32_t k0, uint32_t k1) {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
#if defined(__CUDACC__)
#pragma unroll
#endif
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(M0, c.x, hi0, lo0);
    mulhilo(M1, c.z, hi1, lo1);
    c = U4{hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0};
    k0 += W0;
    k1 += W1;
  }
  return c;
}

FG_HDI U4 block(uint64_t seed, uint64_t stream, uint64_t blockIndex) {
  U4 c{static_cast<uint32_t>(blockIndex), static_cast<uint32_t>(blockIndex >> 32), static_cast<uint32_t>(stream),
       static_cast<uint32_t>(stream >> 32)};
  return philox4x32_10(c, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

FG_HDI uint32_t lane(const U4& v, int i) { return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w; }

// (0,1): 24 random bits, centred in their cell. Exact in float.
FG_HDI float toUniform(uint32_t x) { return fg::fma(static_cast<float>(x >> 8), 5.9604644775390625e-8f, 2.98023223876953125e-8f); }

// ln(x) for x in (0, 1], |error| < 2 ulp; identical on host and device.
FG_HDI float logf_exact(float x) {
  uint32_t bits;
  {
    union { float f; uint32_t u; } cv;
    cv.f = x;
    bits = cv.u;
  }
  int e = static_cast<int>((bits >> 23) & 0xFF) - 127;
  union { uint32_t u; float f; } mv;
  mv.u = (bits & 0x007FFFFFu) | 0x3F800000u;  // m in [1, 2)
  float m = mv.f;
  if (m > 1.41421356f) { m = fg::mul(m, 0.5f); e += 1; }  // m in [0.7071, 1.4142)
  float s = fg::div(fg::sub(m, 1.0f), fg::add(m, 1.0f));
  float s2 = fg::mul(s, s);
  // 2*atanh(s) = 2(s + s^3/3 + s^5/5 + ...), |s| < 0.1716
  float p = fg::fma(s2, 0.11111111f, 0.14285715f);
  p = fg::fma(s2, p, 0.2f);
  p = fg::fma(s2, p, 0.33333334f);
  p = fg::mul(fg::mul(s2, p), s);
  float lnm = fg::mul(2.0f, fg::add(s, p));
  float ef = static_cast<float>(e);
  // e*ln2 split into a high part exact for |e| < 2^8 and a low correction
  return fg::add(fg::fma(ef, 0.693145751953125f, fg::fma(ef, 1.428606765330187e-06f, 0.0f)), lnm);
}

// sin(2*pi*u), cos(2*pi*u) for u in [0, 1); identical on host and device.
FG_HDI void sincos2pi_exact(float u, float& sn, float& cs) {
  float q = fg::mul(u, 4.0f);                    // exact
  float k = static_cast<float>(static_cast<int>(fg::add(q, 0.5f)));  // nearest quadrant (q >= 0)
  float r = fg::sub(u, fg::mul(k, 0.25f));      // exact, r in [-1/8, 1/8]
  float x = fg::mul(r, 6.28318530717958647692f);  // |x| <= pi/4
  float x2 = fg::mul(x, x);
  float ps = fg::fma(x2, 2.7557319e-06f, -1.98412698e-04f);
  ps = fg::fma(x2, ps, 8.33333333e-03f);
  ps = fg::fma(x2, ps, -1.66666667e-01f);
  float s = fg::fma(fg::mul(x2, x), ps, x);
  float pc = fg::fma(x2, 2.4801587e-05f, -1.38888889e-03f);
  pc = fg::fma(x2, pc, 4.16666667e-02f);
  pc = fg::fma(x2, pc, -0.5f);
  float c = fg::fma(x2, pc, 1.0f);
  int quadrant = static_cast<int>(k) & 3;
  switch (quadrant) {
    case 0: sn = s; cs = c; break;
    case 1: sn = c; cs = -s; break;
    case 2: sn = -s; cs = -c; break;
    default: sn = -c; cs = s; break;
  }
}

FG_HDI float uniformAt(uint64_t seed, uint64_t stream, uint64_t index) {
  U4 v = block(seed, stream, index >> 2);
  return toUniform(lane(v, static_cast<int>(index & 3)));
}

// Standard normal draw `index` of (seed, stream).
FG_HDI float normalAt(uint64_t seed, uint64_t stream, uint64_t index) {
  U4 v = block(seed, stream, index >> 2);
  int l = static_cast<int>(index & 3);
  uint32_t a = l < 2 ? v.x : v.z;
  uint32_t b = l < 2 ? v.y : v.w;
  float u1 = toUniform(a), u2 = toUniform(b);
  float r = fg::sqrt_rn(fg::mul(-2.0f, logf_exact(u1)));
  float sn, cs;
  sincos2pi_exact(u2, sn, cs);
  return fg::mul(r, (l & 1) ? sn : cs);
}

}  // namespace philox
}  // namespace fg
