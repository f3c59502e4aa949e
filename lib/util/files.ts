/**
 * File plumbing of the pipeline: reading big files piece by piece (lines with their byte offsets, the
 * elements of a JSON list) and writing files so that readers only ever see a complete one.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { SrfError } from '../errors.js';

const CHUNK = 1 << 20;

/** Whether a path relative to a folder (path.relative's result) leaves it, or is the folder itself: what no image path in training data may be. */
export function leavesFolder(relative: string): boolean {
  return relative === '' || relative === '.' || relative === '..' || relative.startsWith(`..${path.sep}`) || path.isAbsolute(relative);
}

export interface FileLine {
  /** The line without its newline, decoded as UTF-8. */
  text: string;
  /** Byte offset of the line's first byte. */
  start: number;
  /** Byte offset just past the line's text (where its newline is, when it has one). */
  end: number;
  /** False for a last line with no newline after it (e.g. cut short by a kill). */
  complete: boolean;
}

/** The lines of a file, with byte offsets; the last one may be incomplete. */
export async function* readLines(file: string): AsyncGenerator<FileLine> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.allocUnsafe(CHUNK);
    let carry: Buffer[] = [];
    let carryLength = 0;
    let position = 0;
    let lineStart = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, CHUNK, position);
      if (bytesRead === 0) break;
      let from = 0;
      for (;;) {
        const newline = buffer.indexOf(10, from);
        if (newline < 0 || newline >= bytesRead) break;
        const piece = buffer.subarray(from, newline);
        const bytes = carryLength > 0 ? Buffer.concat([...carry, piece]) : piece;
        yield { text: bytes.toString('utf8'), start: lineStart, end: position + newline, complete: true };
        carry = [];
        carryLength = 0;
        lineStart = position + newline + 1;
        from = newline + 1;
      }
      if (from < bytesRead) {
        carry.push(Buffer.from(buffer.subarray(from, bytesRead)));
        carryLength += bytesRead - from;
      }
      position += bytesRead;
    }
    if (carryLength > 0) yield { text: Buffer.concat(carry).toString('utf8'), start: lineStart, end: position, complete: false };
  } finally {
    await handle.close();
  }
}

const enum Byte {
  Quote = 0x22,
  Backslash = 0x5c,
  Comma = 0x2c,
  OpenBrace = 0x7b,
  CloseBrace = 0x7d,
  OpenBracket = 0x5b,
  CloseBracket = 0x5d,
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * The elements of a file holding one JSON list, one at a time, without reading the file into one
 * string (V8 strings stop at 512 MB; llava_v1_5_mix665k.json is about 1 GB). Each element is parsed
 * with JSON.parse on its own bytes.
 */
export async function* readJsonArray(file: string): AsyncGenerator<unknown> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new SrfError(code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE', `cannot open (${code})`, { file, cause });
  }
  const fail = (message: string) => new SrfError('DATA_INVALID', `not a JSON list: ${message}`, { file });
  try {
    const buffer = Buffer.allocUnsafe(CHUNK);
    let position = 0;
    let state: 'start' | 'inside' | 'done' = 'start';
    let depth = 0;
    let inString = false;
    let escaped = false;
    let parts: Buffer[] = [];
    let elementStart = -1;
    let index = 0;
    let first = true;
    const finishElement = function* (chunk: Buffer, end: number): Generator<unknown> {
      if (elementStart >= 0) parts.push(Buffer.from(chunk.subarray(elementStart, end)));
      elementStart = -1;
      const text = Buffer.concat(parts).toString('utf8').trim();
      parts = [];
      if (text === '') return;
      try {
        yield JSON.parse(text);
      } catch (cause) {
        throw fail(`element ${index}: ${(cause as Error).message}`);
      }
      index++;
    };
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, CHUNK, position);
      if (bytesRead === 0) break;
      let i = 0;
      if (first) {
        first = false;
        if (buffer[0] === 0xef && buffer[1] === 0xbb && buffer[2] === 0xbf) i = 3; // BOM
      }
      for (; i < bytesRead; i++) {
        const c = buffer[i] as number;
        if (state === 'start') {
          if (isSpace(c)) continue;
          if (c !== Byte.OpenBracket) throw fail('it does not start with [');
          state = 'inside';
          continue;
        }
        if (state === 'done') {
          if (!isSpace(c)) throw fail(`text after the closing ] at byte ${position + i}`);
          continue;
        }
        if (inString) {
          if (escaped) escaped = false;
          else if (c === Byte.Backslash) escaped = true;
          else if (c === Byte.Quote) inString = false;
          continue;
        }
        if (depth === 0 && (c === Byte.Comma || c === Byte.CloseBracket)) {
          yield* finishElement(buffer, i);
          if (c === Byte.CloseBracket) state = 'done';
          continue;
        }
        if (elementStart < 0 && depth === 0) {
          if (isSpace(c)) continue;
          elementStart = i;
        }
        if (c === Byte.Quote) inString = true;
        else if (c === Byte.OpenBrace || c === Byte.OpenBracket) depth++;
        else if (c === Byte.CloseBrace || c === Byte.CloseBracket) depth--;
      }
      if (elementStart >= 0) {
        parts.push(Buffer.from(buffer.subarray(elementStart, bytesRead)));
        elementStart = 0;
      }
      position += bytesRead;
    }
    if (state !== 'done') throw fail(state === 'start' ? 'the file is empty' : 'it ends before the closing ]');
  } finally {
    await handle.close();
  }
}

