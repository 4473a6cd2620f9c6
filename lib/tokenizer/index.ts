/**
 * CLIP's byte-level BPE tokenizer (the text tokenizer of Stable Diffusion 1.x/2.x), matching OpenAI CLIP's
 * `simple_tokenizer.py` id for id.
 *
 *   const tok = await ClipTokenizer.fromFile('bpe_simple_vocab_16e6.txt.gz'); // or a diffusers tokenizer/ folder
 *   tok.encode('a photo of a cat');            // [49406, 320, 1125, 539, 320, 2368, 49407]
 *   tok.encodePadded('a photo of a cat');      // Int32Array(77), padded with 49407 (SD 1.5)
 *   tok.encodePadded('a photo of a cat', { pad: 0 }); // SD 2.x pads with 0 ("!")
 *
 * Pipeline: ftfy-style clean-up, `html.unescape` twice, whitespace collapse, lower-case (see ./clean.ts), then the
 * CLIP pre-tokenisation pattern, UTF-8 bytes mapped to printable characters, and BPE with `</w>` end-of-word
 * markers where merges apply in rank order.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { FaceG2EError } from '../errors';
import { clipClean, PY_REGEX_WS } from './clean';

export { clipClean } from './clean';

export const START_OF_TEXT = '<|startoftext|>';
export const END_OF_TEXT = '<|endoftext|>';
/** Number of merges CLIP uses from bpe_simple_vocab_16e6.txt.gz (lines 1..48894; 49152 - 256 - 2). */
export const CLIP_NUM_MERGES = 49152 - 256 - 2;
/** CLIP's context length (Stable Diffusion's text encoder input length). */
export const CLIP_CONTEXT_LENGTH = 77;

export interface EncodePaddedOptions {
  /** Output length; default 77. */
  length?: number;
  /**
   * Id written after the end token: `'end'` (the default) pads with the end-of-text id 49407 like SD 1.x's
   * tokenizer; SD 2.x's tokenizer pads with 0 (the token "!"); any other id may be given.
   */
  pad?: 'end' | number;
  /** Truncate prompts longer than `length` (keeping the end token last); default true. If false, a long prompt is an error. */
  truncate?: boolean;
}

export interface DecodeOptions {
  /** Drop the start/end tokens (and so any padding with the end id); default false (as CLIP's decode). */
  skipSpecialTokens?: boolean;
}

/** GPT-2/CLIP byte -> printable character table: printable Latin-1 bytes map to themselves, the rest to U+0100.. */
export function bytesToUnicode(): string[] {
  const table: string[] = new Array(256);
  const direct = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let n = 0;
  for (let b = 0; b < 256; b++) table[b] = direct(b) ? String.fromCharCode(b) : String.fromCharCode(256 + n++);
  return table;
}

/** Vocabulary order of CLIP's byte symbols: the directly printable bytes first, then the remapped ones. */
function byteSymbolsInVocabOrder(table: string[]): string[] {
  const direct: string[] = [];
  const remapped: string[] = [];
  for (let b = 0; b < 256; b++) (table[b].charCodeAt(0) === b ? direct : remapped).push(table[b]);
  return direct.concat(remapped);
}

// CLIP's pre-tokenisation pattern (Python `regex` with IGNORECASE; `\s` spelled out as Python's set).
// One quirk of Python's `regex` under IGNORECASE: U+0345 (combining ypogegrammeni, whose case variants are
// letters) is excluded from the negated class yet not matched by [\p{L}], so no alternative matches it and it
// is dropped, splitting the run around it; JS /iu counts it as a letter instead. encodeRaw therefore turns it
// into a space first. Checked against the Python pattern for every code point, alone and inside letter and
// punctuation runs.
const TOKEN_RE = new RegExp(
  `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^${PY_REGEX_WS}\\p{L}\\p{N}]+`,
  'giu',
);

function formatError(file: string, what: string): FaceG2EError {
  return new FaceG2EError('E_FORMAT', `${file}: ${what}`);
}

function readFileOrThrow(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new FaceG2EError('E_IO', `cannot read tokenizer file ${file}: ${(e as Error).message}`, { cause: e });
  }
}

async function readFileOrThrowAsync(file: string): Promise<Buffer> {
  try {
    return await fs.promises.readFile(file);
  } catch (e) {
    throw new FaceG2EError('E_IO', `cannot read tokenizer file ${file}: ${(e as Error).message}`, { cause: e });
  }
}

