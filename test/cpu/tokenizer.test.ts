import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { ClipTokenizer, bytesToUnicode, clipClean } from '../../lib/tokenizer';
import { FaceG2EError } from '../../lib/errors';
import { CLIP_VOCAB, tmpDir } from '../helpers';

interface RefCase {
  text: string;
  ids: number[];
  decoded: string;
}
/** Ids produced by OpenAI CLIP's simple_tokenizer.py itself (see test/fixtures/tokenizer/make_reference.py). */
const REF: { cases: RefCase[] } = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'tokenizer', 'reference.json'), 'utf8'));

const haveVocab = fs.existsSync(CLIP_VOCAB);
let cached: ClipTokenizer | undefined;
function tok(): ClipTokenizer {
  cached ??= ClipTokenizer.fromFileSync(CLIP_VOCAB);
  return cached;
}

function isCode(code: string) {
  return (e: unknown) => e instanceof FaceG2EError && e.code === code;
}

test('tokenizer: "a photo of a cat" gives the published ids', { skip: !haveVocab && 'no ../shared/clip' }, async () => {
  const t = await ClipTokenizer.fromFile(CLIP_VOCAB);
  assert.deepEqual(t.encode('a photo of a cat'), [49406, 320, 1125, 539, 320, 2368, 49407]);
  assert.equal(t.vocabSize, 49408);
  assert.equal(t.startId, 49406);
  assert.equal(t.endId, 49407);
  assert.equal(t.decoder[320], 'a</w>');
  assert.equal(t.decoder[0], '!');
  assert.equal(t.decoder[256], '!</w>');
  assert.deepEqual(t.tokenize('a photo'), ['a</w>', 'photo</w>']);
});

test('tokenizer: every reference case matches OpenAI CLIP id for id (encode and decode)', { skip: !haveVocab && 'no ../shared/clip' }, () => {
  assert.ok(REF.cases.length > 400);
  const t = tok();
  for (const c of REF.cases) {
    assert.deepEqual(t.encode(c.text), c.ids, `encode(${JSON.stringify(c.text.slice(0, 80))})`);
    assert.equal(t.decode(c.ids.slice(1, -1)), c.decoded, `decode of ${JSON.stringify(c.text.slice(0, 80))}`);
  }
});

test('tokenizer: encodePadded pads, truncates keeping the end token last, and honours the pad id', { skip: !haveVocab && 'no ../shared/clip' }, () => {
  const t = tok();
  const short = t.encodePadded('a photo of a cat');
  assert.ok(short instanceof Int32Array);
  assert.equal(short.length, 77);
  assert.deepEqual(Array.from(short.subarray(0, 7)), [49406, 320, 1125, 539, 320, 2368, 49407]);
  assert.ok(short.subarray(7).every((v) => v === 49407), 'SD 1.5 pads with the end id by default');
  const sd2 = t.encodePadded('a photo of a cat', { pad: 0 });
  assert.deepEqual(Array.from(sd2.subarray(0, 7)), [49406, 320, 1125, 539, 320, 2368, 49407]);
  assert.ok(sd2.subarray(7).every((v) => v === 0), 'SD 2.x pads with 0');
  assert.ok(t.encodePadded('a cat', { pad: 'end' }).subarray(4).every((v) => v === 49407));

  let longSeen = 0;
  for (const c of REF.cases) {
    const p = t.encodePadded(c.text);
    // The same rule as clip.tokenize(truncate=True) and Hugging Face's truncation to 77.
    const expect = c.ids.length > 77 ? [...c.ids.slice(0, 76), 49407] : [...c.ids, ...new Array(77 - c.ids.length).fill(49407)];
    assert.deepEqual(Array.from(p), expect, JSON.stringify(c.text.slice(0, 60)));
    if (c.ids.length > 77) longSeen++;
    assert.equal(t.countTokens(c.text), c.ids.length);
  }
  assert.ok(longSeen >= 3, 'the reference set has prompts that truncate');

  const long = 'a red apple, '.repeat(40);
  const p8 = t.encodePadded(long, { length: 8, pad: 7 });
  assert.deepEqual(Array.from(p8), [49406, ...t.encode(long).slice(1, 7), 49407]);
  assert.throws(() => t.encodePadded(long, { truncate: false }), isCode('E_INVALID_ARGUMENT'));
  assert.throws(() => t.encodePadded('x', { pad: -1 }), isCode('E_INVALID_ARGUMENT'));
  assert.throws(() => t.encodePadded('x', { pad: 49408 }), isCode('E_INVALID_ARGUMENT'));
  assert.throws(() => t.encodePadded('x', { length: 1 }), isCode('E_INVALID_ARGUMENT'));
  assert.throws(() => t.encode(42 as unknown as string), isCode('E_INVALID_ARGUMENT'));
});

