/**
 * Validate faceg2e-engines.json files with the library's own reader (lib/engines.ts), e.g. those written by
 * tools/export/export.py or test_export.py:
 *
 *   node --import tsx tools/export/check-manifest.ts DIR_OR_FILE... [--no-files]
 *
 * --no-files skips the check that each engine's ONNX file exists (for manifests copied without their models).
 * Exits 1 if any manifest is invalid.
 */
import { readManifest, profileFor } from '../../lib/engines';

const args = process.argv.slice(2);
const checkFiles = !args.includes('--no-files');
const targets = args.filter((a) => a !== '--no-files');
if (targets.length === 0) {
  console.error('usage: node --import tsx tools/export/check-manifest.ts DIR_OR_FILE... [--no-files]');
  process.exit(2);
}
let bad = 0;
for (const t of targets) {
  try {
    const { file, manifest } = readManifest(t, { checkFiles });
    const f = manifest.model.downsampleFactor;
    const names = Object.keys(manifest.engines);
    // Every engine's inputs must resolve to concrete min/opt/max shapes for a typical profile.
    for (const n of names) profileFor(manifest, n, [1, 1, 2], [[64 * f, 64 * f], [32 * f, 48 * f]]);
    console.log(`ok  ${file}: ${names.join(', ')} (D=${manifest.model.textEmbedDim}, f=${f}, scaling ${manifest.model.scalingFactor})`);
  } catch (e) {
    bad++;
    console.log(`BAD ${t}: ${(e as Error).message}`);
  }
}
process.exit(bad ? 1 : 0);
