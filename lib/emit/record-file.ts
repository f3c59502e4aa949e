/**
 * Writes records to a file as they come, either as one JSON list or as JSON lines. The data goes to
 * `<path>.tmp` and is renamed into place on close, so a reader never sees half a list: the file
 * exists only once it is complete.
 */
import { stat } from 'node:fs/promises';
import { SrfError, invalidArgument } from '../errors.js';
import { openAtomicFile, type AtomicFile } from '../util/files.js';

export type RecordFileLayout = 'json-array' | 'jsonl';

export interface RecordFileOptions {
  /** Replace an existing file at `path` (on close). Default false: OUTPUT_CONFLICT at open. */
  overwrite?: boolean;
}

/** Buffered bytes before a write to disk. */
const FLUSH_AT = 1 << 20;

export class RecordFileWriter {
  readonly path: string;
  readonly layout: RecordFileLayout;
  readonly #file: AtomicFile;
  #chunks: string[] = [];
  #buffered = 0;
  #count = 0;
  /** Disk writes run one after another, in order, whatever the caller awaits. */
  #writing: Promise<void> = Promise.resolve();
  #state: 'open' | 'closing' | 'closed' = 'open';

  private constructor(filePath: string, layout: RecordFileLayout, file: AtomicFile) {
    this.path = filePath;
    this.layout = layout;
    this.#file = file;
  }

  static async open(filePath: string, layout: RecordFileLayout, options: RecordFileOptions = {}): Promise<RecordFileWriter> {
    if (typeof filePath !== 'string' || filePath === '') throw invalidArgument('a file path', 'path', filePath);
    if (layout !== 'json-array' && layout !== 'jsonl') throw invalidArgument('json-array or jsonl', 'layout', layout);
    if (!options.overwrite && (await exists(filePath))) {
      throw new SrfError('OUTPUT_CONFLICT', 'the output file exists; pass overwrite to replace it', { file: filePath });
    }
    // errors.ts has no code for a failed write; Node's own error (ENOENT, EACCES, ENOSPC) names the path.
    return new RecordFileWriter(filePath, layout, await openAtomicFile(filePath, { tmp: `${filePath}.tmp` }));
  }

  get count(): number {
    return this.#count;
  }

  /** Adds one record. Resolves when it is buffered, or written when the buffer was full. */
  write(record: unknown): Promise<void> {
    if (this.#state !== 'open') return Promise.reject(new SrfError('CLOSED', `${this.path} is already closed`, { file: this.path }));
    const json = JSON.stringify(record);
    if (json === undefined) return Promise.reject(invalidArgument('a JSON value', 'record', record));
    const text = this.layout === 'jsonl' ? `${json}\n` : `${this.#count === 0 ? '[\n' : ',\n'}${json}`;
    this.#count++;
    this.#chunks.push(text);
    this.#buffered += text.length;
    return this.#buffered >= FLUSH_AT ? this.#flush() : Promise.resolve();
  }

  #flush(): Promise<void> {
    const text = this.#chunks.join('');
    this.#chunks = [];
    this.#buffered = 0;
    if (text !== '') this.#writing = this.#writing.then(() => this.#file.handle.write(text).then(() => undefined));
    return this.#writing;
  }

  /** Finishes the file and moves it into place. */
  async close(): Promise<{ path: string; count: number }> {
    if (this.#state !== 'open') throw new SrfError('CLOSED', `${this.path} is already closed`, { file: this.path });
    this.#state = 'closing';
    if (this.layout === 'json-array') this.#chunks.push(this.#count === 0 ? '[]\n' : '\n]\n');
    try {
      await this.#flush();
    } catch (error) {
      await this.#discard();
      throw error;
    }
    this.#state = 'closed';
    await this.#file.commit();
    return { path: this.path, count: this.#count };
  }

  /** Drops what was written; no file appears at `path`. */
  async abort(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closing';
    await this.#discard();
  }

  async #discard(): Promise<void> {
    this.#state = 'closed';
    await this.#writing.catch(() => {});
    await this.#file.discard();
  }
}

async function exists(filePath: string): Promise<boolean> {
  try {
    await stat(filePath);
    return true;
  } catch {
    return false;
  }
}
