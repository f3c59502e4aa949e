/**
 * `OUT/run.json`, the manifest of a run: model files and their SHA-256, every parameter, counts per
 * type, timings, whether scores are the paper's, the round. Rewritten atomically, so it is valid JSON
 * at all times. Model hashes are cached in `OUT/.srf-hash-cache.json` by path, size and mtime, so a
 * resumed run does not hash a 4 GB file again.
 */
import type { FilterName, FilterSettings } from '../srf/filters.js';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { DroppedSamples } from '../emit/emitters.js';
import { familyTrainer } from '../engine/families.js';
import { SrfError } from '../errors.js';
import type { DataType } from '../srf/data-types.js';
import { isPlainObject } from '../util/validate.js';
import { writeJsonAtomic } from '../util/files.js';
import type { ImageCheck } from './image-folder.js';

export const MANIFEST_FILE = 'run.json';
export const HASH_CACHE_FILE = '.srf-hash-cache.json';
export const MANIFEST_FORMAT = 'srf-native.run/1';

export interface FileFingerprint {
  path: string;
  bytes: number;
  sha256: string;
}

/** SHA-256 of a file, streamed. */
export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

interface HashCacheEntry {
  bytes: number;
  mtimeMs: number;
  sha256: string;
}

/**
 * Path, size and SHA-256 of a file. With `cacheDir`, the hash is looked up in (and added to) the cache
 * there, keyed by absolute path and checked against size and mtime.
 */
export async function fingerprintFile(file: string, cacheDir?: string, onHashing?: (file: string, bytes: number) => void): Promise<FileFingerprint> {
  const absolute = path.resolve(file);
  let info;
  try {
    info = await stat(absolute);
  } catch (cause) {
    throw new SrfError('FILE_NOT_FOUND', 'file not found', { file: absolute, cause });
  }
  if (!info.isFile()) throw new SrfError('FILE_UNREADABLE', 'not a regular file', { file: absolute });
  const cacheFile = cacheDir ? path.join(cacheDir, HASH_CACHE_FILE) : undefined;
  let cache: Record<string, HashCacheEntry> = {};
  if (cacheFile) {
    try {
      cache = JSON.parse(await readFile(cacheFile, 'utf8')) as Record<string, HashCacheEntry>;
    } catch {
      cache = {};
    }
    const hit = cache[absolute];
    if (hit && hit.bytes === info.size && hit.mtimeMs === info.mtimeMs && typeof hit.sha256 === 'string') {
      return { path: absolute, bytes: info.size, sha256: hit.sha256 };
    }
  }
  onHashing?.(absolute, info.size);
  let sha256: string;
  try {
    sha256 = await sha256File(absolute);
  } catch (cause) {
    throw new SrfError('FILE_UNREADABLE', `cannot read (${(cause as NodeJS.ErrnoException).code ?? cause})`, { file: absolute, cause });
  }
  if (cacheFile) {
    cache[absolute] = { bytes: info.size, mtimeMs: info.mtimeMs, sha256 };
    await writeJsonAtomic(cacheFile, cache);
  }
  return { path: absolute, bytes: info.size, sha256 };
}

export type RunStatus = 'running' | 'complete' | 'interrupted' | 'failed';

export interface TypeCounts {
  total: number;
  kept: number;
}

export interface RunCounts {
  /** Lines in the journal: one per input image handled. */
  images: number;
  scored: number;
  rejected: number;
  errors: number;
  kept: number;
  byType: Record<DataType, TypeCounts>;
  rejectedByReason: Record<string, number>;
  errorsByCode: Record<string, number>;
}

export interface SelectionRecord {
  keepTop: number;
  rounding: 'ceil';
  keepZeroScores: boolean;
  /** The score floor under the per-type quota (null: none, the paper's selection). Absent in runs made before it existed. */
  minScore?: number | null;
  /** Types that kept fewer than their quota (the floor or S = 0 stopped them). */
  underFilled?: DataType[];
  /** The file the type mix came from, when the second pass ran. */
  matchMix: string | null;
  /** The target mix (fractions) of the second pass. */
  targetMix?: Record<DataType, number>;
  policy: string;
  byType: Record<DataType, { total: number; quota: number; kept: number; threshold: number | null }>;
  /** Kept after the top-fraction pass (before the mix pass). */
  keptTopFraction: number;
  kept: number;
}

