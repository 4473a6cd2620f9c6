// Small dense linear algebra on the host, in float64, for setting up kernels' constant maps.
#pragma once
#include <algorithm>
#include <cmath>

namespace fg {

// Left pseudo-inverse of a 4x3 matrix M (rows r, columns k): P = (MᵀM)⁻¹Mᵀ, written as p[k][r] (3x4), so that
// P·M = I₃. Returns false (and leaves p untouched) when M does not have rank 3 (relative determinant test).
inline bool pinv4x3(const double m[4][3], double p[3][4]) {
  double g[3][3] = {};
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b)
      for (int r = 0; r < 4; ++r) g[a][b] += m[r][a] * m[r][b];
  double det = g[0][0] * (g[1][1] * g[2][2] - g[1][2] * g[2][1]) - g[0][1] * (g[1][0] * g[2][2] - g[1][2] * g[2][0]) +
               g[0][2] * (g[1][0] * g[2][1] - g[1][1] * g[2][0]);
  double scale = 0;
  for (auto& row : g)
    for (double v : row) scale = std::max(scale, std::fabs(v));
  if (!(std::fabs(det) > 1e-12 * scale * scale * scale)) return false;
  double inv[3][3];
  inv[0][0] = (g[1][1] * g[2][2] - g[1][2] * g[2][1]) / det;
  inv[0][1] = (g[0][2] * g[2][1] - g[0][1] * g[2][2]) / det;
  inv[0][2] = (g[0][1] * g[1][2] - g[0][2] * g[1][1]) / det;
  inv[1][0] = (g[1][2] * g[2][0] - g[1][0] * g[2][2]) / det;
  inv[1][1] = (g[0][0] * g[2][2] - g[0][2] * g[2][0]) / det;
  inv[1][2] = (g[0][2] * g[1][0] - g[0][0] * g[1][2]) / det;
  inv[2][0] = (g[1][0] * g[2][1] - g[1][1] * g[2][0]) / det;
  inv[2][1] = (g[0][1] * g[2][0] - g[0][0] * g[2][1]) / det;
  inv[2][2] = (g[0][0] * g[1][1] - g[0][1] * g[1][0]) / det;
  for (int k = 0; k < 3; ++k)
    for (int r = 0; r < 4; ++r) {
      double v = 0;
      for (int a = 0; a < 3; ++a) v += inv[k][a] * m[r][a];
      p[k][r] = v;
    }
  return true;
}

}  // namespace fg
