/**
 * A tiny Python pickle writer for tests: protocol 2 as Python 2 writes it (str as SHORT_BINSTRING/BINSTRING,
 * numpy arrays via numpy.core.multiarray._reconstruct, chumpy Ch and scipy csc_matrix via copy_reg._reconstructor).
 */
export class Pickler {
  private parts: Buffer[] = [Buffer.from([0x80, 0x02])];
  private first = true;

  private op(...b: number[]): void { this.parts.push(Buffer.from(b)); }
  private raw(b: Buffer | Uint8Array): void { this.parts.push(Buffer.from(b)); }
  global(module: string, name: string): void { this.op(0x63); this.raw(Buffer.from(`${module}\n${name}\n`, 'latin1')); }
  str(s: string | Uint8Array): void {
    const b = typeof s === 'string' ? Buffer.from(s, 'latin1') : Buffer.from(s);
    if (b.length < 256) { this.op(0x55, b.length); } else { const h = Buffer.alloc(5); h[0] = 0x54; h.writeUInt32LE(b.length, 1); this.raw(h); }
    this.raw(b);
  }
  int(n: number): void {
    if (n >= 0 && n < 256) this.op(0x4b, n);
    else if (n >= -(2 ** 31) && n < 2 ** 31) { const b = Buffer.alloc(5); b[0] = 0x4a; b.writeInt32LE(n, 1); this.raw(b); }
    else { // LONG1
      let v = BigInt(n);
      const bytes: number[] = [];
      for (let i = 0; i < 9; i++) { bytes.push(Number(v & 0xffn)); v >>= 8n; }
      while (bytes.length > 1 && bytes[bytes.length - 1] === 0 && !(bytes[bytes.length - 2] & 0x80)) bytes.pop();
      this.op(0x8a, bytes.length, ...bytes);
    }
  }
  tuple(items: (() => void)[]): void { this.op(0x28); items.forEach((f) => f()); this.op(0x74); }
  dictStart(): void { this.op(0x7d); }
  /** Key of the next SETITEM on the top-level dict (value written next, then setitem is added automatically). */
  private pendingKey = false;
  key(k: string): void { this.flush(); this.str(k); this.pendingKey = true; }
  private flush(): void { if (this.pendingKey) { this.op(0x73); this.pendingKey = false; } }
  dtype(code: string): void {
    this.global('numpy', 'dtype');
    this.tuple([() => this.str(code.replace(/^[<>|]/, '')), () => this.int(0), () => this.int(1)]);
    this.op(0x52);
    this.tuple([() => this.int(3), () => this.str(code[0] === '>' ? '>' : code[0] === '|' ? '|' : '<'), () => this.op(0x4e), () => this.op(0x4e), () => this.op(0x4e), () => this.int(-1), () => this.int(-1), () => this.int(0)]);
    this.op(0x62);
  }
  ndarray(dtype: string, shape: number[], data: Uint8Array, fortran = false): void {
    this.global('numpy.core.multiarray', '_reconstruct');
    this.tuple([() => this.global('numpy', 'ndarray'), () => this.tuple([() => this.int(0)]), () => this.str('b')]);
    this.op(0x52);
    this.tuple([() => this.int(1), () => this.tuple(shape.map((s) => () => this.int(s))), () => this.dtype(dtype), () => this.op(fortran ? 0x88 : 0x89), () => this.str(data)]);
    this.op(0x62);
  }
  object(module: string, name: string, state: [string, () => void][]): void {
    this.global('copy_reg', '_reconstructor');
    this.tuple([() => this.global(module, name), () => this.global('__builtin__', 'object'), () => this.op(0x4e)]);
    this.op(0x52);
    this.op(0x7d, 0x28);
    for (const [k, f] of state) { this.str(k); f(); }
    this.op(0x75, 0x62);
  }
  chumpy(x: () => void): void {
    this.object('chumpy.ch', 'Ch', [['x', x], ['_dirty_vars', () => this.op(0x8f)]]);
  }
  cscMatrix(shape: [number, number], data: Float64Array, indices: Int32Array, indptr: Int32Array): void {
    const b = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    this.object('scipy.sparse.csc', 'csc_matrix', [
      ['_shape', () => this.tuple([() => this.int(shape[0]), () => this.int(shape[1])])],
      ['maxprint', () => this.int(50)],
      ['format', () => this.str('csc')],
      ['data', () => this.ndarray('<f8', [data.length], b(data))],
      ['indices', () => this.ndarray('<i4', [indices.length], b(indices))],
      ['indptr', () => this.ndarray('<i4', [indptr.length], b(indptr))],
    ]);
  }
  finish(): Uint8Array {
    this.flush();
    const out = Buffer.concat([...this.parts, Buffer.from([0x2e])]);
    this.parts.pop?.();
    void this.first;
    return out;
  }
}
