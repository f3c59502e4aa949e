/**
 * A streaming GGUF v3 writer. Metadata of every GGUF value type; tensors of type F32 and F16
 * whose data is produced chunk by chunk by a callback, so a 13 GB model is written with two
 * 16 MiB buffers: one is being filled while the other is on its way to the disk.
 *
 * The file is written to `<path>.tmp` and renamed when complete, so a crash never leaves a
 * half-written file under the final name.
 */
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';

import { SrfError } from '../errors.js';
import {
  GGML_MAX_DIMS,
  GGML_MAX_NAME,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  GgmlType,
  GgufValueType,
  alignUp,
  ggmlTensorBytes,
  ggmlTypeName,
  ggufValueTypeName,
  isGgufValueType,
} from './constants.js';
import { f32ArrayToF16 } from './half.js';
import type { GgufKv, GgufTensorInfo } from './types.js';

export type WritableTensorType = typeof GgmlType.F32 | typeof GgmlType.F16;

/** What a tensor is, without its data. */
export interface GgufTensorShape {
  name: string;
  /** ggml order: dims[0] is the row (contiguous) dimension. 1 to 4 dimensions. */
  dims: readonly number[];
  type: WritableTensorType;
}

export interface GgufTensorSpec extends GgufTensorShape {
  /**
   * Writes elements [start, start + dst.length) of the tensor as float32 values. Called in order,
   * chunk after chunk, until the tensor is complete. For F16 tensors the values are converted
   * (round to nearest even). Omitted: the tensor is all zeros.
   */
  fill?: (dst: Float32Array, start: number) => void;
  /** F16 tensors only, preferred over `fill`: writes half-precision bit patterns directly. */
  fillF16?: (dst: Uint16Array, start: number) => void;
}

export interface GgufLayout {
  /** Bytes before the data section (header, metadata, tensor infos, padding). */
  dataOffset: number;
  alignment: number;
  tensors: GgufTensorInfo[];
  /** Total size of the file that will be (or was) written. */
  fileSize: number;
}

export interface WriteGgufOptions {
  /** Data alignment; default 32 (written as general.alignment when different). */
  alignment?: number;
  /** Size of each of the two output buffers; default 16 MiB. */
  bufferBytes?: number;
  /** Called after every buffer written to disk. */
  onProgress?: (bytesWritten: number, totalBytes: number) => void;
}

export interface WriteGgufResult extends GgufLayout {
  path: string;
}

function badInput(path: string | undefined, message: string): SrfError {
  return new SrfError('INVALID_ARGUMENT', `cannot write GGUF: ${message}`, path === undefined ? {} : { file: path });
}

const INT_RANGES: Partial<Record<number, [number, number]>> = {
  [GgufValueType.UINT8]: [0, 0xff],
  [GgufValueType.INT8]: [-0x80, 0x7f],
  [GgufValueType.UINT16]: [0, 0xffff],
  [GgufValueType.INT16]: [-0x8000, 0x7fff],
  [GgufValueType.UINT32]: [0, 0xffffffff],
  [GgufValueType.INT32]: [-0x80000000, 0x7fffffff],
};

function checkScalar(path: string | undefined, key: string, type: number, value: unknown): void {
  const range = INT_RANGES[type];
  if (range) {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < range[0] || value > range[1]) {
      throw badInput(path, `"${key}": ${String(value)} is not a valid ${ggufValueTypeName(type)}`);
    }
    return;
  }
  switch (type) {
    case GgufValueType.FLOAT32:
    case GgufValueType.FLOAT64:
      if (typeof value !== 'number') throw badInput(path, `"${key}": expected a number, got ${typeof value}`);
      return;
    case GgufValueType.UINT64:
    case GgufValueType.INT64: {
      const big = typeof value === 'bigint' ? value : typeof value === 'number' && Number.isInteger(value) ? BigInt(value) : undefined;
      const ok =
        big !== undefined &&
        (type === GgufValueType.UINT64 ? big >= 0n && big < 1n << 64n : big >= -(1n << 63n) && big < 1n << 63n);
      if (!ok) throw badInput(path, `"${key}": ${String(value)} is not a valid ${ggufValueTypeName(type)}`);
      return;
    }
    case GgufValueType.BOOL:
      if (typeof value !== 'boolean') throw badInput(path, `"${key}": expected a boolean, got ${typeof value}`);
      return;
    case GgufValueType.STRING:
      if (typeof value !== 'string') throw badInput(path, `"${key}": expected a string, got ${typeof value}`);
      return;
    default:
      throw badInput(path, `"${key}": invalid value type ${type}`);
  }
}

