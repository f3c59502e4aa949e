/**
 * What a refine run is asked (RefineOptions and the types it reports), those options checked and
 * resolved with their defaults, and the run's identity: the settings that decide what it generates,
 * so that a folder resumes only the run it holds.
 */
import path from 'node:path';
import { invalidArgument } from '../errors.js';
import { EMIT_FORMATS, isEmitFormat, type EmitFormat } from '../emit/emitters.js';
import type { OpenAiImages } from '../emit/openai.js';
import type { VisionModelFileInfo } from '../gguf/check.js';
import type { DeviceSpec } from '../engine/devices.js';
import { checkFraction, checkNonNegativeInteger, checkPositiveInteger, checkSeed, integerOption } from '../util/validate.js';
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
import { DEFAULT_KEEP_TOP } from '../srf/select.js';
import type { TriangleSettings } from '../srf/triangle.js';
import { FILTERS, resolveFilter, type FilterName } from '../srf/filters.js';
import type { LoraAdapterOptions, KvLayout, OpenVisionModelOptions, SamplingOptions } from '../engine/types.js';
import type { InputSource, Shard } from './inputs.js';
import { identityHash, type FileFingerprint, type OutputsRecord, type RunCounts, type RunManifest, type SelectionRecord } from '../outputs/manifest.js';
import { resolveShard, shardOutputFolder } from './shard-env.js';

