/**
 * `refine(options)`: the self-refinement pipeline of SRF-METHOD.md step 2 over a stream of unlabeled
 * images, as a library call. Follow one image:
 *
 *   inputs.ts      the image is found (folder / glob / list), given a stable id, maybe sharded away
 *   journal.ts     skipped when its id is already in OUT/triplets.jsonl (resume)
 *   here           prepared once (sharp), then I->QA (sampled, per-image seed, reply grammar),
 *                  parsed (lib/srf/parse.ts; unparsable -> a rejected line), then IA->Q and IQ->A
 *                  issued together so the engine batches them on the cached image prefix,
 *                  scored (lib/srf/score.ts) and appended to the journal
 *   finalize.ts    after the last image: per-type selection, training data, train-lora.sh, report
 *
 * Many images are in flight at once (about twice the engine's parallel sequences) so that batches
 * stay full; memory is bounded by that number. A bad image is an error line and the run goes on; a bad
 * model file is one SrfError before any work starts.
 */
import { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ERROR_CODES, SrfError, invalidArgument, isSrfError, type SrfErrorCode } from '../errors.js';
import { EMIT_FORMATS, isEmitFormat, type EmitFormat } from '../emit/emitters.js';
import type { OpenAiImages } from '../emit/openai.js';
import { checkEmbedderFile, checkLoraFile, checkVisionModelFiles, type VisionModelFileInfo } from '../gguf/check.js';
import { defaultDevices, resolveDevices, type DeviceSpec } from '../engine/devices.js';
import { defaultParallel, kvSizing } from '../engine/sizing.js';
import { VisionModel } from '../vision-model.js';
import { buildInfo, type EngineStats } from '../engine/native.js';
import { checkFraction, checkSeed } from '../srf/check.js';
import { DATA_TYPES, type DataType } from '../srf/data-types.js';
import {
  DEFAULT_DECODING,
  qaReplyGrammar,
  resolveGrammarBounds,
  templateStrings,
  templatesFromStrings,
  type PromptTemplateStrings,
  type PromptTemplates,
  type QaReplyGrammarOptions,
  type TaskName,
} from '../srf/prompts.js';
import { scoreTriplet, type TripletScore } from '../srf/score.js';
import { quotaFor } from '../srf/select.js';
import { imageSeed, runTriangle, type TriangleResult, type TriangleSettings } from '../srf/triangle.js';
import type { LoraAdapterOptions, KvLayout, OpenVisionModelOptions, PreparedImage, ReplicaStats, SamplingOptions } from '../engine/types.js';
import { countLine, emptyCounts, finalizeOutputs } from './finalize.js';
import { IMAGE_EXTENSIONS, countInputs, formatShard, resolveInputSource, streamInputs, type InputImage, type InputSource, type Shard } from './inputs.js';
import { JOURNAL_FILE, Journal, isScoredLine, type TripletLine } from './journal.js';
import { acquireOutputLock } from './lock.js';
import {
  MANIFEST_FORMAT,
  fingerprintFile,
  describeDifference,
  identityDifferences,
  identityHash,
  readManifest,
  writeManifest,
  type FileFingerprint,
  type OutputsRecord,
  type RunCounts,
  type RunManifest,
  type SelectionRecord,
} from './manifest.js';
import { openScorer, type Scorer } from './scoring.js';
import { resolveShard, shardOutputFolder } from './shard-env.js';
import { toolVersion } from './version.js';

