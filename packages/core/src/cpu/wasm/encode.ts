/**
 * A small emitter of the WebAssembly binary format: just enough (one imported
 * memory, functions with i32/f32/f64/v128 locals, structured control flow, scalar
 * and SIMD instructions) to write our CPU kernels in TypeScript and
 * assemble them at start-up. Users need no toolchain: the kernels are built
 * from this code when @largo/core loads (about 17 ms, docs/cpu-kernels.md).
 */

export type ValType = 'i32' | 'f32' | 'f64' | 'v128';
const VALTYPE: Record<ValType, number> = { i32: 0x7f, f32: 0x7d, f64: 0x7c, v128: 0x7b };

function uleb(n: number, out: number[]): void {
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
}

function sleb(n: number, out: number[]): void {
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return;
    }
    out.push(b | 0x80);
  }
}

function name(s: string, out: number[]): void {
  const b = new TextEncoder().encode(s);
  uleb(b.length, out);
  for (const x of b) out.push(x);
}

/** A local variable (parameters first, in declaration order). */
export interface Local {
  readonly index: number;
  readonly type: ValType;
}

/**
 * Builds one function body. Methods append one instruction each and return
 * `this`, so code reads top to bottom like the text format.
 */
export class Fn {
  readonly code: number[] = [];
  readonly params: Local[] = [];
  private extra: Local[] = [];
  private depth = 0;

  constructor(
    readonly name: string,
    paramTypes: readonly ValType[],
  ) {
    paramTypes.forEach((t, i) => this.params.push({ index: i, type: t }));
  }

  local(type: ValType): Local {
    const l = { index: this.params.length + this.extra.length, type };
    this.extra.push(l);
    return l;
  }

  private op(...bytes: number[]): this {
    this.code.push(...bytes);
    return this;
  }
  private simd(opcode: number): this {
    this.code.push(0xfd);
    uleb(opcode, this.code);
    return this;
  }
  private mem(align: number, offset: number): this {
    uleb(align, this.code);
    uleb(offset, this.code);
    return this;
  }

  get(l: Local): this {
    this.code.push(0x20);
    uleb(l.index, this.code);
    return this;
  }
  set(l: Local): this {
    this.code.push(0x21);
    uleb(l.index, this.code);
    return this;
  }
  tee(l: Local): this {
    this.code.push(0x22);
    uleb(l.index, this.code);
    return this;
  }

  i32(n: number): this {
    this.code.push(0x41);
    sleb(n | 0, this.code);
    return this;
  }
  f32(x: number): this {
    this.code.push(0x43);
    const b = new Uint8Array(new Float32Array([x]).buffer);
    for (const v of b) this.code.push(v);
    return this;
  }

  /** Calls function `index` (its position in the list given to `assemble`). */
  call(index: number): this {
    this.code.push(0x10);
    uleb(index, this.code);
    return this;
  }
  /** [a, b, cond] -> cond ? a : b */
  select(): this {
    return this.op(0x1b);
  }
  /** Pushes min(a, b) of two i32 (signed); each operand is emitted twice, so pass cheap expressions. */
  minS(a: (f: this) => void, b: (f: this) => void): this {
    a(this);
    b(this);
    a(this);
    b(this);
    this.ltS();
    return this.select();
  }

  // i32 arithmetic and comparisons
  add(): this {
    return this.op(0x6a);
  }
  sub(): this {
    return this.op(0x6b);
  }
  mul(): this {
    return this.op(0x6c);
  }
  divU(): this {
    return this.op(0x6e);
  }
  remU(): this {
    return this.op(0x70);
  }
  shl(): this {
    return this.op(0x74);
  }
  and(): this {
    return this.op(0x71);
  }
  shrU(): this {
    return this.op(0x76);
  }
  eqz(): this {
    return this.op(0x45);
  }
  ltS(): this {
    return this.op(0x48);
  }
  ltU(): this {
    return this.op(0x49);
  }
  geS(): this {
    return this.op(0x4e);
  }

