/**
 * Walking the config's JSON Schema at run time: the node at a JSON path, what a node accepts in words, the path
 * fields, did-you-mean suggestions. Used by validation messages, `--set` typing and the generators.
 */
import { configJsonSchema } from './schema';

export type SchemaNode = Record<string, any>;
export type PathSeg = string | number;

let cached: SchemaNode | undefined;
/** The internal input-side JSON Schema (keeps the `x-path` marks). */
export function inputSchema(): SchemaNode {
  return (cached ??= configJsonSchema({ internal: true, io: 'input' }));
}

function definitions(): Record<string, SchemaNode> {
  return inputSchema().definitions as Record<string, SchemaNode>;
}

/** Follow `$ref` / `allOf: [{$ref}]` (repeatedly), keeping the outer node's own annotations. */
export function resolveRef(n: SchemaNode | undefined): SchemaNode | undefined {
  let cur = n;
  for (let i = 0; cur && i < 8; i++) {
    const ref: string | undefined = cur.$ref ?? (Array.isArray(cur.allOf) && cur.allOf.length === 1 ? cur.allOf[0].$ref : undefined);
    if (!ref) return cur;
    const target = definitions()[ref.replace(/^#\/definitions\//, '')];
    const { $ref: _r, allOf: _a, ...own } = cur;
    cur = { ...target, ...own };
  }
  return cur;
}

/** The schema node at a path, or undefined where the schema has no such field. */
export function nodeAt(path: readonly PathSeg[], root: SchemaNode = inputSchema()): SchemaNode | undefined {
  let n = resolveRef(root);
  for (const seg of path) {
    if (!n) return undefined;
    n = pickBranch(n, seg);
    if (!n) return undefined;
    if (typeof seg === 'number') n = resolveRef(n.items);
    else n = resolveRef(n.properties?.[seg]);
  }
  return n;
}

/** For a union node, the branch that can hold `seg` (an index: an array branch; a key: an object branch). */
function pickBranch(n: SchemaNode, seg: PathSeg): SchemaNode | undefined {
  if (!Array.isArray(n.anyOf)) return n;
  for (const b0 of n.anyOf) {
    const b = resolveRef(b0)!;
    if (typeof seg === 'number' && b.type === 'array') return b;
    if (typeof seg === 'string' && b.type === 'object' && b.properties && seg in b.properties) return b;
  }
  return undefined;
}

/** The keys an object node accepts (empty when the node is not an object). */
export function knownKeys(n: SchemaNode | undefined): string[] {
  const r = resolveRef(n);
  if (!r) return [];
  if (Array.isArray(r.anyOf)) return r.anyOf.flatMap((b: SchemaNode) => knownKeys(b));
  return Object.keys(r.properties ?? {});
}

function fmtNum(x: number): string {
  if (x === Number.MAX_SAFE_INTEGER) return '2^53-1';
  if (Math.abs(x) >= 1e6 && Number.isInteger(x)) return x.toExponential().replace('e+', 'e');
  return String(x);
}

/** What a node accepts, in words: "an integer in [1, 1e7]", "one of "cuda", "cpu"", "a number > 0, or null" ... */
export function describe(n0: SchemaNode | undefined): string {
  const n = resolveRef(n0);
  if (!n) return 'nothing (no such field)';
  if (Array.isArray(n.anyOf)) return n.anyOf.map((b: SchemaNode) => describe(b)).join(', or ');
  if (Array.isArray(n.type)) return n.type.map((t: string) => describe({ ...n, type: t })).join(', or ');
  if (n.enum) return n.enum.length === 1 ? JSON.stringify(n.enum[0]) : `one of ${n.enum.map((v: unknown) => JSON.stringify(v)).join(', ')}`;
  if (n.const !== undefined) return JSON.stringify(n.const);
  const t = n.type;
  if (t === 'integer' || t === 'number') {
    const what = t === 'integer' ? 'an integer' : 'a number';
    const lo = n.minimum ?? n.exclusiveMinimum;
    const hi = n.maximum ?? n.exclusiveMaximum;
    if (lo !== undefined && hi !== undefined) return `${what} in ${n.minimum !== undefined ? '[' : '('}${fmtNum(lo)}, ${fmtNum(hi)}${n.maximum !== undefined ? ']' : ')'}`;
    if (lo !== undefined) return `${what} ${n.minimum !== undefined ? '>=' : '>'} ${fmtNum(lo)}`;
    if (hi !== undefined) return `${what} ${n.maximum !== undefined ? '<=' : '<'} ${fmtNum(hi)}`;
    return what;
  }
  if (t === 'string') return n.minLength ? 'a non-empty string' : 'a string';
  if (t === 'boolean') return 'true or false';
  if (t === 'null') return 'null';
  if (t === 'object') {
    const keys = Object.keys(n.properties ?? {});
    return keys.length ? `an object {${keys.join(', ')}}` : 'an object';
  }
  if (t === 'array') {
    const count =
      n.minItems !== undefined && n.minItems === n.maxItems
        ? `${n.minItems} `
        : n.minItems !== undefined && n.maxItems !== undefined
          ? `${n.minItems} to ${n.maxItems} `
          : n.minItems
            ? `at least ${n.minItems} `
            : '';
    return `an array of ${count}${n.items ? plural(n.items) : 'values'}`;
  }
  return 'a value';
}

function plural(items: SchemaNode): string {
  const d = describe(items);
  const simple = d.match(/^an? (integer|number|string)( .*)?$/);
  if (simple && !d.includes(', or ')) return `${simple[1]}s${simple[2] ?? ''}`;
  if (d.startsWith('a non-empty string')) return 'non-empty strings';
  return `items (each ${d})`;
}

/** A short rendering of a value for messages: -3, "abc", [1,2,3], an object {...}. */
export function showValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

export function formatPath(path: readonly PathSeg[]): string {
  let s = '';
  for (const seg of path) s += typeof seg === 'number' ? `[${seg}]` : s ? `.${seg}` : seg;
  return s || '(top level)';
}

/** Split 'a.b[2].c' into ['a', 'b', 2, 'c']. */
export function parsePath(p: string): PathSeg[] {
  const out: PathSeg[] = [];
  for (const part of p.split('.')) {
    const m = part.match(/^([^[\]]*)((?:\[\d+\])*)$/);
    if (!m) {
      out.push(part);
      continue;
    }
    if (m[1]) out.push(m[1]);
    for (const idx of m[2].matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  return out;
}

export function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

/** The known key closest to `key`, when it is close enough to be a likely typo. */
export function didYouMean(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = k.toLowerCase() === lower ? 0 : levenshtein(lower, k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  if (best === undefined) return undefined;
  const limit = Math.max(2, Math.floor(Math.max(key.length, best.length) / 3));
  return bestD <= limit ? best : undefined;
}

/** Every path-typed field (`x-path`), as JSON paths with their kind; arrays are not searched. */
export function pathFields(): Array<{ path: string[]; kind: 'file' | 'dir' | 'any' | 'outdir' }> {
  const out: Array<{ path: string[]; kind: 'file' | 'dir' | 'any' | 'outdir' }> = [];
  const walk = (n0: SchemaNode | undefined, prefix: string[]) => {
    const n = resolveRef(n0);
    if (!n) return;
    if (n['x-path']) out.push({ path: prefix, kind: n['x-path'] });
    if (n.type === 'object') for (const [k, v] of Object.entries<SchemaNode>(n.properties ?? {})) walk(v, [...prefix, k]);
  };
  walk(inputSchema(), []);
  return out;
}
