/**
 * Reading and writing the safetensors format.
 *
 * Layout of a file:
 *
 *     [u64 little-endian N] [N bytes of UTF-8 JSON header] [data buffer]
 *
 * The header maps tensor names to `{ dtype, shape, data_offsets: [begin, end] }` (offsets relative to the start of
 * the data buffer) and may hold a `__metadata__` object of string → string. The tensors must cover the data buffer
 * exactly: no overlaps, no holes, nothing left over. All values are little-endian.
 *
 * On load, F16 and BF16 become float32 (exact conversion), I16/I8 become int32, BOOL becomes uint8 (0/1); F32, F64,
 * I64, I32 and U8 are returned as typed-array views on the input bytes when the byte offset is aligned for the
 * element type (zero copy: writing into such a tensor writes into the input buffer), otherwise as copies.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from './atomic.ts';

/** The element types a safetensors header may name (the subset moeclip understands). */
export type StDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** A loaded tensor: the in-memory element type, its shape, and the row-major data. */
export interface StTensor {
  dtype: 'float32' | 'float64' | 'int64' | 'int32' | 'uint8';
  shape: number[];
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;
}

/** Result of parsing a safetensors file. */
export interface SafetensorsContents {
  tensors: Map<string, StTensor>;
  metadata: Record<string, string>;
  /** The dtype each tensor had in the file (before any widening on load). */
  storedDtypes: Map<string, StDtype>;
}

export interface SafetensorsReadOptions {
  /** Largest header accepted, in bytes (default 100 MB), a guard against corrupt length fields. */
  maxHeaderBytes?: number;
}

export interface SafetensorsWriteOptions {
  /** How float32 tensors are stored: `F32` (default) or `F16` (rounded to nearest even). float64 stays F64. */
  float?: 'F32' | 'F16';
}

const DEFAULT_MAX_HEADER = 100 * 1024 * 1024;

/** Bytes per element of each stored dtype. */
const ITEM_SIZE: Record<StDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isStDtype(s: unknown): s is StDtype {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(ITEM_SIZE, s);
}

// ---------------------------------------------------------------------------------------------------------------
// half-precision conversions

let f16Table: Float32Array | null = null;

/**
 * float16 bits → float32 value, exactly:
 *   e = 0:       (-1)^s · m · 2^-24            (zero and subnormals)
 *   e = 31:      ±Inf when m = 0, else NaN
 *   otherwise:   (-1)^s · (1 + m/1024) · 2^(e-15)
 * where s is bit 15, e bits 14..10 and m bits 9..0. Every float16 value is exactly representable in float32.
 */
export function f16BitsToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m === 0 ? s * Infinity : NaN;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** A 65536-entry lookup table float16 bits → float32, built on first use. */
function getF16Table(): Float32Array {
  if (f16Table === null) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToFloat(h);
  }
  return f16Table;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/**
 * float32 value → float16 bits, rounding to nearest, ties to even. Values beyond the float16 range become ±Inf,
 * values below half the smallest subnormal become ±0, NaN stays NaN (quiet).
 */
export function floatToF16Bits(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15; // re-biased exponent
  if (e >= 31) return sign | 0x7c00; // overflow → Inf
  if (e <= 0) {
    // subnormal float16 (or underflow): value = mant24 · 2^(exp-150); unit of the result is 2^-24
    if (e < -10) return sign; // below 2^-25: rounds to zero
    mant |= 0x800000;
    const shift = 14 - e; // 14..24
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1) === 1)) half++;
    return sign | half; // a carry into bit 10 correctly yields the smallest normal
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1)) half++; // a carry may roll over to Inf: correct
  return sign | half;
}

// ---------------------------------------------------------------------------------------------------------------
// parsing

interface HeaderEntry {
  name: string;
  dtype: StDtype;
  shape: number[];
  begin: number;
  end: number;
}

function fail(source: string, what: string): never {
  throw new Error(`safetensors ${source}: ${what}`);
}

