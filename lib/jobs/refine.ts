/**
 * `refine(options)`: the self-refinement pipeline of docs/METHOD.md step 2 over a stream of unlabeled
 * images, as a library call. Follow one image:
 *
 *   inputs.ts             the image is found (folder / glob / list), given a stable id, maybe sharded away
 *   outputs/journal.ts    skipped when its id is already in OUT/triplets.jsonl (resume)
 *   refine-image.ts       prepared once (sharp), then the triangle (srf/triangle.ts: I->QA sampled with a
 *                         per-image seed and the reply grammar, parsed, IA->Q and IQ->A issued together
 *                         on the cached image prefix), scored (srf/score.ts); here it is journaled
 *   outputs/finalize.ts   after the last image: per-type selection, training data, train-lora.sh, report
 *
 * The run's options are checked in refine-options.ts, its engine opened in refine-engine.ts. Many
 * images are in flight at once (about twice the engine's parallel sequences) so that batches stay
 * full; memory is bounded by that number. A bad image is an error line and the run goes on; a bad
 * model file is one SrfError before any work starts.
 */
import { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ERROR_CODES, SrfError, isSrfError, type SrfErrorCode } from '../errors.js';
import { checkEmbedderFile, checkLoraFile, checkVisionModelFiles } from '../gguf/check.js';
import { VisionModel } from '../vision-model.js';
import { onFatalAbort, type EngineStats } from '../engine/native.js';
import { DATA_TYPES, type DataType } from '../srf/data-types.js';
import { quotaFor } from '../srf/select.js';
import { type TriangleSettings } from '../srf/triangle.js';
import { FILTERS, filterRank } from '../srf/filters.js';
import type { ReplicaStats } from '../engine/types.js';
import { countLine, emptyCounts, finalizeOutputs } from '../outputs/finalize.js';
import { ID_HEX_DIGITS, IMAGE_EXTENSIONS, LEGACY_ID_HEX_DIGITS, formatShard, resolveInputSource, type InputSource } from './inputs.js';
import { countRunInputs, resolveRescoreSource, streamRunInputs } from './rescore-inputs.js';
import { JOURNAL_FILE, Journal, isScoredLine, type TripletLine } from '../outputs/journal.js';
import { acquireOutputLock } from '../outputs/lock.js';
import { fingerprintFile, describeDifference, identityDifferences, readManifest, writeManifest, type RunCounts, type RunManifest, type TrainerRecord } from '../outputs/manifest.js';
import { openScorer, type Scorer } from './scoring.js';

import { isEngineFailure, resolveOptions, runIdentity, triangleSettings, type ResolvedOptions, type RefineLog, type RefineOptions, type RefinePhase, type RefineProgress, type RefineSummary, type RunIdentity, type RunModels, type RunSetup } from './refine-options.js';
import { openRefineEngine } from './refine-engine.js';
import { startManifest } from './refine-manifest.js';
import { assertGpuWork, defaultDevices } from '../engine/devices.js';
import { trainerOf } from '../engine/families.js';
import { EXPORTED_IMAGES_FOLDER, exportImage, pruneExportedImages } from '../outputs/exported-images.js';
import { SHARDS_DONE_FILE, ShardsDone } from '../outputs/shards-done.js';
import { refineImage } from './refine-image.js';
import { ResultChannel } from './result-channel.js';

export type { RefineLog, RefineOptions, RefinePhase, RefineProgress, RefineSummary } from './refine-options.js';

