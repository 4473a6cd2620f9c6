/** The known target head of the pipeline benchmarks and GPU recovery tests: identity coefficients and a UV texture. */

/** A deterministic spread over the first 20 identity modes (the first modes larger); zeros beyond. */
export function targetCoefficients(Ki: number): Float32Array {
  const target = new Float32Array(Ki);
  for (let k = 0; k < Math.min(Ki, 20); k++) target[k] = (0.8 * Math.sin(1.7 * k + 0.3)) / Math.sqrt(1 + k / 4);
  return target;
}

/** A smooth procedural S×S RGB texture in [0, 1] (row 0 at v = 1, the OBJ convention). */
export function targetTexture(S: number): Float32Array {
  const tex = new Float32Array(S * S * 3);
  for (let y = 0; y < S; y++)
    for (let x = 0; x < S; x++) {
      const u = (x + 0.5) / S;
      const v = 1 - (y + 0.5) / S;
      const i = (y * S + x) * 3;
      tex[i] = 0.6 + 0.25 * Math.sin(2 * Math.PI * 3 * u) * Math.cos(2 * Math.PI * 2 * v);
      tex[i + 1] = 0.45 + 0.2 * Math.cos(2 * Math.PI * 2 * u);
      tex[i + 2] = 0.4 + 0.2 * Math.sin(2 * Math.PI * (u + 2 * v));
    }
  return tex;
}