export interface ScoringRecord {
  /** 'embedding': the paper's measures; 'lexical': the documented fallback; 'mixed': one of each. */
  similarity: 'embedding' | 'lexical' | 'mixed';
  paperFaithful: boolean;
  warning?: string;
  sentenceModel: string | null;
  bertscoreModel: string | null;
}

/** The model family a run's data is for, and how it is trained. */
export interface TrainerRecord {
  /** engine/families.ts FamilyName. */
  family: string;
  /** 'llava': LLaVA JSON; 'sharegpt': LLaMA-Factory's ShareGPT. */
  format: 'llava' | 'sharegpt';
  /**
   * Whether train-lora.sh (LLaVA-1.5's training code) is written: LLaVA-1.5 only (MobileVLM reads
   * LLaVA JSON but trains with its own scripts). Absent from run.json files written before it was
   * recorded: recordedTrainer() fills it in from the family.
   */
  trainScript: boolean;
  /** LLaMA-Factory's template for the family, where it has one. */
  llamaFactoryTemplate?: string;
}

export interface OutputsRecord {
  journal: string;
  train: Record<string, string>;
  merged?: string;
  /** The folder image paths of the merged file are relative to. */
  mergedImageRoot?: string;
  /** original + kept in the extra formats (sharegpt, openai), like `train`. */
  mergedFormats?: Record<string, string>;
  /** Every image path of each LLaVA file looked up under the folder its training script passes. */
  imageChecks?: Record<string, ImageCheck>;
  /** Samples a format left out (an image format its target does not take), per file. */
  dropped?: Record<string, DroppedSamples>;
  /** LLaMA-Factory's dataset_info.json and data arguments, when ShareGPT was written. */
  llamaFactory?: { datasetInfo: string; dataArguments: string };
  /** The model family's trainer (engine/families.ts): what the next-steps text tells to train with. */
  trainer?: TrainerRecord;
  /** What the user must know about the training data (synthetic only, missing images, dropped samples). */
  warnings?: string[];
  report?: string;
  trainScript?: string;
}

/** What run.json holds. Keys not listed here may be added by later versions. */
export interface RunManifest {
  format: typeof MANIFEST_FORMAT;
  tool: { name: string; version: string };
  status: RunStatus;
  /** The command line of the latest session that wrote this folder. */
  command?: string[];
  round: number;
  /** Absolute; every image path in the outputs is relative to it (LLaVA's --image_folder). */
  imageRoot: string;
  inputs: Record<string, unknown>;
  models: {
    model: FileFingerprint;
    mmproj: FileFingerprint;
    loras: (FileFingerprint & { scale: number })[];
    embedder: FileFingerprint | null;
    bertscoreModel: FileFingerprint | null;
  } | null;
  generation: Record<string, unknown> | null;
  scoring: ScoringRecord | null;
  /** The filter the run used (lib/srf/filters.ts); absent in runs made before there was a choice (the paper's). */
  filter?: Omit<FilterSettings, 'minScore'> & { name: FilterName; minScore: number | null };
  selection: SelectionRecord | null;
  counts: RunCounts | null;
  timings: Record<string, unknown>;
  outputs: OutputsRecord;
  engine?: Record<string, unknown>;
  /** SHA-256 over what decides the generated text and scores: a resumed run must match it. */
  identity?: { hash: string; values: Record<string, unknown> };
  [key: string]: unknown;
}

export async function readManifest(dir: string): Promise<RunManifest | null> {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return null;
  }
  let value: RunManifest;
  try {
    value = JSON.parse(text) as RunManifest;
  } catch (cause) {
    throw new SrfError('DATA_INVALID', `not valid JSON: ${(cause as Error).message}`, { file, cause });
  }
  if (value?.format !== MANIFEST_FORMAT) throw new SrfError('DATA_INVALID', `not an srf-native run manifest (format ${JSON.stringify(value?.format)})`, { file });
  return value;
}

