// Cameras and lighting of the FaceG2E phases (host side, float64 maths rounded once).
//
// A camera is (elevation°, azimuth°, distance m) on a sphere around the head centre, looking at it with +y up:
// azimuth 0 is the front (+z), positive azimuth turns towards +x, positive elevation looks from above. The model
// is expected in the usual head frame (y up, face towards +z), centred on its bounding-box centre and scaled to
// metres by the pipeline. Each pose gives the raster domain's pinhole camera (OpenCV [R|t] + fx fy cx cy) and the
// equivalent clip matrix of pipeline/kernels.hpp (same pixels, same perspective-correct barycentrics).
//
// Random draws use Philox stream rng_stream::kCamera addressed by (iteration, view, k), so that any iteration's
// cameras can be recomputed without replaying the earlier ones (exact resume).
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>
#include "core/philox.hpp"
#include "core/rng.hpp"

namespace fg {
namespace pipe {

struct CameraPose {
  double elevation = 0.0;  // degrees
  double azimuth = 0.0;    // degrees
  double distance = 1.0;   // metres
};

struct PinholeView {
  float extrinsics[12];  // world -> camera [R|t], OpenCV (x right, y down, z forward)
  float intrinsics[4];   // fx fy cx cy (pixels)
  float mvp[16];         // clip = mvp · (x, y, z, 1), clip.w = camera z (kernels.hpp conventions)
  float rotGl[9];        // world -> OpenGL camera (x right, y up, z towards the viewer): normal renders
  float depthRange[2];   // (near, far) camera z of the head's bounding sphere: the depth-ControlNet image
};

inline PinholeView pinholeView(const CameraPose& pose, double fovDeg, int width, int height, double headRadius) {
  const double d2r = 3.14159265358979323846 / 180.0;
  double el = pose.elevation * d2r, az = pose.azimuth * d2r, dist = pose.distance;
  double eye[3] = {dist * std::cos(el) * std::sin(az), dist * std::sin(el), dist * std::cos(el) * std::cos(az)};
  double fwd[3] = {-eye[0] / dist, -eye[1] / dist, -eye[2] / dist};
  double up[3] = {0.0, 1.0, 0.0};
  // right = fwd × up
  double right[3] = {fwd[1] * up[2] - fwd[2] * up[1], fwd[2] * up[0] - fwd[0] * up[2], fwd[0] * up[1] - fwd[1] * up[0]};
  double rl = std::sqrt(right[0] * right[0] + right[1] * right[1] + right[2] * right[2]);
  if (rl < 1e-9) { right[0] = 1; right[1] = 0; right[2] = 0; rl = 1; }  // looking straight up/down
  for (double& r : right) r /= rl;
  // down = fwd × right
  double down[3] = {fwd[1] * right[2] - fwd[2] * right[1], fwd[2] * right[0] - fwd[0] * right[2], fwd[0] * right[1] - fwd[1] * right[0]};
  double R[3][3] = {{right[0], right[1], right[2]}, {down[0], down[1], down[2]}, {fwd[0], fwd[1], fwd[2]}};
  double t[3];
  for (int r = 0; r < 3; ++r) t[r] = -(R[r][0] * eye[0] + R[r][1] * eye[1] + R[r][2] * eye[2]);
  PinholeView v;
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) v.extrinsics[4 * r + c] = float(R[r][c]);
    v.extrinsics[4 * r + 3] = float(t[r]);
  }
  double f = 0.5 * double(height) / std::tan(0.5 * fovDeg * d2r);
  double fx = f, fy = f, cx = 0.5 * width, cy = 0.5 * height;
  v.intrinsics[0] = float(fx); v.intrinsics[1] = float(fy); v.intrinsics[2] = float(cx); v.intrinsics[3] = float(cy);
  // clip.x = (2fx/W) Xc + (2cx/W − 1) Zc ; clip.y = −(2fy/H) Yc + (1 − 2cy/H) Zc ; clip.w = Zc
  double A[4][3] = {{2 * fx / width, 0, 2 * cx / width - 1}, {0, -2 * fy / height, 1 - 2 * cy / height}, {0, 0, 0}, {0, 0, 1}};
  for (int r = 0; r < 4; ++r) {
    for (int c = 0; c < 3; ++c) v.mvp[4 * r + c] = float(A[r][0] * R[0][c] + A[r][1] * R[1][c] + A[r][2] * R[2][c]);
    v.mvp[4 * r + 3] = float(A[r][0] * t[0] + A[r][1] * t[1] + A[r][2] * t[2]);
  }
  for (int c = 0; c < 3; ++c) {
    v.rotGl[c] = float(right[c]);
    v.rotGl[3 + c] = float(-down[c]);
    v.rotGl[6 + c] = float(-fwd[c]);
  }
  v.depthRange[0] = float(std::max(1e-3, dist - headRadius));
  v.depthRange[1] = float(dist + headRadius);
  return v;
}

