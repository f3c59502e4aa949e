/**
 * Reads a GGUF file's header: version, every metadata key/value, every tensor description, and
 * where the tensor data lies. Tensor data itself is never read; only its extent is checked
 * against the file size, so a cut-off download is reported before llama.cpp maps the file.
 *
 * The rules are those of llama.cpp's ggml/src/gguf.cpp (gguf_init_from_file_impl).
 */
import { open, stat, type FileHandle } from 'node:fs/promises';

import { SrfError } from '../errors.js';
import {
  GGML_MAX_DIMS,
  GGML_MAX_NAME,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_MAX_ARRAY_ELEMENTS,
  GGUF_MAX_STRING_LENGTH,
  GGUF_VALUE_TYPE_SIZE,
  GGUF_VERSION,
  GgufValueType,
  alignUp,
  ggmlTypeName,
  ggmlTypeTraits,
  ggufValueTypeName,
  isGgufValueType,
} from './constants.js';
import type { GgufInfo, GgufKv, GgufTensorInfo } from './types.js';

const CHUNK_BYTES = 1 << 20;

/** Raised inside the parser when the file ends too early; turned into GGUF_TRUNCATED. */
class EndOfFile extends Error {
  /** Absolute offset the read would have needed to reach. */
  readonly needed: number;

  constructor(needed: number) {
    super('end of file');
    this.needed = needed;
  }
}

/**
 * A forward-only view of the file through one growing buffer. `need(n)` is synchronous when the
 * bytes are already buffered, so per-item parsing of a 32000-entry vocabulary only awaits once
 * per megabyte.
 */
class ChunkedFile {
  private buf: Buffer = Buffer.alloc(0);
  /** File offset of buf[0]. */
  private bufStart = 0;
  /** Current read position, absolute. */
  pos = 0;

  private readonly fh: FileHandle;
  readonly size: number;

  constructor(fh: FileHandle, size: number) {
    this.fh = fh;
    this.size = size;
  }

  get remaining(): number {
    return this.size - this.pos;
  }

  /** Bytes available in the buffer from pos. */
  private available(): number {
    return this.bufStart + this.buf.length - this.pos;
  }

  /** Make sure n bytes from pos are buffered; returns the buffer index of pos. */
  async need(n: number): Promise<number> {
    if (this.available() >= n) return this.pos - this.bufStart;
    if (this.pos + n > this.size) throw new EndOfFile(this.pos + n);
    const keep = Math.max(0, this.available());
    const want = Math.min(Math.max(n, CHUNK_BYTES), this.size - this.pos);
    const next = Buffer.allocUnsafe(want);
    if (keep > 0) this.buf.copy(next, 0, this.pos - this.bufStart, this.pos - this.bufStart + keep);
    let filled = keep;
    while (filled < want) {
      const { bytesRead } = await this.fh.read(next, filled, want - filled, this.pos + filled);
      if (bytesRead === 0) throw new EndOfFile(this.pos + n);
      filled += bytesRead;
    }
    this.buf = next;
    this.bufStart = this.pos;
    return 0;
  }

  /** Synchronous access when the caller already awaited need(). */
  view(): Buffer {
    return this.buf;
  }

  index(): number {
    return this.pos - this.bufStart;
  }

  hasBuffered(n: number): boolean {
    return this.available() >= n;
  }

  async u32(): Promise<number> {
    const i = await this.need(4);
    this.pos += 4;
    return this.buf.readUInt32LE(i);
  }

  async i32(): Promise<number> {
    const i = await this.need(4);
    this.pos += 4;
    return this.buf.readInt32LE(i);
  }

  async u64(): Promise<bigint> {
    const i = await this.need(8);
    this.pos += 8;
    return this.buf.readBigUInt64LE(i);
  }

  async i64(): Promise<bigint> {
    const i = await this.need(8);
    this.pos += 8;
    return this.buf.readBigInt64LE(i);
  }

  /** Raw bytes copied out (used for numeric arrays, which may exceed the chunk size). */
  async bytes(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    let done = 0;
    while (done < n) {
      const step = Math.min(n - done, CHUNK_BYTES);
      const i = await this.need(step);
      out.set(this.buf.subarray(i, i + step), done);
      this.pos += step;
      done += step;
    }
    return out;
  }
}

