import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  writeSafetensors,
  floatToF16Bits,
  f16BitsToFloat,
  type StTensor,
} from '../../src/io/safetensors.ts';

/** Builds a safetensors file by hand from a header object and raw data bytes (independent of the writer). */
function build(header: unknown, data: Uint8Array, headerText?: string): Uint8Array {
  const h = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function f32Bytes(values: number[]): Uint8Array {
  const b = new Uint8Array(values.length * 4);
  const dv = new DataView(b.buffer);
  values.forEach((v, i) => dv.setFloat32(i * 4, v, true));
  return b;
}

test('round trip F32, I64, I32, U8, F64 with metadata, via a file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'st-'));
  try {
    const tensors: Record<string, StTensor> = {
      'b.weight': { dtype: 'float32', shape: [2, 3], data: new Float32Array([1.5, -2, 3.25, 0, 1e-30, -7e20]) },
      'a.ids': { dtype: 'int64', shape: [3], data: new BigInt64Array([1n, -(2n ** 62n), 123456789012345n]) },
      'c.count': { dtype: 'int32', shape: [2], data: new Int32Array([-5, 2147483647]) },
      'd.mask': { dtype: 'uint8', shape: [1, 3], data: new Uint8Array([0, 255, 7]) },
      'e.scale': { dtype: 'float64', shape: [], data: new Float64Array([Math.PI]) },
      'f.empty': { dtype: 'float32', shape: [0, 4], data: new Float32Array(0) },
    };
    const path = join(dir, 'x.safetensors');
    writeSafetensors(path, tensors, { format: 'pt', note: 'hello' });
    const bytes = readFileSync(path);
    // header length is a multiple of 8 and the header is sorted by name with __metadata__ first
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
    assert.equal(n % 8, 0);
    const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    assert.deepEqual(Object.keys(JSON.parse(headerText)), ['__metadata__', 'a.ids', 'b.weight', 'c.count', 'd.mask', 'e.scale', 'f.empty']);
    const got = readSafetensors(path);
    assert.deepEqual(got.metadata, { format: 'pt', note: 'hello' });
    for (const [name, t] of Object.entries(tensors)) {
      const g = got.tensors.get(name)!;
      assert.equal(g.dtype, t.dtype, name);
      assert.deepEqual(g.shape, t.shape, name);
      assert.deepEqual(Array.from(g.data as ArrayLike<unknown>), Array.from(t.data as ArrayLike<unknown>), name);
    }
    assert.equal(got.storedDtypes.get('b.weight'), 'F32');
    assert.equal(got.storedDtypes.get('a.ids'), 'I64');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('F16 round trip of exactly representable values, and known float16 bit patterns', () => {
  // values exactly representable in float16: integers up to 2048, halves, powers of two, max, min subnormal
  const values = [0, -0, 1, -1, 0.5, 2048, 65504, -65504, 2 ** -14, 2 ** -24, 3 * 2 ** -24, 0.333251953125, Infinity, -Infinity];
  const t = new Map<string, StTensor>([['h', { dtype: 'float32', shape: [values.length], data: new Float32Array(values) }]]);
  const bytes = serializeSafetensors(t, undefined, { float: 'F16' });
  const got = parseSafetensors(bytes);
  assert.equal(got.storedDtypes.get('h'), 'F16');
  const g = got.tensors.get('h')!;
  assert.equal(g.dtype, 'float32');
  assert.deepEqual(Array.from(g.data as Float32Array), values);
  assert.ok(Object.is((g.data as Float32Array)[1], -0));
  // known bit patterns (IEEE 754 binary16)
  assert.equal(floatToF16Bits(1), 0x3c00);
  assert.equal(floatToF16Bits(-2), 0xc000);
  assert.equal(floatToF16Bits(65504), 0x7bff);
  assert.equal(floatToF16Bits(65520), 0x7c00); // halfway to the next (non-existent) value rounds to even → Inf
  assert.equal(floatToF16Bits(2 ** -24), 0x0001);
  assert.equal(floatToF16Bits(2 ** -25), 0x0000); // tie between 0 and 2^-24 → even (0)
  assert.equal(floatToF16Bits(1.5 * 2 ** -24), 0x0002); // tie between 1 and 2 units → even (2)
  assert.equal(floatToF16Bits(2 ** -14 - 2 ** -25), 0x0400); // rounds up into the smallest normal
  assert.equal(floatToF16Bits(1 / 3), 0x3555);
  assert.equal(floatToF16Bits(1 + 2 ** -11), 0x3c00); // tie → even mantissa
  assert.equal(floatToF16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie → even mantissa (up)
  assert.ok(Number.isNaN(f16BitsToFloat(floatToF16Bits(NaN))));
  assert.equal(f16BitsToFloat(0x7c00), Infinity);
  assert.equal(f16BitsToFloat(0x03ff), 1023 * 2 ** -24);
  assert.equal(f16BitsToFloat(0x3555), 0.333251953125);
});

test('F16 load from hand-built bytes incl. subnormal, inf, nan', () => {
  const bits = [0x0000, 0x8000, 0x3c00, 0xbc00, 0x0001, 0x8200, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x4248];
  const data = new Uint8Array(bits.length * 2);
  bits.forEach((b, i) => new DataView(data.buffer).setUint16(i * 2, b, true));
  const file = build({ h: { dtype: 'F16', shape: [bits.length], data_offsets: [0, data.length] } }, data);
  const g = Array.from(parseSafetensors(file).tensors.get('h')!.data as Float32Array);
  assert.deepEqual(g.slice(0, 9), [0, -0, 1, -1, 2 ** -24, -(2 ** -15), 65504, Infinity, -Infinity]);
  assert.ok(Object.is(g[1], -0));
  assert.ok(Number.isNaN(g[9]!));
  assert.equal(g[10], 3.140625); // 0x4248: e=16, m=0x248=584 → 2·(1+584/1024)
});

test('BF16 tensor built by hand: known bit patterns → known floats', () => {
  // bf16 = upper 16 bits of float32. 0x3F80 = 1.0, 0xC000 = -2.0, 0x4049 = 3.140625, 0x3EAB = 0.333984375,
  // 0x7F80 = +Inf, 0x0001 = 2^-133 (float32 subnormal), 0x7FC0 = NaN
  const bits = [0x3f80, 0xc000, 0x4049, 0x3eab, 0x7f80, 0x0001, 0x7fc0];
  const data = new Uint8Array(bits.length * 2);
  bits.forEach((b, i) => new DataView(data.buffer).setUint16(i * 2, b, true));
  const file = build({ w: { dtype: 'BF16', shape: [7], data_offsets: [0, 14] } }, data);
  const res = parseSafetensors(file, 'bf16.safetensors');
  const t = res.tensors.get('w')!;
  assert.equal(t.dtype, 'float32');
  assert.equal(res.storedDtypes.get('w'), 'BF16');
  const g = Array.from(t.data as Float32Array);
  assert.deepEqual(g.slice(0, 6), [1, -2, 3.140625, 0.333984375, Infinity, 2 ** -133]);
  assert.ok(Number.isNaN(g[6]!));
});

test('I16, I8 → int32 and BOOL → uint8', () => {
  const data = new Uint8Array([0xff, 0x7f, 0x00, 0x80, 0x80, 0x7f, 0xff, 0x00, 0x01, 0x02]);
  const file = build(
    {
      a: { dtype: 'I16', shape: [2], data_offsets: [0, 4] },
      b: { dtype: 'I8', shape: [3], data_offsets: [4, 7] },
      c: { dtype: 'BOOL', shape: [3], data_offsets: [7, 10] },
    },
    data,
  );
  const r = parseSafetensors(file);
  assert.equal(r.tensors.get('a')!.dtype, 'int32');
  assert.deepEqual(Array.from(r.tensors.get('a')!.data as Int32Array), [32767, -32768]);
  assert.deepEqual(Array.from(r.tensors.get('b')!.data as Int32Array), [-128, 127, -1]);
  assert.equal(r.tensors.get('c')!.dtype, 'uint8');
  assert.deepEqual(Array.from(r.tensors.get('c')!.data as Uint8Array), [0, 1, 1]);
});

test('zero-copy views when aligned, copies when not, honouring byteOffset of a pooled buffer', () => {
  const values = [1, 2, 3, 4];
  const header = { x: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } };
  // header length chosen to be a multiple of 8 by padding with spaces
  let text = JSON.stringify(header);
  text = text.padEnd(Math.ceil(text.length / 8) * 8, ' ');
  const file = build(null, f32Bytes(values), text);
  // embed the file at offset 8 of a bigger buffer: data stays 4-aligned → zero copy
  const big = new Uint8Array(file.length + 16);
  big.set(file, 8);
  const aligned = big.subarray(8, 8 + file.length);
  const t = parseSafetensors(aligned).tensors.get('x')!;
  assert.deepEqual(Array.from(t.data as Float32Array), values);
  assert.equal(t.data.buffer, big.buffer, 'aligned tensor should be a view on the input buffer');
  (t.data as Float32Array)[0] = 42; // writes through to the file bytes
  assert.equal(new DataView(big.buffer).getFloat32(8 + 8 + text.length, true), 42);
  // embed at offset 1: misaligned → copy with the same values
  const big2 = new Uint8Array(file.length + 16);
  big2.set(file, 1);
  const t2 = parseSafetensors(big2.subarray(1, 1 + file.length)).tensors.get('x')!;
  assert.deepEqual(Array.from(t2.data as Float32Array), values);
  assert.notEqual(t2.data.buffer, big2.buffer);
});

test('the writer aligns every tensor so that a read is zero-copy', () => {
  const tensors: Record<string, StTensor> = {
    a: { dtype: 'uint8', shape: [3], data: new Uint8Array([1, 2, 3]) },
    b: { dtype: 'float64', shape: [2], data: new Float64Array([0.1, 0.2]) },
    c: { dtype: 'float32', shape: [1], data: new Float32Array([5]) },
    d: { dtype: 'int64', shape: [1], data: new BigInt64Array([9n]) },
  };
  const bytes = serializeSafetensors(tensors);
  const r = parseSafetensors(bytes);
  for (const name of ['b', 'c', 'd']) assert.equal(r.tensors.get(name)!.data.buffer, bytes.buffer, name);
  assert.deepEqual(Array.from(r.tensors.get('b')!.data as Float64Array), [0.1, 0.2]);
});

test('malformed files give specific messages naming source and tensor', () => {
  const ok = { x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const d8 = new Uint8Array(8);
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['short', new Uint8Array(5), /bad\.st: file is 5 bytes, shorter than the 8-byte header length/],
    [
      'huge header',
      (() => {
        const b = new Uint8Array(16);
        new DataView(b.buffer).setBigUint64(0, 2n ** 40n, true);
        return b;
      })(),
      /header length 1099511627776 exceeds the limit/,
    ],
    [
      'beyond file',
      (() => {
        const b = new Uint8Array(16);
        new DataView(b.buffer).setBigUint64(0, 100n, true);
        return b;
      })(),
      /header length 100 reaches beyond the end of the file \(16 bytes\)/,
    ],
    ['bad json', build(null, d8, '{"x": '), /header is not valid UTF-8 JSON/],
    ['array json', build([1, 2], d8), /header JSON is not an object/],
    ['dtype', build({ x: { dtype: 'F8', shape: [2], data_offsets: [0, 8] } }, d8), /tensor 'x': unknown dtype "F8"/],
    ['shape', build({ x: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }, d8), /tensor 'x': shape \[2,-1\] is not a list of non-negative integers/],
    ['shape float', build({ x: { dtype: 'F32', shape: [1.5], data_offsets: [0, 8] } }, d8), /tensor 'x': shape \[1\.5\]/],
    ['length', build({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, d8), /tensor 'x': byte length 8 ≠ 12/],
    ['offsets range', build({ x: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, d8), /tensor 'x': data_offsets \[0, 16\] out of range \(data buffer is 8 bytes\)/],
    ['offsets shape', build({ x: { dtype: 'F32', shape: [2], data_offsets: [0] } }, d8), /tensor 'x': data_offsets \[0\] is not a pair/],
    [
      'overlap',
      build(
        {
          x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
          y: { dtype: 'F32', shape: [1], data_offsets: [2, 6] },
          z: { dtype: 'U8', shape: [2], data_offsets: [6, 8] },
        },
        d8,
      ),
      /tensors 'x' \[0, 4\] and 'y' \[2, 6\] overlap/,
    ],
    [
      'hole',
      build(
        { x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, y: { dtype: 'U8', shape: [2], data_offsets: [6, 8] } },
        d8,
      ),
      /hole in data buffer: bytes \[4, 6\) before tensor 'y'/,
    ],
    ['trailing', build({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, d8), /trailing bytes \[4, 8\) belong to no tensor/],
    ['metadata', build({ __metadata__: { a: 1 }, ...ok }, d8), /__metadata__ is not a string map: 'a' is 1/],
    ['metadata array', build({ __metadata__: ['a'], ...ok }, d8), /__metadata__ is not an object/],
  ];
  for (const [label, bytes, re] of cases) {
    assert.throws(() => parseSafetensors(bytes, 'bad.st'), (e: Error) => {
      assert.match(e.message, /^safetensors bad\.st: /, label);
      assert.match(e.message, re, label);
      return true;
    });
  }
  // a well-formed file with the same data parses
  assert.equal(parseSafetensors(build(ok, d8)).tensors.size, 1);
  // max header option
  assert.throws(() => parseSafetensors(build(ok, d8), 'x', { maxHeaderBytes: 10 }), /exceeds the limit of 10 bytes/);
});

test('readSafetensors names the path when the file is missing; writer rejects inconsistent tensors', () => {
  assert.throws(() => readSafetensors('/nonexistent/dir/w.safetensors'), /safetensors \/nonexistent\/dir\/w\.safetensors: cannot read file/);
  assert.throws(
    () => serializeSafetensors({ w: { dtype: 'float32', shape: [3], data: new Float32Array(2) } }),
    /tensor 'w' has 2 elements but shape \[3\] needs 3/,
  );
  assert.throws(
    () => serializeSafetensors({ w: { dtype: 'int32', shape: [2], data: new Float32Array(2) } }),
    /tensor 'w' has dtype int32 but data is a Float32Array/,
  );
  const dir = mkdtempSync(join(tmpdir(), 'st-'));
  try {
    const p = join(dir, 'trunc.safetensors');
    const bytes = serializeSafetensors({ w: { dtype: 'float32', shape: [4], data: new Float32Array(4) } });
    writeFileSync(p, bytes.subarray(0, bytes.length - 4));
    assert.throws(() => readSafetensors(p), (e: Error) => e.message.includes(p) && /out of range/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
