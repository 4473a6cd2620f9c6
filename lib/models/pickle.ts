/**
 * A minimal, safe Python unpickler (protocols 0-5) for model files: it builds plain data and never runs
 * code. Globals become inert PyClass markers; numpy arrays (numpy.core.multiarray._reconstruct + BUILD),
 * numpy dtypes and scalars are decoded to NdArray / numbers; every other object becomes a PyObject
 * holding its class, constructor arguments and state (e.g. chumpy Ch → state.x, scipy csc_matrix → state).
 *
 * Python 2 `str` values (as in FLAME pickles) are PyBytes: raw bytes, decoded as latin-1 where a string is needed.
 */
import { FaceG2EError } from '../errors';
import { halfToFloat } from '../io/npy';

export class PyBytes {
  constructor(readonly bytes: Uint8Array) {}
  toString(): string {
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength).toString('latin1');
  }
}
export class PyClass {
  constructor(readonly module: string, readonly name: string) {}
  get qualname(): string {
    return `${this.module}.${this.name}`;
  }
}
export class PyObject {
  state: unknown = undefined;
  constructor(readonly cls: PyClass, readonly args: unknown[] = []) {}
  /** state as a Map (from a __dict__ state), or undefined. */
  get dict(): Map<string, unknown> | undefined {
    if (this.state instanceof Map) return this.state as Map<string, unknown>;
    if (Array.isArray(this.state) && this.state[0] instanceof Map) return this.state[0] as Map<string, unknown>;
    return undefined;
  }
}
export class PyDtype {
  endian = '<';
  constructor(readonly code: string) {}
}
export class NdArray {
  shape: number[] = [];
  dtype = 'f8';
  endian = '<';
  fortran = false;
  /** Decoded data in C order (Float64Array for floats, Float64Array for ints too when safe). */
  data: Float64Array | Float32Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array | Uint8Array | Int8Array | Int16Array | Uint16Array = new Float64Array(0);
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  /** Values as float64 (in C order). */
  toFloat64(): Float64Array {
    if (this.dtype === 'f2') {
      const o = new Float64Array(this.data.length);
      for (let i = 0; i < o.length; i++) o[i] = halfToFloat(this.data[i] as number);
      return o;
    }
    return Float64Array.from(this.data as ArrayLike<number | bigint>, (x) => Number(x));
  }
}

const MARK = Symbol('mark');

function dictKey(k: unknown): string {
  if (typeof k === 'string') return k;
  if (k instanceof PyBytes) return k.toString();
  return String(k);
}

function itemsize(code: string): number {
  const m = /(\d+)$/.exec(code);
  return m ? Number(m[1]) : 8;
}

function decodeArray(a: NdArray, raw: Uint8Array, file: string): void {
  const code = a.dtype;
  const n = a.size;
  const isz = itemsize(code);
  if (raw.byteLength < n * isz) throw new FaceG2EError('E_FORMAT', `${file}: numpy array data too short (${raw.byteLength} bytes for shape [${a.shape.join(', ')}] ${code})`);
  const buf = new ArrayBuffer(n * isz);
  const u8 = new Uint8Array(buf);
  u8.set(raw.subarray(0, n * isz));
  if (a.endian === '>' && isz > 1) for (let i = 0; i < u8.length; i += isz) u8.subarray(i, i + isz).reverse();
  let d: NdArray['data'];
  switch (code) {
    case 'f8': d = new Float64Array(buf); break;
    case 'f4': d = new Float32Array(buf); break;
    case 'f2': d = new Uint16Array(buf); break;
    case 'i8': d = new BigInt64Array(buf); break;
    case 'u8': d = new BigUint64Array(buf); break;
    case 'i4': d = new Int32Array(buf); break;
    case 'u4': d = new Uint32Array(buf); break;
    case 'i2': d = new Int16Array(buf); break;
    case 'u2': d = new Uint16Array(buf); break;
    case 'i1': d = new Int8Array(buf); break;
    case 'u1': case 'b1': d = new Uint8Array(buf); break;
    default: throw new FaceG2EError('E_FORMAT', `${file}: unsupported numpy dtype '${code}' in pickle`);
  }
  if (a.fortran && a.shape.length > 1) {
    const out = new (d.constructor as new (n: number) => typeof d)(n);
    const nd = a.shape.length;
    const fs = new Array<number>(nd);
    let s = 1;
    for (let k = 0; k < nd; k++) { fs[k] = s; s *= a.shape[k]; }
    const idx = new Array<number>(nd).fill(0);
    for (let i = 0; i < n; i++) {
      let off = 0;
      for (let k = 0; k < nd; k++) off += idx[k] * fs[k];
      (out as any)[i] = (d as any)[off];
      for (let k = nd - 1; k >= 0; k--) { if (++idx[k] < a.shape[k]) break; idx[k] = 0; }
    }
    d = out;
  }
  a.data = d;
}