/** Bytes a value takes in the file (without its key and type tag). */
function valueBytes(path: string | undefined, e: GgufKv): number {
  if (e.type === GgufValueType.ARRAY) {
    const t: number = e.arrayType;
    if (!isGgufValueType(t) || t === GgufValueType.ARRAY) {
      throw badInput(path, `"${e.key}": invalid array element type ${String(t)}`);
    }
    let n = 4 + 8;
    const values = e.value as ArrayLike<unknown>;
    if (t === GgufValueType.STRING) {
      for (let i = 0; i < values.length; i++) {
        const s = values[i];
        if (typeof s !== 'string') throw badInput(path, `"${e.key}"[${i}]: expected a string`);
        n += 8 + Buffer.byteLength(s);
      }
      return n;
    }
    for (let i = 0; i < values.length; i++) checkScalar(path, `${e.key}[${i}]`, t, values[i]);
    return n + values.length * scalarSize(t);
  }
  checkScalar(path, e.key, e.type, e.value);
  return e.type === GgufValueType.STRING ? 8 + Buffer.byteLength(e.value) : scalarSize(e.type);
}

function scalarSize(type: number): number {
  switch (type) {
    case GgufValueType.UINT8:
    case GgufValueType.INT8:
    case GgufValueType.BOOL:
      return 1;
    case GgufValueType.UINT16:
    case GgufValueType.INT16:
      return 2;
    case GgufValueType.UINT32:
    case GgufValueType.INT32:
    case GgufValueType.FLOAT32:
      return 4;
    default:
      return 8;
  }
}

function writeScalar(buf: Buffer, at: number, type: number, value: unknown): number {
  switch (type) {
    case GgufValueType.UINT8:
      return buf.writeUInt8(value as number, at);
    case GgufValueType.INT8:
      return buf.writeInt8(value as number, at);
    case GgufValueType.UINT16:
      return buf.writeUInt16LE(value as number, at);
    case GgufValueType.INT16:
      return buf.writeInt16LE(value as number, at);
    case GgufValueType.UINT32:
      return buf.writeUInt32LE(value as number, at);
    case GgufValueType.INT32:
      return buf.writeInt32LE(value as number, at);
    case GgufValueType.FLOAT32:
      return buf.writeFloatLE(value as number, at);
    case GgufValueType.FLOAT64:
      return buf.writeDoubleLE(value as number, at);
    case GgufValueType.BOOL:
      return buf.writeUInt8(value ? 1 : 0, at);
    case GgufValueType.UINT64:
      return buf.writeBigUInt64LE(BigInt(value as bigint | number), at);
    case GgufValueType.INT64:
      return buf.writeBigInt64LE(BigInt(value as bigint | number), at);
    case GgufValueType.STRING: {
      const s = value as string;
      const len = buf.write(s, at + 8, 'utf8');
      buf.writeBigUInt64LE(BigInt(len), at);
      return at + 8 + len;
    }
    default:
      throw new RangeError(`invalid value type ${type}`);
  }
}

interface Prepared {
  metadata: GgufKv[];
  alignment: number;
  header: { bytes: number; kvBytes: number[] };
  layout: GgufLayout;
}