test('tokenizer: decode round-trips, skips specials on request and rejects bad ids', { skip: !haveVocab && 'no ../shared/clip' }, () => {
  const t = tok();
  const ids = t.encode('Hello, World! 123 caf\u00e9 \u732b');
  assert.equal(t.decode(ids, { skipSpecialTokens: true }), 'hello , world ! 1 2 3 caf\u00e9 \u732b ');
  assert.equal(t.decode(ids), '<|startoftext|>hello , world ! 1 2 3 caf\u00e9 \u732b <|endoftext|>');
  assert.throws(() => t.decode([49408]), isCode('E_INVALID_ARGUMENT'));
  assert.throws(() => t.decode([1.5]), isCode('E_INVALID_ARGUMENT'));
  // A split multi-byte character decodes to U+FFFD like Python's errors="replace".
  const cat = t.encode('\u732b').slice(1, -1);
  if (cat.length > 1) assert.ok(t.decode(cat.slice(0, 1)).includes('\ufffd'));
});

test('tokenizer: clean-up reproduces ftfy + html.unescape + whitespace rules', () => {
  assert.equal(clipClean('  Hello\t\n  WORLD  '), 'hello world');
  assert.equal(clipClean('&amp;amp; &lt;x&gt;'), '& <x>'); // ftfy decodes repeatedly, then html.unescape twice
  assert.equal(clipClean('AT&T &copy 2024'), 'at&t \u00a9 2024');
  assert.equal(clipClean('\u201cquoted\u201d \u2019s'), '"quoted" \'s');
  assert.equal(clipClean('\ufb01ne \uff21\uff22\u3000c'), 'fine ab c');
  assert.equal(clipClean('a\u0085b'), 'a\u2026b'); // C1 control read as Windows-1252
  assert.equal(clipClean('\x1b[31mred\x1b[0m'), 'red');
  assert.equal(clipClean('cafe\u0301'), 'caf\u00e9'); // NFC
  assert.equal(clipClean('a\x1cb'), 'ab'); // control characters removed
  assert.equal(clipClean('<b>&amp;</b>'), '<b>&</b>'); // ftfy skips lines with '<', the html.unescape calls do not
  assert.equal(clipClean('\ud800x'), '\ufffdx');
});

/** Writes a Hugging Face style tokenizer/ folder (vocab.json with shuffled key order + merges.txt) built independently from the .gz. */
function writeDiffusersTokenizer(dir: string): void {
  const lines = zlib.gunzipSync(fs.readFileSync(CLIP_VOCAB)).toString('utf8').split('\n').slice(1, 48895);
  const table = bytesToUnicode();
  const direct = table.filter((c, b) => c.charCodeAt(0) === b);
  const shifted = table.filter((c, b) => c.charCodeAt(0) !== b);
  const bytes = [...direct, ...shifted];
  const tokens = [...bytes, ...bytes.map((b) => b + '</w>'), ...lines.map((l) => l.replace(' ', '')), '<|startoftext|>', '<|endoftext|>'];
  const entries = tokens.map((t, i) => [t, i] as const);
  for (let i = entries.length - 1; i > 0; i--) {
    const j = (i * 7919 + 13) % (i + 1); // deterministic shuffle
    [entries[i], entries[j]] = [entries[j], entries[i]];
  }
  fs.mkdirSync(path.join(dir, 'tokenizer'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'tokenizer', 'vocab.json'), JSON.stringify(Object.fromEntries(entries)));
  fs.writeFileSync(path.join(dir, 'tokenizer', 'merges.txt'), '#version: 0.2\n' + lines.join('\n') + '\n');
}