/** Which files make up the tokenizer at `p` (a .gz vocab, a vocab.json, a tokenizer/ folder or a model folder). */
function resolveSource(p: string): { kind: 'gz'; file: string } | { kind: 'hf'; vocab: string; merges: string } {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch (e) {
    throw new FaceG2EError('E_IO', `tokenizer path not found: ${p}`, { cause: e });
  }
  if (st.isDirectory()) {
    for (const dir of [p, path.join(p, 'tokenizer')]) {
      const vocab = path.join(dir, 'vocab.json');
      const merges = path.join(dir, 'merges.txt');
      if (fs.existsSync(vocab) && fs.existsSync(merges)) return { kind: 'hf', vocab, merges };
      const gz = path.join(dir, 'bpe_simple_vocab_16e6.txt.gz');
      if (fs.existsSync(gz)) return { kind: 'gz', file: gz };
    }
    throw new FaceG2EError('E_IO', `${p}: no tokenizer found (expected vocab.json + merges.txt, tokenizer/vocab.json + tokenizer/merges.txt, or bpe_simple_vocab_16e6.txt.gz)`);
  }
  if (path.basename(p) === 'vocab.json' || path.basename(p) === 'merges.txt') {
    const dir = path.dirname(p);
    return { kind: 'hf', vocab: path.join(dir, 'vocab.json'), merges: path.join(dir, 'merges.txt') };
  }
  return { kind: 'gz', file: p };
}

function gunzipOrThrow(file: string, buf: Buffer): string {
  if (buf.length < 2 || buf[0] !== 0x1f || buf[1] !== 0x8b) {
    // Also accept the uncompressed text file.
    return buf.toString('utf8');
  }
  try {
    return zlib.gunzipSync(buf).toString('utf8');
  } catch (e) {
    throw new FaceG2EError('E_FORMAT', `${file}: not a valid gzip file (${(e as Error).message})`, { cause: e });
  }
}

function parseMergeLines(file: string, lines: string[], firstLine: number): Array<[string, string]> {
  const merges: Array<[string, string]> = [];
  for (let i = 0; i < lines.length; i++) {
    const parts = lines[i].split(/[ \t]+/).filter((s) => s.length > 0);
    if (parts.length !== 2) throw formatError(file, `line ${i + firstLine + 1}: expected a merge "a b", got ${JSON.stringify(lines[i].slice(0, 60))}`);
    merges.push([parts[0], parts[1]]);
  }
  return merges;
}

export class ClipTokenizer {
  /** Token string -> id. */
  readonly encoder: ReadonlyMap<string, number>;
  /** Id -> token string. */
  readonly decoder: readonly string[];
  readonly startId: number;
  readonly endId: number;
  private readonly ranks: Map<string, number>;
  private readonly byteEncoder: string[];
  private readonly byteDecoder: Map<string, number>;
  private readonly cache = new Map<string, number[]>();

  /**
   * Build from a token->id vocabulary and the ordered merge list (rank = index). Every merge result and every
   * byte symbol (with and without `</w>`) must be in the vocabulary, as must the two special tokens.
   */
  constructor(vocab: ReadonlyMap<string, number> | Readonly<Record<string, number>>, merges: ReadonlyArray<readonly [string, string]>, source = 'vocabulary') {
    const enc = vocab instanceof Map ? new Map(vocab) : new Map(Object.entries(vocab as Record<string, number>));
    const dec: string[] = [];
    for (const [tok, id] of enc) {
      if (!Number.isInteger(id) || id < 0) throw formatError(source, `token ${JSON.stringify(tok)} has invalid id ${id}`);
      if (dec[id] !== undefined) throw formatError(source, `id ${id} is used by both ${JSON.stringify(dec[id])} and ${JSON.stringify(tok)}`);
      dec[id] = tok;
    }
    const start = enc.get(START_OF_TEXT);
    const end = enc.get(END_OF_TEXT);
    if (start === undefined || end === undefined) throw formatError(source, `vocabulary lacks ${START_OF_TEXT} or ${END_OF_TEXT}`);
    this.byteEncoder = bytesToUnicode();
    this.byteDecoder = new Map(this.byteEncoder.map((c, b) => [c, b]));
    for (const c of this.byteEncoder) {
      if (!enc.has(c) || !enc.has(c + '</w>')) throw formatError(source, `vocabulary lacks the byte symbol ${JSON.stringify(c)} (or with </w>)`);
    }
    this.ranks = new Map();
    merges.forEach(([a, b], i) => {
      if (!enc.has(a + b)) throw formatError(source, `merge ${i} ("${a} ${b}") produces ${JSON.stringify(a + b)}, which is not in the vocabulary`);
      const key = a + ' ' + b;
      if (!this.ranks.has(key)) this.ranks.set(key, i);
    });
    this.encoder = enc;
    this.decoder = dec;
    this.startId = start;
    this.endId = end;
  }

