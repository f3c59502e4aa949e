/**
 * GGUF and ggml constants, as defined by llama.cpp's ggml/include/gguf.h, ggml/include/ggml.h,
 * ggml/src/ggml.c (type traits) and ggml/src/ggml-common.h (block layouts).
 *
 * Plain `as const` objects instead of TS enums, so the files also run under type stripping.
 */

/** 'GGUF' read as a little-endian uint32. */
export const GGUF_MAGIC = 0x46554747;
/** Newest GGUF version llama.cpp writes and reads; v2 is still read, v1 is rejected. */
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** Tensor names must be shorter than this (ggml's GGML_MAX_NAME, including the NUL). */
export const GGML_MAX_NAME = 64;
export const GGML_MAX_DIMS = 4;
/** gguf.cpp refuses longer strings and arrays; so do we. */
export const GGUF_MAX_STRING_LENGTH = 1024 * 1024 * 1024;
export const GGUF_MAX_ARRAY_ELEMENTS = 1024 * 1024 * 1024;

/** Metadata value types (enum gguf_type). */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type GgufValueType = (typeof GgufValueType)[keyof typeof GgufValueType];

const VALUE_TYPE_NAMES: Record<GgufValueType, string> = {
  0: 'u8',
  1: 'i8',
  2: 'u16',
  3: 'i16',
  4: 'u32',
  5: 'i32',
  6: 'f32',
  7: 'bool',
  8: 'str',
  9: 'arr',
  10: 'u64',
  11: 'i64',
  12: 'f64',
};

/** Byte size of a fixed-size value type; 0 for STRING and ARRAY. */
export const GGUF_VALUE_TYPE_SIZE: Record<GgufValueType, number> = {
  0: 1,
  1: 1,
  2: 2,
  3: 2,
  4: 4,
  5: 4,
  6: 4,
  7: 1,
  8: 0,
  9: 0,
  10: 8,
  11: 8,
  12: 8,
};

export function isGgufValueType(value: number): value is GgufValueType {
  return Number.isInteger(value) && value >= 0 && value <= 12;
}

export function ggufValueTypeName(type: number): string {
  return isGgufValueType(type) ? VALUE_TYPE_NAMES[type] : `unknown(${type})`;
}

/** Tensor types (enum ggml_type). Removed ids (4, 5, 31-33, 36-38) are absent. */
export const GgmlType = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  IQ2_XXS: 16,
  IQ2_XS: 17,
  IQ3_XXS: 18,
  IQ1_S: 19,
  IQ4_NL: 20,
  IQ3_S: 21,
  IQ2_S: 22,
  IQ4_XS: 23,
  I8: 24,
  I16: 25,
  I32: 26,
  I64: 27,
  F64: 28,
  IQ1_M: 29,
  BF16: 30,
  TQ1_0: 34,
  TQ2_0: 35,
  MXFP4: 39,
  NVFP4: 40,
  Q1_0: 41,
  Q2_0: 42,
} as const;
export type GgmlType = (typeof GgmlType)[keyof typeof GgmlType];

export interface GgmlTypeTraits {
  readonly name: string;
  /** Elements per block. */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly typeSize: number;
}

const QK_K = 256;
const HALF = 2;

/**
 * Block sizes and byte sizes per block, from the static_asserts in ggml-common.h and the
 * type_traits table in ggml.c (llama.cpp 0.4.0). Exact for every type, IQ* included.
 */