function validateEntry(source: string, name: string, raw: unknown, dataLength: number): HeaderEntry {
  const where = `tensor '${name}'`;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(source, `${where}: entry is not an object`);
  const o = raw as Record<string, unknown>;
  if (!isStDtype(o.dtype)) {
    fail(
      source,
      `${where}: unknown dtype ${JSON.stringify(o.dtype)} (supported: ${Object.keys(ITEM_SIZE).join(', ')})`,
    );
  }
  const dtype = o.dtype;
  if (!Array.isArray(o.shape) || !o.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    fail(source, `${where}: shape ${JSON.stringify(o.shape)} is not a list of non-negative integers`);
  }
  const shape = o.shape as number[];
  const offs = o.data_offsets;
  if (
    !Array.isArray(offs) ||
    offs.length !== 2 ||
    !offs.every((v) => Number.isSafeInteger(v) && (v as number) >= 0)
  ) {
    fail(source, `${where}: data_offsets ${JSON.stringify(offs)} is not a pair of non-negative integers`);
  }
  const begin = offs[0] as number;
  const end = offs[1] as number;
  if (end < begin) fail(source, `${where}: data_offsets [${begin}, ${end}] end before begin`);
  if (end > dataLength) {
    fail(source, `${where}: data_offsets [${begin}, ${end}] out of range (data buffer is ${dataLength} bytes)`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  const expected = count * ITEM_SIZE[dtype];
  if (end - begin !== expected) {
    fail(
      source,
      `${where}: byte length ${end - begin} ≠ ${expected} = prod(shape ${JSON.stringify(shape)}) · ${ITEM_SIZE[dtype]} (${dtype})`,
    );
  }
  return { name, dtype, shape, begin, end };
}

/** Checks that the tensors tile the data buffer [0, dataLength) exactly. */
function checkCoverage(source: string, entries: HeaderEntry[], dataLength: number): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: HeaderEntry | null = null;
  for (const e of sorted) {
    if (e.begin < pos) {
      fail(
        source,
        `tensors '${prev!.name}' [${prev!.begin}, ${prev!.end}] and '${e.name}' [${e.begin}, ${e.end}] overlap`,
      );
    }
    if (e.begin > pos) {
      fail(
        source,
        `hole in data buffer: bytes [${pos}, ${e.begin}) before tensor '${e.name}' belong to no tensor`,
      );
    }
    pos = e.end;
    prev = e;
  }
  if (pos !== dataLength) {
    fail(source, `hole in data buffer: trailing bytes [${pos}, ${dataLength}) belong to no tensor`);
  }
}

/** Reads one tensor's bytes into its in-memory representation (a view when possible). */
function decodeTensor(bytes: Uint8Array, absOffset: number, e: HeaderEntry): StTensor {
  const count = (e.end - e.begin) / ITEM_SIZE[e.dtype];
  const buf = bytes.buffer;
  const abs = bytes.byteOffset + absOffset;
  const byteLen = e.end - e.begin;
  const dv = new DataView(buf, abs, byteLen);
  const aligned = (n: number): boolean => LITTLE_ENDIAN_HOST && abs % n === 0;
  const shape = [...e.shape];
  switch (e.dtype) {
    case 'F32': {
      if (aligned(4)) return { dtype: 'float32', shape, data: new Float32Array(buf, abs, count) };
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = dv.getFloat32(i * 4, true);
      return { dtype: 'float32', shape, data: out };
    }
    case 'F64': {
      if (aligned(8)) return { dtype: 'float64', shape, data: new Float64Array(buf, abs, count) };
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = dv.getFloat64(i * 8, true);
      return { dtype: 'float64', shape, data: out };
    }
    case 'I64': {
      if (aligned(8)) return { dtype: 'int64', shape, data: new BigInt64Array(buf, abs, count) };
      const out = new BigInt64Array(count);
      for (let i = 0; i < count; i++) out[i] = dv.getBigInt64(i * 8, true);
      return { dtype: 'int64', shape, data: out };
    }
    case 'I32': {
      if (aligned(4)) return { dtype: 'int32', shape, data: new Int32Array(buf, abs, count) };
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = dv.getInt32(i * 4, true);
      return { dtype: 'int32', shape, data: out };
    }
    case 'U8':
      return { dtype: 'uint8', shape, data: new Uint8Array(buf, abs, count) };
    case 'F16': {
      const table = getF16Table();
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = table[dv.getUint16(i * 2, true)]!;
      return { dtype: 'float32', shape, data: out };
    }
    case 'BF16': {
      // bfloat16 is the upper half of a float32: shift the bits into place and reinterpret.
      const out = new Float32Array(count);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = dv.getUint16(i * 2, true) << 16;
      return { dtype: 'float32', shape, data: out };
    }
    case 'I16': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = dv.getInt16(i * 2, true);
      return { dtype: 'int32', shape, data: out };
    }
    case 'I8': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = dv.getInt8(i);
      return { dtype: 'int32', shape, data: out };
    }
    case 'BOOL': {
      const out = new Uint8Array(count);
      for (let i = 0; i < count; i++) out[i] = dv.getUint8(i) !== 0 ? 1 : 0;
      return { dtype: 'uint8', shape, data: out };
    }
  }
}