function prepare(
  path: string | undefined,
  metadataIn: readonly GgufKv[],
  tensors: readonly GgufTensorShape[],
  alignmentOpt: number | undefined,
): Prepared {
  const metadata = [...metadataIn];
  const keys = new Set<string>();
  for (const e of metadata) {
    if (typeof e.key !== 'string' || e.key.length === 0) throw badInput(path, 'empty metadata key');
    if (keys.has(e.key)) throw badInput(path, `duplicate metadata key "${e.key}"`);
    keys.add(e.key);
  }
  let alignment = alignmentOpt ?? GGUF_DEFAULT_ALIGNMENT;
  const alignKv = metadata.find((e) => e.key === 'general.alignment');
  if (alignKv) {
    if (alignKv.type !== GgufValueType.UINT32) throw badInput(path, 'general.alignment must be a u32');
    if (alignmentOpt !== undefined && alignKv.value !== alignmentOpt) {
      throw badInput(path, `general.alignment (${alignKv.value}) differs from the alignment option (${alignmentOpt})`);
    }
    alignment = alignKv.value as number;
  } else if (alignment !== GGUF_DEFAULT_ALIGNMENT) {
    metadata.push({ key: 'general.alignment', type: GgufValueType.UINT32, value: alignment });
  }
  if (!Number.isInteger(alignment) || alignment < 8 || (alignment & (alignment - 1)) !== 0) {
    throw badInput(path, `alignment ${alignment} must be a power of 2 and at least 8`);
  }

  let bytes = 4 + 4 + 8 + 8;
  const kvBytes: number[] = [];
  for (const e of metadata) {
    const v = valueBytes(path, e);
    kvBytes.push(v);
    bytes += 8 + Buffer.byteLength(e.key) + 4 + v;
  }

  const names = new Set<string>();
  const infos: GgufTensorInfo[] = [];
  let offset = 0;
  for (const t of tensors) {
    const nameBytes = Buffer.byteLength(t.name);
    if (nameBytes === 0 || nameBytes >= GGML_MAX_NAME) {
      throw badInput(path, `tensor name "${t.name}" must have 1 to ${GGML_MAX_NAME - 1} bytes`);
    }
    if (names.has(t.name)) throw badInput(path, `duplicate tensor name "${t.name}"`);
    names.add(t.name);
    if (t.dims.length < 1 || t.dims.length > GGML_MAX_DIMS || !t.dims.every((d) => Number.isSafeInteger(d) && d > 0)) {
      throw badInput(path, `tensor "${t.name}" has invalid dimensions [${t.dims.join(', ')}]`);
    }
    if (t.type !== GgmlType.F32 && t.type !== GgmlType.F16) {
      throw badInput(path, `tensor "${t.name}": only F32 and F16 can be written, not ${ggmlTypeName(t.type)}`);
    }
    const size = ggmlTensorBytes(t.type, t.dims);
    infos.push({ name: t.name, dims: [...t.dims], type: t.type, typeName: ggmlTypeName(t.type), offset, bytes: size });
    offset += alignUp(size, alignment);
    bytes += 8 + nameBytes + 4 + 8 * t.dims.length + 4 + 8;
  }
  const dataOffset = infos.length > 0 ? alignUp(bytes, alignment) : bytes;
  return {
    metadata,
    alignment,
    header: { bytes, kvBytes },
    layout: { dataOffset, alignment, tensors: infos, fileSize: dataOffset + offset },
  };
}

/** The layout a file with this metadata and these tensors would have, without writing it. */
export function planGguf(
  metadata: readonly GgufKv[],
  tensors: readonly GgufTensorShape[],
  options: { alignment?: number } = {},
): GgufLayout {
  return prepare(undefined, metadata, tensors, options.alignment).layout;
}

function encodeHeader(p: Prepared): Buffer {
  const buf = Buffer.alloc(p.layout.dataOffset);
  let at = 0;
  at = buf.writeUInt32LE(GGUF_MAGIC, at);
  at = buf.writeUInt32LE(GGUF_VERSION, at);
  at = buf.writeBigInt64LE(BigInt(p.layout.tensors.length), at);
  at = buf.writeBigInt64LE(BigInt(p.metadata.length), at);
  for (const e of p.metadata) {
    at = writeScalar(buf, at, GgufValueType.STRING, e.key);
    at = buf.writeInt32LE(e.type, at);
    if (e.type === GgufValueType.ARRAY) {
      at = buf.writeInt32LE(e.arrayType, at);
      const values = e.value as ArrayLike<unknown>;
      at = buf.writeBigUInt64LE(BigInt(values.length), at);
      for (let i = 0; i < values.length; i++) at = writeScalar(buf, at, e.arrayType, values[i]);
    } else {
      at = writeScalar(buf, at, e.type, e.value);
    }
  }
  for (const t of p.layout.tensors) {
    at = writeScalar(buf, at, GgufValueType.STRING, t.name);
    at = buf.writeUInt32LE(t.dims.length, at);
    for (const d of t.dims) at = buf.writeBigInt64LE(BigInt(d), at);
    at = buf.writeInt32LE(t.type, at);
    at = buf.writeBigUInt64LE(BigInt(t.offset), at);
  }
  if (at !== p.header.bytes) throw new Error(`internal error: header size ${at} != planned ${p.header.bytes}`);
  return buf; // the rest up to dataOffset is zero padding
}

/**
 * Double-buffered sequential output: while one buffer is written by the thread pool, the other
 * is filled on the JS thread.
 */
class BufferedOutput {
  private readonly buffers: Buffer[];
  private current = 0;
  /** Fill position in the current buffer. */
  pos = 0;
  private filePos = 0;
  private pending: Promise<unknown> | undefined;
  private readonly fh: FileHandle;
  private readonly onFlushed: (filePos: number) => void;

  constructor(fh: FileHandle, size: number, onFlushed: (filePos: number) => void) {
    this.fh = fh;
    this.onFlushed = onFlushed;
    // Fresh ArrayBuffers: byteOffset 0, so typed-array views at aligned positions are legal.
    this.buffers = [Buffer.from(new ArrayBuffer(size)), Buffer.from(new ArrayBuffer(size))];
  }

  get buffer(): Buffer {
    return this.buffers[this.current]!;
  }

  get size(): number {
    return this.buffer.length;
  }