const TRAITS: Record<number, GgmlTypeTraits> = {
  0: { name: 'F32', blockSize: 1, typeSize: 4 },
  1: { name: 'F16', blockSize: 1, typeSize: 2 },
  2: { name: 'Q4_0', blockSize: 32, typeSize: HALF + 16 },
  3: { name: 'Q4_1', blockSize: 32, typeSize: 2 * HALF + 16 },
  6: { name: 'Q5_0', blockSize: 32, typeSize: HALF + 4 + 16 },
  7: { name: 'Q5_1', blockSize: 32, typeSize: 2 * HALF + 4 + 16 },
  8: { name: 'Q8_0', blockSize: 32, typeSize: HALF + 32 },
  9: { name: 'Q8_1', blockSize: 32, typeSize: 2 * HALF + 32 },
  10: { name: 'Q2_K', blockSize: QK_K, typeSize: 2 * HALF + QK_K / 16 + QK_K / 4 },
  11: { name: 'Q3_K', blockSize: QK_K, typeSize: HALF + QK_K / 4 + QK_K / 8 + 12 },
  12: { name: 'Q4_K', blockSize: QK_K, typeSize: 2 * HALF + 12 + QK_K / 2 },
  13: { name: 'Q5_K', blockSize: QK_K, typeSize: 2 * HALF + 12 + QK_K / 2 + QK_K / 8 },
  14: { name: 'Q6_K', blockSize: QK_K, typeSize: HALF + QK_K / 16 + (3 * QK_K) / 4 },
  15: { name: 'Q8_K', blockSize: QK_K, typeSize: 4 + QK_K + (QK_K / 16) * 2 },
  16: { name: 'IQ2_XXS', blockSize: QK_K, typeSize: HALF + (QK_K / 8) * 2 },
  17: { name: 'IQ2_XS', blockSize: QK_K, typeSize: HALF + (QK_K / 8) * 2 + QK_K / 32 },
  18: { name: 'IQ3_XXS', blockSize: QK_K, typeSize: HALF + 3 * (QK_K / 8) },
  19: { name: 'IQ1_S', blockSize: QK_K, typeSize: HALF + QK_K / 8 + QK_K / 16 },
  20: { name: 'IQ4_NL', blockSize: 32, typeSize: HALF + 16 },
  21: { name: 'IQ3_S', blockSize: QK_K, typeSize: HALF + 13 * (QK_K / 32) + QK_K / 64 },
  22: { name: 'IQ2_S', blockSize: QK_K, typeSize: HALF + QK_K / 4 + QK_K / 16 },
  23: { name: 'IQ4_XS', blockSize: QK_K, typeSize: HALF + 2 + QK_K / 64 + QK_K / 2 },
  24: { name: 'I8', blockSize: 1, typeSize: 1 },
  25: { name: 'I16', blockSize: 1, typeSize: 2 },
  26: { name: 'I32', blockSize: 1, typeSize: 4 },
  27: { name: 'I64', blockSize: 1, typeSize: 8 },
  28: { name: 'F64', blockSize: 1, typeSize: 8 },
  29: { name: 'IQ1_M', blockSize: QK_K, typeSize: QK_K / 8 + QK_K / 16 + QK_K / 32 },
  30: { name: 'BF16', blockSize: 1, typeSize: 2 },
  34: { name: 'TQ1_0', blockSize: QK_K, typeSize: HALF + QK_K / 64 + (QK_K - (4 * QK_K) / 64) / 5 },
  35: { name: 'TQ2_0', blockSize: QK_K, typeSize: HALF + QK_K / 4 },
  39: { name: 'MXFP4', blockSize: 32, typeSize: 1 + 16 },
  40: { name: 'NVFP4', blockSize: 64, typeSize: 64 / 16 + 32 },
  41: { name: 'Q1_0', blockSize: 128, typeSize: HALF + 128 / 8 },
  42: { name: 'Q2_0', blockSize: 64, typeSize: HALF + 64 / 4 },
};

/** Traits of a ggml type, or undefined for ids llama.cpp does not (or no longer) know. */
export function ggmlTypeTraits(type: number): GgmlTypeTraits | undefined {
  return TRAITS[type];
}

export function ggmlTypeName(type: number): string {
  return TRAITS[type]?.name ?? `unknown(${type})`;
}

/**
 * Bytes a tensor of this type and shape occupies (ggml_nbytes for a contiguous tensor).
 * Throws a RangeError when the first dimension is not a multiple of the block size or the type
 * is unknown; callers turn that into an SrfError naming the file.
 */
export function ggmlTensorBytes(type: number, dims: readonly number[]): number {
  const traits = TRAITS[type];
  if (!traits) throw new RangeError(`unknown ggml type ${type}`);
  let elements = 1;
  for (const d of dims) elements *= d;
  if (elements === 0) return 0;
  const ne0 = dims[0] ?? 1;
  if (ne0 % traits.blockSize !== 0) {
    throw new RangeError(
      `${traits.name} rows need a multiple of ${traits.blockSize} elements, got ${ne0}`,
    );
  }
  return (elements / traits.blockSize) * traits.typeSize;
}

/** llama_ftype values llama.cpp writes as general.file_type (the ones fixtures use). */
export const LlamaFileType = {
  ALL_F32: 0,
  MOSTLY_F16: 1,
  MOSTLY_Q4_0: 2,
  MOSTLY_Q8_0: 7,
  MOSTLY_Q4_K_M: 15,
} as const;

/** llama_token_type values used in tokenizer.ggml.token_type. */
export const TokenType = {
  UNDEFINED: 0,
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

/** llama_pooling_type values stored as `<arch>.pooling_type`. */
export const PoolingType = {
  NONE: 0,
  MEAN: 1,
  CLS: 2,
  LAST: 3,
  RANK: 4,
} as const;

export function alignUp(value: number, alignment: number): number {
  const rem = value % alignment;
  return rem === 0 ? value : value + alignment - rem;
}