/**
 * Parses a safetensors file held in memory. `source` names the file in error messages. Checks the header length,
 * the JSON, every entry (dtype, shape, offsets, byte length) and that the tensors cover the data exactly.
 */
export function parseSafetensors(
  bytes: Uint8Array,
  source = '<buffer>',
  opts: SafetensorsReadOptions = {},
): SafetensorsContents {
  const maxHeader = opts.maxHeaderBytes ?? DEFAULT_MAX_HEADER;
  if (bytes.byteLength < 8) fail(source, `file is ${bytes.byteLength} bytes, shorter than the 8-byte header length`);
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(maxHeader)) fail(source, `header length ${n64} exceeds the limit of ${maxHeader} bytes`);
  const n = Number(n64);
  if (8 + n > bytes.byteLength) {
    fail(source, `header length ${n} reaches beyond the end of the file (${bytes.byteLength} bytes)`);
  }
  let header: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
    header = JSON.parse(text);
  } catch (e) {
    fail(source, `header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    fail(source, 'header JSON is not an object');
  }
  const dataStart = 8 + n;
  const dataLength = bytes.byteLength - dataStart;
  const metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
        fail(source, '__metadata__ is not an object of string values');
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(source, `__metadata__ is not a string map: '${k}' is ${JSON.stringify(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    entries.push(validateEntry(source, name, raw, dataLength));
  }
  checkCoverage(source, entries, dataLength);
  const tensors = new Map<string, StTensor>();
  const storedDtypes = new Map<string, StDtype>();
  for (const e of entries) {
    tensors.set(e.name, decodeTensor(bytes, dataStart + e.begin, e));
    storedDtypes.set(e.name, e.dtype);
  }
  return { tensors, metadata, storedDtypes };
}

/** Reads and parses a safetensors file; errors name the path. */
export function readSafetensors(path: string, opts: SafetensorsReadOptions = {}): SafetensorsContents {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`safetensors ${path}: cannot read file (${(e as Error).message})`);
  }
  return parseSafetensors(bytes, path, opts);
}

// ---------------------------------------------------------------------------------------------------------------
// serialisation

interface PlannedTensor {
  name: string;
  stored: StDtype;
  shape: number[];
  tensor: StTensor;
  byteLength: number;
  begin: number;
}

function storedDtypeFor(name: string, t: StTensor, float: 'F32' | 'F16'): StDtype {
  const expectCtor = {
    float32: Float32Array,
    float64: Float64Array,
    int64: BigInt64Array,
    int32: Int32Array,
    uint8: Uint8Array,
  }[t.dtype];
  if (expectCtor === undefined) throw new Error(`safetensors: tensor '${name}' has unknown dtype '${t.dtype}'`);
  if (!(t.data instanceof expectCtor)) {
    throw new Error(`safetensors: tensor '${name}' has dtype ${t.dtype} but data is a ${t.data.constructor.name}`);
  }
  if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`safetensors: tensor '${name}' shape ${JSON.stringify(t.shape)} is not non-negative integers`);
  }
  const count = t.shape.reduce((a, b) => a * b, 1);
  if (count !== t.data.length) {
    throw new Error(
      `safetensors: tensor '${name}' has ${t.data.length} elements but shape ${JSON.stringify(t.shape)} needs ${count}`,
    );
  }
  switch (t.dtype) {
    case 'float32':
      return float;
    case 'float64':
      return 'F64';
    case 'int64':
      return 'I64';
    case 'int32':
      return 'I32';
    case 'uint8':
      return 'U8';
  }
}