  // f32 scalar
  f32Add(): this {
    return this.op(0x92);
  }
  f32Mul(): this {
    return this.op(0x94);
  }
  f32Sub(): this {
    return this.op(0x93);
  }
  f32Load(offset = 0): this {
    return this.op(0x2a).mem(2, offset);
  }
  f32Store(offset = 0): this {
    return this.op(0x38).mem(2, offset);
  }
  i32Load(offset = 0): this {
    return this.op(0x28).mem(2, offset);
  }

  // f32x4 SIMD
  v128Load(offset = 0): this {
    return this.simd(0x00).mem(0, offset);
  }
  v128Store(offset = 0): this {
    return this.simd(0x0b).mem(0, offset);
  }
  loadSplat32(offset = 0): this {
    return this.simd(0x09).mem(2, offset);
  }
  splat(): this {
    return this.simd(0x13);
  }
  lane(i: number): this {
    return this.simd(0x1f).op(i);
  }
  vadd(): this {
    return this.simd(0xe4);
  }
  vsub(): this {
    return this.simd(0xe5);
  }
  vmul(): this {
    return this.simd(0xe6);
  }
  vmax(): this {
    return this.simd(0xe9);
  }
  vmin(): this {
    return this.simd(0xe8);
  }
  vdiv(): this {
    return this.simd(0xe7);
  }
  vabs(): this {
    return this.simd(0xe0);
  }
  vneg(): this {
    return this.simd(0xe1);
  }
  /** f32x4 round to nearest, ties to even. */
  vnearest(): this {
    return this.simd(0x6a);
  }
  vge(): this {
    return this.simd(0x46);
  }
  v128And(): this {
    return this.simd(0x4e);
  }
  /** f32x4 with every lane x. */
  vconst(x: number): this {
    this.simd(0x0c);
    const b = new Uint8Array(new Float32Array([x, x, x, x]).buffer);
    for (const v of b) this.code.push(v);
    return this;
  }
  /** i32x4 constant. */
  iconst(lanes: readonly [number, number, number, number]): this {
    this.simd(0x0c);
    const b = new Uint8Array(new Int32Array(lanes).buffer);
    for (const v of b) this.code.push(v);
    return this;
  }
  i32x4Splat(): this {
    return this.simd(0x11);
  }
  i32x4Add(): this {
    return this.simd(0xae);
  }
  /** [v, i32 count] -> lanes shifted left. */
  i32x4Shl(): this {
    return this.simd(0xab);
  }
  i32x4LtS(): this {
    return this.simd(0x39);
  }
  /** i32x4 from f32x4, truncating (saturating). */
  i32x4TruncSat(): this {
    return this.simd(0xf8);
  }
  vgt(): this {
    return this.simd(0x44);
  }
  bitselect(): this {
    return this.simd(0x52);
  }
  /** f64x2 from lanes 0 and 1 of an f32x4. */
  promoteLow(): this {
    return this.simd(0x5f);
  }
  /** [a, b] -> bytes of a and b picked by 16 lane indices (0-15: a, 16-31: b). */
  shuffle(lanes: readonly number[]): this {
    this.simd(0x0d);
    for (const l of lanes) this.code.push(l);
    return this;
  }
  f64x2Add(): this {
    return this.simd(0xf0);
  }
  f64Lane(i: number): this {
    return this.simd(0x21).op(i);
  }
  f64Add(): this {
    return this.op(0xa0);
  }
  f64ConvertI32U(): this {
    return this.op(0xb8);
  }
  f64Sub(): this {
    return this.op(0xa1);
  }
  f64Mul(): this {
    return this.op(0xa2);
  }
  f64Div(): this {
    return this.op(0xa3);
  }
  f64(x: number): this {
    this.code.push(0x44);
    const b = new Uint8Array(new Float64Array([x]).buffer);
    for (const v of b) this.code.push(v);
    return this;
  }
  f64Load(offset = 0): this {
    return this.op(0x2b).mem(3, offset);
  }
  f64Store(offset = 0): this {
    return this.op(0x39).mem(3, offset);
  }
  f64x2Sub(): this {
    return this.simd(0xf1);
  }
  f64x2Mul(): this {
    return this.simd(0xf2);
  }
  /** f64x2 with both lanes set to the f64 on the stack. */
  f64x2Splat(): this {
    return this.simd(0x14);
  }
  /** f32x4 [demote(a0), demote(a1), 0, 0] from an f64x2. */
  demoteZero(): this {
    return this.simd(0x5e);
  }
  f32FromF64(): this {
    return this.op(0xb6);
  }
  f64FromF32(): this {
    return this.op(0xbb);
  }
  vzero(): this {
    this.simd(0x0c);
    for (let i = 0; i < 16; i++) this.code.push(0);
    return this;
  }