struct Range {
  double min = 0.0, max = 0.0;
};

// The k-th uniform of (iterationKey, view) in the camera stream.
inline double cameraUniform(uint64_t seed, uint64_t iterationKey, int view, int k) {
  return double(philox::uniformAt(seed, rng_stream::kCamera, (iterationKey * 16u + uint64_t(view)) * 4u + uint64_t(k)));
}

inline CameraPose randomPose(uint64_t seed, uint64_t iterationKey, int view, const Range& el, const Range& az, const Range& dist) {
  CameraPose p;
  p.elevation = el.min + (el.max - el.min) * cameraUniform(seed, iterationKey, view, 0);
  p.azimuth = az.min + (az.max - az.min) * cameraUniform(seed, iterationKey, view, 1);
  p.distance = dist.min + (dist.max - dist.min) * cameraUniform(seed, iterationKey, view, 2);
  return p;
}

// A uniform pick in [0, n) from the lighting stream (SH preset per view, input kind per iteration).
inline int lightingPick(uint64_t seed, uint64_t key, int n) {
  double u = double(philox::uniformAt(seed, rng_stream::kLighting, key));
  int i = int(u * n);
  return i >= n ? n - 1 : i;
}

// The view-dependent prompt for an azimuth: 0 front (|az| <= frontMax), 2 back (|az| >= backMin), else 1 side.
inline int promptVariant(double azimuthDeg, double frontMax, double backMin) {
  double a = std::fmod(std::fabs(azimuthDeg), 360.0);
  if (a > 180.0) a = 360.0 - a;
  if (a <= frontMax) return 0;
  if (a >= backMin) return 2;
  return 1;
}

// Built-in SH lighting environments (9 real-SH irradiance coefficients, basis order of kernels.hpp shBasis, in the
// head's world frame: +y up, +z the face direction). Each is an ambient term plus one to three directional lights
// projected onto the cosine lobe (Ramamoorthi & Hanrahan 2001), scaled so the brightest direction is near 1.
struct ShPreset {
  const char* name;
  float c[9];
};
inline const std::vector<ShPreset>& shPresets() {
  static const std::vector<ShPreset> p = {
      {"front", {2.323661f, 0.076658f, 0.383292f, 0.000000f, 0.000000f, 0.063032f, 0.178318f, 0.000000f, -0.006303f}},
      {"key-left", {2.062636f, 0.124926f, 0.270674f, -0.291495f, -0.073236f, 0.068005f, 0.026679f, -0.158678f, 0.069749f}},
      {"key-right", {2.062636f, 0.124926f, 0.270674f, 0.291495f, 0.073236f, 0.068005f, 0.026679f, 0.158678f, 0.069749f}},
      {"top", {2.062636f, 0.333553f, 0.250165f, 0.000000f, 0.000000f, 0.167815f, 0.008074f, 0.000000f, -0.111877f}},
      {"soft-studio", {2.868278f, 0.110558f, 0.294822f, 0.000000f, 0.000000f, 0.074918f, 0.084705f, 0.000000f, 0.024973f}},
      {"low-rim", {2.130339f, -0.001565f, 0.134334f, 0.062701f, -0.015813f, -0.140377f, 0.175973f, 0.049021f, -0.026249f}},
  };
  return p;
}

}  // namespace pipe
}  // namespace fg