  async flush(): Promise<void> {
    if (this.pending) await this.pending;
    this.pending = undefined;
    if (this.pos === 0) return;
    const buf = this.buffer;
    const len = this.pos;
    const at = this.filePos;
    this.filePos += len;
    this.pending = writeAll(this.fh, buf, len, at).then(() => this.onFlushed(at + len));
    this.current ^= 1;
    this.pos = 0;
  }

  async writeBytes(src: Uint8Array): Promise<void> {
    let done = 0;
    while (done < src.length) {
      const n = Math.min(src.length - done, this.size - this.pos);
      this.buffer.set(src.subarray(done, done + n), this.pos);
      this.pos += n;
      done += n;
      if (this.pos === this.size) await this.flush();
    }
  }

  async zeros(n: number): Promise<void> {
    while (n > 0) {
      const k = Math.min(n, this.size - this.pos);
      this.buffer.fill(0, this.pos, this.pos + k);
      this.pos += k;
      n -= k;
      if (this.pos === this.size) await this.flush();
    }
  }

  async finish(): Promise<void> {
    await this.flush();
    if (this.pending) await this.pending;
    this.pending = undefined;
  }
}

async function writeAll(fh: FileHandle, buf: Buffer, len: number, position: number): Promise<void> {
  let done = 0;
  while (done < len) {
    const { bytesWritten } = await fh.write(buf, done, len - done, position + done);
    done += bytesWritten;
  }
}

async function writeTensorData(out: BufferedOutput, spec: GgufTensorSpec, info: GgufTensorInfo, scratch: { f32?: Float32Array }): Promise<void> {
  const elemSize = spec.type === GgmlType.F16 ? 2 : 4;
  const total = info.bytes / elemSize;
  let start = 0;
  while (start < total) {
    const room = Math.floor((out.size - out.pos) / elemSize);
    const n = Math.min(total - start, room);
    const byteOffset = out.buffer.byteOffset + out.pos;
    if (spec.type === GgmlType.F32) {
      const dst = new Float32Array(out.buffer.buffer, byteOffset, n);
      if (spec.fill) spec.fill(dst, start);
      else dst.fill(0);
    } else {
      const dst = new Uint16Array(out.buffer.buffer, byteOffset, n);
      if (spec.fillF16) {
        spec.fillF16(dst, start);
      } else if (spec.fill) {
        if (!scratch.f32 || scratch.f32.length < n) scratch.f32 = new Float32Array(Math.max(n, 1 << 16));
        const tmp = scratch.f32.subarray(0, n);
        spec.fill(tmp, start);
        f32ArrayToF16(tmp, dst);
      } else {
        dst.fill(0);
      }
    }
    out.pos += n * elemSize;
    start += n;
    if (out.pos >= out.size - (elemSize - 1)) await out.flush();
  }
}

/**
 * Write a GGUF v3 file. Tensor data comes from each spec's fill callback, in file order.
 * Resolves once `path` holds the complete file.
 */
export async function writeGguf(
  path: string,
  metadata: readonly GgufKv[],
  tensors: readonly GgufTensorSpec[],
  options: WriteGgufOptions = {},
): Promise<WriteGgufResult> {
  const prepared = prepare(path, metadata, tensors, options.alignment);
  const { layout } = prepared;
  for (const t of tensors) {
    if (t.fillF16 && t.type !== GgmlType.F16) throw badInput(path, `tensor "${t.name}": fillF16 needs type F16`);
  }
  let bufferBytes = options.bufferBytes ?? 16 << 20;
  bufferBytes = Math.max(alignUp(bufferBytes, prepared.alignment), prepared.alignment);
  const header = encodeHeader(prepared);

  const tmp = `${path}.tmp`;
  let fh: FileHandle;
  try {
    fh = await open(tmp, 'w');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SrfError('FILE_UNREADABLE', `cannot create ${tmp} (${code ?? String(err)})`, { file: path, cause: err });
  }
  let ok = false;
  try {
    const out = new BufferedOutput(fh, bufferBytes, (written) => options.onProgress?.(written, layout.fileSize));
    await out.writeBytes(header);
    const scratch: { f32?: Float32Array } = {};
    for (let i = 0; i < tensors.length; i++) {
      const spec = tensors[i]!;
      const info = layout.tensors[i]!;
      await writeTensorData(out, spec, info, scratch);
      await out.zeros(alignUp(info.bytes, layout.alignment) - info.bytes);
    }
    await out.finish();
    await fh.close();
    await rename(tmp, path);
    ok = true;
  } catch (err) {
    if (err instanceof SrfError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new SrfError('FILE_UNREADABLE', `writing failed (${code ?? String(err)})`, { file: path, cause: err });
  } finally {
    if (!ok) {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
    }
  }
  return { path, ...layout };
}