  // Control flow. `loop` bodies branch back with `continueIf`; `block` bodies leave with `breakIf`.
  block(body: (f: this) => void): this {
    this.op(0x02, 0x40);
    this.depth++;
    body(this);
    this.depth--;
    return this.op(0x0b);
  }
  loop(body: (f: this) => void): this {
    this.op(0x03, 0x40);
    this.depth++;
    body(this);
    this.depth--;
    return this.op(0x0b);
  }
  /** Branch to the innermost enclosing loop start / block end if the i32 on the stack is non-zero. */
  brIf(levels = 0): this {
    this.code.push(0x0d);
    uleb(levels, this.code);
    return this;
  }
  /** if (cond) { then } */
  if(body: (f: this) => void): this {
    this.op(0x04, 0x40);
    this.depth++;
    body(this);
    this.depth--;
    return this.op(0x0b);
  }

  /**
   * for (v = start; v < end; v += step) body. `start`, `end` and `step`
   * push an i32. The body runs zero times when start >= end.
   */
  for(v: Local, start: (f: this) => void, end: (f: this) => void, step: number, body: (f: this) => void): this {
    start(this);
    this.set(v);
    return this.block((f) => {
      f.get(v);
      end(f);
      f.geS();
      f.brIf(0);
      f.loop((g) => {
        body(g);
        g.get(v).i32(step).add().tee(v);
        end(g);
        g.ltS();
        g.brIf(0);
      });
    });
  }

  encode(): number[] {
    const body: number[] = [];
    // Run-length groups of identical local types.
    const groups: [number, ValType][] = [];
    for (const l of this.extra) {
      const g = groups[groups.length - 1];
      if (g && g[1] === l.type) g[0]++;
      else groups.push([1, l.type]);
    }
    uleb(groups.length, body);
    for (const [n, t] of groups) {
      uleb(n, body);
      body.push(VALTYPE[t]);
    }
    body.push(...this.code, 0x0b);
    const out: number[] = [];
    uleb(body.length, out);
    return out.concat(body);
  }
}

function section(id: number, content: number[], out: number[]): void {
  out.push(id);
  uleb(content.length, out);
  for (const b of content) out.push(b);
}

/**
 * A module importing one memory as env.memory (shared when `shared`, for the
 * worker pool) and exporting every function by name. Functions return nothing.
 */
export function assemble(
  fns: readonly Fn[],
  memory: { initialPages: number; maxPages: number; shared: boolean },
): Uint8Array<ArrayBuffer> {
  const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  // One function type per function (simple; duplicates are harmless).
  const types: number[] = [];
  uleb(fns.length, types);
  for (const f of fns) {
    types.push(0x60);
    uleb(f.params.length, types);
    for (const p of f.params) types.push(VALTYPE[p.type]);
    types.push(0x00);
  }
  section(1, types, out);
  const imports: number[] = [];
  uleb(1, imports);
  name('env', imports);
  name('memory', imports);
  imports.push(0x02, memory.shared ? 0x03 : 0x01);
  uleb(memory.initialPages, imports);
  uleb(memory.maxPages, imports);
  section(2, imports, out);
  const funcs: number[] = [];
  uleb(fns.length, funcs);
  fns.forEach((_, i) => uleb(i, funcs));
  section(3, funcs, out);
  const exports: number[] = [];
  uleb(fns.length, exports);
  fns.forEach((f, i) => {
    name(f.name, exports);
    exports.push(0x00);
    uleb(i, exports);
  });
  section(7, exports, out);
  const code: number[] = [];
  uleb(fns.length, code);
  for (const f of fns) for (const b of f.encode()) code.push(b);
  section(10, code, out);
  return new Uint8Array(out);
}