export interface RefineOptions {
  /** Text model GGUF (LLaVA-1.5's language model). */
  model: string;
  /** mmproj GGUF. */
  mmproj: string;
  /** LoRA adapters (the step-1 multi-task generator usually is one). */
  loras?: LoraAdapterOptions[];
  /** A folder (walked recursively), a glob, a list file (one path per line) or one image. */
  images: string;
  /** Image paths in the outputs are relative to this folder. Default: the folder, the glob's fixed folder, the list's folder. */
  imageRoot?: string;
  /** Output folder; a run started again on it resumes. */
  out: string;
  /** Sentence-embedding GGUF for the cosines; without it scores use the lexical fallback (not the paper's). */
  embedder?: string;
  /** Encoder GGUF for BERTScore. Default: the embedder. */
  bertscoreModel?: string;
  /** Fraction kept per data type. Default 0.2. */
  keepTop?: number;
  /** Resample the kept set to the type mix of this LLaVA JSON (or JSON object of type weights). */
  matchMix?: string;
  /** Extra output formats (LLaVA is always written). */
  formats?: EmitFormat[];
  /** Original instruction data: also write train.merged.llava.json (original + kept). */
  mergeWith?: string;
  /** Folder the original data's images are relative to (default: lib/run/image-folder.ts's rule). */
  mergeImageFolder?: string;
  /** How train.openai.jsonl references images (default base64 data URLs). */
  openaiImages?: OpenAiImages;
  /** SRF round, recorded in every line, kept record and run.json. Default 0. */
  round?: number;
  /** Base seed; image i samples with (seed + its stable key) mod 2^32. Default 0. */
  seed?: number;
  /** Only the first N images (after sharding). */
  limit?: number;
  /**
   * `I/N`: only the images whose path hashes to I mod N, written to `out/shard-I-of-N/` (join them with
   * mergeShards). `auto` / `auto/N`: I and N from a Slurm array or Kubernetes Indexed Job (shard-env.ts).
   */
  shard?: Shard | string;
  /** Sequences the engine decodes together. Default 8; on a GPU sized by its memory (VisionModel.open's parallel). */
  parallel?: number;
  contextSize?: number;
  /** KV cache layout (VisionModel.open's kvLayout). Default 'auto'. */
  kvLayout?: KvLayout | 'auto';
  /** Layers on the GPU (-1 all, 0 none). Default all when a GPU is present. */
  gpuLayers?: number;
  /**
   * One engine replica per device, fed from the same image stream (VisionModel.open's devices):
   * 'all', GPU numbers, 'cpu' (repeatable), '0,1', or 'split' (one engine over all GPUs). Default: every GPU when there are several, else
   * one engine. parallel, prefixCache and contextSize are per replica; inFlight is for all of them.
   */
  devices?: 'all' | 'split' | DeviceSpec[] | string;
  gpuVision?: boolean;
  /** Image prefixes kept evaluated in the KV cache. Default: inFlight, so each image is encoded once. */
  prefixCache?: number;
  threads?: number;
  /** Engine settings passed to VisionModel.open as they are (benchmarks: the same settings as the engine alone). */
  engine?: Pick<OpenVisionModelOptions, 'batchSize' | 'flashAttention' | 'samplingThreads'>;
  /**
   * Pass the triplet's own question and answer as drafts to the greedy IA->Q and IQ->A calls
   * (GenerateRequest.draft): the same replies, in fewer decode steps when they agree. Default true.
   */
  drafts?: boolean;
  /** Images in flight. Default 2 x parallel. */
  inFlight?: number;
  /**
   * Hold the I->QA reply to `Question:/Answer:` with a grammar (lib/srf/prompts.ts qaReplyGrammar).
   * Default true; false: no grammar; a string: this GBNF grammar instead (root rule `root`).
   */
  grammar?: boolean | string;
  /** Bounds of the default grammar (qaReplyGrammar options). */
  grammarBounds?: QaReplyGrammarOptions;
  /**
   * An I->QA reply a bound stopped (the token budget, or the grammar's longest answer line): 'cut'
   * (default) cuts its answer back to the last full sentence and rejects it as 'truncated' when none is
   * left; 'keep' keeps the answer as it stopped. Both mark it `truncated` in triplets.jsonl. 'keep' is
   * for answers meant to be cut at the budget, and for benchmarks whose random-weight models never end
   * a reply.
   */
  truncatedAnswers?: 'cut' | 'keep';
  /** Instruction wording overrides (`{A}` / `{Q}` placeholders). */
  templates?: PromptTemplateStrings;
  /** Decoding overrides per task (temperature, topP, maxTokens); seeds are set per image. */
  decoding?: Partial<Record<TaskName, Omit<SamplingOptions, 'seed' | 'grammar'>>>;
  /** Write report.html. Default true. */
  report?: boolean;
  /** Count the inputs in the background for the progress ETA. Default true. */
  countTotal?: boolean;
  /** Abandons in-flight images (they are not journaled and run again on resume), then writes the outputs. */
  signal?: AbortSignal;
  onProgress?: (progress: RefineProgress) => void;
  onLog?: (entry: RefineLog) => void;
  /** Progress event period. Default 1000 ms. */
  progressIntervalMs?: number;
  /** The command line, recorded in run.json. */
  command?: string[];
}

export type RefinePhase = 'starting' | 'generating' | 'finalizing' | 'done';

export interface RefineProgress {
  phase: RefinePhase;
  /** Lines in the journal (all sessions). */
  done: number;
  /** Lines that were there when this session started. */
  resumed: number;
  /** Images finished in this session. */
  processed: number;
  /** Inputs after shard and limit, once counted; null until then. */
  total: number | null;
  inFlight: number;
  scored: number;
  rejected: number;
  errors: number;
  /** Kept by per-type selection if the run ended now (exact for the top fraction, before --match-mix). */
  keptEstimate: number;
  /** keptEstimate / done; null before the first line. */
  keepRate: number | null;
  /** This session's images per second. */
  imagesPerSecond: number;
  etaSeconds: number | null;
  elapsedSeconds: number;
}

export interface RefineLog {
  level: 'info' | 'warn';
  message: string;
}

export interface RefineSummary {
  status: 'complete' | 'interrupted';
  out: string;
  counts: RunCounts;
  selection: SelectionRecord;
  /** File names inside `out`. */
  outputs: OutputsRecord;
  resumed: number;
  processed: number;
  /** Input entries skipped because their id came twice (a list naming a file twice). */
  duplicates: number;
  paperFaithful: boolean;
  seconds: { total: number; generation: number; finalize: number };
  imagesPerSecond: number;
  manifest: RunManifest;
}

interface ResolvedOptions {
  out: string;
  keepTop: number;
  seed: number;
  round: number;
  limit: number | undefined;
  shard: Shard | undefined;
  /** Where the shard came from, for the log. */
  shardFound: string | undefined;
  /** Set from the device once the model files are read, when the caller left them out. */
  parallel: number;
  inFlight: number;
  formats: EmitFormat[];
  templates: PromptTemplates;
  sampling: Record<TaskName, SamplingOptions>;
  grammar: string | undefined;
  /** The default grammar's longest answer line: a reply that reaches it was stopped by the grammar. */
  answerLineBound: number | undefined;
  truncatedAnswers: 'cut' | 'keep';
}

function positiveInteger(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw invalidArgument('a positive integer', name, value);
  return value;
}

function nonNegativeInteger(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw invalidArgument('a non-negative integer', name, value);
  return value;
}