function normDtype(code: string): { code: string; endian: string } {
  // 'f8', '<f8', 'float64', 'i4', 'O', 'b1', 'bool'
  const named: Record<string, string> = { float64: 'f8', float32: 'f4', float16: 'f2', int64: 'i8', int32: 'i4', uint32: 'u4', uint8: 'u1', int8: 'i1', bool: 'b1', int16: 'i2', uint16: 'u2', uint64: 'u8' };
  let endian = '<';
  let c = code;
  if (/^[<>|=]/.test(c)) { endian = c[0] === '>' ? '>' : '<'; c = c.slice(1); }
  if (named[c]) c = named[c];
  if (c === 'b1' || c === '?') c = 'b1';
  return { code: c, endian };
}

/** Unpickle bytes into plain data. `file` names the source in error messages. */
export function unpickle(bytes: Uint8Array, file = '<pickle>'): unknown {
  const bad = (msg: string) => new FaceG2EError('E_FORMAT', `${file}: ${msg}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 0;
  const need = (n: number) => { if (p + n > bytes.length) throw bad(`truncated pickle (needed ${n} more bytes at offset ${p})`); };
  const u8 = () => { need(1); return bytes[p++]; };
  const u16 = () => { need(2); const v = dv.getUint16(p, true); p += 2; return v; };
  const i32 = () => { need(4); const v = dv.getInt32(p, true); p += 4; return v; };
  const u32 = () => { need(4); const v = dv.getUint32(p, true); p += 4; return v; };
  const u64 = () => { need(8); const v = Number(dv.getBigUint64(p, true)); p += 8; return v; };
  const take = (n: number) => { need(n); const b = bytes.subarray(p, p + n); p += n; return b; };
  const line = () => { const e = bytes.indexOf(0x0a, p); if (e < 0) throw bad('truncated pickle (unterminated line)'); const s = Buffer.from(bytes.subarray(p, e)).toString('latin1'); p = e + 1; return s; };
  const utf8 = (b: Uint8Array) => Buffer.from(b).toString('utf8');
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  const pop = () => { if (!stack.length) throw bad(`stack underflow at offset ${p}`); return stack.pop(); };
  const top = () => { if (!stack.length) throw bad(`stack underflow at offset ${p}`); return stack[stack.length - 1]; };
  const popMark = () => {
    const items: unknown[] = [];
    for (;;) {
      if (!stack.length) throw bad('MARK not found');
      const x = stack.pop();
      if (x === MARK) break;
      items.push(x);
    }
    return items.reverse();
  };
  const globalOf = (module: string, name: string): unknown => new PyClass(module, name);
  const call = (fn: unknown, args: unknown[]): unknown => {
    if (!(fn instanceof PyClass)) throw bad(`REDUCE on a non-callable at offset ${p}`);
    const q = fn.qualname;
    if (/^numpy\.(_?core\.)?multiarray\._reconstruct$/.test(q)) return new NdArray();
    if (q === 'numpy.dtype') {
      const { code, endian } = normDtype(dictKey(args[0]));
      const d = new PyDtype(code);
      d.endian = endian;
      return d;
    }
    if (/^numpy\.(_?core\.)?multiarray\.scalar$/.test(q)) {
      const dt = args[0] as PyDtype;
      const raw = args[1] instanceof PyBytes ? args[1].bytes : args[1] instanceof Uint8Array ? args[1] : undefined;
      if (!(dt instanceof PyDtype) || !raw) return new PyObject(fn, args);
      const a = new NdArray();
      a.dtype = dt.code; a.endian = dt.endian; a.shape = [];
      decodeArray(a, raw, file);
      const v = a.data[0];
      return typeof v === 'bigint' ? Number(v) : v;
    }
    if (q === 'copy_reg._reconstructor' || q === 'copyreg._reconstructor') {
      const cls = args[0];
      return new PyObject(cls instanceof PyClass ? cls : new PyClass('?', '?'), []);
    }
    if (q === '__builtin__.set' || q === 'builtins.set' || q === '__builtin__.frozenset' || q === 'builtins.frozenset') return Array.isArray(args[0]) ? [...(args[0] as unknown[])] : [];
    if (q === '_codecs.encode' && typeof args[0] === 'string') return new PyBytes(Uint8Array.from(Buffer.from(args[0], 'latin1')));
    if (q === '__builtin__.bytearray' || q === 'builtins.bytearray') return args[0] instanceof PyBytes ? args[0] : new PyBytes(new Uint8Array(0));
    return new PyObject(fn, args);
  };
  const build = (obj: unknown, state: unknown) => {
    if (obj instanceof NdArray) {
      // (version, shape, dtype, is_fortran, rawdata)
      const st = state as unknown[];
      if (!Array.isArray(st) || st.length < 5) throw bad('bad numpy array state');
      const [, shape, dt, fortran, raw] = st as [unknown, unknown, unknown, unknown, unknown];
      if (!Array.isArray(shape) || !(dt instanceof PyDtype)) throw bad('bad numpy array state (shape/dtype)');
      obj.shape = (shape as unknown[]).map((x) => Number(x));
      obj.dtype = dt.code;
      obj.endian = dt.endian;
      obj.fortran = Boolean(fortran);
      if (dt.code === 'O' || Array.isArray(raw)) throw bad('numpy object arrays are not supported');
      const b = raw instanceof PyBytes ? raw.bytes : raw instanceof Uint8Array ? raw : typeof raw === 'string' ? Uint8Array.from(Buffer.from(raw, 'latin1')) : undefined;
      if (!b) throw bad('bad numpy array data');
      decodeArray(obj, b, file);
      return;
    }
    if (obj instanceof PyDtype) {
      // (3, '<', None, None, None, -1, -1, 0)
      const st = state as unknown[];
      if (Array.isArray(st) && st.length > 1) {
        const e = dictKey(st[1]);
        if (e === '>') obj.endian = '>';
        else if (e === '<' || e === '|' || e === '=') obj.endian = '<';
      }
      return;
    }
    if (obj instanceof PyObject) {
      obj.state = state;
      return;
    }
    if (obj instanceof Map && state instanceof Map) {
      for (const [k, v] of state) obj.set(k, v);
      return;
    }
    throw bad(`BUILD on an unsupported object at offset ${p}`);
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME
      case 0x2e: { // STOP
        if (stack.length !== 1) throw bad(`pickle ended with ${stack.length} items on the stack`);
        return stack[0];
      }
      case 0x28: stack.push(MARK); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break;
      case 0x89: stack.push(false); break;
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x8a: case 0x8b: { // LONG1 / LONG4
        const n = op === 0x8a ? u8() : u32();
        const b = take(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
        if (n > 0 && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x49: { const s = line(); stack.push(s === '01' ? true : s === '00' ? false : Number(s)); break; } // INT
      case 0x4c: stack.push(Number(line().replace(/L$/, ''))); break; // LONG
      case 0x46: stack.push(Number(line())); break; // FLOAT
      case 0x47: { need(8); stack.push(dv.getFloat64(p, false)); p += 8; break; } // BINFLOAT (big-endian)
      case 0x55: stack.push(new PyBytes(take(u8()))); break; // SHORT_BINSTRING
      case 0x54: stack.push(new PyBytes(take(u32()))); break; // BINSTRING
      case 0x43: stack.push(new PyBytes(take(u8()))); break; // SHORT_BINBYTES
      case 0x42: stack.push(new PyBytes(take(u32()))); break; // BINBYTES
      case 0x8e: stack.push(new PyBytes(take(u64()))); break; // BINBYTES8
      case 0x96: stack.push(new PyBytes(take(u64()))); break; // BYTEARRAY8
      case 0x8c: stack.push(utf8(take(u8()))); break; // SHORT_BINUNICODE
      case 0x58: stack.push(utf8(take(u32()))); break; // BINUNICODE
      case 0x8d: stack.push(utf8(take(u64()))); break; // BINUNICODE8
      case 0x53: { // STRING (protocol 0, quoted repr)
        const s = line().trim();
        const body = s.slice(1, -1).replace(/\\x([0-9a-fA-F]{2})|\\(.)/g, (_m, hx, c) => (hx ? String.fromCharCode(parseInt(hx, 16)) : c === 'n' ? '\n' : c === 't' ? '\t' : c === 'r' ? '\r' : c));
        stack.push(new PyBytes(Uint8Array.from(Buffer.from(body, 'latin1'))));
        break;
      }
      case 0x56: stack.push(line()); break; // UNICODE (raw-unicode-escape; ascii subset)
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push([a, b]); break; }
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push([a, b, c]); break; }
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x61: { const v = pop(); const l = top(); if (!Array.isArray(l)) throw bad('APPEND to a non-list'); l.push(v); break; }
      case 0x65: { const items = popMark(); const l = top(); if (!Array.isArray(l)) throw bad('APPENDS to a non-list'); l.push(...items); break; }
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x64: { const items = popMark(); const m = new Map(); for (let i = 0; i + 1 < items.length; i += 2) m.set(dictKey(items[i]), items[i + 1]); stack.push(m); break; }
      case 0x73: { const v = pop(); const k = pop(); const m = top(); if (!(m instanceof Map)) throw bad('SETITEM on a non-dict'); m.set(dictKey(k), v); break; }
      case 0x75: { const items = popMark(); const m = top(); if (!(m instanceof Map)) throw bad('SETITEMS on a non-dict'); for (let i = 0; i + 1 < items.length; i += 2) m.set(dictKey(items[i]), items[i + 1]); break; }
      case 0x8f: stack.push([]); break; // EMPTY_SET
      case 0x90: { const items = popMark(); const s = top(); if (Array.isArray(s)) s.push(...items); break; } // ADDITEMS
      case 0x91: stack.push(popMark()); break; // FROZENSET
      case 0x70: memo.set(Number(line()), top()); break; // PUT
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x67: case 0x68: case 0x6a: { // GET / BINGET / LONG_BINGET
        const i = op === 0x67 ? Number(line()) : op === 0x68 ? u8() : u32();
        if (!memo.has(i)) throw bad(`memo key ${i} not found`);
        stack.push(memo.get(i));
        break;
      }
      case 0x63: { const module = line(); const name = line(); stack.push(globalOf(module, name)); break; } // GLOBAL
      case 0x93: { const name = dictKey(pop()); const module = dictKey(pop()); stack.push(globalOf(module, name)); break; } // STACK_GLOBAL
      case 0x52: { const args = pop(); const fn = pop(); stack.push(call(fn, Array.isArray(args) ? args : [])); break; } // REDUCE
      case 0x81: { const args = pop(); const cls = pop(); stack.push(cls instanceof PyClass ? new PyObject(cls, Array.isArray(args) ? args : []) : null); break; } // NEWOBJ
      case 0x92: { pop(); const args = pop(); const cls = pop(); stack.push(cls instanceof PyClass ? new PyObject(cls, Array.isArray(args) ? args : []) : null); break; } // NEWOBJ_EX
      case 0x62: { const state = pop(); build(top(), state); break; } // BUILD
      case 0x69: { const module = line(); const name = line(); const args = popMark(); stack.push(new PyObject(new PyClass(module, name), args)); break; } // INST
      case 0x6f: { const items = popMark(); const cls = items.shift(); stack.push(cls instanceof PyClass ? new PyObject(cls, items) : null); break; } // OBJ
      case 0x50: case 0x51: throw bad('persistent ids are not supported (is this a PyTorch checkpoint? give the original pickle)');
      case 0x82: case 0x83: case 0x84: throw bad('extension codes are not supported');
      case 0x97: case 0x98: throw bad('out-of-band buffers are not supported');
      default:
        throw bad(`not a Python pickle, or an unsupported opcode 0x${op.toString(16)} at offset ${p - 1}`);
    }
  }
}

/** A numpy array from a pickled value: an ndarray, a chumpy Ch (its `x`), or fail with a message naming `what`. */
export function asArray(v: unknown, what: string, file: string): NdArray {
  if (v instanceof NdArray) return v;
  if (v instanceof PyObject) {
    const d = v.dict;
    const x = d?.get('x');
    if (x instanceof NdArray) return x; // chumpy Ch
    if (x instanceof PyObject) return asArray(x, what, file);
    throw new FaceG2EError('E_FORMAT', `${file}: '${what}' is a ${v.cls.qualname} without array data (expected a numpy array or chumpy Ch)`);
  }
  throw new FaceG2EError('E_FORMAT', `${file}: '${what}' is missing or not an array`);
}

/** A dense row-major float64 matrix from a pickled scipy.sparse csc/csr matrix or a dense array. */
export function asDenseMatrix(v: unknown, what: string, file: string): { rows: number; cols: number; data: Float64Array } {
  if (v instanceof NdArray) {
    if (v.shape.length !== 2) throw new FaceG2EError('E_FORMAT', `${file}: '${what}' has shape [${v.shape.join(', ')}], expected a matrix`);
    return { rows: v.shape[0], cols: v.shape[1], data: v.toFloat64() };
  }
  if (v instanceof PyObject && /sparse/.test(v.cls.module)) {
    const d = v.dict;
    const shapeV = (d?.get('_shape') ?? d?.get('shape')) as unknown[];
    const fmt = /csr/.test(v.cls.name) ? 'csr' : /csc/.test(v.cls.name) ? 'csc' : String(d?.get('format') ?? '');
    if (!d || !Array.isArray(shapeV) || shapeV.length !== 2 || (fmt !== 'csc' && fmt !== 'csr')) {
      throw new FaceG2EError('E_FORMAT', `${file}: '${what}' is a ${v.cls.qualname} that is not a csc/csr matrix with a shape`);
    }
    const rows = Number(shapeV[0]);
    const cols = Number(shapeV[1]);
    const data = asArray(d.get('data'), `${what}.data`, file).toFloat64();
    const indices = asArray(d.get('indices'), `${what}.indices`, file).toFloat64();
    const indptr = asArray(d.get('indptr'), `${what}.indptr`, file).toFloat64();
    const outer = fmt === 'csc' ? cols : rows;
    const inner = fmt === 'csc' ? rows : cols;
    if (indptr.length !== outer + 1 || indices.length !== data.length || indptr[outer] > data.length) {
      throw new FaceG2EError('E_FORMAT', `${file}: '${what}' sparse arrays are inconsistent (indptr ${indptr.length}, indices ${indices.length}, data ${data.length}, shape ${rows}x${cols})`);
    }
    const out = new Float64Array(rows * cols);
    for (let o = 0; o < outer; o++) {
      for (let k = indptr[o]; k < indptr[o + 1]; k++) {
        const i = indices[k];
        if (!(i >= 0 && i < inner)) throw new FaceG2EError('E_FORMAT', `${file}: '${what}' has an index ${i} out of range`);
        if (fmt === 'csc') out[i * cols + o] += data[k];
        else out[o * cols + i] += data[k];
      }
    }
    return { rows, cols, data: out };
  }
  const a = asArray(v, what, file);
  return asDenseMatrix(a, what, file);
}
