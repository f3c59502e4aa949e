/**
 * The balancing strategy of docs/METHOD.md: keep the top fraction by score within each data type,
 * so easy types (exact match) cannot crowd out the rest; optionally resample the kept set to the
 * type mix of the original instruction data.
 */
import { SrfError, invalidArgument } from '../errors.js';
import { checkFraction, checkSeed, isPlainObject } from '../util/validate.js';
import { DATA_TYPES, detectDataType, isDataType, type DataType, type DataTypeOptions } from './data-types.js';
import { readLlavaRecord } from './llava-data.js';
import { createRandom, shuffled } from './random.js';

/** What selection needs of a scored triplet. */
export interface ScoredItem {
  readonly id: string;
  readonly type: DataType;
  /** What the top fraction ranks by. */
  readonly score: number;
  /**
   * What the floor (minScore) and the S = 0 rule apply to, when not `score`: a filter that ranks by
   * S x something (the model's confidence, the sampled re-answers' agreement) still floors S itself.
   */
  readonly floorScore?: number | undefined;
}

export type Rounding = 'ceil' | 'floor' | 'round';

export interface SelectOptions {
  /** Fraction kept per type. Default 0.2 (the paper's choice among 5/20/50/80/100 %). */
  keepTop?: number;
  /** Per-type fractions that replace keepTop for those types. */
  keepTopByType?: Partial<Record<DataType, number>>;
  /**
   * How keepTop * count becomes a count. Default 'ceil': every type with at least one record keeps
   * at least one, and 20 % of 7 keeps 2. (At the paper's scale, 1M triplets, the choice is invisible.)
   */
  rounding?: Rounding;
  /** Records scoring below this are not kept even when in the top fraction (inclusive floor). Default none. */
  minScore?: number;
  /**
   * Whether a record with S = 0 may be kept. Default false: S = 0 means one side of the triangle
   * failed completely (e.g. a wrong yes/no), which is not data to learn from, however few a type has.
   */
  keepZeroScores?: boolean;
}

export interface TypeSelection {
  /** Records of this type seen. */
  total: number;
  /** fraction * total, rounded by `rounding`: how many the top fraction allows. */
  quota: number;
  /** Records kept (quota less those under minScore / at zero). */
  kept: number;
  /** Lowest kept score; null when none kept. */
  threshold: number | null;
}

export interface SelectionSummary {
  keptIds: ReadonlySet<string>;
  byType: Record<DataType, TypeSelection>;
  total: number;
  keptCount: number;
}

const EPSILON = 1e-9;

/** Fraction kept per type when not told: the paper's 20 %. */
export const DEFAULT_KEEP_TOP = 0.2;

/** Count kept for a fraction of a total. The epsilon keeps 0.2 * 15 (= 3.0000000000000004) from rounding up to 4. */
export function quotaFor(fraction: number, total: number, rounding: Rounding): number {
  const exact = fraction * total;
  const count = rounding === 'ceil' ? Math.ceil(exact - EPSILON) : rounding === 'floor' ? Math.floor(exact + EPSILON) : Math.round(exact);
  return Math.min(total, Math.max(0, count));
}

/** Higher score first; equal scores by id in code-unit order, so the result never depends on input order. */
function compareByScoreThenId(aScore: number, aId: string, bScore: number, bId: string): number {
  if (aScore !== bScore) return bScore - aScore;
  return aId < bId ? -1 : aId > bId ? 1 : 0;
}

function emptyByType<T>(make: () => T): Record<DataType, T> {
  return Object.fromEntries(DATA_TYPES.map((type) => [type, make()])) as Record<DataType, T>;
}

interface ResolvedSelectOptions {
  fractions: Record<DataType, number>;
  rounding: Rounding;
  minScore: number | undefined;
  keepZeroScores: boolean;
}

function resolveSelectOptions(options: SelectOptions): ResolvedSelectOptions {
  if (!isPlainObject(options as unknown)) throw invalidArgument('an object', 'options', options);
  const keepTop = checkFraction(options.keepTop ?? DEFAULT_KEEP_TOP, 'keepTop');
  const fractions = emptyByType(() => keepTop);
  if (options.keepTopByType !== undefined) {
    if (!isPlainObject(options.keepTopByType as unknown)) throw invalidArgument('an object', 'keepTopByType', options.keepTopByType);
    for (const [type, fraction] of Object.entries(options.keepTopByType)) {
      if (!isDataType(type)) throw invalidArgument(`one of ${DATA_TYPES.join(', ')}`, 'keepTopByType key', type);
      fractions[type] = checkFraction(fraction, `keepTopByType.${type}`);
    }
  }
  const rounding = options.rounding ?? 'ceil';
  if (!['ceil', 'floor', 'round'].includes(rounding)) throw invalidArgument('ceil, floor or round', 'rounding', rounding);
  const minScore = options.minScore;
  if (minScore !== undefined && (typeof minScore !== 'number' || !Number.isFinite(minScore))) {
    throw invalidArgument('a number', 'minScore', minScore);
  }
  return { fractions, rounding, minScore, keepZeroScores: options.keepZeroScores ?? false };
}

