/**
 * `OUT/shards-done.txt`: the tar or parquet shards a run has finished (every sample read and journaled), one name a
 * line, so that a resume skips them without reading them again (a million-image run resumes in
 * seconds, not in the time it takes to read its finished tars). A tar counts as finished when the
 * input has moved past it and the last of its samples in flight has its journal line; one cut short
 * is finished with its error line. Only ever appended to.
 */
import { appendFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { SrfError } from '../errors.js';

export const SHARDS_DONE_FILE = 'shards-done.txt';

export class ShardsDone {
  readonly file: string;
  /** Finished in an earlier session (read when opened). */
  readonly before: ReadonlySet<string>;
  #inFlight = new Map<string, number>();
  #reading: string | undefined;
  #readPast = new Set<string>();
  readonly #journaledFirst: () => Promise<void>;

  private constructor(file: string, before: Set<string>, journaledFirst: () => Promise<void>) {
    this.file = file;
    this.before = before;
    this.#journaledFirst = journaledFirst;
  }

  /**
   * `journaledFirst` makes the journal's buffered lines durable: a shard is recorded only after its
   * lines are on disk, so a kill between the two never skips a sample on resume.
   */
  static async open(out: string, journaledFirst: () => Promise<void>): Promise<ShardsDone> {
    const file = path.join(out, SHARDS_DONE_FILE);
    const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw new SrfError('FILE_UNREADABLE', `cannot read the finished shards' record: ${error.message}`, { file, cause: error });
    });
    return new ShardsDone(file, new Set(text.split('\n').filter(Boolean)), journaledFirst);
  }

  /** The input yielded a sample of `tar` (whether it runs now or was journaled before). */
  async read(tar: string): Promise<void> {
    if (this.#reading === tar) return;
    const previous = this.#reading;
    this.#reading = tar;
    if (previous !== undefined) await this.#readPastTar(previous);
  }

  /** A sample of `tar` is being worked on. */
  started(tar: string): void {
    this.#inFlight.set(tar, (this.#inFlight.get(tar) ?? 0) + 1);
  }

  /** A sample of `tar` has its journal line. */
  async journaled(tar: string): Promise<void> {
    const left = (this.#inFlight.get(tar) ?? 1) - 1;
    if (left > 0) this.#inFlight.set(tar, left);
    else this.#inFlight.delete(tar);
    if (left <= 0 && this.#readPast.has(tar)) await this.#finish(tar);
  }

  /** The input ended on its own (not stopped, not limited): the tar being read is read too. */
  async inputEnded(): Promise<void> {
    if (this.#reading !== undefined) await this.#readPastTar(this.#reading);
    this.#reading = undefined;
  }

  async #readPastTar(tar: string): Promise<void> {
    this.#readPast.add(tar);
    if (!this.#inFlight.has(tar)) await this.#finish(tar);
  }

  async #finish(tar: string): Promise<void> {
    this.#readPast.delete(tar);
    if (this.before.has(tar)) return;
    await this.#journaledFirst();
    try {
      await appendFile(this.file, `${tar}\n`);
    } catch (error) {
      throw new SrfError('WRITE_FAILED', `cannot record a finished shard: ${(error as Error).message}`, { file: this.file, cause: error });
    }
  }
}