/** What the parser was doing, for error messages. */
interface Where {
  what: string;
}

function truncated(path: string, e: EndOfFile, where: Where, fileSize: number): SrfError {
  return new SrfError(
    'GGUF_TRUNCATED',
    `the file ends inside the GGUF header while reading ${where.what}: it has ${fileSize} bytes but ` +
      `at least ${e.needed} are needed (the file is incomplete: download or copy it again)`,
    { file: path },
  );
}

function invalid(path: string, message: string): SrfError {
  return new SrfError('GGUF_INVALID', `invalid GGUF file: ${message}`, { file: path });
}

/** A guess at what a non-GGUF file is, for the NOT_GGUF message. */
function describeForeign(head: Buffer): string {
  if (head.length === 0) return 'the file is empty (0 bytes)';
  const magic = head.subarray(0, 4).toString('latin1');
  if (magic === 'lmgg' || magic === 'tjgg' || magic === 'algg' || magic === 'fmgg') {
    return 'it is an old GGML/GGJT model file, which llama.cpp no longer reads: convert it to GGUF';
  }
  if (head[0] === 0x50 && head[1] === 0x4b) return 'it looks like a zip archive (a PyTorch checkpoint?): convert it to GGUF';
  if (head[0] === 0x89 && magic.slice(1) === 'PNG') return 'it is a PNG image';
  if (head[0] === 0xff && head[1] === 0xd8) return 'it is a JPEG image';
  if (head.length >= 9 && head[8] === 0x7b) return 'it looks like a safetensors file: convert it to GGUF';
  const sample = head.subarray(0, Math.min(head.length, 64));
  const text = sample.every((b) => b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127));
  if (text) {
    const first = sample.toString('latin1').split('\n')[0]!.slice(0, 32);
    return `it is a text file (starting with ${JSON.stringify(first)})`;
  }
  const hex = [...head.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  return `it starts with bytes ${hex} instead of the GGUF magic "GGUF"`;
}

async function openForRead(path: string): Promise<{ fh: FileHandle; size: number }> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new SrfError('FILE_NOT_FOUND', 'file not found', { file: path, cause: err });
    }
    throw new SrfError('FILE_UNREADABLE', `cannot read the file (${code ?? String(err)})`, {
      file: path,
      cause: err,
    });
  }
  if (st.isDirectory()) {
    throw new SrfError('FILE_UNREADABLE', 'this is a directory, not a model file', { file: path });
  }
  try {
    const fh = await open(path, 'r');
    return { fh, size: st.size };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SrfError('FILE_UNREADABLE', `cannot open the file (${code ?? String(err)})`, {
      file: path,
      cause: err,
    });
  }
}

