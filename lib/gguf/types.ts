/**
 * The in-memory shape of GGUF metadata and tensor descriptions, shared by the reader and the
 * writer. A key/value pair keeps its GGUF type, so a file read and written again is identical.
 */

/** Value types held as a JS number: u8 i8 u16 i16 u32 i32 f32 f64. */
export type GgufNumberType = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 12;
/** Value types held as a bigint: u64 i64. */
export type GgufBigIntType = 10 | 11;
export type GgufBoolType = 7;
export type GgufStringType = 8;
export type GgufArrayType = 9;
export type GgufElementType = GgufNumberType | GgufBigIntType | GgufBoolType | GgufStringType;

export type GgufScalarKv =
  | { key: string; type: GgufNumberType; value: number }
  | { key: string; type: GgufBigIntType; value: bigint }
  | { key: string; type: GgufBoolType; value: boolean }
  | { key: string; type: GgufStringType; value: string };

/**
 * Arrays. The reader returns typed arrays for numeric elements (Float32Array for f32,
 * BigInt64Array for i64, ...), `boolean[]` and `string[]` otherwise; the writer accepts any
 * ArrayLike of the right element kind. GGUF has no arrays of arrays.
 */
export type GgufArrayKv =
  | { key: string; type: GgufArrayType; arrayType: GgufNumberType; value: ArrayLike<number> }
  | { key: string; type: GgufArrayType; arrayType: GgufBigIntType; value: ArrayLike<bigint> }
  | { key: string; type: GgufArrayType; arrayType: GgufBoolType; value: ArrayLike<boolean> }
  | { key: string; type: GgufArrayType; arrayType: GgufStringType; value: ArrayLike<string> };

export type GgufKv = GgufScalarKv | GgufArrayKv;

/** A tensor's description from the file's tensor-info section. */
export interface GgufTensorInfo {
  name: string;
  /** ggml order: dims[0] is the contiguous (row) dimension. */
  dims: number[];
  /** ggml_type id (see GgmlType). */
  type: number;
  typeName: string;
  /** Offset of the data from the start of the data section. */
  offset: number;
  /** Bytes of data (unpadded). */
  bytes: number;
}

export interface GgufInfo {
  path: string;
  /** 2 or 3. */
  version: number;
  fileSize: number;
  alignment: number;
  /** Every key/value pair, in file order (Map keeps insertion order). */
  metadata: Map<string, GgufKv>;
  tensors: GgufTensorInfo[];
  /** Absolute file offset of the tensor data section. */
  dataOffset: number;
  /** Absolute file offset just past the last byte of tensor data (dataOffset when no tensors). */
  dataEnd: number;
  /** `general.architecture`, when present and a string. */
  architecture?: string;
}

/** Builders for metadata entries, so callers need not spell out type ids. */
export const kv = {
  u8: (key: string, value: number): GgufKv => ({ key, type: 0, value }),
  i8: (key: string, value: number): GgufKv => ({ key, type: 1, value }),
  u16: (key: string, value: number): GgufKv => ({ key, type: 2, value }),
  i16: (key: string, value: number): GgufKv => ({ key, type: 3, value }),
  u32: (key: string, value: number): GgufKv => ({ key, type: 4, value }),
  i32: (key: string, value: number): GgufKv => ({ key, type: 5, value }),
  f32: (key: string, value: number): GgufKv => ({ key, type: 6, value }),
  bool: (key: string, value: boolean): GgufKv => ({ key, type: 7, value }),
  str: (key: string, value: string): GgufKv => ({ key, type: 8, value }),
  u64: (key: string, value: bigint | number): GgufKv => ({ key, type: 10, value: BigInt(value) }),
  i64: (key: string, value: bigint | number): GgufKv => ({ key, type: 11, value: BigInt(value) }),
  f64: (key: string, value: number): GgufKv => ({ key, type: 12, value }),
  array: {
    u8: (key: string, value: ArrayLike<number>): GgufKv => ({ key, type: 9, arrayType: 0, value }),
    i8: (key: string, value: ArrayLike<number>): GgufKv => ({ key, type: 9, arrayType: 1, value }),
    u16: (key: string, value: ArrayLike<number>): GgufKv => ({ key, type: 9, arrayType: 2, value }),
    i16: (key: string, value: ArrayLike<number>): GgufKv => ({ key, type: 9, arrayType: 3, value }),
    u32: (key: string, value: ArrayLike<number>): GgufKv => ({ key, type: 9, arrayType: 4, value }),
    i32: (key: string, value: ArrayLike<number>): GgufKv => ({ key, type: 9, arrayType: 5, value }),
    f32: (key: string, value: ArrayLike<number>): GgufKv => ({ key, type: 9, arrayType: 6, value }),
    bool: (key: string, value: ArrayLike<boolean>): GgufKv => ({ key, type: 9, arrayType: 7, value }),
    str: (key: string, value: ArrayLike<string>): GgufKv => ({ key, type: 9, arrayType: 8, value }),
    u64: (key: string, value: ArrayLike<bigint>): GgufKv => ({ key, type: 9, arrayType: 10, value }),
    i64: (key: string, value: ArrayLike<bigint>): GgufKv => ({ key, type: 9, arrayType: 11, value }),
    f64: (key: string, value: ArrayLike<number>): GgufKv => ({ key, type: 9, arrayType: 12, value }),
  },
} as const;
