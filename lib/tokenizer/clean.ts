/**
 * Text clean-up applied before CLIP tokenisation, reproducing what OpenAI CLIP's `simple_tokenizer`
 * does: `ftfy.fix_text` (ftfy 6.x defaults), `html.unescape` twice, strip, whitespace collapse, lower-case.
 *
 * ftfy is reproduced step by step for everything it does deterministically (HTML entities, C1 controls as
 * Windows-1252, Latin ligatures, full/half-width forms, curly quotes, line breaks, lone surrogates, terminal
 * escapes, control characters, NFC). The one part left out is ftfy's heuristic mojibake repair
 * (`fix_encoding`, e.g. "sÃ³" -> "só"): prompts that *are* mojibake may tokenise differently from the Python
 * reference. Everything else matches, including Python's notion of whitespace (which differs from JS `\s`).
 */
import { HTML5_ENTITIES } from './html-entities';

/** Characters Python's `regex` module matches with `\s` (used by CLIP's whitespace_clean and its token pattern). */
export const PY_REGEX_WS = '\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
/** Characters Python's `str.isspace()` accepts (what `str.strip()` removes): the above plus U+001C..U+001F. */
const PY_STRIP_CLASS = `[${PY_REGEX_WS}\\x1c-\\x1f]`;
const STRIP_RE = new RegExp(`^${PY_STRIP_CLASS}+|${PY_STRIP_CLASS}+$`, 'gu');
const WS_RUN_RE = new RegExp(`[${PY_REGEX_WS}]+`, 'gu');

/** Python's `str.strip()` with no argument. */
export function pyStrip(s: string): string {
  return s.replace(STRIP_RE, '');
}

/** CLIP's whitespace_clean: every run of whitespace becomes one space, then strip. */
export function whitespaceClean(s: string): string {
  return pyStrip(s.replace(WS_RUN_RE, ' '));
}

// ---------------------------------------------------------------- Python html.unescape (HTML5 rules)

/** Numeric references that HTML5 maps to something else (0x80..0x9F are read as Windows-1252). */
const INVALID_CHARREFS: ReadonlyMap<number, string> = new Map<number, string>([
  [0x00, '\ufffd'], [0x0d, '\r'], [0x80, '\u20ac'], [0x81, '\x81'], [0x82, '\u201a'], [0x83, '\u0192'],
  [0x84, '\u201e'], [0x85, '\u2026'], [0x86, '\u2020'], [0x87, '\u2021'], [0x88, '\u02c6'], [0x89, '\u2030'],
  [0x8a, '\u0160'], [0x8b, '\u2039'], [0x8c, '\u0152'], [0x8d, '\x8d'], [0x8e, '\u017d'], [0x8f, '\x8f'],
  [0x90, '\x90'], [0x91, '\u2018'], [0x92, '\u2019'], [0x93, '\u201c'], [0x94, '\u201d'], [0x95, '\u2022'],
  [0x96, '\u2013'], [0x97, '\u2014'], [0x98, '\u02dc'], [0x99, '\u2122'], [0x9a, '\u0161'], [0x9b, '\u203a'],
  [0x9c, '\u0153'], [0x9d, '\x9d'], [0x9e, '\u017e'], [0x9f, '\u0178'],
]);

/** Code points a numeric reference decodes to nothing (controls, noncharacters). */
function isDroppedCodepoint(n: number): boolean {
  if ((n >= 0x01 && n <= 0x08) || n === 0x0b || (n >= 0x0e && n <= 0x1f) || (n >= 0x7f && n <= 0x9f)) return true;
  if (n >= 0xfdd0 && n <= 0xfdef) return true;
  return (n & 0xfffe) === 0xfffe && n <= 0x10ffff; // U+xFFFE / U+xFFFF of every plane
}

function decodeNumeric(n: number): string {
  const mapped = INVALID_CHARREFS.get(n);
  if (mapped !== undefined) return mapped;
  if ((n >= 0xd800 && n <= 0xdfff) || n > 0x10ffff || !Number.isFinite(n)) return '\ufffd';
  if (isDroppedCodepoint(n)) return '';
  return String.fromCodePoint(n);
}

const CHARREF_RE = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

/** Exactly Python's `html.unescape`: named references (with the HTML5 longest-prefix rule) and numeric ones. */
export function htmlUnescape(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(CHARREF_RE, (_m, ref: string) => {
    if (ref[0] === '#') {
      const hex = ref[1] === 'x' || ref[1] === 'X';
      const digits = ref.slice(hex ? 2 : 1).replace(/;$/, '');
      return decodeNumeric(hex ? parseInt(digits, 16) : parseInt(digits, 10));
    }
    const full = HTML5_ENTITIES[ref];
    if (full !== undefined) return full;
    // Longest prefix that is a (semicolon-less, legacy) entity name; indices count code points like Python.
    const cps = Array.from(ref);
    for (let x = cps.length - 1; x > 1; x--) {
      const head = cps.slice(0, x).join('');
      const v = HTML5_ENTITIES[head];
      if (v !== undefined) return v + cps.slice(x).join('');
    }
    return '&' + ref;
  });
}

