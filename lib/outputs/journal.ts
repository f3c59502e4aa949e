/**
 * `OUT/triplets.jsonl`, the journal: one JSON line per input image, appended as work completes and
 * made durable per batch (write, then fdatasync). A run started again on the same folder reads it
 * first to know which images are done, so nothing is processed twice and nothing is lost. A last line
 * cut short by a kill is truncated away; lines are never rewritten while a run appends (selection
 * rewrites the whole file atomically at the end to fill in `kept`, see finalize.ts).
 */
import { writeSync } from 'node:fs';
import { open, stat, truncate, type FileHandle } from 'node:fs/promises';
import { SrfError } from '../errors.js';
import type { DataType } from '../srf/data-types.js';
import type { QaParseFailure } from '../srf/parse.js';
import type { Truncation } from '../srf/truncation.js';
import { readLines } from '../util/files.js';

export const JOURNAL_FILE = 'triplets.jsonl';

export type LineStatus = 'scored' | 'rejected' | 'error';

/** One line of triplets.jsonl. */
export interface TripletLine {
  id: string;
  /** Relative to the run's image root, `/`-separated. */
  image: string;
  /** scored: a full triplet with scores; rejected: the I->QA reply gave no (Q, A); error: the image or the engine failed. */
  status: LineStatus;
  question?: string;
  answer?: string;
  questionPrime?: string;
  answerPrime?: string;
  /** A'' of a letter-choice Q asked again with its options rotated by one (the refined filter only). */
  answerRotated?: string;
  /** The answer to that Q's stem asked without its options (the refined filter only). */
  answerOpen?: string;
  /** --confidence: mean token log-probability of A given (I, Q), and of Q given (I, A). */
  logProbA?: number;
  logProbQ?: number;
  /** --samples K: Q answered K times more, sampled (triangle.ts SAMPLED_REANSWER). */
  answerSamples?: string[];
  /** --samples K: the mean answer-side similarity of those samples to A (score.ts answerAgreement). */
  agreement?: number;
  /**
   * S itself, when the filter ranks by a product: `score` is then S x exp(mean of logProbA and
   * logProbQ) (refined-confidence) or S x agreement (refined-agreement); the floor reads this.
   */
  consistency?: number;
  type?: DataType;
  simQ?: number;
  simA?: number;
  score?: number;
  /** False when a text similarity came from the lexical fallback (not the paper's measure). */
  paperFaithful?: boolean;
  /** Filled in by selection at the end of a run (and by `select`); absent while the run is going. */
  kept?: boolean;
  /**
   * A bound stopped the I->QA reply (the token budget, or the grammar's longest answer line): the answer
   * was cut back to its last full sentence, `removedChars` shorter than generated.
   */
  truncated?: Truncation;
  /** status 'rejected': why the I->QA reply gave no triplet. */
  rejected?: QaParseFailure;
  /** status 'rejected': the I->QA reply as generated (first 1000 characters). */
  raw?: string;
  /** status 'error'. */
  error?: { code: string; message: string };
  /** SRF round (0-based). */
  round: number;
  /** A tar shard sample's `.json` and `.txt` siblings (img2dataset's caption, url, ...), as read. */
  metadata?: Record<string, unknown>;
  /** Seed of the I->QA sampling. */
  seed?: number;
  /** Wall time spent on this image, ms. */
  ms?: number;
}

export function isTripletLine(value: unknown): value is TripletLine {
  if (typeof value !== 'object' || value === null) return false;
  const line = value as TripletLine;
  return typeof line.id === 'string' && line.id !== '' && typeof line.image === 'string' && ['scored', 'rejected', 'error'].includes(line.status);
}

/** A scored line with everything selection and the emitters need. */
export function isScoredLine(line: TripletLine): line is TripletLine & Required<Pick<TripletLine, 'question' | 'answer' | 'questionPrime' | 'answerPrime' | 'type' | 'simQ' | 'simA' | 'score'>> {
  return (
    line.status === 'scored' &&
    typeof line.question === 'string' &&
    typeof line.answer === 'string' &&
    typeof line.type === 'string' &&
    typeof line.score === 'number'
  );
}

export interface JournalReadOptions {
  /** Truncate an unreadable tail (the last line cut short by a kill) instead of only skipping it. */
  repair?: boolean;
  /** Called with what was dropped from the tail. */
  onRepair?: (message: string) => void;
}

/**
 * The lines of a journal, in order. An unreadable tail (a last line without newline, or bad lines
 * after the last good one, as a crash can leave) is skipped, and truncated with `repair`. A bad line
 * followed by good ones is DATA_INVALID: that is not a crash, somebody edited the file.
 */