/**
 * Selection over a stream: `add` each scored item (only id, type and score are kept, about 50 bytes
 * each), then `finish` sorts each type once. Re-read the records and keep those whose id is in
 * `keptIds`; memory stays small for the paper's 1M triplets.
 */
export class PerTypeSelector {
  readonly #options: ResolvedSelectOptions;
  readonly #ids = emptyByType<string[]>(() => []);
  readonly #scores = emptyByType<number[]>(() => []);
  readonly #floorScores = emptyByType<number[]>(() => []);
  readonly #seen = new Set<string>();

  constructor(options: SelectOptions = {}) {
    this.#options = resolveSelectOptions(options);
  }

  get size(): number {
    return this.#seen.size;
  }

  /** `where` names the source of the item in error messages (e.g. a file and line). */
  add(item: ScoredItem, where?: string): void {
    const place = where ?? `item ${this.#seen.size}`;
    if (!isPlainObject(item as unknown) || typeof item.id !== 'string' || item.id === '') {
      throw new SrfError('DATA_INVALID', `${place}: expected a scored item with a non-empty string id`);
    }
    if (!isDataType(item.type)) {
      throw new SrfError('DATA_INVALID', `${place} (id ${JSON.stringify(item.id)}): unknown data type ${JSON.stringify(item.type)}`);
    }
    for (const key of ['score', 'floorScore'] as const) {
      const value = item[key];
      if (key === 'floorScore' && value === undefined) continue;
      if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
        throw new SrfError('DATA_INVALID', `${place} (id ${JSON.stringify(item.id)}): ${key} must be a number in [0, 1], received ${String(value)}`);
      }
    }
    if (this.#seen.has(item.id)) {
      throw new SrfError('DATA_INVALID', `${place}: id ${JSON.stringify(item.id)} appears twice; ties are broken by id, so ids must be unique`);
    }
    this.#seen.add(item.id);
    this.#ids[item.type].push(item.id);
    this.#scores[item.type].push(item.score);
    this.#floorScores[item.type].push(item.floorScore ?? item.score);
  }

  finish(): SelectionSummary {
    const { fractions, rounding, minScore, keepZeroScores } = this.#options;
    const keptIds = new Set<string>();
    const byType = emptyByType<TypeSelection>(() => ({ total: 0, quota: 0, kept: 0, threshold: null }));
    for (const type of DATA_TYPES) {
      const ids = this.#ids[type];
      const scores = this.#scores[type];
      const order = Array.from(ids.keys()).sort((a, b) =>
        compareByScoreThenId(scores[a] as number, ids[a] as string, scores[b] as number, ids[b] as string),
      );
      const floorScores = this.#floorScores[type];
      const quota = quotaFor(fractions[type], ids.length, rounding);
      const stats = byType[type];
      stats.total = ids.length;
      stats.quota = quota;
      // The quota is filled in rank order from the records above the floor (when the rank is the
      // floored score itself, the first one under it ends the list).
      for (const index of order) {
        if (stats.kept === quota) break;
        const floorScore = floorScores[index] as number;
        if (minScore !== undefined && floorScore < minScore) continue;
        if (floorScore === 0 && !keepZeroScores) continue;
        keptIds.add(ids[index] as string);
        stats.kept++;
        stats.threshold = scores[index] as number;
      }
    }
    return { keptIds, byType, total: this.#seen.size, keptCount: keptIds.size };
  }
}

/** PerTypeSelector over records in memory; `kept` holds the kept records in input order. */
export function selectTopPerType<T extends ScoredItem>(records: Iterable<T>, options: SelectOptions = {}): SelectionSummary & { kept: T[] } {
  const selector = new PerTypeSelector(options);
  const all: T[] = [];
  for (const record of records) {
    selector.add(record, `record ${all.length}`);
    all.push(record);
  }
  const summary = selector.finish();
  return { ...summary, kept: all.filter((record) => summary.keptIds.has(record.id)) };
}

export interface TypeMix {
  counts: Record<DataType, number>;
  /** counts / total (all 0 when total is 0). */
  fractions: Record<DataType, number>;
  /** Records counted. */
  total: number;
  /** Records not counted: text-only (unless included) or with an empty first question or answer. */
  skipped: number;
}

export interface TypeMixOptions {
  dataTypes?: DataTypeOptions;
  /** Count records without an image too. Default false: the synthetic data is all image-grounded. */
  includeTextOnly?: boolean;
  /** The file the records come from, for error messages. */
  file?: string;
}

