// GGUF files written by writeGguf and read back by readGgufInfo: every value type, tensor sizes
// and offsets, F16 conversion, chunking, and what the reader says about damaged files.
import { mkdtemp, open, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

import { isSrfError } from '../lib/errors.js';
import {
  GgmlType,
  GgufValueType,
  f16ToF32,
  f32ToF16,
  f32ArrayToF16,
  ggmlTensorBytes,
  ggmlTypeTraits,
  kv,
  metaArray,
  metaBool,
  metaNumber,
  metaString,
  planGguf,
  readGgufInfo,
  writeGguf,
  type GgufKv,
} from '../fixtures/gguf/index.js';

const dir = await mkdtemp(join(tmpdir(), 'srf-gguf-reader-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

/** One entry of every scalar type, one array of every element type. */
const allTypes: GgufKv[] = [
  kv.u8('t.u8', 255),
  kv.i8('t.i8', -128),
  kv.u16('t.u16', 65535),
  kv.i16('t.i16', -32768),
  kv.u32('t.u32', 4294967295),
  kv.i32('t.i32', -2147483648),
  kv.f32('t.f32', 0.5),
  kv.bool('t.bool', true),
  kv.str('t.str', 'héllo ▁wörld'),
  kv.u64('t.u64', 2n ** 64n - 1n),
  kv.i64('t.i64', -(2n ** 63n)),
  kv.f64('t.f64', Math.PI),
  kv.array.u8('a.u8', [0, 1, 255]),
  kv.array.i8('a.i8', [-1, 0, 127]),
  kv.array.u16('a.u16', [1, 65535]),
  kv.array.i16('a.i16', [-2, 300]),
  kv.array.u32('a.u32', [7, 4294967295]),
  kv.array.i32('a.i32', [-7, 2147483647]),
  kv.array.f32('a.f32', [0.25, -1.5, 3]),
  kv.array.bool('a.bool', [true, false, true]),
  kv.array.str('a.str', ['', 'a', '▁the', '<0x0A>']),
  kv.array.u64('a.u64', [0n, 2n ** 40n]),
  kv.array.i64('a.i64', [-1n, 2n ** 50n]),
  kv.array.f64('a.f64', [1e-300, -2.5]),
];

t.test('every metadata value type survives a round trip', async (t) => {
  const path = join(dir, 'types.gguf');
  await writeGguf(path, [kv.str('general.architecture', 'test'), ...allTypes], []);
  const info = await readGgufInfo(path);
  t.equal(info.version, 3);
  t.equal(info.architecture, 'test');
  t.equal(info.tensors.length, 0);
  t.equal(info.metadata.size, allTypes.length + 1);
  t.same([...info.metadata.keys()].slice(1), allTypes.map((e) => e.key), 'file order is kept');
  for (const want of allTypes) {
    const got = info.metadata.get(want.key)!;
    t.equal(got.type, want.type, `${want.key}: type`);
    if (want.type === GgufValueType.ARRAY && got.type === GgufValueType.ARRAY) {
      t.equal(got.arrayType, want.arrayType, `${want.key}: element type`);
      t.same(Array.from(got.value as ArrayLike<unknown>), Array.from(want.value as ArrayLike<unknown>), `${want.key}: elements`);
    } else {
      t.equal(got.value, want.value, `${want.key}: value`);
    }
  }
  t.equal(metaString(info, 't.str'), 'héllo ▁wörld');
  t.equal(metaNumber(info, 't.u64'), 2 ** 64, 'u64 as a number');
  t.equal(metaNumber(info, 't.str'), undefined, 'not a number');
  t.equal(metaBool(info, 't.bool'), true);
  t.equal(metaArray(info, 'a.str')?.length, 4);
  t.ok(info.metadata.get('a.f32')!.value instanceof Float32Array, 'numeric arrays come back as typed arrays');
});

t.test('tensor infos, sizes, alignment and data', async (t) => {
  const path = join(dir, 'tensors.gguf');
  const values = Float32Array.from({ length: 3 * 5 }, (_, i) => i - 7.25);
  const result = await writeGguf(
    path,
    [kv.str('general.architecture', 'test')],
    [
      { name: 'vec', dims: [5], type: GgmlType.F32, fill: (d, s) => d.set(values.subarray(s, s + d.length)) },
      { name: 'mat', dims: [5, 3], type: GgmlType.F16, fill: (d, s) => d.set(values.subarray(s, s + d.length)) },
      { name: 'cube', dims: [2, 3, 4, 5], type: GgmlType.F16 },
    ],
  );
  const info = await readGgufInfo(path);
  t.same(
    info.tensors.map((x) => [x.name, x.dims, x.typeName, x.offset, x.bytes]),
    [
      ['vec', [5], 'F32', 0, 20],
      ['mat', [5, 3], 'F16', 32, 30],
      ['cube', [2, 3, 4, 5], 'F16', 64, 240],
    ],
    'offsets are padded to 32 bytes',
  );
  t.equal(info.dataOffset % 32, 0);
  t.equal(info.dataEnd, info.dataOffset + 64 + 240);
  t.equal(info.fileSize, result.fileSize);
  t.equal(info.fileSize, info.dataOffset + 64 + 256, 'the last tensor is padded too');
  t.same(result.tensors, info.tensors, 'the plan is what the reader finds');

  const bytes = await readFile(path);
  const vec = new Float32Array(bytes.buffer.slice(bytes.byteOffset + info.dataOffset, bytes.byteOffset + info.dataOffset + 20));
  t.same([...vec], [...values.subarray(0, 5)], 'F32 data as given');
  const matStart = info.dataOffset + 32;
  const mat = new Uint16Array(bytes.buffer.slice(bytes.byteOffset + matStart, bytes.byteOffset + matStart + 30));
  t.same([...mat].map(f16ToF32), [...values].map((v) => f16ToF32(f32ToF16(v))), 'F16 data converted');
  t.ok([...mat].map(f16ToF32).every((v, i) => v === values[i]), 'quarter steps are exact in F16');
});

t.test('a custom alignment is written as general.alignment and honoured', async (t) => {
  const path = join(dir, 'align.gguf');
  await writeGguf(path, [], [{ name: 'a', dims: [3], type: GgmlType.F32 }, { name: 'b', dims: [3], type: GgmlType.F32 }], { alignment: 64 });
  const info = await readGgufInfo(path);
  t.equal(info.alignment, 64);
  t.equal(metaNumber(info, 'general.alignment'), 64);
  t.equal(info.dataOffset % 64, 0);
  t.equal(info.tensors[1]!.offset, 64);
});

t.test('output does not depend on the buffer size', async (t) => {
  const make = (bufferBytes: number, name: string) => {
    let x = 12345;
    return writeGguf(
      join(dir, name),
      [kv.str('general.architecture', 'test')],
      [
        {
          name: 'w',
          dims: [37, 101],
          type: GgmlType.F16,
          fill: (d) => {
            for (let i = 0; i < d.length; i++) {
              x = (Math.imul(x, 1103515245) + 12345) >>> 0;
              d[i] = x / 2 ** 32 - 0.5;
            }
          },
        },
        { name: 'v', dims: [1000], type: GgmlType.F32, fill: (d, s) => d.forEach((_, i) => (d[i] = s + i)) },
      ],
      { bufferBytes },
    );
  };
  await make(64, 'small-buffers.gguf');
  await make(16 << 20, 'large-buffers.gguf');
  t.ok((await readFile(join(dir, 'small-buffers.gguf'))).equals(await readFile(join(dir, 'large-buffers.gguf'))));
});

t.test('F16 conversion rounds like numpy', async (t) => {
  t.equal(f32ToF16(1), 0x3c00);
  t.equal(f32ToF16(-2), 0xc000);
  t.equal(f32ToF16(65504), 0x7bff, 'largest finite');
  t.equal(f32ToF16(65520), 0x7c00, 'rounds up to infinity');
  t.equal(f32ToF16(1e-8), 0x0000, 'underflows to zero');
  t.equal(f32ToF16(2 ** -24), 0x0001, 'smallest subnormal');
  t.equal(f32ToF16(2 ** -14), 0x0400, 'smallest normal');
  t.equal(f32ToF16(1 + 2 ** -11), 0x3c00, 'tie rounds to even (down)');
  t.equal(f32ToF16(1 + 3 * 2 ** -11), 0x3c02, 'tie rounds to even (up)');
  t.equal(f32ToF16(Number.NaN) & 0x7e00, 0x7e00, 'NaN stays NaN');
  t.equal(f16ToF32(0x3555), 0.333251953125);
  const src = Float32Array.from([0.1, -0.2, 1e5, -1e-6]);
  const dst = new Uint16Array(4);
  f32ArrayToF16(src, dst);
  t.same([...dst], [...src].map(f32ToF16));
});

t.test('ggml type sizes follow ggml-common.h', async (t) => {
  const cases: [number, number, number][] = [
    // [type, block size, bytes per block]
    [GgmlType.F32, 1, 4],
    [GgmlType.F16, 1, 2],
    [GgmlType.BF16, 1, 2],
    [GgmlType.Q4_0, 32, 18],
    [GgmlType.Q4_1, 32, 20],
    [GgmlType.Q5_0, 32, 22],
    [GgmlType.Q5_1, 32, 24],
    [GgmlType.Q8_0, 32, 34],
    [GgmlType.Q2_K, 256, 84],
    [GgmlType.Q3_K, 256, 110],
    [GgmlType.Q4_K, 256, 144],
    [GgmlType.Q5_K, 256, 176],
    [GgmlType.Q6_K, 256, 210],
    [GgmlType.Q8_K, 256, 292],
    [GgmlType.IQ2_XXS, 256, 66],
    [GgmlType.IQ4_NL, 32, 18],
    [GgmlType.IQ4_XS, 256, 136],
    [GgmlType.TQ1_0, 256, 54],
  ];
  for (const [type, block, size] of cases) {
    t.same(ggmlTypeTraits(type), { name: ggmlTypeTraits(type)!.name, blockSize: block, typeSize: size }, ggmlTypeTraits(type)!.name);
  }
  // A LLaVA-7B Q4_K_M attention matrix: 4096 x 4096 in 256-element blocks of 144 bytes.
  t.equal(ggmlTensorBytes(GgmlType.Q4_K, [4096, 4096]), 4096 * 16 * 144);
  t.throws(() => ggmlTensorBytes(GgmlType.Q4_K, [100, 2]), /multiple of 256/);
  t.equal(ggmlTypeTraits(4), undefined, 'removed types are unknown');
});

t.test('reading a 32000-token vocabulary is fast', async (t) => {
  const path = join(dir, 'vocab.gguf');
  const tokens = Array.from({ length: 32000 }, (_, i) => `\u2581tok${i}`);
  await writeGguf(path, [kv.array.str('tokenizer.ggml.tokens', tokens), kv.array.f32('tokenizer.ggml.scores', tokens.map((_, i) => -i))], []);
  const start = performance.now();
  const info = await readGgufInfo(path);
  const ms = performance.now() - start;
  t.same(metaArray(info, 'tokenizer.ggml.tokens'), tokens);
  t.ok(ms < 500, `read in ${ms.toFixed(1)} ms`);
});

t.test('damaged files give coded errors that name the file', async (t) => {
  const good = join(dir, 'good.gguf');
  await writeGguf(
    good,
    [kv.str('general.architecture', 'test'), kv.array.str('tokenizer.ggml.tokens', ['a', 'b', 'c'])],
    [{ name: 'w', dims: [64, 64], type: GgmlType.F16 }],
  );
  const info = await readGgufInfo(good);
  const bytes = await readFile(good);

  const expectError = async (path: string, code: string, pattern: RegExp) => {
    const err = await readGgufInfo(path).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(isSrfError(err), `${code}: an SrfError`);
    if (!isSrfError(err)) return;
    t.equal(err.code, code, `${path}: ${err.message}`);
    t.equal(err.file, path);
    t.ok(err.message.includes(path), 'the message names the file');
    t.match(err.message, pattern);
  };

  await expectError(join(dir, 'absent.gguf'), 'FILE_NOT_FOUND', /not found/);
  await expectError(dir, 'FILE_UNREADABLE', /directory/);

  const empty = join(dir, 'empty.gguf');
  await writeFile(empty, '');
  await expectError(empty, 'NOT_GGUF', /empty/);

  const text = join(dir, 'notes.txt');
  await writeFile(text, 'These are my notes about GGUF files.\n');
  await expectError(text, 'NOT_GGUF', /text file/);

  const ggml = join(dir, 'old.bin');
  await writeFile(ggml, Buffer.from('tjgg\x01\x00\x00\x00', 'latin1'));
  await expectError(ggml, 'NOT_GGUF', /GGML/);

  const magicOnly = join(dir, 'magic.gguf');
  await writeFile(magicOnly, 'GG');
  await expectError(magicOnly, 'GGUF_TRUNCATED', /cut off/);

  const inHeader = join(dir, 'cut-header.gguf');
  await writeFile(inHeader, bytes.subarray(0, 40));
  await expectError(inHeader, 'GGUF_TRUNCATED', /ends inside the GGUF header/);

  const inData = join(dir, 'cut-data.gguf');
  await writeFile(inData, bytes.subarray(0, info.dataOffset + 1000));
  await expectError(inData, 'GGUF_TRUNCATED', new RegExp(`ends at byte ${info.dataEnd}.*only ${info.dataOffset + 1000} bytes \\(${info.dataEnd - info.dataOffset - 1000} bytes missing\\)`));

  const v1 = join(dir, 'v1.gguf');
  const v1bytes = Buffer.from(bytes);
  v1bytes.writeUInt32LE(1, 4);
  await writeFile(v1, v1bytes);
  await expectError(v1, 'GGUF_INVALID', /v1 is no longer supported/);

  const badType = join(dir, 'bad-type.gguf');
  const badBytes = Buffer.from(bytes);
  // the first key's value type follows magic, version, counts and the key string
  const keyLen = Number(badBytes.readBigUInt64LE(24));
  badBytes.writeInt32LE(99, 32 + keyLen);
  await writeFile(badType, badBytes);
  await expectError(badType, 'GGUF_INVALID', /invalid value type 99/);

  // A file cut to exactly the data extent (no final padding) is complete for llama.cpp.
  const unpadded = join(dir, 'unpadded.gguf');
  await writeFile(unpadded, bytes.subarray(0, info.dataEnd));
  await truncate(unpadded, info.dataEnd);
  t.equal((await readGgufInfo(unpadded)).dataEnd, info.dataEnd);
});

t.test('the writer refuses what llama.cpp would refuse', async (t) => {
  const path = join(dir, 'refused.gguf');
  await t.rejects(writeGguf(path, [kv.u8('x', 256)], []), { code: 'INVALID_ARGUMENT', message: /not a valid u8/ });
  await t.rejects(writeGguf(path, [kv.u32('x', 1), kv.u32('x', 2)], []), { code: 'INVALID_ARGUMENT', message: /duplicate/ });
  await t.rejects(writeGguf(path, [], [{ name: 'x'.repeat(64), dims: [1], type: GgmlType.F32 }]), { message: /1 to 63 bytes/ });
  await t.rejects(writeGguf(path, [], [{ name: 'x', dims: [0], type: GgmlType.F32 }]), { message: /invalid dimensions/ });
  await t.rejects(writeGguf(path, [], [{ name: 'x', dims: [1], type: 2 as never }]), { message: /only F32 and F16/ });
  // nothing is left behind
  await t.rejects(open(path, 'r'), { code: 'ENOENT' });
  await t.rejects(open(`${path}.tmp`, 'r'), { code: 'ENOENT' });
  // header 24 + tensor info (8 + 1 + 4 + 8 + 4 + 8 = 33) = 57, padded to 64; 12 data bytes padded to 32
  t.equal(planGguf([], [{ name: 'x', dims: [3], type: GgmlType.F32 }]).fileSize, 96, 'plan size');
});