/**
 * Serialises tensors to safetensors bytes. Header keys are sorted by name (with `__metadata__` first when given);
 * the header is padded with spaces to a multiple of 8 bytes. In the data buffer, tensors are laid out by element
 * size (largest first), then by name, so every tensor starts at an offset aligned for its element type and can be
 * loaded without a copy.
 */
export function serializeSafetensors(
  tensors: Map<string, StTensor> | Record<string, StTensor>,
  metadata?: Record<string, string>,
  opts: SafetensorsWriteOptions = {},
): Uint8Array {
  const float = opts.float ?? 'F32';
  if (float !== 'F32' && float !== 'F16') throw new Error(`safetensors: opts.float must be F32 or F16, got ${float}`);
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const plan: PlannedTensor[] = [];
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw new Error(`safetensors: '__metadata__' is reserved and cannot name a tensor`);
    const stored = storedDtypeFor(name, t, float);
    plan.push({ name, stored, shape: [...t.shape], tensor: t, byteLength: t.data.length * ITEM_SIZE[stored], begin: 0 });
  }
  const byName = (a: PlannedTensor, b: PlannedTensor): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const layout = [...plan].sort((a, b) => ITEM_SIZE[b.stored] - ITEM_SIZE[a.stored] || byName(a, b));
  let pos = 0;
  for (const p of layout) {
    p.begin = pos;
    pos += p.byteLength;
  }
  const dataLength = pos;

  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`safetensors: metadata '${k}' must be a string`);
    }
    header.__metadata__ = metadata;
  }
  for (const p of [...plan].sort(byName)) {
    header[p.name] = { dtype: p.stored, shape: p.shape, data_offsets: [p.begin, p.begin + p.byteLength] };
  }
  let headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(headerBytes.length / 8) * 8;
  if (padded !== headerBytes.length) {
    const hb = new Uint8Array(padded).fill(0x20);
    hb.set(headerBytes);
    headerBytes = hb;
  }
  const out = new Uint8Array(8 + padded + dataLength);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(padded), true);
  out.set(headerBytes, 8);
  const dataStart = 8 + padded;
  for (const p of layout) {
    const off = dataStart + p.begin;
    const d = p.tensor.data;
    if (p.stored === 'F16') {
      const src = d as Float32Array;
      for (let i = 0; i < src.length; i++) dv.setUint16(off + i * 2, floatToF16Bits(src[i]!), true);
    } else if (LITTLE_ENDIAN_HOST) {
      out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), off);
    } else {
      writeBigEndianHost(dv, off, p.stored, d);
    }
  }
  return out;
}

/** Element-wise little-endian write, used only on big-endian hosts. */
function writeBigEndianHost(dv: DataView, off: number, stored: StDtype, d: StTensor['data']): void {
  for (let i = 0; i < d.length; i++) {
    switch (stored) {
      case 'F32':
        dv.setFloat32(off + i * 4, d[i] as number, true);
        break;
      case 'F64':
        dv.setFloat64(off + i * 8, d[i] as number, true);
        break;
      case 'I64':
        dv.setBigInt64(off + i * 8, d[i] as bigint, true);
        break;
      case 'I32':
        dv.setInt32(off + i * 4, d[i] as number, true);
        break;
      default:
        dv.setUint8(off + i, d[i] as number);
    }
  }
}

/** Serialises tensors (see `serializeSafetensors`) and writes them atomically to `path`. */
export function writeSafetensors(
  path: string,
  tensors: Map<string, StTensor> | Record<string, StTensor>,
  metadata?: Record<string, string>,
  opts: SafetensorsWriteOptions = {},
): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata, opts));
}