interface GenerationResult {
  duplicates: number;
  exhausted: boolean;
  seconds: number;
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
  get #exportImages(): NonNullable<RefineOptions['exportImages']> {
    return this.#options.exportImages ?? 'all';
  }
  /** Seconds from the start of generation to this session's first image through the engine; null before it. */
  #firstImageSeconds: number | null = null;
  #inFlight = 0;
  #total: number | null = null;
  #generationStarted = 0;
  /** Hex digits of image file ids: ID_HEX_DIGITS, or the older runs' 12 when resuming one. */
  #idHexDigits = ID_HEX_DIGITS;
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
    // what selection could keep: S > 0, and not under the filter's floor
    const floor = FILTERS[this.#resolved.filter].minScore ?? 0;
    if (isScoredLine(line) && line.score > 0 && line.score >= floor && this.#nonZeroByType[line.type] !== undefined) this.#nonZeroByType[line.type]++;
  }

  /**
   * The run, step by step: check the setup (nothing is generated before everything that can be wrong
   * with it has failed), open the journal (a resume must match the run's identity), open the scorer
   * and the engine, write run.json, generate, then select and write the outputs. Whatever fails,
   * run.json says so and the journal, engines and lock are released.
   */
  async #main(): Promise<RefineSummary> {
    const started = Date.now();
    // Before anything is read or written: a run that must use a GPU and would not fails here.
    assertGpuWork({ requireGpu: this.#options.requireGpu, gpuLayers: this.#options.gpuLayers, devices: this.#options.devices ?? defaultDevices(this.#options.gpuLayers) });
    const out = this.#resolved.out;
    await mkdir(out, { recursive: true });
    const lock = await acquireOutputLock(out, (this.#options.command ?? []).join(' '));
    let manifest: RunManifest | undefined;
    let model: VisionModel | undefined;
    let scorer: Scorer | undefined;
    let forgetFatalFlush = (): void => {};
    try {
      if (this.#resolved.shardFound) this.#log('info', `${this.#resolved.shardFound}; writing to ${out}`);
      const setup = await this.#checkSetup();
      if (setup.source.kind === 'rescore') this.#log('info', `judging the scored triplets of ${setup.source.spec} again: their questions and answers as they are, IA->Q and IQ->A by this model (no I->QA)`);
      const identity = runIdentity(this.#resolved, setup.models, setup.source.imageRoot);
      const { journal, previous } = await this.#openJournal(identity);
      // A CUDA fault ends the process from a native thread: the journal's buffered lines go first.
      forgetFatalFlush = onFatalAbort(journal.writeBufferedSync);
      scorer = await openScorer({ embedder: this.#options.embedder, bertscoreModel: this.#options.bertscoreModel, gpuLayers: this.#options.gpuLayers, threads: this.#options.threads });
      if (!scorer.record.paperFaithful) this.#log('warn', scorer.record.warning as string);
      const engine = await openRefineEngine(this.#options, this.#resolved, setup.files, (level, message) => this.#log(level, message));
      model = engine.model;
      manifest = startManifest({ started, setup, identity, previous, scorer, model, options: this.#options, resolved: this.#resolved, counts: this.#counts, idHexDigits: this.#idHexDigits });
      await writeManifest(out, manifest);

      const generated = await this.#generateAll(setup.source, model, scorer, journal);
      await journal.close();
      const engineStats = model.stats();
      const family = model.info.family;
      const trainer = { family: family.name, ...trainerOf(family) };
      const replicaStats = engine.replicas > 1 ? model.replicaStats() : undefined;
      await model.close();
      model = undefined;
      await scorer.close();
      scorer = undefined;

      return await this.#finish({ started, imageRoot: setup.source.imageRoot, exportedImages: setup.source.kind === 'shards', previous, manifest, generated, engineStats, replicaStats, trainer });
    } catch (error) {
      if (manifest) {
        manifest.status = 'failed';
        manifest.error = { code: isSrfError(error) ? error.code : 'UNEXPECTED', message: (error as Error)?.message ?? String(error) };
        manifest.counts = this.#counts;
        await writeManifest(out, manifest).catch(() => {});
      }
      throw error;
    } finally {
      forgetFatalFlush();
      await this.#journal?.close().catch(() => {});
      await model?.close().catch(() => {});
      await scorer?.close().catch(() => {});
      await lock.release();
    }
  }

  /** Step 1: the inputs and every model file are checked, then fingerprinted for run.json. */
  async #checkSetup(): Promise<RunSetup> {
    const o = this.#options;
    const rootOption = o.imageRoot === undefined ? {} : { imageRoot: o.imageRoot };
    const resolved = o.rescore !== undefined ? await resolveRescoreSource(o.rescore, rootOption) : await resolveInputSource(o.images as string, rootOption);
    // Tar and parquet shards have no image files: theirs are exported under the output folder, the trainer's image
    // root; the one --out names, so that the workers of a sharded run share it (merge needs one root).
    const source = resolved.kind === 'shards' && o.imageRoot === undefined ? { ...resolved, imageRoot: path.join(path.resolve(o.out), EXPORTED_IMAGES_FOLDER) } : resolved;
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
    // A run begun before ids had 16 hex digits keeps its 12: its journal's ids must match.
    this.#idHexDigits = journal.existing > 0 && typeof previous?.idHexDigits !== 'number' ? LEGACY_ID_HEX_DIGITS : ((previous?.idHexDigits as number | undefined) ?? ID_HEX_DIGITS);
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

  /** Step 4: run.json as the run starts: inputs, models, settings, the engine chosen and the identity. */
  /** Step 5: the images, with the input count in the background (for the ETA) and progress events. */
  async #generateAll(source: InputSource, model: VisionModel, scorer: Scorer, journal: Journal): Promise<GenerationResult> {
    const o = this.#options;
    const r = this.#resolved;
    if (o.countTotal ?? true) {
      const countOptions = { ...(r.shard ? { shard: r.shard } : {}), ...(r.limit !== undefined ? { limit: r.limit } : {}) };
      countRunInputs(source, countOptions).then(
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
    /** The inputs are tar or parquet shards, whose images this run exports under imageRoot. */
    exportedImages: boolean;
    previous: RunManifest | null;
    manifest: RunManifest;
    generated: GenerationResult;
    engineStats: EngineStats;
    replicaStats: ReplicaStats[] | undefined;
    trainer: TrainerRecord;
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
      minScore: FILTERS[r.filter].minScore,
      matchMix: o.matchMix,
      formats: r.formats,
      mergeWith: o.mergeWith,
      mergeImageFolder: o.mergeImageFolder,
      openaiImages: o.openaiImages,
      report: o.report ?? true,
      round: r.round,
      trainer: s.trainer,
      onLog: (level, message) => this.#log(level, message),
      beforeReport: async (result) => {
        manifest.status = status;
        manifest.selection = result.selection;
        manifest.counts = result.counts;
        manifest.outputs = result.outputs;
        manifest.scoring = { ...manifest.scoring!, paperFaithful: manifest.scoring!.paperFaithful && result.paperFaithful };
        manifest.selectionSettings = { keepTop: r.keepTop, minScore: FILTERS[r.filter].minScore ?? null, matchMix: o.matchMix ? path.resolve(o.matchMix) : null, formats: ['llava', ...r.formats.filter((f) => f !== 'llava')], mergeWith: o.mergeWith ? path.resolve(o.mergeWith) : null, mergeImageFolder: o.mergeImageFolder ? path.resolve(o.mergeImageFolder) : null, openaiImages: o.openaiImages ?? null };
        manifest.engineStats = s.engineStats;
        if (s.replicaStats) manifest.replicas = s.replicaStats;
        manifest.timings = {
          startedAt: new Date(started).toISOString(),
          finishedAt: new Date().toISOString(),
          seconds: (Date.now() - started) / 1000,
          generationSeconds: generated.seconds,
          finalizeSeconds: result.seconds,
          imagesThisSession: this.#processed,
          // GPU kernels compiled from PTX on first use (a JIT verdict) are in this.
          firstImageSeconds: this.#firstImageSeconds,
          imagesPerSecond: generated.seconds > 0 ? this.#processed / generated.seconds : 0,
          sessions: sessions + 1,
          totalGenerationSeconds: previousGeneration + generated.seconds,
        };
        await writeManifest(r.out, manifest);
      },
    });
    if (this.#exportImages === 'kept' && s.exportedImages) {
      const removed = await pruneExportedImages(r.out, s.imageRoot);
      if (removed > 0) this.#log('info', `--export-images kept: removed the ${removed} exported images this run's selection did not keep (a later select or merge cannot keep them)`);
    }
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
    // Tar or parquet shards: the finished ones are recorded, and a resume does not read them again.
    const shardsDone = source.kind === 'shards' ? await ShardsDone.open(r.out, () => journal.flush()) : undefined;
    if (shardsDone && shardsDone.before.size > 0) this.#log('info', `resuming: ${shardsDone.before.size} finished shards skipped unread (${SHARDS_DONE_FILE})`);
    const inputs = streamRunInputs(source, {
      ...(r.shard ? { shard: r.shard } : {}),
      ...(r.limit !== undefined ? { limit: r.limit } : {}),
      ...(shardsDone ? { skipShards: shardsDone.before } : {}),
      ...(this.#options.imageColumn ? { imageColumn: this.#options.imageColumn } : {}),
      idHexDigits: this.#idHexDigits,
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
            if (r.limit === undefined) await shardsDone?.inputEnded();
            break;
          }
          const item = next.value;
          seen++;
          if (item.shard !== undefined) await shardsDone?.read(item.shard);
          if (dispatched.has(item.id)) {
            duplicates++;
            continue;
          }
          if (journal.ids.has(item.id)) continue; // done in an earlier session
          dispatched.add(item.id);
          if (item.shard !== undefined) shardsDone?.started(item.shard);
          this.#inFlight++;
          const task: Promise<void> = refineImage(item, { model, scorer, triangle: this.#triangle, seed: this.#resolved.seed, round: this.#resolved.round, signal: this.#abort.signal, choices: FILTERS[this.#resolved.filter].choices, rank: filterRank(FILTERS[this.#resolved.filter]) })
            .then(async (line) => {
              if (line && item.bytes && line.status === 'scored' && this.#exportImages !== 'none') await exportImage(source.imageRoot, line.image, item.bytes);
              if (line) await this.#record(line, journal);
              // A line held back (the engine not yet proven) is not journaled yet: its tar is not finished.
              if (line && item.shard !== undefined && !this.#heldBack.includes(line)) await shardsDone?.journaled(item.shard);
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
      const shardPart = r.shard ? `, shard ${formatShard(r.shard)}` : '';
      if (source.kind === 'rescore') this.#log('warn', `no scored triplets in ${source.location}${shardPart}: nothing to judge again`);
      else this.#log('warn', `no images found in ${source.spec} (${source.kind}${source.pattern ? ` ${source.pattern}` : ''}${shardPart}); a folder is searched for ${[...IMAGE_EXTENSIONS].join(' ')}`);
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
    if (line.status !== 'error') this.#firstImageSeconds ??= (Date.now() - this.#generationStarted) / 1000;
    this.#count(line);
    this.emit('result', line);
    await this.#channel?.push(line);
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