// ---------------------------------------------------------------- ftfy.fix_text (ftfy 6.x defaults)

let ftfyEntities: Map<string, string> | undefined;

/** ftfy's entity table: every `&name;` of HTML5, plus upper-cased forms of all-lower-case names (`&EACUTE;`). */
function ftfyEntityTable(): Map<string, string> {
  if (ftfyEntities) return ftfyEntities;
  const m = new Map<string, string>();
  for (const [name, ch] of Object.entries(HTML5_ENTITIES)) {
    if (!name.endsWith(';')) continue;
    m.set('&' + name, ch);
    if (name === name.toLowerCase()) {
      const upper = '&' + name.toUpperCase();
      if (htmlUnescape(upper) === upper) m.set(upper, ch.toUpperCase());
    }
  }
  ftfyEntities = m;
  return m;
}

const FTFY_ENTITY_RE = /&#?[0-9A-Za-z]{1,24};/g;

function ftfyUnescapeHtml(s: string): string {
  if (!s.includes('&')) return s;
  const table = ftfyEntityTable();
  return s.replace(FTFY_ENTITY_RE, (m) => {
    const v = table.get(m);
    if (v !== undefined) return v;
    if (m.startsWith('&#')) {
      const u = htmlUnescape(m);
      return u.includes(';') ? m : u; // only a fully consumed numeric reference counts
    }
    return m;
  });
}

/** Windows-1252 ("sloppy": undefined bytes keep their Latin-1 code point) for 0x80..0x9F. */
const CP1252_HIGH = '\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f' +
  '\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178';
const C1_RE = /[\x80-\x9f]/g;

const LIGATURES: Readonly<Record<string, string>> = {
  '\u0132': 'IJ', '\u0133': 'ij', '\u0149': '\u02bcn', '\u01f1': 'DZ', '\u01f2': 'Dz', '\u01f3': 'dz',
  '\u01c4': 'D\u017d', '\u01c5': 'D\u017e', '\u01c6': 'd\u017e', '\u01c7': 'LJ', '\u01c8': 'Lj', '\u01c9': 'lj',
  '\u01ca': 'NJ', '\u01cb': 'Nj', '\u01cc': 'nj', '\ufb00': 'ff', '\ufb01': 'fi', '\ufb02': 'fl', '\ufb03': 'ffi',
  '\ufb04': 'ffl', '\ufb05': '\u017ft', '\ufb06': 'st',
};
const LIGATURE_RE = /[\u0132\u0133\u0149\u01c4-\u01cc\u01f1-\u01f3\ufb00-\ufb06]/g;

/** U+3000 and the halfwidth/fullwidth forms block, mapped to their NFKC (standard-width) form. */
const WIDTH_RE = /[\u3000\uff01-\uffef]/g;
function widthFix(ch: string): string {
  if (ch === '\u3000') return ' ';
  return ch.normalize('NFKC');
}

const SINGLE_QUOTE_RE = /[\u02bc\u2018-\u201b]/g;
const DOUBLE_QUOTE_RE = /[\u201c-\u201f]/g;
const LONE_SURROGATE_RE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const ANSI_RE = /\x1b\[((?:\p{Nd}|;)*)([a-zA-Z])/gu;
const CONTROL_RE = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g;

function fixSegment(text: string, unescape: boolean): string {
  for (;;) {
    const orig = text;
    if (unescape) text = ftfyUnescapeHtml(text);
    // (ftfy's heuristic mojibake repair would run here; see the module comment)
    text = text.replace(C1_RE, (c) => CP1252_HIGH[c.charCodeAt(0) - 0x80]);
    text = text.replace(LIGATURE_RE, (c) => LIGATURES[c] ?? c);
    text = text.replace(WIDTH_RE, widthFix);
    text = text.replace(DOUBLE_QUOTE_RE, '"').replace(SINGLE_QUOTE_RE, "'");
    text = text.replace(/\r\n/g, '\n').replace(/[\r\u2028\u2029\x85]/g, '\n');
    text = text.replace(LONE_SURROGATE_RE, '\ufffd');
    text = text.replace(ANSI_RE, '');
    text = text.replace(CONTROL_RE, '');
    text = text.normalize('NFC');
    if (text === orig) return text;
  }
}

/**
 * ftfy.fix_text with its default configuration (less mojibake repair). Works line by line like ftfy; HTML
 * entities are decoded unless a line contains '<' (and, as in ftfy, not in any later line either).
 */
export function ftfyFixText(text: string): string {
  let unescape = true;
  let out = '';
  let pos = 0;
  while (pos < text.length) {
    let brk = text.indexOf('\n', pos) + 1;
    if (brk === 0) brk = text.length;
    const seg = text.slice(pos, brk);
    if (unescape && seg.includes('<')) unescape = false;
    out += fixSegment(seg, unescape);
    pos = brk;
  }
  return out;
}

/** The whole pre-tokenisation pipeline of CLIP: basic_clean, whitespace_clean, lower(). */
export function clipClean(text: string): string {
  const basic = pyStrip(htmlUnescape(htmlUnescape(ftfyFixText(text))));
  return whitespaceClean(basic).toLowerCase();
}
