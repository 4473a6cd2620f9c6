import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateAll, ROOT, SCHEMA_FILE } from '../../tools/gen-schema';
import { DEFAULTS } from '../../lib/config/defaults';

test('the committed JSON Schema, types.ts and docs/config.md are up to date with lib/config/schema.ts', () => {
  for (const { file, content } of generateAll()) {
    const p = path.join(ROOT, file);
    assert.ok(fs.existsSync(p), `${file} is missing: run node --import tsx tools/gen-schema.ts`);
    assert.ok(fs.readFileSync(p, 'utf8') === content, `${file} is stale: run node --import tsx tools/gen-schema.ts`);
  }
});

test('the JSON Schema documents every field with a description and a default', () => {
  const s = JSON.parse(fs.readFileSync(path.join(ROOT, SCHEMA_FILE), 'utf8'));
  assert.equal(s.$schema, 'http://json-schema.org/draft-07/schema#');
  const defs = s.definitions;
  const root = defs.RunConfig;
  assert.deepEqual(root.required, ['prompt', 'model']);
  assert.equal(root.additionalProperties, false);
  let leaves = 0;
  const walk = (n: any, p: string) => {
    const node = n.allOf?.[0]?.$ref ? defs[n.allOf[0].$ref.split('/').pop()] : n.$ref ? defs[n.$ref.split('/').pop()] : n;
    if (node.type === 'object' && node.properties && !('min' in node.properties)) {
      assert.equal(node.additionalProperties, false, `${p}: unknown keys must be rejected`);
      for (const [k, v] of Object.entries<any>(node.properties)) if (k !== '$schema') walk(v, p ? `${p}.${k}` : k);
      return;
    }
    leaves++;
    assert.ok(n.description, `${p}: no description`);
    if (p !== 'prompt' && p !== 'model') assert.ok('default' in n, `${p}: no default`);
  };
  walk(root, '');
  assert.ok(leaves > 100, `only ${leaves} fields`);
  // defaults in the schema are the ones in defaults.ts
  assert.equal(defs.GeometryConfig.properties.iterations.default, DEFAULTS.geometry.iterations);
  assert.deepEqual(defs.TextureCamerasConfig.properties.mode.default, DEFAULTS.texture.cameras.mode);
});