export interface RefineOptions {
  /** Text model GGUF (LLaVA-1.5's language model). */
  model: string;
  /** mmproj GGUF. */
  mmproj: string;
  /** LoRA adapters (the step-1 multi-task generator usually is one). */
  loras?: LoraAdapterOptions[];
  /**
   * A folder (walked recursively), a glob, a list file (one path per line) or one image; or WebDataset
   * tar shards: a `.tar`, a glob or brace range of them, a folder of them, or `-` (one tar on stdin).
   * Either this or `rescore`.
   */
  images?: string;
  /**
   * Instead of `images`: an earlier run's output folder, whose scored triplets are judged again by
   * this run's model (their questions and answers kept, no I->QA; rescore-inputs.ts). The images are
   * that run's, under its image root (`imageRoot` re-roots the outputs).
   */
  rescore?: string;
  /**
   * Image paths in the outputs are relative to this folder. Default: the folder, the glob's fixed
   * folder, the list's folder; for tar shards `OUT/images`, where their images are exported.
   */
  imageRoot?: string;
  /**
   * Tar shard inputs: which images are written to `OUT/images/<shard>/<key>.<ext>` (their original
   * bytes) for the trainer. 'all' (default: every scored image, so a later `select` or `merge` may keep
   * any of them), 'kept' (only those this run's selection kept; the others are removed at its end), 'none'.
   */
  exportImages?: 'all' | 'kept' | 'none';
  /** Parquet shards: the column with the image bytes (default img2dataset's `jpg`, else Hugging Face's `image` struct's bytes). */
  imageColumn?: string;
  /** Output folder; a run started again on it resumes. */
  out: string;
  /** Sentence-embedding GGUF for the cosines; without it scores use the lexical fallback (not the paper's). */
  embedder?: string;
  /** Encoder GGUF for BERTScore. Default: the embedder. */
  bertscoreModel?: string;
  /** Fraction kept per data type. Default 0.2. */
  keepTop?: number;
  /**
   * 'refined' (default): letter choices judged by option text with an open re-ask, and a score floor
   * under the per-type quota; 'refined-agreement': the same, ranked by S x the agreement of sampled
   * re-answers above the floor; 'paper': the paper's exact method (lib/srf/filters.ts, docs/METHOD.md).
   */
  filter?: FilterName;
  /** Also record log P(A | I, Q) and log P(Q | I, A) per token in the journal (two more calls per image). Default false. */
  confidence?: boolean;
  /**
   * Also answer each Q this many times more, sampled, and record the samples' agreement with A in the
   * journal (`answerSamples`, `agreement`; triangle.ts `samples`): K more calls per image. Default 0, at most MAX_SAMPLES.
   */
  samples?: number;
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
  /** Fail with GPU_REQUIRED before anything is read when the work would run on the CPU (VisionModel.open's requireGpu). Default: SRF_REQUIRE_GPU=1. */
  requireGpu?: boolean;
  gpuVision?: boolean;
  /** Image prefixes kept evaluated in the KV cache. Default: inFlight, so each image is encoded once. */
  prefixCache?: number;
  threads?: number;
  /** Engine settings passed to VisionModel.open as they are (benchmarks: the same settings as the engine alone). */
  engine?: Pick<OpenVisionModelOptions, 'batchSize' | 'flashAttention' | 'samplingThreads' | 'chatTemplate' | 'imageMinTokens' | 'imageMaxTokens'>;
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

export interface ResolvedOptions {
  out: string;
  /** Absolute: the earlier run judged again (RefineOptions.rescore). */
  rescore: string | undefined;
  keepTop: number;
  filter: FilterName;
  confidence: boolean;
  samples: number;
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

export function resolveOptions(options: RefineOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw invalidArgument('an options object', 'options', options);
  for (const key of ['model', 'mmproj', 'out'] as const) {
    if (typeof options[key] !== 'string' || options[key] === '') throw invalidArgument('a path', key, options[key]);
  }
  if ((options.images === undefined) === (options.rescore === undefined)) throw invalidArgument('either images or rescore (an earlier run\'s folder), not both', 'images', options.images);
  const input = options.rescore !== undefined ? 'rescore' : 'images';
  if (typeof options[input] !== 'string' || options[input] === '') throw invalidArgument('a path', input, options[input]);
  const parallel = options.parallel === undefined ? 8 : checkPositiveInteger(options.parallel, 'parallel');
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
  if (options.rescore !== undefined && path.resolve(options.rescore) === path.resolve(options.out)) throw invalidArgument('an --out folder other than the run judged again', 'out', options.out);
  const shard = options.shard === undefined ? undefined : resolveShard(options.shard);
  const filter = resolveFilter(options.filter);
  const truncatedAnswers = options.truncatedAnswers ?? 'cut';
  if (truncatedAnswers !== 'cut' && truncatedAnswers !== 'keep') throw invalidArgument("'cut' or 'keep'", 'truncatedAnswers', options.truncatedAnswers);
  return {
    out: shard ? shardOutputFolder(path.resolve(options.out), shard.shard) : path.resolve(options.out),
    rescore: options.rescore === undefined ? undefined : path.resolve(options.rescore),
    keepTop: checkFraction(options.keepTop ?? DEFAULT_KEEP_TOP, 'keepTop'),
    filter,
    confidence: options.confidence ?? false,
    samples: resolveSamples(options.samples, filter),
    seed: checkSeed(options.seed ?? 0, 'seed'),
    round: checkNonNegativeInteger(options.round ?? 0, 'round'),
    limit: options.limit === undefined ? undefined : checkNonNegativeInteger(options.limit, 'limit'),
    shard: shard?.shard,
    shardFound: shard?.found,
    parallel,
    inFlight: options.inFlight === undefined ? 2 * parallel : checkPositiveInteger(options.inFlight, 'inFlight'),
    formats,
    templates: templatesFromStrings(options.templates ?? {}),
    sampling,
    grammar,
    answerLineBound: options.grammar === false || typeof options.grammar === 'string' ? undefined : resolveGrammarBounds(options.grammarBounds ?? {}).maxAnswerChars,
    truncatedAnswers,
  };
}

/** Sampled re-answers per image (RefineOptions.samples) at most: each is a full IQ->A call. */
export const MAX_SAMPLES = 16;

/** The run's sampled re-answers: as asked, else as many as its filter uses; a filter that ranks by their agreement needs one at least. */
function resolveSamples(samples: unknown, filter: FilterName): number {
  const count = integerOption(samples, 'samples', 0, MAX_SAMPLES, FILTERS[filter].samples);
  if (count === 0 && FILTERS[filter].agreement) throw invalidArgument(`at least 1 with --filter ${filter} (it ranks by their agreement)`, 'samples', samples);
  return count;
}

/** The run's templates, decoding (the reply grammar on I->QA) and truncation rule, as the triangle takes them. */
export function triangleSettings(r: ResolvedOptions, drafts: boolean): TriangleSettings {
  return {
    templates: r.templates,
    sampling: { ...r.sampling, iToQa: { ...r.sampling.iToQa, ...(r.grammar ? { grammar: r.grammar } : {}) } },
    drafts,
    truncatedAnswers: r.truncatedAnswers,
    answerLineBound: r.answerLineBound,
    circular: FILTERS[r.filter].circular,
    open: FILTERS[r.filter].open,
    confidence: r.confidence || FILTERS[r.filter].confidence,
    samples: r.samples,
  };
}

/** Failures of the engine rather than of one image's file. */
export function isEngineFailure(code: string | undefined): boolean {
  if (code === undefined) return false;
  if (code === 'IMAGE_ENCODE_FAILED') return true; // the mmproj failed, not the file
  return !code.startsWith('IMAGE_') && !['FILE_NOT_FOUND', 'FILE_UNREADABLE', 'INVALID_ARGUMENT'].includes(code);
}

/** What step 1 of a run found: the inputs, the model files' metadata and their fingerprints. */
export interface RunSetup {
  source: InputSource;
  files: VisionModelFileInfo;
  models: RunModels;
}

export interface RunModels {
  model: FileFingerprint;
  mmproj: FileFingerprint;
  loras: (FileFingerprint & { scale: number })[];
  embedder: FileFingerprint | null;
  bertscoreModel: FileFingerprint | null;
}

/** The settings that decide what a run generates: a folder resumes only a run with the same hash. */
export interface RunIdentity {
  hash: string;
  values: Record<string, unknown>;
}

export function runIdentity(r: ResolvedOptions, models: RunModels, imageRoot: string): RunIdentity {
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
    // the filter decides the re-asks and the scores; 'paper' is what runs made before it existed did
    ...(r.filter !== 'paper' ? { filter: r.filter } : {}),
    ...(r.confidence ? { confidence: true } : {}),
    ...(r.samples > 0 ? { samples: r.samples } : {}),
    ...(r.rescore ? { rescore: r.rescore } : {}),
  };
  return { hash: identityHash(values), values };
}
