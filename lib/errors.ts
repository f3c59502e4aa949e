/**
 * The one error class of srf-native. Every failure a user can act on, whether found in TS or in
 * the native engine, arrives as an SrfError with a stable `code` and, where a file is involved,
 * the file's path in `file` and in the message.
 */
export const ERROR_CODES = [
  // arguments and options
  'INVALID_ARGUMENT',
  // model files
  'FILE_NOT_FOUND',
  'FILE_UNREADABLE',
  'NOT_GGUF',
  'GGUF_TRUNCATED',
  'GGUF_INVALID',
  'MODEL_ARCH_UNSUPPORTED',
  'MMPROJ_INVALID',
  'MMPROJ_MISMATCH',
  'LORA_INVALID',
  'MODEL_LOAD_FAILED',
  // images
  'IMAGE_EMPTY',
  'IMAGE_UNREADABLE',
  'IMAGE_TOO_LARGE',
  /** An image in a format the chosen training-data target does not take (e.g. GIF for OpenAI-style fine-tuning). */
  'IMAGE_FORMAT_UNSUPPORTED',
  // generation
  'GRAMMAR_INVALID',
  'CONTEXT_TOO_SMALL',
  'DECODE_FAILED',
  'IMAGE_ENCODE_FAILED',
  'ABORTED',
  'CLOSED',
  // one engine replica's device failed (out of memory, device lost); the others go on
  'DEVICE_FAILED',
  // --require-gpu / requireGpu / SRF_REQUIRE_GPU=1, and the work would run on the CPU
  'GPU_REQUIRED',
  // the addon itself
  'NATIVE_MISSING',
  'BUILD_FAILED',
  // pipeline data
  'DATA_INVALID',
  'OUTPUT_CONFLICT',
  // writing outputs (disk full, permissions)
  'WRITE_FAILED',
] as const;

export type SrfErrorCode = (typeof ERROR_CODES)[number];

export interface SrfErrorOptions {
  /** The file the problem is about, when there is one. */
  file?: string;
  cause?: unknown;
}

export class SrfError extends Error {
  readonly code: SrfErrorCode;
  readonly file?: string;

  constructor(code: SrfErrorCode, message: string, options: SrfErrorOptions = {}) {
    super(options.file && !message.includes(options.file) ? `${options.file}: ${message}` : message, {
      cause: options.cause,
    });
    this.name = 'SrfError';
    this.code = code;
    if (options.file !== undefined) this.file = options.file;
  }
}

export function isSrfError(value: unknown, code?: SrfErrorCode): value is SrfError {
  return value instanceof SrfError && (code === undefined || value.code === code);
}

/** sharp-style argument check: "Expected X for Y but received Z". */
export function invalidArgument(expected: string, name: string, received: unknown): SrfError {
  let shown: string;
  try {
    shown = typeof received === 'string' ? JSON.stringify(received) : String(received);
  } catch {
    shown = typeof received;
  }
  return new SrfError('INVALID_ARGUMENT', `Expected ${expected} for ${name} but received ${shown}`);
}