export async function* readJournal(file: string, options: JournalReadOptions = {}): AsyncGenerator<TripletLine> {
  try {
    await stat(file);
  } catch {
    return;
  }
  let badFrom: { offset: number; lineNumber: number; text: string } | null = null;
  let lineNumber = 0;
  let end = 0;
  for await (const line of readLines(file)) {
    lineNumber++;
    let value: unknown;
    let ok = line.complete;
    if (ok) {
      try {
        value = JSON.parse(line.text);
        ok = isTripletLine(value);
      } catch {
        ok = false;
      }
    }
    if (!ok) {
      if (line.text.trim() === '' && line.complete && !badFrom) continue; // a blank line is harmless
      badFrom ??= { offset: line.start, lineNumber, text: line.text };
      continue;
    }
    if (badFrom) {
      throw new SrfError(
        'DATA_INVALID',
        `line ${badFrom.lineNumber} is not a triplet line (${JSON.stringify(badFrom.text.slice(0, 80))}) but good lines follow it; fix or remove that line`,
        { file },
      );
    }
    end = line.end + 1;
    yield value as TripletLine;
  }
  if (badFrom) {
    const dropped = `${JOURNAL_FILE}: dropped an incomplete last line (line ${badFrom.lineNumber}, ${JSON.stringify(badFrom.text.slice(0, 60))}), left by an interrupted run`;
    if (options.repair) await truncate(file, end);
    options.onRepair?.(dropped);
  }
}

export interface JournalOptions {
  /** Lines buffered before a write + fdatasync. Default 32. */
  batchLines?: number;
  /** Longest time a line waits in the buffer, ms. Default 250. */
  batchMs?: number;
  onRepair?: (message: string) => void;
  /** Sees every line already in the journal (to rebuild counts on resume). */
  onExisting?: (line: TripletLine) => void;
}

/** The journal of a run, opened for appending after reading (and repairing) what is there. */
export class Journal {
  readonly file: string;
  /** Ids in the journal when it was opened (not those appended since: the pipeline tracks its own). */
  readonly ids: ReadonlySet<string>;
  /** Lines found when the journal was opened. */
  readonly existing: number;
  #handle: FileHandle;
  #buffer: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();
  #failure: unknown;
  #batchLines: number;
  #batchMs: number;
  #closed = false;
  #appended = 0;

  private constructor(file: string, handle: FileHandle, ids: Set<string>, options: JournalOptions) {
    this.file = file;
    this.#handle = handle;
    this.ids = ids;
    this.existing = ids.size;
    this.#batchLines = options.batchLines ?? 32;
    this.#batchMs = options.batchMs ?? 250;
    process.on('exit', this.writeBufferedSync);
  }

  /**
   * Writes the buffered lines synchronously, whole: for when the process ends without running its
   * timers (process.exit() on a second Ctrl-C, llama.cpp aborting on a CUDA fault).
   */
  writeBufferedSync = (): void => {
    if (this.#closed || this.#buffer.length === 0) return;
    try {
      writeSync(this.#handle.fd, this.#buffer.join(''));
    } catch {
      // exiting anyway; the lines run again on resume
    }
    this.#buffer = [];
  };

  static async open(file: string, options: JournalOptions = {}): Promise<Journal> {
    const ids = new Set<string>();
    const readOptions: JournalReadOptions = { repair: true };
    if (options.onRepair) readOptions.onRepair = options.onRepair;
    for await (const line of readJournal(file, readOptions)) {
      if (ids.has(line.id)) throw new SrfError('DATA_INVALID', `id ${JSON.stringify(line.id)} appears twice in the journal`, { file });
      ids.add(line.id);
      options.onExisting?.(line);
    }
    return new Journal(file, await open(file, 'a'), ids, options);
  }

  /** Lines appended by this process. */
  get appended(): number {
    return this.#appended;
  }

  /** Queues one line; it is on disk after the next batch (at most batchMs later) or flush(). */
  append(line: TripletLine): void {
    if (this.#closed) throw new SrfError('CLOSED', 'the journal is closed', { file: this.file });
    if (this.#failure) throw this.#failure;
    this.#appended++;
    this.#buffer.push(`${JSON.stringify(line)}\n`);
    if (this.#buffer.length >= this.#batchLines) void this.flush().catch(() => {});
    else this.#timer ??= setTimeout(() => void this.flush().catch(() => {}), this.#batchMs);
  }

  /** Writes and syncs what is buffered. A batch is one write of whole lines. */
  flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#buffer.length > 0) {
      const text = this.#buffer.join('');
      this.#buffer = [];
      this.#writing = this.#writing.then(async () => {
        if (this.#failure) return;
        try {
          await this.#handle.write(text);
          await this.#handle.datasync();
        } catch (error) {
          this.#failure = new SrfError('WRITE_FAILED', `cannot write the journal: ${(error as Error).message}`, { file: this.file, cause: error });
        }
      });
    }
    return this.#writing.then(() => {
      if (this.#failure) throw this.#failure;
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.flush();
    } finally {
      this.#closed = true;
      process.off('exit', this.writeBufferedSync);
      await this.#handle.close();
    }
  }
}