test('tokenizer: a diffusers tokenizer/ folder (vocab.json + merges.txt) gives the same ids as the .gz', { skip: !haveVocab && 'no ../shared/clip' }, async () => {
  const dir = tmpDir('fg-tok-');
  writeDiffusersTokenizer(dir);
  const byRoot = await ClipTokenizer.fromFile(dir); // a model folder with tokenizer/
  const byDir = ClipTokenizer.fromFileSync(path.join(dir, 'tokenizer'));
  const byVocab = ClipTokenizer.fromFileSync(path.join(dir, 'tokenizer', 'vocab.json'));
  assert.equal(byRoot.vocabSize, 49408);
  for (const c of REF.cases) {
    assert.deepEqual(byRoot.encode(c.text), c.ids);
    assert.deepEqual(Array.from(byDir.encodePadded(c.text, { pad: 0 })), Array.from(tok().encodePadded(c.text, { pad: 0 })));
  }
  assert.deepEqual(byVocab.encode('a photo of a cat'), [49406, 320, 1125, 539, 320, 2368, 49407]);
});

test('tokenizer: missing or malformed files are E_IO / E_FORMAT naming the file', () => {
  const dir = tmpDir('fg-tok-bad-');
  assert.throws(() => ClipTokenizer.fromFileSync(path.join(dir, 'nope.txt.gz')), (e: unknown) => isCode('E_IO')(e) && String((e as Error).message).includes('nope.txt.gz'));
  assert.throws(() => ClipTokenizer.fromFileSync(dir), isCode('E_IO'));
  const badGz = path.join(dir, 'bad.txt.gz');
  fs.writeFileSync(badGz, Buffer.from([0x1f, 0x8b, 1, 2, 3, 4]));
  assert.throws(() => ClipTokenizer.fromFileSync(badGz), (e: unknown) => isCode('E_FORMAT')(e) && String((e as Error).message).includes('bad.txt.gz'));
  const shortGz = path.join(dir, 'short.txt.gz');
  fs.writeFileSync(shortGz, zlib.gzipSync('#version\na b\n'));
  assert.throws(() => ClipTokenizer.fromFileSync(shortGz), isCode('E_FORMAT'));
  const hf = path.join(dir, 'hf');
  fs.mkdirSync(hf);
  fs.writeFileSync(path.join(hf, 'vocab.json'), '{not json');
  fs.writeFileSync(path.join(hf, 'merges.txt'), '#version: 0.2\na b\n');
  assert.throws(() => ClipTokenizer.fromFileSync(hf), (e: unknown) => isCode('E_FORMAT')(e) && String((e as Error).message).includes('vocab.json'));
  fs.writeFileSync(path.join(hf, 'vocab.json'), JSON.stringify({ a: 0, b: 1 }));
  assert.throws(() => ClipTokenizer.fromFileSync(hf), isCode('E_FORMAT')); // no special tokens / byte symbols
  const vocab: Record<string, number> = {};
  bytesToUnicode().forEach((c, i) => {
    vocab[c] = i;
    vocab[c + '</w>'] = 256 + i;
  });
  vocab['<|startoftext|>'] = 512;
  vocab['<|endoftext|>'] = 513;
  fs.writeFileSync(path.join(hf, 'vocab.json'), JSON.stringify(vocab));
  fs.writeFileSync(path.join(hf, 'merges.txt'), '#version: 0.2\na b c\n');
  assert.throws(() => ClipTokenizer.fromFileSync(hf), (e: unknown) => isCode('E_FORMAT')(e) && String((e as Error).message).includes('merges.txt'));
  fs.writeFileSync(path.join(hf, 'merges.txt'), '#version: 0.2\na b\n');
  assert.throws(() => ClipTokenizer.fromFileSync(hf), isCode('E_FORMAT')); // "ab" is not in the vocabulary
  // A byte-level tokenizer with no merges still works: one id per byte symbol.
  fs.writeFileSync(path.join(hf, 'merges.txt'), '#version: 0.2\n');
  const bytesOnly = ClipTokenizer.fromFileSync(hf);
  assert.deepEqual(bytesOnly.encode('ab'), [512, vocab.a, vocab['b</w>'], 513]);
});