  /** CLIP's own format: the text (optionally gzipped) of bpe_simple_vocab_16e6.txt; the vocabulary is derived from the merges. */
  static fromBpeText(text: string, source = 'bpe vocabulary'): ClipTokenizer {
    const lines = text.split('\n');
    if (lines.length < CLIP_NUM_MERGES + 1) throw formatError(source, `expected at least ${CLIP_NUM_MERGES + 1} lines (a header and ${CLIP_NUM_MERGES} merges), found ${lines.length}`);
    const merges = parseMergeLines(source, lines.slice(1, CLIP_NUM_MERGES + 1), 1);
    const bytes = byteSymbolsInVocabOrder(bytesToUnicode());
    const tokens = bytes.concat(bytes.map((b) => b + '</w>'), merges.map(([a, b]) => a + b), [START_OF_TEXT, END_OF_TEXT]);
    const vocab = new Map<string, number>();
    tokens.forEach((t, i) => vocab.set(t, i)); // later duplicates win, as with Python's dict(zip(vocab, range))
    return new ClipTokenizer(vocab, merges, source);
  }

  /** A Hugging Face / diffusers tokenizer: vocab.json (token -> id) and merges.txt ("#version" header, one merge a line). */
  static fromVocabJsonAndMerges(vocabJson: string, mergesTxt: string, source = 'tokenizer'): ClipTokenizer {
    let vocab: unknown;
    try {
      vocab = JSON.parse(vocabJson);
    } catch (e) {
      throw new FaceG2EError('E_FORMAT', `${source}/vocab.json: not valid JSON (${(e as Error).message})`, { cause: e });
    }
    if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab)) throw formatError(`${source}/vocab.json`, 'expected an object mapping tokens to ids');
    const all = mergesTxt.split(/\r?\n/);
    const first = all.length > 0 && all[0].startsWith('#') ? 1 : 0;
    const lines = all.slice(first).filter((l) => l.trim().length > 0);
    const merges = parseMergeLines(`${source}/merges.txt`, lines, first);
    return new ClipTokenizer(vocab as Record<string, number>, merges, source);
  }

  /** Load from CLIP's bpe_simple_vocab_16e6.txt(.gz), a diffusers `tokenizer/` folder (vocab.json + merges.txt) or a folder containing one. */
  static fromFileSync(p: string): ClipTokenizer {
    const src = resolveSource(p);
    if (src.kind === 'gz') return ClipTokenizer.fromBpeText(gunzipOrThrow(src.file, readFileOrThrow(src.file)), src.file);
    return ClipTokenizer.fromVocabJsonAndMerges(readFileOrThrow(src.vocab).toString('utf8'), readFileOrThrow(src.merges).toString('utf8'), path.dirname(src.vocab));
  }

  /** Async variant of {@link fromFileSync} (file reads are asynchronous; parsing is the same). */
  static async fromFile(p: string): Promise<ClipTokenizer> {
    const src = resolveSource(p);
    if (src.kind === 'gz') return ClipTokenizer.fromBpeText(gunzipOrThrow(src.file, await readFileOrThrowAsync(src.file)), src.file);
    const [v, m] = await Promise.all([readFileOrThrowAsync(src.vocab), readFileOrThrowAsync(src.merges)]);
    return ClipTokenizer.fromVocabJsonAndMerges(v.toString('utf8'), m.toString('utf8'), path.dirname(src.vocab));
  }

  get vocabSize(): number {
    return this.decoder.length;
  }

  /** BPE of one pre-token (already byte-mapped), as ids. Cached. */
  private bpeIds(token: string): number[] {
    const hit = this.cache.get(token);
    if (hit) return hit;
    let ids: number[];
    if (token === START_OF_TEXT) ids = [this.startId];
    else if (token === END_OF_TEXT) ids = [this.endId];
    else ids = this.bpe(token).map((s) => this.encoder.get(s) ?? this.endId); // unknown -> <|endoftext|> as HF's unk
    if (this.cache.size > 100_000) this.cache.clear();
    this.cache.set(token, ids);
    return ids;
  }

  /** The BPE symbols of one byte-mapped pre-token (last one carrying `</w>`). */
  bpe(token: string): string[] {
    let word = Array.from(token);
    word[word.length - 1] += '</w>';
    if (word.length === 1) return word;
    const ranks = this.ranks;
    for (;;) {
      // The lowest-ranked adjacent pair.
      let best = Infinity;
      let first = '';
      let second = '';
      for (let i = 0; i + 1 < word.length; i++) {
        const r = ranks.get(word[i] + ' ' + word[i + 1]);
        if (r !== undefined && r < best) {
          best = r;
          first = word[i];
          second = word[i + 1];
        }
      }
      if (best === Infinity) break;
      // Merge every occurrence, left to right, without overlap.
      const next: string[] = [];
      for (let i = 0; i < word.length; ) {
        if (i + 1 < word.length && word[i] === first && word[i + 1] === second) {
          next.push(first + second);
          i += 2;
        } else {
          next.push(word[i]);
          i += 1;
        }
      }
      word = next;
      if (word.length === 1) break;
    }
    return word;
  }

  /** Token strings (BPE symbols) of a prompt, without the start/end tokens. */
  tokenize(text: string): string[] {
    return this.encodeRaw(text).map((id) => this.decoder[id]);
  }

  /** Ids of a prompt without the start/end tokens (CLIP's SimpleTokenizer.encode). */
  encodeRaw(text: string): number[] {
    if (typeof text !== 'string') throw new FaceG2EError('E_INVALID_ARGUMENT', `text: expected a string, got ${typeof text}`);
    const cleaned = clipClean(text).replace(/\u0345/g, ' ');
    const out: number[] = [];
    const utf8 = new TextEncoder();
    for (const m of cleaned.matchAll(TOKEN_RE)) {
      const piece = m[0];
      let mapped: string;
      if (/^[\x21-\x7e]+$/.test(piece)) mapped = piece; // printable ASCII maps to itself
      else {
        mapped = '';
        for (const b of utf8.encode(piece)) mapped += this.byteEncoder[b];
      }
      for (const id of this.bpeIds(mapped)) out.push(id);
    }
    return out;
  }

  /** Ids with the start (49406) and end (49407) tokens, unpadded and untruncated. */
  encode(text: string): number[] {
    return [this.startId, ...this.encodeRaw(text), this.endId];
  }

  /**
   * The fixed-length form fed to the text encoder: [start, tokens..., end, pad...]. Prompts longer than
   * `length` are truncated to their first `length - 2` tokens so that the end token stays last.
   */
  encodePadded(text: string, options: EncodePaddedOptions = {}): Int32Array {
    const length = options.length ?? CLIP_CONTEXT_LENGTH;
    if (!Number.isInteger(length) || length < 2) throw new FaceG2EError('E_INVALID_ARGUMENT', `length: expected an integer >= 2, got ${length}`);
    const padOpt = options.pad ?? 'end';
    let pad: number;
    if (padOpt === 'end') pad = this.endId;
    else if (Number.isInteger(padOpt) && padOpt >= 0 && padOpt < this.vocabSize) pad = padOpt;
    else throw new FaceG2EError('E_INVALID_ARGUMENT', `pad: expected 'end' or a token id in [0, ${this.vocabSize}), got ${String(padOpt)}`);
    const body = this.encodeRaw(text);
    if (body.length > length - 2 && options.truncate === false) {
      throw new FaceG2EError('E_INVALID_ARGUMENT', `text: ${body.length} tokens do not fit in ${length - 2} (length ${length} less start/end tokens)`);
    }
    const n = Math.min(body.length, length - 2);
    const out = new Int32Array(length).fill(pad);
    out[0] = this.startId;
    for (let i = 0; i < n; i++) out[i + 1] = body[i];
    out[n + 1] = this.endId;
    return out;
  }

  /** Number of tokens a prompt takes including start/end (more than 77 means it will be truncated). */
  countTokens(text: string): number {
    return this.encodeRaw(text).length + 2;
  }

  /**
   * Text of a list of ids, as CLIP's decode: symbols concatenated, bytes decoded as UTF-8 (invalid sequences
   * become U+FFFD), every `</w>` becomes a space.
   */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const bytes: number[] = [];
    const push = (s: string) => {
      for (const ch of s) {
        const b = this.byteDecoder.get(ch);
        if (b === undefined) throw new FaceG2EError('E_INVALID_ARGUMENT', `ids: token contains ${JSON.stringify(ch)}, which is not a byte symbol`);
        bytes.push(b);
      }
    };
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const tok = Number.isInteger(id) ? this.decoder[id] : undefined;
      if (tok === undefined) throw new FaceG2EError('E_INVALID_ARGUMENT', `ids[${i}]: ${id} is not a token id (vocabulary size ${this.vocabSize})`);
      if (options.skipSpecialTokens && (id === this.startId || id === this.endId)) continue;
      push(tok);
    }
    return new TextDecoder('utf-8', { fatal: false }).decode(Uint8Array.from(bytes)).replace(/<\/w>/g, ' ');
  }
}