/**
 * Writes `value` as JSON to `file` through a temporary file in the same folder and a rename, so the
 * file is always either the old or the new complete document.
 */
export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}

export async function writeFileAtomic(file: string, text: string | Uint8Array, mode?: number): Promise<void> {
  try {
    await writeFileAtomicUnchecked(file, text, mode);
  } catch (error) {
    if (error instanceof SrfError) throw error;
    throw new SrfError('WRITE_FAILED', `cannot write: ${(error as Error).message}`, { file, cause: error });
  }
}

async function writeFileAtomicUnchecked(file: string, text: string | Uint8Array, mode?: number): Promise<void> {
  const atomic = await openAtomicFile(file, { mode });
  try {
    await atomic.handle.writeFile(text);
  } catch (error) {
    await atomic.discard();
    throw error;
  }
  await atomic.commit();
}

/** A file being written in place of another: nothing appears at `file` until commit(). */
export interface AtomicFile {
  /** Where the bytes go until commit(). */
  readonly tmp: string;
  readonly handle: FileHandle;
  /** Syncs (unless opened with sync: false), closes and renames the temporary over `file`; on failure removes it and rejects. */
  commit(): Promise<void>;
  /** Closes and removes the temporary; `file` is left as it was. */
  discard(): Promise<void>;
}

export interface AtomicFileOptions {
  /** The temporary's path, in `file`'s folder (a rename does not cross file systems). Default: a hidden name unique to this process. */
  tmp?: string;
  mode?: number;
  /** fdatasync before the rename, so a power cut leaves the old file or the whole new one. Default true. */
  sync?: boolean;
}

/**
 * Opens a temporary beside `file` for writing: the one way srf-native replaces a file, so that a
 * crash, a full disk or a kill leaves either the old file or the complete new one, never half.
 */
export async function openAtomicFile(file: string, options: AtomicFileOptions = {}): Promise<AtomicFile> {
  const tmp = options.tmp ?? path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(tmp, 'w', options.mode);
  const discard = async (): Promise<void> => {
    await handle.close().catch(() => {});
    await rm(tmp, { force: true });
  };
  const commit = async (): Promise<void> => {
    try {
      if (options.sync ?? true) await handle.datasync();
      await handle.close();
      await rename(tmp, file);
    } catch (error) {
      await discard();
      throw error;
    }
  };
  return { tmp, handle, commit, discard };
}