function resolveOptions(options: RefineOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw invalidArgument('an options object', 'options', options);
  for (const key of ['model', 'mmproj', 'images', 'out'] as const) {
    if (typeof options[key] !== 'string' || options[key] === '') throw invalidArgument('a path', key, options[key]);
  }
  const parallel = options.parallel === undefined ? 8 : positiveInteger(options.parallel, 'parallel');
  const formats = options.formats ?? [];
  for (const format of formats) if (!isEmitFormat(format)) throw invalidArgument(`one of ${EMIT_FORMATS.join(', ')}`, 'formats', format);
  if (options.grammar !== undefined && typeof options.grammar !== 'boolean' && (typeof options.grammar !== 'string' || options.grammar.trim() === '')) {
    throw invalidArgument('true, false or a GBNF grammar', 'grammar', options.grammar);
  }
  const grammar = options.grammar === false ? undefined : typeof options.grammar === 'string' ? options.grammar : qaReplyGrammar(options.grammarBounds ?? {});
  const sampling = {} as Record<TaskName, SamplingOptions>;
  for (const task of ['iToQa', 'iaToQ', 'iqToA'] as const) {
    const merged: SamplingOptions = { ...DEFAULT_DECODING[task], ...options.decoding?.[task] };
    delete merged.grammar;
    delete merged.seed;
    sampling[task] = merged;
  }
  const shard = options.shard === undefined ? undefined : resolveShard(options.shard);
  const truncatedAnswers = options.truncatedAnswers ?? 'cut';
  if (truncatedAnswers !== 'cut' && truncatedAnswers !== 'keep') throw invalidArgument("'cut' or 'keep'", 'truncatedAnswers', options.truncatedAnswers);
  return {
    out: shard ? shardOutputFolder(path.resolve(options.out), shard.shard) : path.resolve(options.out),
    keepTop: checkFraction(options.keepTop ?? 0.2, 'keepTop'),
    seed: checkSeed(options.seed ?? 0, 'seed'),
    round: nonNegativeInteger(options.round ?? 0, 'round'),
    limit: options.limit === undefined ? undefined : nonNegativeInteger(options.limit, 'limit'),
    shard: shard?.shard,
    shardFound: shard?.found,
    parallel,
    inFlight: options.inFlight === undefined ? 2 * parallel : positiveInteger(options.inFlight, 'inFlight'),
    formats,
    templates: templatesFromStrings(options.templates ?? {}),
    sampling,
    grammar,
    answerLineBound: options.grammar === false || typeof options.grammar === 'string' ? undefined : resolveGrammarBounds(options.grammarBounds ?? {}).maxAnswerChars,
    truncatedAnswers,
  };
}

/** The run's templates, decoding (the reply grammar on I->QA) and truncation rule, as the triangle takes them. */
function triangleSettings(r: ResolvedOptions, drafts: boolean): TriangleSettings {
  return {
    templates: r.templates,
    sampling: { ...r.sampling, iToQa: { ...r.sampling.iToQa, ...(r.grammar ? { grammar: r.grammar } : {}) } },
    drafts,
    truncatedAnswers: r.truncatedAnswers,
    answerLineBound: r.answerLineBound,
  };
}

/** Failures of the engine rather than of one image's file. */
function isEngineFailure(code: string | undefined): boolean {
  if (code === undefined) return false;
  if (code === 'IMAGE_ENCODE_FAILED') return true; // the mmproj failed, not the file
  return !code.startsWith('IMAGE_') && !['FILE_NOT_FOUND', 'FILE_UNREADABLE', 'INVALID_ARGUMENT'].includes(code);
}