/** The type mix of an instruction data file, by detectDataType over each record's first (Q, A) turn. */
export function typeMixFromLlavaData(records: Iterable<unknown>, options: TypeMixOptions = {}): TypeMix {
  const counts = emptyByType(() => 0);
  let total = 0;
  let skipped = 0;
  let index = 0;
  for (const value of records) {
    const sample = readLlavaRecord(value, options.file ? { index, file: options.file } : { index });
    index++;
    const first = sample.turns[0];
    if (!first || (sample.image === undefined && !options.includeTextOnly) || first.question === '' || first.answer === '') {
      skipped++;
      continue;
    }
    counts[detectDataType(first.question, first.answer, options.dataTypes)]++;
    total++;
  }
  const fractions = emptyByType(() => 0);
  for (const type of DATA_TYPES) fractions[type] = total > 0 ? counts[type] / total : 0;
  return { counts, fractions, total, skipped };
}

export interface MatchMixOptions {
  /**
   * Which records of an over-represented type stay. 'score' (default): the highest scores, ties by id —
   * the same order as selection. 'random': a seeded random subset.
   */
  by?: 'score' | 'random';
  /** Seed for by: 'random'. Default 0. */
  seed?: number;
}

export interface TypeMixMatch {
  /** Available in the kept set. */
  available: number;
  /** Target fraction after leaving out types with nothing available. */
  target: number;
  kept: number;
}

export interface MixMatchResult<T> {
  /** In input order. */
  kept: T[];
  byType: Record<DataType, TypeMixMatch>;
  /** Types the target asks for that the kept set does not have; the target is renormalised without them. */
  missingTypes: DataType[];
}

function targetWeights(target: TypeMix | Partial<Record<DataType, number>>): Record<DataType, number> {
  const source = isPlainObject(target as unknown) && 'fractions' in target ? (target as TypeMix).fractions : target;
  if (!isPlainObject(source as unknown)) throw invalidArgument('a type mix', 'targetMix', target);
  const weights = emptyByType(() => 0);
  for (const [type, weight] of Object.entries(source as Record<string, unknown>)) {
    if (!isDataType(type)) throw invalidArgument(`one of ${DATA_TYPES.join(', ')}`, 'targetMix key', type);
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) {
      throw invalidArgument('a non-negative number', `targetMix.${type}`, weight);
    }
    weights[type] = weight;
  }
  return weights;
}

/**
 * Downsamples `kept` so that its type mix matches `targetMix` (fractions or counts per type, or a
 * TypeMix). Never duplicates: the largest set with the target mix is found (the scarcest type relative
 * to its target share is kept whole), every other type is cut to floor(share * size). Types absent
 * from the target are dropped; target types absent from `kept` are left out and the target renormalised.
 */
export function matchTypeMix<T extends ScoredItem>(
  kept: readonly T[],
  targetMix: TypeMix | Partial<Record<DataType, number>>,
  options: MatchMixOptions = {},
): MixMatchResult<T> {
  const by = options.by ?? 'score';
  if (by !== 'score' && by !== 'random') throw invalidArgument('score or random', 'by', by);
  const seed = checkSeed(options.seed ?? 0, 'seed');
  const weights = targetWeights(targetMix);

  const groups = emptyByType<T[]>(() => []);
  for (const item of kept) {
    if (!isDataType(item.type)) throw new SrfError('DATA_INVALID', `id ${JSON.stringify(item.id)}: unknown data type ${JSON.stringify(item.type)}`);
    groups[item.type].push(item);
  }
  const missingTypes = DATA_TYPES.filter((type) => weights[type] > 0 && groups[type].length === 0);
  const usable = DATA_TYPES.filter((type) => weights[type] > 0 && groups[type].length > 0);
  const weightSum = usable.reduce((sum, type) => sum + weights[type], 0);
  const byType = emptyByType<TypeMixMatch>(() => ({ available: 0, target: 0, kept: 0 }));
  for (const type of DATA_TYPES) byType[type].available = groups[type].length;
  if (usable.length === 0) return { kept: [], byType, missingTypes };

  const size = Math.min(...usable.map((type) => groups[type].length / (weights[type] / weightSum)));
  const keep = new Set<T>();
  const random = createRandom(seed);
  for (const type of usable) {
    const share = weights[type] / weightSum;
    const quota = Math.min(groups[type].length, Math.floor(share * size + EPSILON));
    const ranked =
      by === 'score'
        ? groups[type].slice().sort((a, b) => compareByScoreThenId(a.score, a.id, b.score, b.id))
        : shuffled(groups[type].slice().sort((a, b) => compareByScoreThenId(0, a.id, 0, b.id)), random);
    for (const item of ranked.slice(0, quota)) keep.add(item);
    byType[type].target = share;
    byType[type].kept = quota;
  }
  return { kept: kept.filter((item) => keep.has(item)), byType, missingTypes };
}