/** Read a GGUF v2/v3 header and check that the file holds all the tensor data it describes. */
export async function readGgufInfo(path: string): Promise<GgufInfo> {
  const { fh, size } = await openForRead(path);
  try {
    return await parse(path, fh, size);
  } catch (err) {
    if (err instanceof SrfError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new SrfError('FILE_UNREADABLE', `cannot read the file (${code ?? String(err)})`, {
      file: path,
      cause: err,
    });
  } finally {
    await fh.close();
  }
}

async function parse(path: string, fh: FileHandle, fileSize: number): Promise<GgufInfo> {
  const f = new ChunkedFile(fh, fileSize);
  const where: Where = { what: 'the magic' };

  // magic
  if (fileSize < 4) {
    const head = Buffer.alloc(fileSize);
    if (fileSize > 0) await fh.read(head, 0, fileSize, 0);
    if (fileSize > 0 && Buffer.from('GGUF').subarray(0, fileSize).equals(head)) {
      throw new SrfError('GGUF_TRUNCATED', `the file has only ${fileSize} bytes: the GGUF header is cut off`, {
        file: path,
      });
    }
    throw new SrfError('NOT_GGUF', `not a GGUF model file: ${describeForeign(head)}`, { file: path });
  }
  const i0 = await f.need(Math.min(fileSize, 16));
  if (f.view().readUInt32LE(i0) !== GGUF_MAGIC) {
    throw new SrfError('NOT_GGUF', `not a GGUF model file: ${describeForeign(f.view().subarray(i0, i0 + 16))}`, {
      file: path,
    });
  }
  f.pos += 4;

  try {
    where.what = 'the version';
    const version = await f.u32();
    if (version === 0) throw invalid(path, 'version 0');
    if ((version & 0xffff) === 0) {
      throw invalid(path, `version ${version} is implausible: the file was written for a big-endian machine`);
    }
    if (version === 1) throw invalid(path, 'GGUF v1 is no longer supported by llama.cpp: convert the model again');
    if (version > GGUF_VERSION) {
      throw invalid(path, `GGUF version ${version} is newer than the supported version ${GGUF_VERSION}`);
    }

    where.what = 'the tensor and key counts';
    const nTensors = await f.i64();
    const nKv = await f.i64();
    // Counts beyond these are corruption, not a short file; smaller ones run into the end of file.
    if (nTensors < 0n || nTensors > 1n << 40n) throw invalid(path, `tensor count ${nTensors} is impossible`);
    if (nKv < 0n || nKv > 1n << 40n) throw invalid(path, `key/value count ${nKv} is impossible`);

    const metadata = new Map<string, GgufKv>();
    for (let i = 0; i < Number(nKv); i++) {
      where.what = `metadata key #${i}`;
      const key = await readString(f, path, where);
      if (key.length === 0) throw invalid(path, `metadata key #${i} is empty`);
      if (metadata.has(key)) throw invalid(path, `duplicate metadata key "${key}"`);
      where.what = `the value of "${key}"`;
      const type = await f.i32();
      metadata.set(key, await readValue(f, path, where, key, type));
    }

    let alignment = GGUF_DEFAULT_ALIGNMENT;
    const alignKv = metadata.get('general.alignment');
    if (alignKv) {
      if (alignKv.type !== GgufValueType.UINT32) {
        throw invalid(path, `general.alignment must be a u32 but is ${ggufValueTypeName(alignKv.type)}`);
      }
      alignment = alignKv.value as number;
      if (alignment === 0 || (alignment & (alignment - 1)) !== 0) {
        throw invalid(path, `alignment ${alignment} is not a power of 2`);
      }
    }

    const tensors: GgufTensorInfo[] = [];
    const names = new Set<string>();
    for (let i = 0; i < Number(nTensors); i++) {
      where.what = `tensor info #${i}`;
      const name = await readString(f, path, where);
      if (Buffer.byteLength(name) >= GGML_MAX_NAME) {
        throw invalid(path, `tensor name "${name}" is too long (${Buffer.byteLength(name)} >= ${GGML_MAX_NAME} bytes)`);
      }
      if (names.has(name)) throw invalid(path, `duplicate tensor name "${name}"`);
      names.add(name);
      where.what = `the tensor info of "${name}"`;
      const nDims = await f.u32();
      if (nDims > GGML_MAX_DIMS) throw invalid(path, `tensor "${name}" has ${nDims} dimensions (max ${GGML_MAX_DIMS})`);
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) {
        const ne = await f.i64();
        if (ne < 0n) throw invalid(path, `tensor "${name}" has a negative dimension ${ne}`);
        if (ne > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(path, `tensor "${name}" dimension ${ne} is too large`);
        dims.push(Number(ne));
      }
      const type = await f.i32();
      const traits = ggmlTypeTraits(type);
      if (!traits) throw invalid(path, `tensor "${name}" has unknown ggml type ${type}`);
      const ne0 = dims[0] ?? 1;
      if (ne0 % traits.blockSize !== 0) {
        throw invalid(
          path,
          `tensor "${name}" (${traits.name}) has ${ne0} elements per row, not a multiple of the block size ${traits.blockSize}`,
        );
      }
      let elements = 1;
      for (const d of dims) elements *= d;
      if (!Number.isSafeInteger(elements)) throw invalid(path, `tensor "${name}" is too large`);
      const bytes = elements === 0 ? 0 : (elements / traits.blockSize) * traits.typeSize;
      const offset = await f.u64();
      if (offset > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(path, `tensor "${name}" offset ${offset} is too large`);
      tensors.push({ name, dims, type, typeName: ggmlTypeName(type), offset: Number(offset), bytes });
    }

    // The data section starts at the next aligned offset; gguf.cpp requires the tensors to be
    // laid out back to back in order, each padded to the alignment.
    const dataOffset = tensors.length > 0 ? alignUp(f.pos, alignment) : f.pos;
    let expected = 0;
    let dataEnd = dataOffset;
    for (const t of tensors) {
      if (t.offset !== expected) {
        throw invalid(path, `tensor "${t.name}" has data offset ${t.offset}, expected ${expected}`);
      }
      dataEnd = Math.max(dataEnd, dataOffset + t.offset + t.bytes);
      expected += alignUp(t.bytes, alignment);
    }
    if (fileSize < dataEnd) {
      const missing = dataEnd - fileSize;
      const last = tensors.at(-1);
      throw new SrfError(
        'GGUF_TRUNCATED',
        `the file is truncated: its tensor data ends at byte ${dataEnd} (${last ? `last tensor "${last.name}"` : 'header'}) ` +
          `but the file has only ${fileSize} bytes (${missing} bytes missing): download or copy it again`,
        { file: path },
      );
    }

    const arch = metadata.get('general.architecture');
    const info: GgufInfo = {
      path,
      version,
      fileSize,
      alignment,
      metadata,
      tensors,
      dataOffset,
      dataEnd,
    };
    if (arch && arch.type === GgufValueType.STRING) info.architecture = arch.value;
    return info;
  } catch (err) {
    if (err instanceof EndOfFile) throw truncated(path, err, where, fileSize);
    throw err;
  }
}

async function readString(f: ChunkedFile, path: string, where: Where): Promise<string> {
  const len = await f.u64();
  if (len > BigInt(GGUF_MAX_STRING_LENGTH)) throw invalid(path, `string of ${len} bytes in ${where.what}`);
  const n = Number(len);
  const i = await f.need(n);
  f.pos += n;
  return f.view().toString('utf8', i, i + n);
}

async function readValue(f: ChunkedFile, path: string, where: Where, key: string, type: number): Promise<GgufKv> {
  switch (type) {
    case GgufValueType.UINT8: {
      const i = await f.need(1);
      f.pos += 1;
      return { key, type, value: f.view().readUInt8(i) };
    }
    case GgufValueType.INT8: {
      const i = await f.need(1);
      f.pos += 1;
      return { key, type, value: f.view().readInt8(i) };
    }
    case GgufValueType.UINT16: {
      const i = await f.need(2);
      f.pos += 2;
      return { key, type, value: f.view().readUInt16LE(i) };
    }
    case GgufValueType.INT16: {
      const i = await f.need(2);
      f.pos += 2;
      return { key, type, value: f.view().readInt16LE(i) };
    }
    case GgufValueType.UINT32:
      return { key, type, value: await f.u32() };
    case GgufValueType.INT32:
      return { key, type, value: await f.i32() };
    case GgufValueType.FLOAT32: {
      const i = await f.need(4);
      f.pos += 4;
      return { key, type, value: f.view().readFloatLE(i) };
    }
    case GgufValueType.FLOAT64: {
      const i = await f.need(8);
      f.pos += 8;
      return { key, type, value: f.view().readDoubleLE(i) };
    }
    case GgufValueType.BOOL: {
      const i = await f.need(1);
      f.pos += 1;
      return { key, type, value: f.view()[i] !== 0 };
    }
    case GgufValueType.STRING:
      return { key, type, value: await readString(f, path, where) };
    case GgufValueType.UINT64:
      return { key, type, value: await f.u64() };
    case GgufValueType.INT64:
      return { key, type, value: await f.i64() };
    case GgufValueType.ARRAY:
      return readArray(f, path, where, key);
    default:
      throw invalid(path, `key "${key}" has invalid value type ${type}`);
  }
}

async function readArray(f: ChunkedFile, path: string, where: Where, key: string): Promise<GgufKv> {
  const elemType = await f.i32();
  const count = await f.u64();
  if (!isGgufValueType(elemType) || elemType === GgufValueType.ARRAY) {
    throw invalid(path, `array "${key}" has invalid element type ${ggufValueTypeName(elemType)}`);
  }
  if (count > BigInt(GGUF_MAX_ARRAY_ELEMENTS)) throw invalid(path, `array "${key}" claims ${count} elements`);
  const n = Number(count);
  const elemSize = elemType === GgufValueType.STRING ? 8 : GGUF_VALUE_TYPE_SIZE[elemType];
  if (n * elemSize > f.remaining) {
    throw new EndOfFile(f.pos + n * elemSize);
  }

  if (elemType === GgufValueType.STRING) {
    const out: string[] = new Array(n);
    for (let j = 0; j < n; j++) {
      // Fast path: length and bytes already buffered.
      if (f.hasBuffered(8)) {
        const buf = f.view();
        const i = f.index();
        const l = buf.readUInt32LE(i);
        if (buf.readUInt32LE(i + 4) === 0 && l <= GGUF_MAX_STRING_LENGTH) {
          if (f.hasBuffered(8 + l)) {
            out[j] = buf.toString('utf8', i + 8, i + 8 + l);
            f.pos += 8 + l;
            continue;
          }
        }
      }
      where.what = `element ${j} of "${key}"`;
      out[j] = await readString(f, path, where);
    }
    return { key, type: GgufValueType.ARRAY, arrayType: elemType, value: out };
  }

  const raw = await f.bytes(n * elemSize);
  const ab = raw.buffer;
  switch (elemType) {
    case GgufValueType.UINT8:
      return { key, type: 9, arrayType: elemType, value: raw };
    case GgufValueType.INT8:
      return { key, type: 9, arrayType: elemType, value: new Int8Array(ab) };
    case GgufValueType.UINT16:
      return { key, type: 9, arrayType: elemType, value: new Uint16Array(ab) };
    case GgufValueType.INT16:
      return { key, type: 9, arrayType: elemType, value: new Int16Array(ab) };
    case GgufValueType.UINT32:
      return { key, type: 9, arrayType: elemType, value: new Uint32Array(ab) };
    case GgufValueType.INT32:
      return { key, type: 9, arrayType: elemType, value: new Int32Array(ab) };
    case GgufValueType.FLOAT32:
      return { key, type: 9, arrayType: elemType, value: new Float32Array(ab) };
    case GgufValueType.FLOAT64:
      return { key, type: 9, arrayType: elemType, value: new Float64Array(ab) };
    case GgufValueType.UINT64:
      return { key, type: 9, arrayType: elemType, value: new BigUint64Array(ab) };
    case GgufValueType.INT64:
      return { key, type: 9, arrayType: elemType, value: new BigInt64Array(ab) };
    case GgufValueType.BOOL:
    default: {
      const out: boolean[] = new Array(n);
      for (let j = 0; j < n; j++) out[j] = raw[j] !== 0;
      return { key, type: 9, arrayType: GgufValueType.BOOL, value: out };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Typed access to metadata

/** A string value, or undefined when absent or not a string. */
export function metaString(info: GgufInfo, key: string): string | undefined {
  const e = info.metadata.get(key);
  return e && e.type === GgufValueType.STRING ? e.value : undefined;
}

/** A numeric scalar (any integer or float type, u64/i64 converted), or undefined. */
export function metaNumber(info: GgufInfo, key: string): number | undefined {
  const e = info.metadata.get(key);
  if (!e || e.type === GgufValueType.ARRAY || e.type === GgufValueType.STRING) return undefined;
  if (e.type === GgufValueType.BOOL) return undefined;
  return typeof e.value === 'bigint' ? Number(e.value) : e.value;
}

export function metaBool(info: GgufInfo, key: string): boolean | undefined {
  const e = info.metadata.get(key);
  return e && e.type === GgufValueType.BOOL ? e.value : undefined;
}

/** An array value's elements, or undefined when absent or not an array. */
export function metaArray(info: GgufInfo, key: string): ArrayLike<number | bigint | boolean | string> | undefined {
  const e = info.metadata.get(key);
  return e && e.type === GgufValueType.ARRAY ? e.value : undefined;
}

/** Number of elements of an array value (e.g. the vocabulary size from tokenizer.ggml.tokens). */
export function metaArrayLength(info: GgufInfo, key: string): number | undefined {
  return metaArray(info, key)?.length;
}

export function findTensor(info: GgufInfo, name: string): GgufTensorInfo | undefined {
  for (const t of info.tensors) if (t.name === name) return t;
  return undefined;
}