/**
 * The trainer a run's data is for, from its run.json. Older files lack parts of it: a run.json
 * without a trainer was written before families existed, so its run was LLaVA-1.5's; one without
 * `trainScript` takes its family's (unknown family: no LLaVA-1.5 script).
 */
export function recordedTrainer(manifest: RunManifest): TrainerRecord {
  const recorded = manifest.outputs?.trainer as Partial<TrainerRecord> | undefined;
  const family = typeof recorded?.family === 'string' ? recorded.family : 'llava-1.5';
  const traits = familyTrainer(family);
  const format = recorded?.format ?? traits?.format ?? 'llava';
  const llamaFactoryTemplate = recorded ? recorded.llamaFactoryTemplate : traits?.llamaFactoryTemplate;
  return { family, format, trainScript: recorded?.trainScript ?? traits?.trainScript ?? false, ...(llamaFactoryTemplate ? { llamaFactoryTemplate } : {}) };
}

export function writeManifest(dir: string, manifest: RunManifest): Promise<void> {
  return writeJsonAtomic(path.join(dir, MANIFEST_FILE), manifest);
}

/** Hash of an identity object (keys sorted). */
export function identityHash(values: Record<string, unknown>): string {
  return createHash('sha256').update(stableJson(values)).digest('hex');
}

/** One setting where a run folder's identity and a new run's differ: a dotted path and both values. */
export interface IdentityDifference {
  path: string;
  before: unknown;
  after: unknown;
}

/** The settings (leaf paths into nested objects; arrays compare whole) where two identities differ. */
export function identityDifferences(a: Record<string, unknown>, b: Record<string, unknown>, prefix = ''): IdentityDifference[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  const differences: IdentityDifference[] = [];
  for (const key of keys) {
    const before = a[key];
    const after = b[key];
    if (stableJson(before) === stableJson(after)) continue;
    const path = prefix + key;
    if (isPlainObject(before) && isPlainObject(after)) differences.push(...identityDifferences(before, after, `${path}.`));
    else differences.push({ path, before, after });
  }
  return differences;
}

/** `run` options that set each identity path, so that a refused resume says what to pass. */
const CLI_OPTIONS: [RegExp, string][] = [
  [/^decoding\.iToQa\.topK$/, '--top-k'],
  [/^decoding\.iToQa\.topP$/, '--top-p'],
  [/^decoding\.iToQa\.temperature$/, '--temperature'],
  [/^decoding\.iToQa\.maxTokens$/, '--max-tokens-qa'],
  [/^decoding\.(iaToQ|iqToA)\.maxTokens$/, '--max-tokens-check'],
  [/^grammar$/, '--no-grammar, --max-question-chars, --max-answer-chars, --max-answer-lines, --max-options'],
  [/^templates\./, 'the prompt options'],
  [/^seed$/, '--seed'],
  [/^round$/, '--round'],
  [/^truncatedAnswers$/, '--truncated'],
  [/^imageRoot$/, '--image-root'],
  [/^rescore$/, '--rescore'],
  [/^(model|mmproj|sentenceModel|bertscoreModel|loras)$/, 'a different file (sha256)'],
];

function shortValue(value: unknown): string {
  if (value === undefined || value === null) return 'unset';
  if (typeof value === 'string') return value.length > 40 ? `a ${value.length}-character text` : JSON.stringify(value);
  const json = JSON.stringify(value);
  return json.length > 60 ? `${json.slice(0, 57)}...` : json;
}

/** `seed was 0, now 7 (--seed)`: one difference as a refused resume reports it. */
export function describeDifference(d: IdentityDifference): string {
  const option = CLI_OPTIONS.find(([pattern]) => pattern.test(d.path));
  return `${d.path} differs: was ${shortValue(d.before)}, now ${shortValue(d.after)}${option ? ` (${option[1]})` : ''}`;
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}