/** A bounded hand-over from the pipeline to an async iterator. */
class ResultChannel<T> {
  #items: T[] = [];
  #capacity: number;
  #closed = false;
  #error: unknown;
  #detached = false;
  #readers: (() => void)[] = [];
  #writers: (() => void)[] = [];

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  async push(item: T): Promise<void> {
    if (this.#detached) return;
    this.#items.push(item);
    this.#wake(this.#readers);
    while (this.#items.length > this.#capacity && !this.#detached) await new Promise<void>((resolve) => this.#writers.push(resolve));
  }

  close(error?: unknown): void {
    this.#closed = true;
    this.#error = error;
    this.#wake(this.#readers);
  }

  /** The reader went away: drop items from now on. */
  detach(): void {
    this.#detached = true;
    this.#items = [];
    this.#wake(this.#writers);
  }

  async next(): Promise<IteratorResult<T>> {
    for (;;) {
      if (this.#items.length > 0) {
        const value = this.#items.shift() as T;
        this.#wake(this.#writers);
        return { done: false, value };
      }
      if (this.#closed) {
        if (this.#error) throw this.#error;
        return { done: true, value: undefined };
      }
      await new Promise<void>((resolve) => this.#readers.push(resolve));
    }
  }

  #wake(list: (() => void)[]): void {
    for (const resolve of list.splice(0)) resolve();
  }
}

/** What step 1 of a run found: the inputs, the model files' metadata and their fingerprints. */
interface RunSetup {
  source: InputSource;
  files: VisionModelFileInfo;
  models: RunModels;
}

interface RunModels {
  model: FileFingerprint;
  mmproj: FileFingerprint;
  loras: (FileFingerprint & { scale: number })[];
  embedder: FileFingerprint | null;
  bertscoreModel: FileFingerprint | null;
}

/** The settings that decide what a run generates: a folder resumes only a run with the same hash. */
interface RunIdentity {
  hash: string;
  values: Record<string, unknown>;
}

interface GenerationResult {
  duplicates: number;
  exhausted: boolean;
  seconds: number;
}

function runIdentity(r: ResolvedOptions, models: RunModels, imageRoot: string): RunIdentity {
  const values: Record<string, unknown> = {
    model: models.model.sha256,
    mmproj: models.mmproj.sha256,
    loras: models.loras.map((l) => ({ sha256: l.sha256, scale: l.scale })),
    sentenceModel: models.embedder?.sha256 ?? null,
    bertscoreModel: models.bertscoreModel?.sha256 ?? null,
    seed: r.seed,
    grammar: r.grammar ?? null,
    templates: templateStrings(r.templates),
    decoding: r.sampling,
    round: r.round,
    imageRoot,
    // only when not the default, so that runs made before the option existed still resume
    ...(r.truncatedAnswers === 'keep' ? { truncatedAnswers: r.truncatedAnswers } : {}),
  };
  return { hash: identityHash(values), values };
}

/**
 * A running refinement. Events: 'progress' (RefineProgress), 'log' (RefineLog), 'result' (TripletLine,
 * each journaled line). Iterate it for the lines as they complete (ask for the iterator right away: lines
 * completed before that are not replayed); `result` resolves after the outputs are written.
 */
/** The events of a RefineRun and what each listener receives. */
export interface RefineEvents {
  progress: [progress: RefineProgress];
  log: [entry: RefineLog];
  result: [line: TripletLine];
}

/**
 * EventEmitter's listener methods, typed by RefineEvents. Declared here rather than inherited in the
 * published types, so that a TypeScript project compiles against srf-native without @types/node.
 */
export interface RefineEmitter {
  on<E extends keyof RefineEvents>(event: E, listener: (...args: RefineEvents[E]) => void): this;
  once<E extends keyof RefineEvents>(event: E, listener: (...args: RefineEvents[E]) => void): this;
  off<E extends keyof RefineEvents>(event: E, listener: (...args: RefineEvents[E]) => void): this;
  addListener<E extends keyof RefineEvents>(event: E, listener: (...args: RefineEvents[E]) => void): this;
  removeListener<E extends keyof RefineEvents>(event: E, listener: (...args: RefineEvents[E]) => void): this;
  removeAllListeners(event?: keyof RefineEvents): this;
  listenerCount(event: keyof RefineEvents): number;
  emit<E extends keyof RefineEvents>(event: E, ...args: RefineEvents[E]): boolean;
}

const RefineEmitterBase = EventEmitter as unknown as new () => RefineEmitter;

export class RefineRun extends RefineEmitterBase implements AsyncIterable<TripletLine> {
  readonly result: Promise<RefineSummary>;
  #options: RefineOptions;
  #resolved: ResolvedOptions;
  #abort = new AbortController();
  #stopping = false;
  #channel: ResultChannel<TripletLine> | undefined;
  #phase: RefinePhase = 'starting';
  #counts: RunCounts = emptyCounts();
  #nonZeroByType = Object.fromEntries(DATA_TYPES.map((t) => [t, 0])) as Record<DataType, number>;
  #resumed = 0;
  #processed = 0;
  #inFlight = 0;
  #total: number | null = null;
  #generationStarted = 0;
  #journal: Journal | undefined;
  #settled: { error: unknown } | undefined;
  readonly #triangle: TriangleSettings;

  constructor(options: RefineOptions) {
    super();
    this.#options = options;
    this.#resolved = resolveOptions(options);
    this.#triangle = triangleSettings(this.#resolved, options.drafts ?? true);
    if (options.signal) {
      if (options.signal.aborted) this.cancel();
      else options.signal.addEventListener('abort', () => this.cancel(), { once: true });
    }
    // Start on the next tick, so listeners and the iterator can be attached first.
    this.result = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#main());
    this.result.then(
      () => {
        this.#settled = { error: undefined };
        this.#channel?.close();
      },
      (error) => {
        this.#settled = { error };
        this.#channel?.close(error);
      },
    );
  }

  /** Stops taking new images; images in flight finish and are journaled; then the outputs are written. */
  stop(): void {
    this.#stopping = true;
  }

  /** Stops taking new images and abandons those in flight (they run again on resume); then the outputs are written. */
  cancel(): void {
    this.#stopping = true;
    this.#abort.abort();
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  [Symbol.asyncIterator](): AsyncIterator<TripletLine> {
    if (this.#channel) throw new SrfError('INVALID_ARGUMENT', 'a RefineRun can be iterated once');
    const channel = new ResultChannel<TripletLine>(Math.max(64, this.#resolved.inFlight * 2));
    this.#channel = channel;
    if (this.#settled) channel.close(this.#settled.error);
    return {
      next: () => channel.next(),
      return: async () => {
        channel.detach();
        this.cancel();
        await this.result.catch(() => {});
        return { done: true, value: undefined };
      },
    };
  }

  /** Runs to the end without iterating; resolves with the summary. */
  complete(): Promise<RefineSummary> {
    return this.result;
  }

  progress(): RefineProgress {
    const elapsed = this.#generationStarted ? (Date.now() - this.#generationStarted) / 1000 : 0;
    const rate = elapsed > 0 ? this.#processed / elapsed : 0;
    const done = this.#counts.images;
    let keptEstimate = 0;
    for (const type of DATA_TYPES) {
      const total = this.#counts.byType[type].total;
      keptEstimate += Math.min(this.#nonZeroByType[type], quotaFor(this.#resolved.keepTop, total, 'ceil'));
    }
    const remaining = this.#total === null ? null : Math.max(0, this.#total - done);
    return {
      phase: this.#phase,
      done,
      resumed: this.#resumed,
      processed: this.#processed,
      total: this.#total,
      inFlight: this.#inFlight,
      scored: this.#counts.scored,
      rejected: this.#counts.rejected,
      errors: this.#counts.errors,
      keptEstimate,
      keepRate: done > 0 ? keptEstimate / done : null,
      imagesPerSecond: rate,
      etaSeconds: remaining === null ? null : remaining === 0 ? 0 : rate > 0 ? remaining / rate : null,
      elapsedSeconds: elapsed,
    };
  }

  #log(level: RefineLog['level'], message: string): void {
    const entry = { level, message };
    this.emit('log', entry);
    this.#options.onLog?.(entry);
  }

  #emitProgress(): void {
    const progress = this.progress();
    this.emit('progress', progress);
    this.#options.onProgress?.(progress);
  }

  #count(line: TripletLine): void {
    countLine(this.#counts, line);
    if (isScoredLine(line) && line.score > 0 && this.#nonZeroByType[line.type] !== undefined) this.#nonZeroByType[line.type]++;
  }

  /**
   * The run, step by step: check the setup (nothing is generated before everything that can be wrong
   * with it has failed), open the journal (a resume must match the run's identity), open the scorer
   * and the engine, write run.json, generate, then select and write the outputs. Whatever fails,
   * run.json says so and the journal, engines and lock are released.
   */
  async #main(): Promise<RefineSummary> {
    const started = Date.now();
    const out = this.#resolved.out;
    await mkdir(out, { recursive: true });
    const lock = await acquireOutputLock(out, (this.#options.command ?? []).join(' '));
    let manifest: RunManifest | undefined;
    let model: VisionModel | undefined;
    let scorer: Scorer | undefined;
    try {
      if (this.#resolved.shardFound) this.#log('info', `${this.#resolved.shardFound}; writing to ${out}`);
      const setup = await this.#checkSetup();
      const identity = runIdentity(this.#resolved, setup.models, setup.source.imageRoot);
      const { journal, previous } = await this.#openJournal(identity);
      scorer = await openScorer({ embedder: this.#options.embedder, bertscoreModel: this.#options.bertscoreModel, gpuLayers: this.#options.gpuLayers, threads: this.#options.threads });
      if (!scorer.record.paperFaithful) this.#log('warn', scorer.record.warning as string);
      const engine = await this.#openEngine(setup.files);
      model = engine.model;
      manifest = this.#startManifest({ started, setup, identity, previous, scorer, model });
      await writeManifest(out, manifest);

      const generated = await this.#generateAll(setup.source, model, scorer, journal);
      await journal.close();
      const engineStats = model.stats();
      const replicaStats = engine.replicas > 1 ? model.replicaStats() : undefined;
      await model.close();
      model = undefined;
      await scorer.close();
      scorer = undefined;

      return await this.#finish({ started, imageRoot: setup.source.imageRoot, previous, manifest, generated, engineStats, replicaStats });
    } catch (error) {
      if (manifest) {
        manifest.status = 'failed';
        manifest.error = { code: isSrfError(error) ? error.code : 'UNEXPECTED', message: (error as Error)?.message ?? String(error) };
        manifest.counts = this.#counts;
        await writeManifest(out, manifest).catch(() => {});
      }
      throw error;
    } finally {
      await this.#journal?.close().catch(() => {});
      await model?.close().catch(() => {});
      await scorer?.close().catch(() => {});
      await lock.release();
    }
  }

  /** Step 1: the inputs and every model file are checked, then fingerprinted for run.json. */
  async #checkSetup(): Promise<RunSetup> {
    const o = this.#options;
    const source = await resolveInputSource(o.images, o.imageRoot === undefined ? {} : { imageRoot: o.imageRoot });
    const files = await checkVisionModelFiles(o.model, o.mmproj);
    for (const lora of o.loras ?? []) await checkLoraFile(lora.path, files.text);
    const bertPath = o.bertscoreModel ?? o.embedder;
    if (o.embedder) await checkEmbedderFile(o.embedder);
    if (bertPath && bertPath !== o.embedder) await checkEmbedderFile(bertPath);

    const hashing = (file: string, bytes: number) => this.#log('info', `hashing ${file} (${(bytes / 2 ** 20).toFixed(0)} MiB) for run.json; cached for later runs`);
    const fingerprint = (file: string) => fingerprintFile(file, this.#resolved.out, hashing);
    const models: RunModels = {
      model: await fingerprint(o.model),
      mmproj: await fingerprint(o.mmproj),
      loras: [],
      embedder: o.embedder ? await fingerprint(o.embedder) : null,
      bertscoreModel: bertPath ? await fingerprint(bertPath) : null,
    };
    for (const lora of o.loras ?? []) models.loras.push({ ...(await fingerprint(lora.path)), scale: lora.scale ?? 1 });
    return { source, files, models };
  }

  /** Step 2: the journal, counted as it is read; lines already there must come from a run with this identity. */
  async #openJournal(identity: RunIdentity): Promise<{ journal: Journal; previous: RunManifest | null }> {
    const out = this.#resolved.out;
    const previous = await readManifest(out);
    const journal = await Journal.open(path.join(out, JOURNAL_FILE), {
      onRepair: (message) => this.#log('warn', message),
      onExisting: (line) => this.#count(line),
    });
    this.#journal = journal;
    this.#resumed = journal.existing;
    if (journal.existing === 0) return { journal, previous };
    if (!previous?.identity) {
      throw new SrfError('OUTPUT_CONFLICT', `${out} holds ${journal.existing} triplets not made by \`run\` with a known configuration; choose another --out`, { file: out });
    }
    if (previous.identity.hash !== identity.hash) {
      const differences = identityDifferences(previous.identity.values, identity.values).map(describeDifference);
      throw new SrfError(
        'OUTPUT_CONFLICT',
        `${out} holds a run made with other settings: ${differences.join('; ')}. Resume it with the settings it was made with ` +
          `(run.json's "identity" records them; a newer srf-native may have other defaults), or choose another --out`,
        { file: out },
      );
    }
    this.#log('info', `resuming: ${journal.existing} images already in ${JOURNAL_FILE}`);
    return { journal, previous };
  }

  /** Step 3: the engine (one replica per device), sized for this pipeline's requests and cached prefixes. */
  async #openEngine(files: VisionModelFileInfo): Promise<{ model: VisionModel; replicas: number }> {
    const o = this.#options;
    const r = this.#resolved;
    // The longest call's reply plus its prompt (a follow-up quotes a reply of up to ~200 chars).
    const requestTokens = Math.max(...Object.values(r.sampling).map((s) => s.maxTokens ?? 128)) + 192;
    const devices = o.devices ?? defaultDevices(o.gpuLayers);
    const targets = devices === undefined ? undefined : resolveDevices(devices);
    const replicas = Math.max(1, targets?.length ?? 1);
    if (o.parallel === undefined && o.contextSize === undefined) {
      // On a GPU the default is sized by memory (lib/engine/kv-layout.ts), as VisionModel.open sizes its
      // own, counting this pipeline's cached prefixes (inFlight images, 2 per sequence), per replica.
      const sizing = await kvSizing(files, o, o.gpuLayers ?? -1, requestTokens, targets?.[0]);
      r.parallel = defaultParallel(sizing.device, (n) => sizing.perSequenceBytes(n, o.prefixCache ?? (o.inFlight === undefined ? 2 * n : Math.ceil(o.inFlight / replicas))));
    }
    if (o.inFlight === undefined) r.inFlight = 2 * r.parallel * replicas;
    const open: OpenVisionModelOptions = { model: o.model, mmproj: o.mmproj, parallel: r.parallel };
    if (devices !== undefined) open.devices = devices;
    open.onReplicaFailure = (f) =>
      this.#log('warn', `engine replica ${f.replica} on ${f.device} failed (${f.error.code}: ${f.error.message}); it handed back its ${f.handedBack + 1} requests in flight, and the run goes on with ${f.remaining} replica${f.remaining === 1 ? '' : 's'}`);
    if (o.loras) open.loras = o.loras;
    if (o.contextSize !== undefined) open.contextSize = o.contextSize;
    if (o.kvLayout !== undefined) open.kvLayout = o.kvLayout;
    open.requestTokens = requestTokens;
    if (o.gpuLayers !== undefined) open.gpuLayers = o.gpuLayers;
    if (o.gpuVision !== undefined) open.gpuVision = o.gpuVision;
    // Every image in flight keeps its prefix cached until IA->Q and IQ->A have reused it; with fewer
    // slots, other images' I->QA requests queued in between evict it and it is encoded again.
    open.prefixCache = o.prefixCache ?? Math.ceil(r.inFlight / replicas);
    if (o.threads !== undefined) open.threads = o.threads;
    Object.assign(open, o.engine);
    const model = await VisionModel.open(open);
    // The layout is chosen by memory (lib/engine/kv-layout.ts) and halves or doubles throughput: say it.
    const where = replicas > 1 ? `${replicas} replicas (${model.info.devices.join(', ')}), each with ` : '';
    this.#log('info', `engine: ${buildInfo().backend}, ${where}${r.parallel} sequences, ${model.info.kvLayout} KV cache of ${model.info.contextSize} cells, ${model.info.prefixCache} cached image prefixes`);
    return { model, replicas };
  }

  /** Step 4: run.json as the run starts: inputs, models, settings, the engine chosen and the identity. */
  #startManifest(s: { started: number; setup: RunSetup; identity: RunIdentity; previous: RunManifest | null; scorer: Scorer; model: VisionModel }): RunManifest {
    const o = this.#options;
    const r = this.#resolved;
    const { source, models } = s.setup;
    const info = buildInfo();
    return {
      format: MANIFEST_FORMAT,
      tool: { name: 'srf-native', version: toolVersion() },
      status: 'running',
      command: o.command ?? [],
      round: r.round,
      imageRoot: source.imageRoot,
      imagePaths: 'every image path in triplets.jsonl and the training data is relative to imageRoot (LLaVA\'s --image_folder)',
      inputs: {
        kind: source.kind,
        spec: source.spec,
        location: source.location,
        ...(source.pattern ? { pattern: source.pattern } : {}),
        shard: r.shard ? formatShard(r.shard) : null,
        shardRule: 'sha1(relative path) first 32 bits mod N',
        limit: r.limit ?? null,
      },
      models,
      generation: {
        seed: r.seed,
        seedRule: 'I->QA seed of an image = (seed + key) mod 2^32, key = bits 96..127 of sha1(relative path)',
        grammar: r.grammar === undefined ? false : typeof o.grammar === 'string' ? 'custom' : true,
        grammarBounds: typeof o.grammar === 'string' ? null : o.grammarBounds ?? {},
        ...(typeof o.grammar === 'string' ? { grammarText: o.grammar } : {}),
        templates: templateStrings(r.templates),
        decoding: r.sampling,
        parallel: r.parallel,
        inFlight: r.inFlight,
        contextSize: s.model.info.contextSize,
        kvLayout: s.model.info.kvLayout,
        prefixCache: s.model.info.prefixCache,
        gpuLayers: o.gpuLayers ?? 'all when a GPU is present',
        devices: s.model.info.devices,
        threads: o.threads ?? 'all cores',
      },
      scoring: s.scorer.record,
      selection: s.previous?.selection ?? null,
      counts: this.#counts,
      timings: { ...(s.previous?.timings ?? {}), startedAt: new Date(s.started).toISOString() },
      outputs: s.previous?.outputs ?? { journal: JOURNAL_FILE, train: {} },
      engine: { backend: info.backend, llamaCppVersion: info.llamaCppVersion, model: { ...s.model.info, files: undefined } },
      identity: s.identity,
    };
  }

  /** Step 5: the images, with the input count in the background (for the ETA) and progress events. */
  async #generateAll(source: InputSource, model: VisionModel, scorer: Scorer, journal: Journal): Promise<GenerationResult> {
    const o = this.#options;
    const r = this.#resolved;
    if (o.countTotal ?? true) {
      const countOptions = { ...(r.shard ? { shard: r.shard } : {}), ...(r.limit !== undefined ? { limit: r.limit } : {}) };
      countInputs(source, countOptions).then(
        (total) => {
          this.#total = total;
        },
        () => {},
      );
    }
    this.#phase = 'generating';
    this.#generationStarted = Date.now();
    const timer = setInterval(() => this.#emitProgress(), o.progressIntervalMs ?? 1000);
    timer.unref();
    try {
      this.#emitProgress();
      const { duplicates, exhausted } = await this.#generate(source, model, scorer, journal);
      return { duplicates, exhausted, seconds: (Date.now() - this.#generationStarted) / 1000 };
    } finally {
      clearInterval(timer);
    }
  }

  /** Step 6: selection and the outputs; run.json gets the final counts, settings, engine counters and timings. */
  async #finish(s: {
    started: number;
    imageRoot: string;
    previous: RunManifest | null;
    manifest: RunManifest;
    generated: GenerationResult;
    engineStats: EngineStats;
    replicaStats: ReplicaStats[] | undefined;
  }): Promise<RefineSummary> {
    const o = this.#options;
    const r = this.#resolved;
    const { started, previous, manifest, generated } = s;
    const status = generated.exhausted && !this.#stopping ? 'complete' : 'interrupted';
    this.#phase = 'finalizing';
    this.#emitProgress();
    const previousGeneration = typeof previous?.timings?.totalGenerationSeconds === 'number' ? previous.timings.totalGenerationSeconds : 0;
    const sessions = typeof previous?.timings?.sessions === 'number' ? previous.timings.sessions : 0;
    const finalized = await finalizeOutputs({
      out: r.out,
      imageRoot: s.imageRoot,
      keepTop: r.keepTop,
      matchMix: o.matchMix,
      formats: r.formats,
      mergeWith: o.mergeWith,
      mergeImageFolder: o.mergeImageFolder,
      openaiImages: o.openaiImages,
      report: o.report ?? true,
      round: r.round,
      onLog: (level, message) => this.#log(level, message),
      beforeReport: async (result) => {
        manifest.status = status;
        manifest.selection = result.selection;
        manifest.counts = result.counts;
        manifest.outputs = result.outputs;
        manifest.scoring = { ...manifest.scoring!, paperFaithful: manifest.scoring!.paperFaithful && result.paperFaithful };
        manifest.selectionSettings = { keepTop: r.keepTop, matchMix: o.matchMix ? path.resolve(o.matchMix) : null, formats: ['llava', ...r.formats.filter((f) => f !== 'llava')], mergeWith: o.mergeWith ? path.resolve(o.mergeWith) : null, mergeImageFolder: o.mergeImageFolder ? path.resolve(o.mergeImageFolder) : null, openaiImages: o.openaiImages ?? null };
        manifest.engineStats = s.engineStats;
        if (s.replicaStats) manifest.replicas = s.replicaStats;
        manifest.timings = {
          startedAt: new Date(started).toISOString(),
          finishedAt: new Date().toISOString(),
          seconds: (Date.now() - started) / 1000,
          generationSeconds: generated.seconds,
          finalizeSeconds: result.seconds,
          imagesThisSession: this.#processed,
          imagesPerSecond: generated.seconds > 0 ? this.#processed / generated.seconds : 0,
          sessions: sessions + 1,
          totalGenerationSeconds: previousGeneration + generated.seconds,
        };
        await writeManifest(r.out, manifest);
      },
    });
    this.#phase = 'done';
    this.#counts = finalized.counts;
    this.#emitProgress();
    if (status === 'interrupted') this.#log('info', `stopped early; run the same command again to resume (${finalized.counts.images} images are done)`);
    return {
      status,
      out: r.out,
      counts: finalized.counts,
      selection: finalized.selection,
      outputs: finalized.outputs,
      resumed: this.#resumed,
      processed: this.#processed,
      duplicates: generated.duplicates,
      paperFaithful: manifest.scoring!.paperFaithful,
      seconds: { total: (Date.now() - started) / 1000, generation: generated.seconds, finalize: finalized.seconds },
      imagesPerSecond: generated.seconds > 0 ? this.#processed / generated.seconds : 0,
      manifest,
    };
  }

  /** Keeps up to inFlight images going until the input ends or the run is stopped. */
  async #generate(source: InputSource, model: VisionModel, scorer: Scorer, journal: Journal): Promise<{ duplicates: number; exhausted: boolean }> {
    const r = this.#resolved;
    const inputs = streamInputs(source, {
      ...(r.shard ? { shard: r.shard } : {}),
      ...(r.limit !== undefined ? { limit: r.limit } : {}),
      onWarning: (message) => this.#log('warn', message),
    });
    const running = new Set<Promise<void>>();
    /** Ids taken this session: with journal.ids, about 100 bytes per image (the one O(images) structure). */
    const dispatched = new Set<string>();
    let duplicates = 0;
    let seen = 0;
    let exhausted = false;
    let failure: unknown;
    try {
      while (!failure) {
        while (!exhausted && !this.#stopping && running.size < r.inFlight) {
          const next = await inputs.next();
          if (next.done) {
            exhausted = true;
            break;
          }
          const item = next.value;
          seen++;
          if (dispatched.has(item.id)) {
            duplicates++;
            continue;
          }
          if (journal.ids.has(item.id)) continue; // done in an earlier session
          dispatched.add(item.id);
          this.#inFlight++;
          const task: Promise<void> = this.#processImage(item, model, scorer)
            .then(async (line) => {
              if (line) await this.#record(line, journal);
            })
            .catch((error) => {
              failure ??= error;
              this.cancel();
            })
            .finally(() => {
              this.#inFlight--;
              running.delete(task);
            });
          running.add(task);
        }
        if (running.size === 0) break;
        await Promise.race(running);
      }
    } finally {
      await Promise.allSettled(running);
      await inputs.return(undefined);
    }
    if (failure) throw failure;
    if (exhausted && seen === 0) {
      this.#log('warn', `no images found in ${source.spec} (${source.kind}${source.pattern ? ` ${source.pattern}` : ''}${r.shard ? `, shard ${formatShard(r.shard)}` : ''}); a folder is searched for ${[...IMAGE_EXTENSIONS].join(' ')}`);
    }
    if (this.#heldBack.length > 0 && !this.#engineProven) {
      if (!this.#stopping) this.#throwHeldBack();
      this.#log('warn', `${this.#heldBack.length} images failed in the engine (${this.#heldBack[0]?.error?.message}); not journaled, they run again next time`);
    }
    return { duplicates, exhausted };
  }

  /**
   * Engine failures (not a bad image) are held back until one image of this session has gone through:
   * when the engine fails on every image (a broken grammar, a context too small for any prompt), the run
   * stops with that error after a few images instead of writing error lines for all of them, and nothing
   * is journaled for those images, so they run again once the cause is fixed.
   */
  #engineProven = false;
  #heldBack: TripletLine[] = [];

  async #record(line: TripletLine, journal: Journal): Promise<void> {
    if (!this.#engineProven) {
      if (line.status === 'error' && isEngineFailure(line.error?.code)) {
        this.#heldBack.push(line);
        if (this.#heldBack.length >= Math.max(4, this.#resolved.inFlight)) this.#throwHeldBack();
        return;
      }
      if (line.status !== 'error') {
        this.#engineProven = true;
        for (const held of this.#heldBack.splice(0)) await this.#append(held, journal);
      }
    }
    await this.#append(line, journal);
  }

  #throwHeldBack(): never {
    const first = this.#heldBack[0] as TripletLine;
    const code = (ERROR_CODES as readonly string[]).includes(first.error!.code) ? (first.error!.code as SrfErrorCode) : 'DECODE_FAILED';
    throw new SrfError(
      code,
      `the engine failed on all ${this.#heldBack.length} images tried so far (${first.error!.message}); stopped without journaling them, so they run again once this is fixed`,
    );
  }

  async #append(line: TripletLine, journal: Journal): Promise<void> {
    journal.append(line);
    this.#processed++;
    this.#count(line);
    this.emit('result', line);
    await this.#channel?.push(line);
  }

  /** One image through the triangle (srf/triangle.ts) and scoring. null: abandoned (cancelled), not journaled. */
  async #processImage(item: InputImage, model: VisionModel, scorer: Scorer): Promise<TripletLine | null> {
    const started = Date.now();
    const signal = this.#abort.signal;
    const base = { id: item.id, image: item.image, round: this.#resolved.round };
    const errorLine = (error: unknown): TripletLine | null => {
      if (signal.aborted && isSrfError(error, 'ABORTED')) return null;
      if (isSrfError(error, 'CLOSED')) throw error;
      const code = isSrfError(error) ? error.code : 'UNEXPECTED';
      const message = (error as Error)?.message ?? String(error);
      return { ...base, status: 'error', error: { code, message }, ms: Date.now() - started };
    };
    if (item.problem) return errorLine(item.problem);
    let image: PreparedImage;
    try {
      image = await model.prepareImage(item.path);
    } catch (error) {
      return errorLine(error);
    }
    if (signal.aborted) return null;
    const seed = imageSeed(this.#resolved.seed, item.key);
    let triangle: TriangleResult;
    let score: TripletScore;
    try {
      triangle = await runTriangle(model, image, this.#triangle, seed, signal);
      if (triangle.status === 'rejected') return { ...base, status: 'rejected', rejected: triangle.rejected, raw: triangle.raw.slice(0, 1000), seed, ms: Date.now() - started };
      score = await scoreTriplet(triangle, scorer.provider);
    } catch (error) {
      return errorLine(error);
    }
    const { question, answer, questionPrime, answerPrime, truncation } = triangle;
    return {
      ...base,
      status: 'scored',
      question,
      answer,
      questionPrime,
      answerPrime,
      type: score.type,
      simQ: score.simQ,
      simA: score.simA,
      score: score.score,
      paperFaithful: score.paperFaithful,
      ...(truncation ? { truncated: truncation } : {}),
      seed,
      ms: Date.now() - started,
    };
  }

}

/**
 * Starts the pipeline. Iterate the returned run for per-image lines, listen to 'progress' / 'log', and
 * await `run.result` (or `run.complete()`) for the summary once outputs are written.
 *
 *     const run = refine({ model, mmproj, images: 'photos/', out: 'out/', embedder });
 *     for await (const line of run) console.log(line.id, line.status, line.score);
 *     const summary = await run.result;
 */
export function refine(options: RefineOptions): RefineRun {
  return new RefineRun(options);
}
